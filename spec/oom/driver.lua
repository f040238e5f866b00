-- The calls the failure-injection hosts run (spec/oom/oom_host.c, spec/oom/finalizers_jit.lua): setup
-- before the fault is armed, the call itself, and the verdict after it is disarmed.
local bodies = require("spec.oom.bodies")

local M = {}

local STOP_ON_ERROR = false

local FINALIZER_MARK = "oom-host: a finalizer raised on purpose"
M.FINALIZER_MARK = FINALIZER_MARK

-- Fresh ids each run (the scenario's `any`: 503, RUNNING, COMPLETED), so every run retries and polls.
-- When libcurl's allocations fail (mode curl) every later attempt fails too, and a retry would sleep its
-- backoff: those runs use ids that complete at once, no retries, and a wait that stops at its first error.
local function ids_for(tag, n, mode)
  local ids = {}
  for i = 1, n do ids[i] = mode == "curl" and "bat-small" or "oom-" .. tag .. "-" .. i end
  return ids
end

local function on_poll(_, info)
  if info.err and info.err.name == "APIConnectionError" and STOP_ON_ERROR then return false end
end

-- name -> function(client, core, tag, mode): the call under test, as a function of no arguments.
local CALLS = {
  get = function(c, _, tag, mode)
    local id = ids_for(tag, 1, mode)[1]
    return function() return c.batches.get(id, { expand = "results", headers = { ["x-oom"] = "1" } }) end
  end,
  -- options computed by __index: the library reads option tables raw, so these must not be used (and a
  -- string computed there must not be kept past its life: issue 9, defect 3)
  get_index = function(c, _, tag, mode)
    local id = ids_for(tag, 1, mode)[1]
    local computed = setmetatable({}, { __index = function(_, k)
      if k == "organization_id" or k == "project_id" then return k .. string.rep("x", 40) end
    end })
    return function() return c.batches.get(id, computed) end
  end,
  -- a POST: its body, and the Content-Type and Expect lines it adds to the per-call headers
  create = function(c)
    local params = { source_directory_id = "dir-oom", config = { job = { type = "parse_v2", configuration_id = "cfg-oom" } } }
    return function() return c.batches.create(params, { headers = { ["x-oom"] = "1" } }) end
  end,
  -- a client of its own: new raises a memory error (never a verdict on its options) under either
  -- allocator, since nothing is on the wire yet (README, "Memory runs out")
  new = function(_, _, _, _, url)
    return function() return require("llamacloud").new({ api_key = "k", base_url = url, headers = { ["x-a"] = "1" } }) end
  end,
  get_many = function(c, _, tag, mode)
    local ids = ids_for(tag, 3, mode)
    return function() return c.batches.get_many(ids, { expand = "results", concurrency = 2 }) end
  end,
  wait = function(c, _, tag, mode)
    local id = ids_for(tag, 1, mode)[1]
    return function() return c.batches.wait(id, { interval = 0.001, on_poll = on_poll }) end
  end,
  wait_many = function(c, _, tag, mode)
    local ids = ids_for(tag, 3, mode)
    return function()
      return c.batches.wait_many(ids, { interval = 0.001, concurrency = 2, on_poll = on_poll })
    end
  end,
  decode = function(_, core)
    local text = bodies.SMALL
    return function() return core.decode(text) end
  end,
  get_big = function(c)
    return function() return c.batches.get("bat-big", { expand = "results" }) end
  end,
  get_many_big = function(c)
    local ids = { "bat-big", "bat-small" }
    return function() return c.batches.get_many(ids, { expand = "results" }) end
  end,
  wait_big = function(c)
    return function() return c.batches.wait("bat-big", { expand = "results", interval = 0.001, on_poll = on_poll }) end
  end,
  wait_many_big = function(c)
    local ids = { "bat-big", "bat-small" }
    return function()
      return c.batches.wait_many(ids, { expand = "results", interval = 0.001, on_poll = on_poll })
    end
  end,
  decode_big = function(_, core)
    local text = bodies.big_text()
    return function() return core.decode(text) end
  end,
}
M.CALLS = CALLS

local client

-- Builds the client and the call; returns the call.
function M.setup(url, name, tag, mode)
  local llamacloud = require("llamacloud")
  local core = require("llamacloud.core")
  local make = CALLS[name] or error("oom driver: unknown call " .. tostring(name))
  STOP_ON_ERROR = mode == "curl"
  client = llamacloud.new({ api_key = "llx-oom-host", base_url = url, timeout = 20,
                            max_retries = mode == "curl" and 0 or 2 })
  return make(client, core, tag, mode, url)
end

-- Closes the client (a host that runs many calls in one state, spec/oom/finalizers_jit.lua).
function M.teardown()
  if client then client.close() end
  client = nil
end

-- What a successful call returned must be its whole result.
local function is_batch(b) return type(b) == "table" and type(b.id) == "string" and type(b.status) == "string" end

local function check_success(name, a, b)
  if name == "new" then return type(a) == "table" end
  if name == "decode" or name == "decode_big" then
    return is_batch(a) and (name == "decode" or #a.results > 20000)
  elseif name == "get" or name == "get_index" or name == "get_big" or name == "wait" or name == "wait_big"
    or name == "create" then
    return is_batch(a) and b == nil
  end
  if type(a) ~= "table" then return false end
  for i = 1, #a do
    if not is_batch(a[i].batch) then return false end
  end
  return #a >= 2
end

-- A clean failure a call may return instead of a result: nil and an error table, or (get_many,
-- wait_many) entries that carry one.
local function failed_cleanly(name, a, b)
  if a == nil and type(b) == "table" and type(b.name) == "string" then return "nil, " .. b.name end
  if (name == "decode" or name == "decode_big") and a == nil and type(b) == "string" then return "nil, msg" end
  if name:match("_many") and type(a) == "table" then
    for i = 1, #a do
      local e = a[i].err
      if a[i].batch == nil and type(e) == "table" then return "entry " .. tostring(e.name) end
    end
  end
  return nil
end

-- After the call (the fault disarmed): the verdict on what it did, or an error saying what is wrong.
-- mode: "lua" (Lua's allocator failed), "curl" (libcurl's), "gc" (a finalizer raised).
-- triggered: whether the fault fired during the call. ok, ...: what the pcall of the call gave.
function M.check(name, mode, triggered, ok, a, b)
  local verdict
  if ok then
    if check_success(name, a, b) then
      verdict = "succeeded"
    else
      verdict = failed_cleanly(name, a, b)
      if not verdict or not triggered then
        error(string.format("the call returned %s, %s with the fault %s", tostring(a),
          type(b) == "table" and tostring(b.name) .. ": " .. tostring(b.message) or tostring(b),
          triggered and "fired" or "not fired"), 0)
      end
    end
  else
    local msg = tostring(a)
    if not triggered then error("the call raised with no fault fired: " .. msg, 0) end
    -- issue 9: libcurl's allocations failing in a call are nil, err (or a failed entry), never raised
    if mode == "curl" and name ~= "new" then error("libcurl's failing allocation raised: " .. msg, 0) end
    if mode == "gc" then
      if not msg:find(FINALIZER_MARK, 1, true) then error("the call raised something else: " .. msg, 0) end
    elseif msg ~= "not enough memory" and not msg:find("out of memory", 1, true) then
      error("the call raised something other than a memory error: " .. msg, 0)
    end
    verdict = "raised"
  end
  -- Whatever is left of the call is collected, then the same client must work.
  collectgarbage()
  collectgarbage()
  local batch, err = client.batches.get("bat-small")
  if not is_batch(batch) or batch.status ~= "COMPLETED" then
    error("the client's next get failed: " .. (type(err) == "table" and tostring(err.name) .. ": "
      .. tostring(err.message) or tostring(err)), 0)
  end
  return verdict
end

-- The finalizer fault: a stream of unrelated userdata, one collected in every cycle, whose __gc asks
-- tick() whether to raise (1), go on and leave the next one (0) or stop (anything else). With pause 0
-- and stepmul 0 (PUC 5.1, LuaJIT) every allocation that checks the collector runs a whole cycle, so the
-- K-th tick is the K-th point where a collection could run.
function M.gc_start(tick)
  local proto = newproxy(true)
  local function leave_one() newproxy(proto) end
  getmetatable(proto).__gc = function()
    local t = tick()
    if t == 1 then error(FINALIZER_MARK, 0) end
    if t == 0 then leave_one() end
  end
  collectgarbage("setpause", 0)
  collectgarbage("setstepmul", 0)
  -- one whole cycle now sets the threshold from the new pause, so the next check runs the collector
  collectgarbage("step", 0)
  leave_one()
end

function M.gc_stop()
  collectgarbage("setpause", 200)
  collectgarbage("setstepmul", 200)
end

return M
