-- Specs of batches.get_many and batches.wait_many (many requests on one multi) and of a multi collected mid-flight.
local fake = require("spec.support.fake")
local core = require("llamacloud.core")

local EPS = 0.005

local function ids_of(prefix, n)
  local ids = {}
  for i = 1, n do ids[i] = string.format("%s-%02d", prefix, i) end
  return ids
end

-- Deadline for polling the fake server's view, never for the code under test.
local function eventually(cond)
  local deadline = core.now() + 5
  while not cond() and core.now() < deadline do core.sleep(0.01) end
  return cond()
end

describe("batches.get_many and batches.wait_many", function()
  local server, client

  setup(function()
    server = fake.start()
    client = server:client({ api_key = "sk-many", max_retries = 2 })
  end)
  teardown(function() server:stop(client) end)

  local function by_id()
    local out = {}
    for _, r in ipairs(server:requests()) do
      if type(r.batch_id) == "string" then
        out[r.batch_id] = out[r.batch_id] or {}
        table.insert(out[r.batch_id], r)
      end
    end
    return out
  end

  local function count(id)
    return #(by_id()[id] or {})
  end

  describe("get_many", function()
    it("returns one { batch, err } per id, in the order of ids, whatever order they finish in", function()
      server:scenario({ batches = {
        ["bat-slow"] = { steps = { { batch_status = "RUNNING", delay = 0.2 } } },
        ["bat-mid"] = { steps = { { batch_status = "PENDING", delay = 0.1 } } },
        ["bat-fast"] = { steps = { "COMPLETED" } },
      } })
      local res = client.batches.get_many({ "bat-slow", "bat-mid", "bat-fast" })
      assert.are.equal(3, #res)
      assert.are.same({ "bat-slow", "RUNNING" }, { res[1].batch.id, res[1].batch.status })
      assert.are.same({ "bat-mid", "PENDING" }, { res[2].batch.id, res[2].batch.status })
      assert.are.same({ "bat-fast", "COMPLETED" }, { res[3].batch.id, res[3].batch.status })
      for i = 1, 3 do assert.is_nil(res[i].err) end
    end)

    it("returns an empty list for no ids, sending nothing", function()
      server:scenario({ any = { steps = { "COMPLETED" } } })
      assert.are.same({}, client.batches.get_many({}))
      assert.are.equal(0, #server:requests())
    end)

    it("reports an error in its own entry: a 404 among successes", function()
      server:scenario({ batches = { ["bat-a"] = { steps = { "COMPLETED" } }, ["bat-b"] = { steps = { "RUNNING" } } } })
      local res = client.batches.get_many({ "bat-a", "bat-missing", "bat-b" })
      assert.are.equal(3, #res)
      assert.are.equal("COMPLETED", res[1].batch.status)
      assert.is_nil(res[1].err)
      assert.is_nil(res[2].batch)
      assert.are.equal("NotFoundError", res[2].err.name)
      assert.are.equal(404, res[2].err.status)
      assert.are.equal("RUNNING", res[3].batch.status)
      assert.is_nil(res[3].err)
    end)

    it("passes get's options to every request", function()
      server:scenario({ any = { steps = { "COMPLETED" }, results = {} } })
      local res = client.batches.get_many({ "bat-a", "bat-b" }, { expand = "results", project_id = "prj-m" })
      assert.are.same({}, res[1].batch.results)
      for _, r in ipairs(server:requests()) do assert.are.equal("expand=results&project_id=prj-m", r.query) end
    end)

    it("never holds more connections than concurrency", function()
      server:scenario({ any = { steps = { { batch_status = "RUNNING", delay = 0.05 } } } })
      local ids = ids_of("bat-c", 12)
      local res = client.batches.get_many(ids, { concurrency = 3 })
      for i = 1, 12 do
        assert.is_nil(res[i].err)
        assert.are.equal(ids[i], res[i].batch.id)
      end
      local st = server:stats()
      assert.are.equal(12, st.requests_total)
      assert.is_true(st.max_connections_open <= 3, "held " .. st.max_connections_open)
      assert.is_true(st.max_connections_open >= 2, "held " .. st.max_connections_open)
    end)

    it("really runs concurrency requests at once: N delayed by D take well under N x D", function()
      local N, D = 8, 0.2
      server:scenario({ any = { steps = { { batch_status = "RUNNING", delay = D } } } })
      local t0 = core.now()
      local res = client.batches.get_many(ids_of("bat-p", N), { concurrency = N })
      local took = core.now() - t0
      for i = 1, N do assert.is_nil(res[i].err) end
      assert.is_true(took < 0.5 * N * D, "took " .. took)
      assert.is_true(server:stats().max_connections_open >= N / 2)
    end)

    it("lets one entry back off and retry without stalling the others", function()
      local fail = { status = 503, headers = { ["retry-after-ms"] = "300" } }
      local batches = { ["bat-r"] = { steps = { fail, fail, "COMPLETED" } } }
      local ids = { "bat-r" }
      for i, id in ipairs(ids_of("bat-o", 4)) do
        batches[id] = { steps = { { batch_status = "COMPLETED", delay = 0.05 } } }
        ids[i + 1] = id
      end
      server:scenario({ batches = batches })
      local res = client.batches.get_many(ids, { concurrency = 2 })
      for i = 1, 5 do
        assert.is_nil(res[i].err)
        assert.are.equal("COMPLETED", res[i].batch.status)
      end
      local seen = by_id()
      assert.are.equal(3, #seen["bat-r"])
      local second = seen["bat-r"][2].t
      assert.is_true(second - seen["bat-r"][1].t >= 0.3 - EPS)
      for i = 2, 5 do
        assert.are.equal(1, #seen[ids[i]])
        assert.is_true(seen[ids[i]][1].t < second, ids[i] .. " waited for bat-r's retry")
      end
    end)

    it("holds back every other request while a 429's retry-after-ms runs (shared backoff)", function()
      local fail = { status = 503, delay = 0.1, headers = { ["retry-after-ms"] = "0" } }
      server:scenario({ batches = {
        ["bat-429"] = { steps = { { status = 429, headers = { ["retry-after-ms"] = "400" } }, "COMPLETED" } },
        ["bat-x"] = { steps = { fail, "COMPLETED" } },
        ["bat-y"] = { steps = { fail, "COMPLETED" } },
      } })
      local res = client.batches.get_many({ "bat-429", "bat-x", "bat-y" }, { concurrency = 3 })
      for i = 1, 3 do
        assert.is_nil(res[i].err)
        assert.are.equal("COMPLETED", res[i].batch.status)
      end
      local reqs = server:requests()
      assert.are.equal(6, #reqs)
      local t429
      for _, r in ipairs(reqs) do
        if r.batch_id == "bat-429" and r.n == 1 then t429 = r.t end
      end
      for _, r in ipairs(reqs) do
        if r.n > 1 then
          assert.is_true(r.t >= t429 + 0.4 - EPS,
            r.batch_id .. " attempt " .. r.n .. " started " .. (r.t - t429) .. " s after the 429")
        end
      end
    end)
  end)

  describe("wait_many", function()
    it("polls only the batches that are not terminal yet, and returns when all are", function()
      server:scenario({ batches = {
        ["bat-3"] = { steps = { "PENDING", "RUNNING", "COMPLETED" } },
        ["bat-1"] = { steps = { "COMPLETED" } },
        ["bat-5"] = { steps = { "PENDING", "PENDING", "THROTTLED", "RUNNING", "COMPLETED" } },
      } })
      local res = client.batches.wait_many({ "bat-3", "bat-1", "bat-5" }, { interval = 0.03, backoff = "constant" })
      assert.are.equal(3, #res)
      for i, id in ipairs({ "bat-3", "bat-1", "bat-5" }) do
        assert.is_nil(res[i].err)
        assert.are.equal(id, res[i].batch.id)
        assert.are.equal("COMPLETED", res[i].batch.status)
      end
      assert.are.equal(3, count("bat-3"))
      assert.are.equal(1, count("bat-1"))
      assert.are.equal(5, count("bat-5"))
    end)

    it("ends each entry as wait would: PollingError for FAILED and CANCELLED, the error for a 404", function()
      server:scenario({ batches = {
        ["bat-ok"] = { steps = { "RUNNING", "COMPLETED" } },
        ["bat-f"] = { steps = { "RUNNING", "FAILED" } },
        ["bat-c"] = { steps = { "CANCELLED" } },
      } })
      local res = client.batches.wait_many({ "bat-ok", "bat-f", "bat-missing", "bat-c" }, { interval = 0.02 })
      assert.are.equal(4, #res)
      assert.are.equal("COMPLETED", res[1].batch.status)
      assert.is_nil(res[1].err)
      assert.is_nil(res[2].batch)
      assert.are.equal("PollingError", res[2].err.name)
      assert.are.equal("FAILED", res[2].err.batch.status)
      assert.is_nil(res[3].batch)
      assert.are.equal("NotFoundError", res[3].err.name)
      assert.is_nil(res[4].batch)
      assert.are.equal("PollingError", res[4].err.name)
      assert.are.equal("CANCELLED", res[4].err.batch.status)
      assert.are.equal(1, count("bat-missing"))
    end)

    it("gives the entries still running at timeout PollingTimeoutError with their last batch", function()
      server:scenario({ batches = {
        ["bat-done"] = { steps = { "PENDING", "COMPLETED" } },
        ["bat-stuck"] = { steps = { "PENDING", "RUNNING" } },
      } })
      local res = client.batches.wait_many({ "bat-stuck", "bat-done" },
        { interval = 0.03, backoff = "constant", timeout = 0.3 })
      assert.is_nil(res[1].batch)
      assert.are.equal("PollingTimeoutError", res[1].err.name)
      assert.are.equal("bat-stuck", res[1].err.batch.id)
      assert.are.equal("RUNNING", res[1].err.batch.status)
      assert.are.equal("COMPLETED", res[2].batch.status)
      assert.is_nil(res[2].err)
      assert.are.equal(2, count("bat-done"))
      assert.is_true(count("bat-stuck") >= 3)
    end)

    it("keeps polling an entry past a retryable failure", function()
      server:scenario({ batches = {
        ["bat-flaky"] = { steps = { { status = 500, headers = { ["retry-after-ms"] = "0" } },
                                    { status = 500, headers = { ["retry-after-ms"] = "0" } },
                                    { status = 500, headers = { ["retry-after-ms"] = "0" } }, "COMPLETED" } },
      } })
      local seen = {}
      local res = client.batches.wait_many({ "bat-flaky" }, { interval = 0.02, on_poll = function(b, info)
        seen[#seen + 1] = { b and b.status, info.err and info.err.name, info.attempt }
      end })
      assert.is_nil(res[1].err)
      assert.are.equal("COMPLETED", res[1].batch.status)
      assert.are.same({ { nil, "InternalServerError", 1 }, { "COMPLETED", nil, 2 } }, seen)
      assert.are.equal(4, count("bat-flaky"))
    end)

    it("stretches only the pause of the entry whose poll carried a retry-after", function()
      local batches = { ["bat-hint"] = { steps = {
        { batch_status = "RUNNING", headers = { ["retry-after-ms"] = "300" } }, "COMPLETED" } } }
      local ids = { "bat-hint" }
      for i, id in ipairs(ids_of("bat-q", 9)) do
        batches[id] = { steps = { "PENDING", "RUNNING", "RUNNING", "COMPLETED" } }
        ids[i + 1] = id
      end
      server:scenario({ batches = batches })
      local res = client.batches.wait_many(ids, { interval = 0.02, backoff = "constant", concurrency = 3 })
      for i = 1, 10 do assert.are.equal("COMPLETED", res[i].batch.status) end
      local seen = by_id()
      assert.are.equal(2, #seen["bat-hint"])
      local second = seen["bat-hint"][2].t
      assert.is_true(second - seen["bat-hint"][1].t >= 0.3 - EPS)
      for i = 2, 10 do
        assert.are.equal(4, #seen[ids[i]])
        assert.is_true(seen[ids[i]][4].t < second, ids[i] .. " waited for bat-hint's pause")
      end
    end)

    it("never holds more connections than concurrency", function()
      server:scenario({ any = { steps = { { batch_status = "RUNNING", delay = 0.05 }, "COMPLETED" } } })
      local ids = ids_of("bat-w", 12)
      local res = client.batches.wait_many(ids, { concurrency = 3, interval = 0.02 })
      for i = 1, 12 do assert.are.equal("COMPLETED", res[i].batch.status) end
      local st = server:stats()
      assert.are.equal(24, st.requests_total)
      assert.is_true(st.max_connections_open <= 3, "held " .. st.max_connections_open)
    end)

    it("stops every entry with PollingCancelled when on_poll returns false", function()
      server:scenario({ any = { steps = { "RUNNING" } } })
      local calls = 0
      local res = client.batches.wait_many({ "bat-a", "bat-b" }, { interval = 0.02, on_poll = function(_, info)
        calls = calls + 1
        if info.attempt == 2 then return false end
      end })
      for i = 1, 2 do
        assert.is_nil(res[i].batch)
        assert.are.equal("PollingCancelled", res[i].err.name)
        assert.are.equal("RUNNING", res[i].err.batch.status)
      end
      assert.is_true(count("bat-a") <= 2 and count("bat-b") <= 2)
    end)
  end)

  describe("wait_many's cost", function()
    -- A client userdata that counts the requests built through it.
    local function counting(ud)
      local c = { built = 0 }
      setmetatable(c, { __index = function(_, k)
        return function(_, ...)
          if k == "request" then c.built = c.built + 1 end
          return ud[k](ud, ...)
        end
      end })
      return c
    end

    it("builds one request per poll, and none only to check the ids", function()
      server:scenario({ any = { steps = { "RUNNING", "COMPLETED" } } })
      local ud = core.new({ api_key = "sk-many", base_url = server.url })
      finally(function() ud:close() end)
      local wait, blocking = require("llamacloud.wait"), require("llamacloud.host.blocking")
      local c, ids = counting(ud), ids_of("bat-n", 20)
      local res = wait.wait_many(blocking, c, ids, { interval = 0.02, concurrency = 4 })
      for i = 1, 20 do assert.are.equal("COMPLETED", res[i].batch.status) end
      -- at least: libcurl may silently resend a request whose reused connection had just closed
      assert.is_true(#server:requests() >= 40)
      -- two polls per id, and one more: get's options are checked once, before the first poll
      assert.are.equal(41, c.built)
      -- a bad id, even the last, raises before a request is built
      c.built = 0
      ids[20] = ".."
      assert.has_error(function() wait.wait_many(blocking, c, ids) end, "llamacloud: get: batch_id must not be '.' or '..'")
      assert.are.equal(0, c.built)
    end)
  end)

  describe("a multi", function()
    it("collected with requests in flight frees them and closes their connections", function()
      -- garbage of earlier specs (a multi left open by an error) is collected before counting
      collectgarbage()
      collectgarbage()
      server:scenario({ any = { steps = { { batch_status = "RUNNING", delay = 0.3 } } } })
      local ud = core.new({ api_key = "sk-many", base_url = server.url })
      finally(function() ud:close() end)
      local weak = setmetatable({}, { __mode = "v" })
      local function start()
        local m = ud:multi(4)
        weak.multi = m
        for i = 1, 4 do
          local req = ud:request("bat-gc-" .. i, { timeout = 5 })
          weak[i] = req
          m:add(req)
        end
        m:step(0)
        -- in flight: the server has read all four requests and is still delaying them
        local deadline = core.now() + 5
        while server:stats().requests_total < 4 and core.now() < deadline do m:step(0.01) end
        local running = m:counts()
        return running
      end
      assert.are.equal(4, start())
      assert.are.equal(4, server:stats().connections_open)
      collectgarbage()
      collectgarbage()
      assert.is_nil(weak.multi)
      for i = 1, 4 do assert.is_nil(weak[i]) end
      assert.is_true(eventually(function() return server:stats().connections_open == 0 end),
        "connections still open: " .. server:stats().connections_open)
      assert.are.equal(4, server:stats().connections_closed_by_client)
      -- the client is unharmed
      local batch, err = ud:get("bat-gc-1")
      assert.is_nil(err)
      assert.are.equal("RUNNING", batch.status)
    end)
  end)

  describe("bad input", function()
    local CALLS = { "get_many", "wait_many" }
    local BAD = {
      { "concurrency", { "bat-a" }, { concurrency = 0 } },
      { "concurrency", { "bat-a" }, { concurrency = -2 } },
      { "concurrency", { "bat-a" }, { concurrency = 1.5 } },
      { "concurrency", { "bat-a" }, { concurrency = "4" } },
      { "concurrency", { "bat-a" }, { concurrency = 0 / 0 } },
      { "ids", "bat-a", nil },
      { "ids", nil, nil },
      { "ids", { first = "bat-a" }, nil },
      { "ids[2]", { "bat-a", 7 }, nil },
      { "batch_id", { "bat-a", "" }, nil },
      { "batch_id", { "bat-a", ".." }, nil },
      { "concurrenc", { "bat-a" }, { concurrenc = 2 } },
      { "expand", { "bat-a" }, { expand = 3 } },
    }
    local WAIT_BAD = {
      { "interval", { "bat-a" }, { interval = 0 } },
      { "max_interval", { "bat-a" }, { max_interval = -1 } },
      { "timeout", { "bat-a" }, { timeout = "60" } },
      { "backoff", { "bat-a" }, { backoff = "random" } },
      { "on_poll", { "bat-a" }, { on_poll = {} } },
      { "max_interval", { "bat-a" }, { interval = 2, max_interval = 1 } },
    }
    local function case(call, row)
      it(call .. " raises naming '" .. row[1] .. "' before any request", function()
        server:scenario({ any = { steps = { "COMPLETED" } } })
        local ok, msg = pcall(client.batches[call], row[2], row[3])
        assert.is_false(ok)
        assert.matches(row[1], tostring(msg), 1, true)
        assert.are.equal(0, #server:requests())
      end)
    end
    for _, call in ipairs(CALLS) do
      for _, row in ipairs(BAD) do case(call, row) end
    end
    for _, row in ipairs(WAIT_BAD) do case("wait_many", row) end
    it("get_many rejects wait's options", function()
      local ok, msg = pcall(client.batches.get_many, { "bat-a" }, { interval = 1 })
      assert.is_false(ok)
      assert.matches("interval", tostring(msg), 1, true)
    end)
  end)
end)
