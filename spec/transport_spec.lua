-- The transfer: timeouts, connection faults, bad bodies, the body cap and keep-alive, all over TCP.
local fake = require("spec.support.fake")
local util = require("spec.support.util")
local llamacloud = require("llamacloud")

local KEY = "sk-transport-spec-key"
local ID = "bat-t"

local function get(client, opts, id) return fake.get(client, id or ID, opts) end
local function timed_get(client, opts) return fake.timed_get(client, ID, opts) end

describe("batches.get transport", function()
  local server

  local function steps(list)
    server:scenario({ api_key = KEY, batches = { [ID] = { steps = list } } })
  end
  -- A fresh client per test, so one test's connection never carries into the next.
  local function client(opts)
    return server:client_closed_by(finally, { api_key = KEY, max_retries = 0, timeout = 5 }, opts)
  end

  setup(function() server = fake.start({ scenario = { api_key = KEY, batches = {} } }) end)
  teardown(function() if server then server:stop() end end)

  describe("timeouts", function()
    it("a response slower than timeout is an APITimeoutError, returned promptly", function()
      local delay = 3
      steps({ { delay = delay } })
      local batch, err, elapsed = timed_get(client({ timeout = 0.3 }))
      assert.is_nil(batch)
      assert.are.equal("APITimeoutError", err.name)
      assert.are.equal(1, err.attempts)
      assert.is_true(elapsed < delay / 2, "took " .. elapsed .. " s of a " .. delay .. " s delay")
    end)

    it("one deadline covers the whole attempt: a trickled body past it times out", function()
      -- Every byte arrives well within the timeout; only a whole-attempt deadline fires.
      local interval = 0.05
      steps({ { fault = "trickle", interval = interval } })
      local batch, err, elapsed = timed_get(client({ timeout = 0.5 }))
      assert.is_nil(batch)
      assert.are.equal("APITimeoutError", err.name)
      local reqs = server:requests()
      assert.are.equal(1, #reqs)
      -- The body is a few hundred bytes: trickling all of it takes 10+ s.
      assert.is_true(elapsed < 200 * interval / 2, "took " .. elapsed .. " s")
    end)

    it("a per-call timeout overrides the client's", function()
      local delay = 3
      steps({ { delay = delay } })
      local batch, err, elapsed = timed_get(client({ timeout = 30 }), { timeout = 0.3 })
      assert.is_nil(batch)
      assert.are.equal("APITimeoutError", err.name)
      assert.is_true(elapsed < delay / 2, "took " .. elapsed .. " s of a " .. delay .. " s delay")
    end)
  end)

  describe("connection faults are APIConnectionError", function()
    it("a refused connection (closed port)", function()
      local c = llamacloud.new({ api_key = KEY, base_url = "http://127.0.0.1:" .. util.free_port(), max_retries = 0 })
      finally(function() c.close() end)
      local batch, err = get(c)
      assert.is_nil(batch)
      assert.are.equal("APIConnectionError", err.name)
      assert.are.equal(1, err.attempts)
      assert.is_nil(err.status)
    end)

    for _, fault in ipairs({ "drop", "reset_headers", "truncate", "length_long" }) do
      it("the server's " .. fault, function()
        steps({ { fault = fault } })
        local batch, err = get(client())
        assert.is_nil(batch)
        assert.are.equal("APIConnectionError", err.name)
        assert.are.equal(1, err.attempts)
        assert.are.equal("string", type(err.message))
      end)
    end
  end)

  describe("bad 2xx bodies are APIResponseValidationError", function()
    for _, fault in ipairs({ "malformed", "not_object", "missing_fields", "binary", "length_short" }) do
      it("a " .. fault .. " body", function()
        steps({ { fault = fault } })
        local batch, err = get(client())
        assert.is_nil(batch)
        assert.are.equal("APIResponseValidationError", err.name)
        assert.are.equal(200, err.status)
        assert.are.equal(1, err.attempts)
      end)
    end

    local BAD_NUMBERS = {
      NaN = '{"id":"bat-t","status":"RUNNING","n":NaN}',
      Infinity = '{"id":"bat-t","status":"RUNNING","n":Infinity}',
      ["-Infinity"] = '{"id":"bat-t","status":"RUNNING","n":-Infinity}',
      ["leading zeros"] = '{"id":"bat-t","status":"RUNNING","n":007}',
      hex = '{"id":"bat-t","status":"RUNNING","n":0x10}',
    }
    for _, what in ipairs({ "NaN", "Infinity", "-Infinity", "leading zeros", "hex" }) do
      it("a body with " .. what .. " in a number", function()
        steps({ { status = 200, body = BAD_NUMBERS[what] } })
        local batch, err = get(client())
        assert.is_nil(batch)
        assert.are.equal("APIResponseValidationError", err.name)
      end)
    end

    it("a body whose id or status is not a string", function()
      steps({ { status = 200, body = '{"id":1,"status":"RUNNING"}' } })
      local batch, err = get(client())
      assert.is_nil(batch)
      assert.are.equal("APIResponseValidationError", err.name)
    end)
  end)

  describe("max_body_bytes", function()
    local REFUSED = {
      { "a huge body", { fault = "huge", size = 64 * 1048576 }, 4096 },
      { "an endless chunked body", { fault = "endless" }, 65536 },
    }
    for _, row in ipairs(REFUSED) do
      it("refuses " .. row[1] .. " without buffering it", function()
        steps({ row[2] })
        local batch, err = get(client({ max_body_bytes = row[3] }))
        assert.is_nil(batch)
        assert.are.equal("APIResponseValidationError", err.name)
        assert.truthy(err.message:find("max_body_bytes", 1, true))
        -- The server could not finish sending: the client hung up first.
        assert.are.equal(1, server:closed_by_client(200))
      end)
    end

    it("accepts a body just under the cap", function()
      steps({ { fault = "huge", size = 8000, batch_status = "COMPLETED" } })
      local batch, err = get(client({ max_body_bytes = 8192 }))
      assert.is_nil(err)
      assert.are.equal("COMPLETED", batch.status)
      assert.truthy(batch.x_padding:match("^x+$"))
      assert.is_true(#batch.x_padding > 7000)
    end)
  end)

  describe("many headers", function()
    it("a few hundred still work", function()
      steps({ { fault = "many_headers", count = 300, batch_status = "COMPLETED" } })
      local batch, err = get(client())
      assert.is_nil(err)
      assert.are.equal("COMPLETED", batch.status)
    end)

    it("thousands work or fail cleanly", function()
      steps({ { fault = "many_headers", count = 20000, batch_status = "COMPLETED" } })
      local batch, err = get(client())
      if batch then
        assert.is_nil(err)
        assert.are.equal("COMPLETED", batch.status)
      else
        assert.are.equal("APIConnectionError", err.name)
        assert.are.equal(1, err.attempts)
      end
    end)
  end)

  describe("keep-alive", function()
    it("two sequential gets on one client use one connection", function()
      steps({ "COMPLETED" })
      local c = client()
      local b1, e1 = get(c)
      local b2, e2 = get(c)
      assert.is_nil(e1)
      assert.is_nil(e2)
      assert.are.equal("COMPLETED", b1.status)
      assert.are.equal("COMPLETED", b2.status)
      local st = server:stats()
      assert.are.equal(2, st.requests_total)
      assert.are.equal(1, st.connections_total)
    end)

    it("an error answer keeps the connection for the next get", function()
      server:scenario({ api_key = KEY, batches = { [ID] = { steps = { "COMPLETED" } } } })
      local c = client()
      local _, e1 = get(c, nil, "bat-nope")
      local b2, e2 = get(c)
      assert.are.equal("NotFoundError", e1.name)
      assert.is_nil(e2)
      assert.are.equal("COMPLETED", b2.status)
      assert.are.equal(1, server:stats().connections_total)
    end)

    it("a timed-out connection is not reused", function()
      steps({ { delay = 1 }, "COMPLETED" })
      local c = client({ timeout = 0.2 })
      local _, e1 = get(c)
      assert.are.equal("APITimeoutError", e1.name)
      local b2, e2 = get(c, { timeout = 5 })
      assert.is_nil(e2)
      assert.are.equal("COMPLETED", b2.status)
      assert.are.equal(2, server:stats().connections_total)
    end)
  end)

  describe("a pooled handle", function()
    -- Runs req alone on multi m to its end: batch, err.
    local function run(m, req)
      m:add(req)
      local done, wait = m:step(0)
      while not done and wait do done, wait = m:step(wait) end
      return req:result()
    end

    it("does not carry one client's proxy into another client's request", function()
      local core = require("llamacloud.core")
      steps({ "COMPLETED" })
      -- A second fake server stands in for A's proxy and records what reaches it.
      local proxy = fake.start({ scenario = { api_key = KEY, batches = {} } })
      finally(function() proxy:stop() end)
      local a = core.new(server:options({ api_key = KEY, max_retries = 0, proxy = proxy.url }))
      local b = core.new(server:options({ api_key = KEY, max_retries = 0 }))
      finally(function() a:close() b:close() end)
      local m = a:multi(1)
      finally(function() m:close() end)
      run(m, a:request(ID))
      local through_proxy = #proxy:requests()
      assert.are.equal(1, through_proxy)
      server:reset()
      local batch, err = run(m, b:request(ID))
      assert.is_nil(err)
      assert.are.equal("COMPLETED", batch.status)
      assert.are.equal(through_proxy, #proxy:requests())
      assert.are.equal(1, #server:requests())
    end)
  end)

  describe("Content-Length", function()
    -- A server in a child process that announces 200 MB, sends 1 KB of it, then nothing.
    local LIAR = [[
      local socket = require("socket")
      local srv = assert(socket.bind("127.0.0.1", 0))
      io.stdout:write("port ", select(2, srv:getsockname()), "\n")
      io.stdout:flush()
      local c = srv:accept()
      c:settimeout(5)
      repeat local l = c:receive("*l") until not l or l == ""
      c:send("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 200000000\r\n\r\n"
        .. string.rep(" ", 1000))
      socket.sleep(3)
    ]]

    it("reserves nothing from it before the bytes arrive", function()
      local log = os.tmpname()
      local pid = util.spawn(util.quote(fake.interpreter()) .. " -e " .. util.quote(LIAR), log)
      finally(function()
        os.execute("kill " .. pid .. " 2>/dev/null")
        os.remove(log)
      end)
      local port = assert(util.wait_for(log, "port (%d+)\n", pid, 10))
      local c = llamacloud.new({ api_key = KEY, base_url = "http://127.0.0.1:" .. port, max_retries = 0,
                                 timeout = 0.5 })
      finally(function() c.close() end)
      local before = util.status_kb("VmSize")
      local batch, err = get(c)
      local grew = util.status_kb("VmSize") - before
      assert.is_nil(batch)
      assert.are.equal("APITimeoutError", err.name)
      -- Before: the pooled transfer reserved the announced 195 MiB at the first byte and kept it.
      assert.is_true(grew < 64 * 1024, "address space grew by " .. grew .. " kB")
    end)
  end)
end)
