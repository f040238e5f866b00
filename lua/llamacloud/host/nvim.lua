-- Neovim: with a callback, a call returns a handle at once and runs wait.lua in a coroutine driven by
-- the editor's loop (vim.loop polls on libcurl's sockets, timers on its hints); without one it blocks.
local core = require("llamacloud.core")
local blocking = require("llamacloud.host.blocking")

local uv = vim.loop

local M = {}

M.now = core.now
M.sleep = blocking.sleep
M.run = blocking.run
M.step = blocking.step

-- Transfers one client runs at once for its callback-mode get and wait calls.
M.CONCURRENCY = 64

local MAX_TIMER_MS = 2 ^ 31 - 1

local function ms(s)
  local v = math.ceil(s * 1000)
  if v < 0 then return 0 end
  if v > MAX_TIMER_MS then return MAX_TIMER_MS end
  return v
end

-- A driver watches one multi on the loop: a poll per socket libcurl wants watched and one
-- timer on its next-step hint. Its handles exist only while the multi has work.
local Driver = {}
Driver.__index = Driver

local function new_driver(multi, on_finished)
  multi:watch()
  return setmetatable({ multi = multi, polls = {}, events = {}, on_finished = on_finished }, Driver)
end

-- Closes every handle; a later sync opens what libcurl still wants.
function Driver:release()
  for fd, p in pairs(self.polls) do
    p:close()
    self.polls[fd] = nil
  end
  self.events = {}
  if self.timer then
    self.timer:close()
    self.timer = nil
  end
end

function Driver:close()
  self.closed = true
  self:release()
end

function Driver:watch(fd, ev)
  local p = self.polls[fd]
  if not p then
    p = uv.new_poll(fd)
    -- a socket the loop cannot watch (nil) is still stepped by the timer
    if not p then return end
    self.polls[fd] = p
  end
  self.events[fd] = ev
  p:start(ev, function(err, got)
    -- On an error (a refused connect gives POLLERR) libuv has stopped the poll: libcurl
    -- finds out what happened, and the next sync starts it again if it is still wanted.
    if err then self.events[fd] = nil end
    self:act(fd, (not err) and got or nil)
  end)
end

-- Brings the polls in line with what libcurl wants and re-arms the timer. A socket libcurl
-- dropped loses its poll first, so a new socket with the same number gets a fresh one.
function Driver:sync(next_wait)
  local want, gone = self.multi:sockets()
  local polls, events = self.polls, self.events
  for i = 1, #gone do
    local fd = gone[i]
    if polls[fd] then
      polls[fd]:close()
      polls[fd], events[fd] = nil, nil
    end
  end
  if next_wait == nil then
    -- The multi is empty: nothing to watch until the next request.
    self:release()
    return
  end
  for fd, p in pairs(polls) do
    if not want[fd] or want[fd] == "" then
      p:close()
      polls[fd], events[fd] = nil, nil
    end
  end
  for fd, ev in pairs(want) do
    if ev ~= "" and events[fd] ~= ev then self:watch(fd, ev) end
  end
  if not self.timer then self.timer = uv.new_timer() end
  self.timer:start(ms(next_wait), 0, function() self:act(nil) end)
end

-- Runs from loop callbacks (fast events): only the C core works here; whoever waits for a
-- finished request is resumed later through vim.schedule.
function Driver:act(fd, events)
  if self.closed then return end
  local finished, next_wait = self.multi:socket_action(fd, events)
  self.next_wait = next_wait
  self:sync(next_wait)
  if finished then self.on_finished(finished) end
end

-- One multi per client carries the callback-mode get and wait polls, so they share
-- connections; each finished request wakes the task waiting for it.
local shared = setmetatable({}, { __mode = "k" })

local function shared_driver(ud)
  local d = shared[ud]
  if not d then
    local waiters = {}
    d = new_driver(ud:multi(M.CONCURRENCY), function(finished)
      for i = 1, #finished do
        local task = waiters[finished[i]]
        waiters[finished[i]] = nil
        if task then task:wake() end
      end
    end)
    d.waiters = waiters
    shared[ud] = d
  end
  return d
end

-- A task is one callback-mode call: wait.lua's code in a coroutine whose host primitives
-- yield; it is resumed on the main loop (vim.schedule), so on_poll and the callback may use vim.api.
local Task = {}
Task.__index = Task

local tasks = setmetatable({}, { __mode = "k" }) -- coroutine -> task

