-- Coroutine mode (llamacloud.host.coroutine): calls yield to the caller's scheduler instead of blocking.
local fake = require("spec.support.fake")
local core = require("llamacloud.core")
local cohost = require("llamacloud.host.coroutine")

local DELAY = 0.5 -- seconds the fake server holds bat-slow

local SCENARIO = {
  batches = {
    ["bat-slow"] = { steps = { { batch_status = "COMPLETED", delay = DELAY } } },
    ["bat-done"] = { steps = { "COMPLETED" } },
    ["bat-run"] = { steps = { "PENDING", "RUNNING", "COMPLETED" } },
    ["bat-demo"] = { steps = { "PENDING", "RUNNING", "COMPLETED" } },
    ["bat-failed"] = { steps = { "FAILED" } },
    ["bat-stuck"] = { steps = { "RUNNING" } },
  },
}

-- A minimal scheduler for the default protocol: a task yields the seconds after which it wants
-- to run again. Returns each task's results and what every yield asked for.
local function run(fns)
  local tasks, results, yields = {}, {}, {}
  for i, fn in ipairs(fns) do
    tasks[#tasks + 1] = { co = coroutine.create(fn), at = 0, i = i }
  end
  while #tasks > 0 do
    local now, soonest = core.now(), math.huge
    for k = #tasks, 1, -1 do
      local t = tasks[k]
      if t.at <= now then
        local res = { coroutine.resume(t.co) }
        assert(res[1], res[2])
        if coroutine.status(t.co) == "dead" then
          results[t.i] = { res[2], res[3], res[4] }
          table.remove(tasks, k)
        else
          yields[#yields + 1] = res[2]
          t.at = core.now() + res[2]
        end
      end
      if tasks[k] == t and t.at < soonest then soonest = t.at end
    end
    if #tasks > 0 and soonest > core.now() then core.sleep(soonest - core.now()) end
  end
  return results, yields
end

describe("coroutine host", function()
  local server, client

  setup(function() server = fake.start({ scenario = SCENARIO }) end)
  teardown(function() if server then server:stop() end end)

  before_each(function()
    server:reset()
    client = cohost.new({ api_key = "test-key", base_url = server.url })
  end)

  it("lets other coroutines run while a delayed get is in flight", function()
    local ticks, finished = 0, false
    local results = run({
      function()
        local batch, err = client.batches.get("bat-slow")
        finished = true
        return batch, err
      end,
      function()
        while not finished do
          ticks = ticks + 1
          coroutine.yield(0.01)
        end
      end,
    })
    assert.are.same({ "bat-slow", "COMPLETED" }, { results[1][1].id, results[1][1].status })
    assert.is_nil(results[1][2])
    -- the ticker ran throughout the delay, about every 10 ms
    assert.is_true(ticks >= DELAY / 0.01 / 2, "ticks: " .. ticks)
  end)

  it("returns nil, err for a wire error, as the blocking get does", function()
    local results = run({ function() return client.batches.get("bat-missing") end })
    assert.is_nil(results[1][1])
    assert.are.same({ "NotFoundError", 404 }, { results[1][2].name, results[1][2].status })
  end)

  it("yields no more than poll_interval while a transfer runs", function()
    local fast = cohost.new({ api_key = "test-key", base_url = server.url }, { poll_interval = 0.005 })
    local _, yields = run({ function() return fast.batches.get("bat-slow") end })
    local longest = 0
    for _, s in ipairs(yields) do
      assert.are.equal("number", type(s))
      if s > longest then longest = s end
    end
    assert.is_true(#yields > 1)
    assert.is_true(longest <= 0.005, "longest yield " .. longest)
  end)

  it("runs gets from several coroutines on one client at once", function()
    local started = core.now()
    local results = run({
      function() return client.batches.get("bat-slow") end,
      function() return client.batches.get("bat-slow") end,
      function() return client.batches.get("bat-slow") end,
    })
    for i = 1, 3 do assert.are.equal("COMPLETED", results[i][1].status) end
    -- in series they would take three delays
    assert.is_true(core.now() - started < 2 * DELAY)
    assert.are.equal(3, server:stats().requests_total)
  end)

  it("completes wait, get_many and wait_many inside coroutines", function()
    local polls = {}
    local results = run({
      function()
        return client.batches.wait("bat-run", { interval = 0.05, on_poll = function(b, info)
          polls[#polls + 1] = b.status .. "@" .. info.attempt
        end })
      end,
      function() return client.batches.get_many({ "bat-done", "bat-missing", "bat-slow" }, { concurrency = 2 }) end,
      function() return client.batches.wait_many({ "bat-done", "bat-failed" }, { interval = 0.05 }) end,
    })
    assert.are.equal("COMPLETED", results[1][1].status)
    assert.are.same({ "PENDING@1", "RUNNING@2", "COMPLETED@3" }, polls)
    local got = results[2][1]
    assert.are.same({ "COMPLETED", "NotFoundError", "COMPLETED" },
      { got[1].batch.status, got[2].err.name, got[3].batch.status })
    local waited = results[3][1]
    assert.are.same({ "COMPLETED", "PollingError" }, { waited[1].batch.status, waited[2].err.name })
  end)

  it("waits through the sleep function it is given", function()
    local slept = {}
    local own = cohost.new({ api_key = "test-key", base_url = server.url }, {
      sleep = function(s)
        slept[#slept + 1] = s
        core.sleep(s)
      end,
    })
    -- outside any coroutine: the given sleep decides how to wait
    local batch, err = own.batches.wait("bat-run", { interval = 0.05 })
    assert.are.same({ "COMPLETED", nil }, { batch.status, err })
    assert.is_true(#slept >= 2)
  end)

  it("raises outside a coroutine when no sleep function is given", function()
    assert.has_error(function() client.batches.get("bat-done") end,
      "llamacloud: coroutine mode: call batches.* from inside a coroutine (or give new a 'sleep' function)")
  end)

  it("keeps a pause whole when the scheduler resumes early, every 10 ms (resumed early)", function()
    local INTERVAL, TIMEOUT = 0.2, 0.5
    -- a scheduler that resumes its one task every 10 ms, whatever it asked for
    local co = coroutine.create(function()
      return client.batches.wait("bat-stuck", { interval = INTERVAL, backoff = "constant", timeout = TIMEOUT })
    end)
    local res
    while coroutine.status(co) ~= "dead" do
      res = { coroutine.resume(co) }
      assert(res[1], res[2])
      if coroutine.status(co) ~= "dead" then core.sleep(0.01) end
    end
    assert.are.same({ nil, "PollingTimeoutError" }, { res[2], res[3].name })
    -- polls at 0, 0.2 and 0.4 s; resumed as pauses ended there would be dozens
    local polls = server:stats().requests_total
    assert.is_true(polls >= 2 and polls <= 4, polls .. " polls")
  end)

  it("keeps a pause whole when the sleep it is given returns early (resumed early)", function()
    local early = cohost.new({ api_key = "test-key", base_url = server.url }, {
      sleep = function() core.sleep(0.01) end,
    })
    local batch, err = early.batches.wait("bat-stuck", { interval = 0.2, backoff = "constant", timeout = 0.5 })
    assert.are.same({ nil, "PollingTimeoutError" }, { batch, err.name })
    local polls = server:stats().requests_total
    assert.is_true(polls >= 2 and polls <= 4, polls .. " polls")
  end)

  it("refuses a call where it cannot yield before sending anything (PUC 5.1 cannot yield across pcall)", function()
    local co = coroutine.create(function() return pcall(client.batches.get, "bat-done") end)
    local ok, inner_ok, msg = coroutine.resume(co)
    assert.is_true(ok)
    if _VERSION == "Lua 5.1" and not jit then
      -- the call fails at once, naming the limit, with nothing sent or left in flight
      assert.is_false(inner_ok)
      assert.are.equal("llamacloud: coroutine mode: batches.* cannot yield here: PUC Lua 5.1 cannot yield "
        .. "across pcall, xpcall or another C function; call it outside them (or give new a 'sleep' function)", msg)
      assert.are.equal("dead", coroutine.status(co))
      assert.are.equal(0, server:stats().requests_total)
      -- the client works on: the next get (outside pcall) sees only its own request
      local results = run({ function() return client.batches.get("bat-done") end })
      assert.are.equal("COMPLETED", results[1][1].status)
      assert.are.equal(1, server:stats().requests_total)
    else
      -- 5.2+ and LuaJIT yield across pcall: the call runs to its end
      while coroutine.status(co) ~= "dead" do ok, inner_ok, msg = coroutine.resume(co) end
      assert.are.same({ true, true, "COMPLETED" }, { ok, inner_ok, msg.status })
    end
  end)

  it("raises on an unknown setting, naming it", function()
    assert.has_error(function() cohost.new({ api_key = "k", base_url = server.url }, { poll = 1 }) end,
      "llamacloud: coroutine host: unknown setting 'poll'")
  end)

  it("raises on a poll_interval that is not a number of seconds in (0, 1]", function()
    assert.has_error(function() cohost.new({ api_key = "k", base_url = server.url }, { poll_interval = 0 }) end,
      "llamacloud: coroutine host: setting 'poll_interval' must be a number of seconds in (0, 1]")
  end)

  it("lets go of an abandoned call's connection when the client is closed", function()
    local util = require("spec.support.util")
    local own = cohost.new({ api_key = "test-key", base_url = server.url })
    -- earlier specs' clients collected now, not mid-spec (their __gc closes sockets: the count moved)
    collectgarbage()
    collectgarbage()
    local before = util.open_fds("socket")
    local co = coroutine.create(function() return own.batches.get("bat-slow") end)
    -- resumed until the transfer is open (PUC 5.1 first yields once to check that it may)
    for _ = 1, 50 do
      assert.is_true((coroutine.resume(co)))
      if util.open_fds("socket") > before then break end
    end
    assert.are.equal("suspended", coroutine.status(co)) -- in flight: the server holds it DELAY s
    assert.is_true(util.open_fds("socket") > before)
    co = nil -- luacheck: ignore 311 (the scheduler drops the coroutine; the client is still held)
    own.close()
    assert.are.equal(before, (util.open_fds("socket")))
  end)

  it("checks get's options before yielding", function()
    local co = coroutine.create(function() return client.batches.get("bat-done", { expnd = "results" }) end)
    local ok, msg = coroutine.resume(co)
    assert.is_false(ok)
    assert.truthy(tostring(msg):match("unknown option 'expnd'"), msg)
  end)
end)
