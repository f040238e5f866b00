-- The per-call `deadline` (core.now() seconds): it bounds every attempt and every retry pause of one get.
local socket = require("socket")
local fake = require("spec.support.fake")
local core = require("llamacloud.core")
local llamacloud = require("llamacloud")

local KEY = "sk-deadline-spec-key"
local ID = "bat-d"

-- A TCP listener on 127.0.0.1 that never accepts: the kernel completes the handshake and the request is
-- sent, but no byte ever comes back.
local function silent_server(finally)
  local srv = assert(socket.bind("127.0.0.1", 0))
  finally(function() srv:close() end)
  local _, port = srv:getsockname()
  return "http://127.0.0.1:" .. port
end

describe("the deadline option", function()
  it("ends a get against a server that never answers at the deadline, with no retry past it", function()
    local url = silent_server(finally)
    -- The default max_retries (2) and a per-attempt timeout far longer than the deadline.
    local c = llamacloud.new({ api_key = KEY, base_url = url, timeout = 30 })
    finally(function() c.close() end)
    local t0 = core.now()
    local batch, err = fake.get(c, ID, { deadline = t0 + 0.5 })
    local elapsed = core.now() - t0
    assert.is_nil(batch)
    assert.are.equal("APITimeoutError", err.name)
    assert.are.equal(1, err.attempts)
    -- Generous: without the deadline it would take 30 s per attempt.
    assert.is_true(elapsed < 0.5 * 3 + 1, "returned after " .. elapsed .. " s")
  end)

  it("sends nothing when the deadline has already passed", function()
    local server = fake.start({ scenario = { api_key = KEY, batches = { [ID] = { steps = { "COMPLETED" } } } } })
    finally(function() server:stop() end)
    local c = server:client_closed_by(finally, { api_key = KEY })
    local batch, err = fake.get(c, ID, { deadline = core.now() - 1 })
    assert.is_nil(batch)
    assert.are.equal("APITimeoutError", err.name)
    assert.are.equal(0, err.attempts)
    assert.are.equal(0, #server:requests())
    -- and the client still works
    batch, err = fake.get(c, ID)
    assert.is_nil(err)
    assert.are.equal("COMPLETED", batch.status)
  end)

  describe("retries", function()
    local server
    setup(function() server = fake.start({ scenario = { api_key = KEY, batches = {} } }) end)
    teardown(function() if server then server:stop() end end)
    local function steps(list) server:scenario({ api_key = KEY, batches = { [ID] = { steps = list } } }) end

    it("does not schedule a retry whose pause ends past the deadline: the last error is the result", function()
      steps({ { status = 503, headers = { ["retry-after"] = "5" } }, "COMPLETED" })
      local c = server:client_closed_by(finally, { api_key = KEY, max_retries = 2 })
      local t0 = core.now()
      local batch, err = fake.get(c, ID, { deadline = t0 + 2 })
      local elapsed = core.now() - t0
      assert.is_nil(batch)
      assert.are.equal("InternalServerError", err.name)
      assert.are.equal(503, err.status)
      assert.are.equal(1, err.attempts)
      assert.are.equal(1, #server:requests())
      -- it did not sleep out the 5 s pause
      assert.is_true(elapsed < 4.5, "returned after " .. elapsed .. " s")
    end)

    it("retries as usual when the pauses end before the deadline", function()
      steps({ { status = 500, headers = { ["retry-after-ms"] = "0" } },
              { status = 500, headers = { ["retry-after-ms"] = "0" } }, "COMPLETED" })
      local c = server:client_closed_by(finally, { api_key = KEY, max_retries = 2 })
      local batch, err = fake.get(c, ID, { deadline = core.now() + 60 })
      assert.is_nil(err)
      assert.are.equal("COMPLETED", batch.status)
      assert.are.equal(3, #server:requests())
    end)

    it("accepts math.huge as no deadline", function()
      steps({ "COMPLETED" })
      local c = server:client_closed_by(finally, { api_key = KEY })
      local batch, err = fake.get(c, ID, { deadline = math.huge })
      assert.is_nil(err)
      assert.are.equal("COMPLETED", batch.status)
    end)

    it("bounds requests driven by a multi too", function()
      steps({ { status = 503, headers = { ["retry-after"] = "5" } }, "COMPLETED" })
      local ud = core.new(server:options({ api_key = KEY, max_retries = 2 }))
      finally(function() ud:close() end)
      local m = ud:multi(2)
      local req = ud:request(ID, { deadline = core.now() + 1 })
      m:add(req)
      local done, wait = m:step(0)
      local steps_taken = 0
      while not done and wait and steps_taken < 10000 do
        done, wait = m:step(wait)
        steps_taken = steps_taken + 1
      end
      local batch, err = req:result()
      assert.is_nil(batch)
      assert.are.equal("InternalServerError", err.name)
      assert.are.equal(1, err.attempts)
    end)
  end)

  describe("validation", function()
    local c
    setup(function() c = llamacloud.new({ api_key = KEY, base_url = "http://127.0.0.1:9" }) end)
    teardown(function() c.close() end)
    local ROWS = {
      { "a string", "10" },
      { "a table", {} },
      { "NaN", 0 / 0 },
      { "a boolean", true },
    }
    for _, row in ipairs(ROWS) do
      it("raises naming 'deadline' for " .. row[1], function()
        assert.has_error(function() c.batches.get(ID, { deadline = row[2] }) end)
        local ok, msg = pcall(c.batches.get, ID, { deadline = row[2] })
        assert.is_false(ok)
        assert.matches("option 'deadline'", msg, 1, true)
      end)
    end
  end)

  describe("multi:step with a huge wait", function()
    it("waits for activity rather than spinning (the wait in ms is clamped, not overflowed)", function()
      local server = fake.start({ scenario = { api_key = KEY, batches = { [ID] = { steps = {
        { delay = 0.3, batch_status = "COMPLETED" } } } } } })
      finally(function() server:stop() end)
      local ud = core.new(server:options({ api_key = KEY, max_retries = 0 }))
      finally(function() ud:close() end)
      local m = ud:multi(1)
      local req = ud:request(ID)
      m:add(req)
      local steps_taken, done = 0
      repeat
        done = m:step(1e10)
        steps_taken = steps_taken + 1
      until done or steps_taken > 1000
      local batch, err = req:result()
      assert.is_nil(err)
      assert.are.equal("COMPLETED", batch.status)
      -- Each step returns on socket activity: a handful, not a busy loop over 0.3 s.
      assert.is_true(steps_taken < 100, steps_taken .. " steps")
    end)
  end)
end)
