-- OpenResty: in phases that can yield, calls wait on ngx.semaphore while one ngx.timer per worker steps
-- libcurl without blocking and sleeps on its hints; `init` blocks; every other phase raises.
local core = require("llamacloud.core")
local blocking = require("llamacloud.host.blocking")
local semaphore = require("ngx.semaphore")

local ngx = ngx

local M = {}

M.now = core.now

-- While transfers are in flight the poller looks at them every POLL_MIN seconds after a
-- response or a new request, backing off to POLL_MAX while nothing finishes: a fast answer
-- waits about POLL_MIN more, a slow one at most POLL_MAX, and a worker whose requests all
-- wait on a slow server wakes 1/POLL_MAX times a second, however many they are.
M.POLL_MIN = 0.001
M.POLL_MAX = 0.01
-- Transfers one client runs at once for its get and wait calls, per worker.
M.CONCURRENCY = 256
-- How often (seconds) the poller looks for waiters that died, whose transfers it then ends.
M.CHECK_EVERY = 0.25
-- A waiter re-checks its request this often, so it never depends on the poller alone.
local WAIT_SLICE = 1
-- The longest a sleep between polls goes without looking at ngx.worker.exiting().
local SLEEP_SLICE = 1

local YIELDING = {
  rewrite = true, server_rewrite = true, access = true, content = true, timer = true,
  ssl_cert = true, ssl_session_fetch = true, ssl_client_hello = true,
}


-- The poller: one ngx.timer per worker while any multi below has work. Each entry is a
-- client's shared multi (its waiters: request -> semaphore) or the multi of a call that runs many
-- watched for the length of one step (its finished requests collect in the entry). The
-- poller ends once no entry is left: a waiter that died (ngx.thread.kill, ngx.exit, a client
-- abort) loses its entry or request, and an exiting worker lets go of everything at once
-- (spec/ngx_spec.lua, "lets go of ... when its light thread dies" and "lets the worker exit").
local watched = {} -- multi -> entry
local running = false
local kick -- wakes the poller early when a request is added; made in the worker, not in init
local next_check = 0

local function exiting()
  return ngx.worker.exiting()
end

-- Whether a thread still waits on sema. ngx.semaphore's count is its resources minus its
-- waiters, and a thread that dies while it waits leaves the queue: a waiter not yet posted
-- counts -1, one posted but not yet resumed 0; a dead one 0 or 1.
local function waited_on(sema, posted)
  return sema:count() < (posted and 1 or 0)
end

local function post_once(e)
  if not e.posted then
    e.posted = true
    e.sema:post(1)
  end
end

local function deliver(e, finished)
  if e.waiters then
    for i = 1, #finished do
      local s = e.waiters[finished[i]]
      e.waiters[finished[i]] = nil
      if s then s:post(1) end
    end
  else
    for i = 1, #finished do e.finished[#e.finished + 1] = finished[i] end
    post_once(e)
  end
end

-- Ends what nobody waits for (all of it when the worker exits): the requests of dead waiters
-- are cancelled, a step's multi is closed; live waiters are woken to find theirs cancelled.
local function drop(multi, e, all)
  if e.waiters then
    for req, sema in pairs(e.waiters) do
      if all or not waited_on(sema, false) then
        e.waiters[req] = nil
        req:cancel()
        sema:post(1)
      end
    end
  elseif all or not waited_on(e.sema, e.posted) then
    watched[multi] = nil
    e.closed = true
    multi:close()
    post_once(e)
  end
end

local function drop_all()
  for multi, e in pairs(watched) do drop(multi, e, true) end
  watched = {}
end