local function current()
  local task = tasks[coroutine.running()]
  if not task then error("llamacloud: internal: no task for this coroutine", 0) end
  -- A task cancelled while it ran (from its own on_poll) stops at its next wait.
  if task.cancelled then
    task:cleanup(true)
    coroutine.yield()
  end
  return task
end

function Task:suspend()
  self.suspended = true
  coroutine.yield()
  if self.cancelled then coroutine.yield() end
end

function Task:wake()
  if self.cancelled or not self.suspended or self.waking then return end
  self.waking = true
  vim.schedule(function()
    self.waking = false
    if self.cancelled or not self.suspended then return end
    self.suspended = false
    self:resume()
  end)
end

function Task:timer_start(s)
  if not self.timer then self.timer = uv.new_timer() end
  self.timer:start(ms(s), 0, function() self:wake() end)
end

-- Closes the task's handles; abort also stops its transfers (the connections are closed).
function Task:cleanup(abort)
  if self.timer then
    self.timer:close()
    self.timer = nil
  end
  if abort and self.req then
    local d = self.req_driver
    d.waiters[self.req] = nil
    self.req:cancel()
    d:act(nil)
  end
  self.req, self.req_driver = nil, nil
  for multi, d in pairs(self.drivers) do
    d:close()
    if abort then multi:close() end
  end
  self.drivers = {}
  tasks[self.co] = nil
end

-- Calls the callback on the main loop, unless the call was cancelled first.
function Task:deliver(a, b)
  vim.schedule(function()
    if self.cancelled then return end
    self.delivered = true
    self.callback(a, b)
  end)
end

-- The first resume runs in the caller, so an error there (misuse) raises at the call. Any later
-- one (an on_poll that raises, a client closed meanwhile) has no caller to reach: it goes to
-- the callback as nil, err (spec/nvim_spec.lua, "raised after the call started"; docs/hosts.md).
function Task:resume()
  local ok, a, b = coroutine.resume(self.co)
  if not ok then
    self.done = true
    self:cleanup(true)
    if not self.started then error(a, 0) end
    self:deliver(nil, a)
    return
  end
  if coroutine.status(self.co) == "dead" then
    self.done = true
    self:cleanup(false)
    self:deliver(a, b)
  end
end

function Task:cancel()
  if self.cancelled or self.delivered then return false end
  self.cancelled = true
  -- A running task (cancelled from its own on_poll) cleans up at its next wait, or ends.
  if not self.done and coroutine.status(self.co) == "suspended" then self:cleanup(true) end
  return true
end

-- Host primitives for wait.lua inside a task.
local A = { now = core.now }

function A.sleep(s)
  local task = current()
  task:timer_start(s)
  task:suspend()
end

function A.run(ud, req)
  local task = current()
  local d = shared_driver(ud)
  d.multi:add(req)
  d.waiters[req] = task
  task.req, task.req_driver = req, d
  d:act(nil)
  while not req:done() do task:suspend() end
  task.req, task.req_driver = nil, nil
  return req:result()
end

function A.step(multi, max_wait)
  local task = current()
  local d = task.drivers[multi]
  if not d then
    d = new_driver(multi, function(finished)
      for i = 1, #finished do d.finished[#d.finished + 1] = finished[i] end
      if d.waiter then d.waiter:wake() end
    end)
    d.finished = {}
    task.drivers[multi] = d
  end
  d:act(nil)
  if #d.finished == 0 and max_wait > 0 then
    d.waiter = task
    task:timer_start(max_wait)
    task:suspend()
    d.waiter = nil
    task.timer:stop()
  end
  local finished = d.finished
  d.finished = {}
  if #finished == 0 then finished = nil end
  return finished, d.next_wait
end

-- The callback adapter: fn(primitives) runs in a task on the editor's loop; callback(a, b) gets
-- what it returns. The first part runs now, so a bad argument raises here, in the caller.
function M.async(fn, callback)
  local task = setmetatable({ drivers = {}, callback = callback }, Task)
  task.co = coroutine.create(function() return fn(A) end)
  tasks[task.co] = task
  task:resume()
  task.started = true
  local handle = {}
  -- handle:cancel(): aborts the call; its callback is never called. False when it had already been.
  function handle.cancel() return task:cancel() end
  return handle
end

-- Without a callback a call blocks, which a fast event (a vim.loop callback) must not.
function M.enter(label)
  if vim.in_fast_event() then
    return nil, "llamacloud: " .. label .. " cannot block in a fast event (a vim.loop callback): pass a "
      .. "callback as its last argument, or call it from vim.schedule"
  end
  return blocking
end

return M
