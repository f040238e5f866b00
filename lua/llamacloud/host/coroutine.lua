-- Plain Lua inside coroutines: calls yield to the caller's scheduler instead of blocking, stepping libcurl without blocking in between.
local core = require("llamacloud.core")

local M = {}

-- While a transfer is in flight a waiting coroutine looks at it this often (seconds): the
-- most latency the mode adds to a response, and how often it costs a wake-up.
M.POLL_INTERVAL = 0.01
-- Transfers one client runs at once for its single requests (a poll loop's included); the calls
-- that run many at once keep their own `concurrency`.
M.CONCURRENCY = 64

local function check_settings(settings)
  if settings == nil then return {} end
  if type(settings) ~= "table" then
    error("llamacloud: coroutine host: settings must be a table (got " .. type(settings) .. ")", 4)
  end
  for k in pairs(settings) do
    if k ~= "sleep" and k ~= "poll_interval" then
      error("llamacloud: coroutine host: unknown setting '" .. tostring(k) .. "'", 4)
    end
  end
  if settings.sleep ~= nil and type(settings.sleep) ~= "function" then
    error("llamacloud: coroutine host: setting 'sleep' must be a function", 4)
  end
  local p = settings.poll_interval
  if p ~= nil and (type(p) ~= "number" or not (p > 0) or p > 1) then
    error("llamacloud: coroutine host: setting 'poll_interval' must be a number of seconds in (0, 1]", 4)
  end
  return settings
end

local OUTSIDE = "llamacloud: coroutine mode: call batches.* from inside a coroutine (or give new a 'sleep' function)"
local NO_YIELD_51 = "llamacloud: coroutine mode: batches.* cannot yield here: PUC Lua 5.1 cannot yield across pcall, "
  .. "xpcall or another C function; call it outside them (or give new a 'sleep' function)"
local NO_YIELD = "llamacloud: coroutine mode: batches.* cannot yield here, inside a C function such as a "
  .. "table.sort comparator (or give new a 'sleep' function)"

-- Raises unless the running code may yield, before a call starts anything (a request left in the
-- client's shared multi by a failed yield would never end: spec/coroutine_spec.lua, "5.1").
local function check_yieldable()
  local co, main = coroutine.running()
  if co == nil or main then error(OUTSIDE, 0) end
  if coroutine.isyieldable then
    if not coroutine.isyieldable() then error(NO_YIELD, 0) end
    return
  end
  if _VERSION ~= "Lua 5.1" then return end -- 5.2 yields across pcall
  -- PUC 5.1: any C function between here and the coroutine's start (pcall first of all) stops a yield.
  local level = 3
  while true do
    local info = debug.getinfo(level, "S")
    if not info then return end
    if info.what == "C" then error(NO_YIELD_51, 0) end
    level = level + 1
  end
end

-- Without a sleep of the user's own, a call yields the number of seconds after which its
-- coroutine wants to be resumed.
local function yield_sleep(s)
  local co, main = coroutine.running()
  if co == nil or main then error(OUTSIDE, 0) end
  coroutine.yield(s)
end

-- A host (now, sleep, run, step, enter) whose waits go through settings.sleep.
function M.host(settings)
  settings = check_settings(settings)
  local sleep = settings.sleep or yield_sleep
  local interval = settings.poll_interval or M.POLL_INTERVAL
  local shared = setmetatable({}, { __mode = "k" }) -- client userdata -> the multi its gets share
  local H = { now = core.now, name = "coroutine" }

  -- A scheduler (or a sleep function) may resume the call earlier than asked: it sleeps again
  -- until its time has come, so a pause stays whole (spec/coroutine_spec.lua, "resumed early").
  function H.sleep(s)
    local wake = core.now() + s
    repeat
      sleep(s > 0 and s or 0)
      s = wake - core.now()
    until s <= 0
  end

  -- Seconds to sleep before the next look at multi, at most max_wait.
  local function pause_for(multi, next_wait, max_wait)
    local p = max_wait
    if next_wait and next_wait < p then p = next_wait end
    if p > interval and multi:counts() > 0 then p = interval end
    return p
  end

  -- Every waiting coroutine steps the shared multi when it wakes, which advances the
  -- others' transfers too; each leaves once its own request is done.
  function H.run(ud, req)
    local multi = shared[ud]
    if not multi then
      multi = ud:multi(M.CONCURRENCY)
      shared[ud] = multi
    end
    multi:add(req)
    local _, next_wait = multi:step(0)
    while not req:done() do
      H.sleep(pause_for(multi, next_wait, 1))
      _, next_wait = multi:step(0)
    end
    return req:result()
  end

  -- The client is closing: its shared multi ends every transfer still in it.
  function H.close(ud)
    local multi = shared[ud]
    shared[ud] = nil
    if multi then multi:close() end
  end

  function H.step(multi, max_wait)
    local finished, next_wait = multi:step(0)
    if finished or max_wait <= 0 then return finished, next_wait end
    H.sleep(pause_for(multi, next_wait, max_wait))
    return multi:step(0)
  end

  -- With the default sleep, a call checks first that it may yield.
  local check = settings.sleep and function() end or check_yieldable

  -- PUC 5.1 calls a generic for's iterator across a C boundary: an iterator that yields there would
  -- fail half-way, so it is refused at the call (spec/workflow_hosts_spec.lua, "PUC 5.1").
  local for_cannot_yield = not settings.sleep and _VERSION == "Lua 5.1" and not jit

  function H.enter(label, kind)
    check()
    if kind == "iterator" and for_cannot_yield then
      error("llamacloud: coroutine mode: " .. label .. " cannot yield inside a generic for on PUC Lua 5.1; "
        .. "page with list and next_page_token instead (or give new a 'sleep' function)", 0)
    end
    return H
  end

  return H
end

-- A client (as llamacloud.new(opts) builds) whose batches.* calls yield instead of blocking.
-- settings.sleep(seconds): how to wait in the user's scheduler (copas.pause, a luv timer...);
-- without it a call does coroutine.yield(seconds). settings.poll_interval: see POLL_INTERVAL.
function M.new(opts, settings)
  return require("llamacloud").new(opts, M.host(settings))
end

return M