local function poll(premature)
  if premature or exiting() then
    drop_all()
    running = false
    return
  end
  local interval = M.POLL_MIN
  while true do
    if exiting() then
      drop_all()
      break
    end
    local soonest, active = interval, false
    local check = core.now() >= next_check
    if check then next_check = core.now() + M.CHECK_EVERY end
    for multi, e in pairs(watched) do
      if check then drop(multi, e, false) end
      if not e.closed then
        local finished, next_wait = multi:step(0)
        if finished then
          active = true
          deliver(e, finished)
        end
        if next_wait then
          if next_wait < soonest then soonest = next_wait end
        elseif e.waiters then
          watched[multi] = nil -- an idle shared multi: watched again at its next request
        end
      end
    end
    if next(watched) == nil then break end
    -- A wait of 0 would not yield (and ngx.sleep(0) is slow without OpenResty's patches):
    -- nginx timers have millisecond resolution anyway.
    if soonest < M.POLL_MIN then soonest = M.POLL_MIN end
    if kick:wait(soonest) then active = true end
    interval = active and M.POLL_MIN or math.min(interval * 2, M.POLL_MAX)
  end
  running = false
end

local function wake_poller()
  if not kick then kick = semaphore.new() end
  if running then
    if kick:count() < 0 then kick:post(1) end
    return true
  end
  local ok = ngx.timer.at(0, poll)
  running = ok and true or false
  return running
end

-- Waits for sema to be posted; steps e.multi itself when no poller could be started
-- (too many timers), so a call never hangs. Either way the thread waits on sema, so
-- that a poller started later sees it alive.
local function wait_for(e, sema, max_wait)
  if wake_poller() then
    sema:wait(max_wait)
    return
  end
  local finished = e.multi:step(0)
  if finished then return deliver(e, finished) end
  sema:wait(math.min(max_wait, M.POLL_MIN))
end

local shared = setmetatable({}, { __mode = "k" }) -- client userdata -> its entry

local EXITING = "the nginx worker is exiting"

-- Host primitives for wait.lua in a yielding phase.
local Y = { now = core.now }

-- Why calls let go early (nil while they need not): wait.lua stops its loops on it.
function Y.stopping()
  if exiting() then return EXITING end
end

-- ngx.sleep in slices, so that a sleeper lets go soon after the worker starts exiting.
function Y.sleep(s)
  local wake = core.now() + s
  while s > 0 and not exiting() do
    ngx.sleep(math.min(s, SLEEP_SLICE))
    s = wake - core.now()
  end
end

function Y.run(ud, req)
  local e = shared[ud]
  if not e then
    e = { multi = ud:multi(M.CONCURRENCY), waiters = {} }
    shared[ud] = e
  end
  if exiting() then return nil, core.error("APIConnectionError", EXITING, { attempts = 0 }) end
  local sema = semaphore.new()
  e.waiters[req] = sema
  e.multi:add(req)
  watched[e.multi] = e
  while not req:done() do wait_for(e, sema, WAIT_SLICE) end
  return req:result()
end

function Y.step(multi, max_wait)
  if exiting() then
    multi:close()
    return nil, nil
  end
  local finished, next_wait = multi:step(0)
  if finished or max_wait <= 0 then return finished, next_wait end
  if not next_wait then
    -- nothing in flight (a poll loop of many between its polls): sleep, never spin
    -- (spec/ngx_spec.lua, the spec "sleeps between ... polls at the default interval")
    Y.sleep(max_wait)
    return nil, nil
  end
  local e = { multi = multi, finished = {}, sema = semaphore.new() }
  watched[multi] = e
  wait_for(e, e.sema, max_wait)
  if e.closed then return nil, nil end -- the worker is exiting: its requests ended cancelled
  watched[multi] = nil
  local more
  more, next_wait = multi:step(0)
  if more then
    for i = 1, #more do e.finished[#e.finished + 1] = more[i] end
  end
  if #e.finished == 0 then return nil, next_wait end
  return e.finished, next_wait
end

M.sleep = Y.sleep
M.run = Y.run
M.step = Y.step
M.stopping = Y.stopping

-- The primitives a call uses in this phase: yielding ones where the phase can yield, blocking
-- ones in init (the master, before workers exist); nil and why in any other phase.
function M.enter(label)
  local phase = ngx.get_phase()
  if YIELDING[phase] then return Y end
  if phase == "init" then return blocking end
  return nil, "llamacloud: " .. label .. " cannot run in nginx's '" .. phase .. "' phase, which cannot "
    .. "yield; run it from a timer: ngx.timer.at(0, function() ... end)"
end

return M
