-- Specs of batches.wait against the fake server: when it polls, how it sleeps, what on_poll sees and how it ends.
local fake = require("spec.support.fake")
local core = require("llamacloud.core")

-- The server stamps a request when its head arrives; a client's sleep and the stamp may
-- disagree by a clock tick, so lower bounds leave this much.
local EPS = 0.005
local ID = "bat-w"

local function running(n, last)
  local steps = {}
  for i = 1, n do steps[i] = "RUNNING" end
  steps[#steps + 1] = last
  return steps
end

describe("batches.wait", function()
  local server, client

  setup(function()
    server = fake.start()
    client = server:client({ api_key = "sk-wait", max_retries = 0 })
  end)
  teardown(function() server:stop(client) end)

  local function scenario(steps, extra)
    local batches = { [ID] = { steps = steps } }
    for k, v in pairs(extra or {}) do batches[k] = v end
    server:scenario({ batches = batches })
  end

  local function polls(id)
    local out = {}
    for _, r in ipairs(server:requests()) do
      if r.batch_id == (id or ID) then out[#out + 1] = r end
    end
    return out
  end

  local function gaps(id)
    local p, out = polls(id), {}
    for i = 2, #p do out[i - 1] = p[i].t - p[i - 1].t end
    return out
  end

  local function recorder()
    local seen = {}
    return seen, function(batch, info)
      seen[#seen + 1] = { batch = batch, attempt = info.attempt, elapsed = info.elapsed, err = info.err }
    end
  end

  it("pins its defaults: interval 1 s, max_interval 5 s, timeout 7200 s, linear backoff", function()
    local d = require("llamacloud.wait").DEFAULTS
    assert.are.same({ interval = 1.0, max_interval = 5.0, timeout = 7200, backoff = "linear", concurrency = 16 }, d)
  end)

  it("polls at once: a batch already COMPLETED returns well within one interval, after one poll", function()
    scenario({ "COMPLETED" })
    local t0 = core.now()
    local batch, err = client.batches.wait(ID, { interval = 2 })
    local took = core.now() - t0
    assert.is_nil(err)
    assert.are.equal("COMPLETED", batch.status)
    assert.are.equal(ID, batch.id)
    assert.is_true(took < 0.25 * 2, "took " .. took)
    assert.are.equal(1, #polls())
  end)

  it("polls once per status until a terminal one, the server seeing each poll", function()
    scenario({ "PENDING", "PENDING", "RUNNING", "COMPLETED" })
    local batch, err = client.batches.wait(ID, { interval = 0.02, backoff = "constant" })
    assert.is_nil(err)
    assert.are.equal("COMPLETED", batch.status)
    local p = polls()
    assert.are.equal(4, #p)
    for i = 1, 4 do assert.are.equal(i, p[i].n) end
  end)

  it("passes get's options through on every poll", function()
    scenario({ "RUNNING", "COMPLETED" })
    local batch, err = client.batches.wait(ID, { interval = 0.02, expand = "results", project_id = "prj-x" })
    assert.is_nil(err)
    assert.are.equal("COMPLETED", batch.status)
    for _, r in ipairs(polls()) do
      assert.are.equal("expand=results&project_id=prj-x", r.query)
    end
  end)

  -- name, polls before COMPLETED, options, the least sleep after poll n
  local BACKOFFS = {
    { "sleeps interval * n after poll n with linear backoff", 5,
      { interval = 0.03, max_interval = 10, backoff = "linear" }, function(n) return 0.03 * n end },
    { "uses linear backoff when none is given", 4,
      { interval = 0.03, max_interval = 10 }, function(n) return 0.03 * n end },
    { "doubles the sleep after each poll with exponential backoff", 4,
      { interval = 0.02, max_interval = 10, backoff = "exponential" }, function(n) return 0.02 * 2 ^ (n - 1) end },
    { "sleeps interval after every poll with constant backoff", 5,
      { interval = 0.05, max_interval = 10, backoff = "constant" }, function() return 0.05 end },
  }
  for _, row in ipairs(BACKOFFS) do
    local count, opts, want = row[2], row[3], row[4]
    it(row[1], function()
      scenario(running(count, "COMPLETED"))
      local batch, err = client.batches.wait(ID, opts)
      assert.is_nil(err)
      assert.are.equal("COMPLETED", batch.status)
      local g = gaps()
      assert.are.equal(count, #g)
      for n = 1, count do
        assert.is_true(g[n] >= want(n) - EPS, "gap " .. n .. " was " .. g[n] .. ", want " .. want(n))
      end
    end)
  end

  it("caps the sleep at max_interval", function()
    scenario(running(6, "COMPLETED"))
    local batch, err = client.batches.wait(ID, { interval = 0.02, max_interval = 0.04, backoff = "exponential" })
    assert.is_nil(err)
    assert.are.equal("COMPLETED", batch.status)
    local g = gaps()
    assert.are.equal(6, #g)
    local total, uncapped = 0, 0
    for n = 1, 6 do
      local want = math.min(0.02 * 2 ^ (n - 1), 0.04)
      assert.is_true(g[n] >= want - EPS, "gap " .. n .. " was " .. g[n] .. ", want " .. want)
      total = total + g[n]
      uncapped = uncapped + 0.02 * 2 ^ (n - 1)
    end
    -- capped: 0.22 s in all; uncapped it would be 1.26 s
    assert.is_true(total < 0.5 * uncapped, "gaps took " .. total)
  end)

  it("gives up after timeout with PollingTimeoutError carrying the last batch", function()
    scenario({ "PENDING", "RUNNING" })
    local batch, err = client.batches.wait(ID, { interval = 0.05, backoff = "constant", timeout = 0.3 })
    assert.is_nil(batch)
    assert.are.equal("PollingTimeoutError", err.name)
    assert.are.equal(ID, err.batch.id)
    assert.are.equal("RUNNING", err.batch.status)
    assert.is_true(#polls() >= 3)
    assert.matches("PollingTimeoutError", tostring(err), 1, true)
  end)

  it("accepts math.huge as timeout: no time limit", function()
    scenario({ "RUNNING", "COMPLETED" })
    local batch, err = client.batches.wait(ID, { interval = 0.02, timeout = math.huge })
    assert.is_nil(err)
    assert.are.equal("COMPLETED", batch.status)
  end)

  it("applies request_timeout to each poll, and a poll that times out does not end the wait", function()
    scenario({ { batch_status = "RUNNING", delay = 1 }, "COMPLETED" })
    local seen, on_poll = recorder()
    local batch, err = client.batches.wait(ID, { interval = 0.02, request_timeout = 0.1, on_poll = on_poll })
    assert.is_nil(err)
    assert.are.equal("COMPLETED", batch.status)
    assert.are.equal(2, #seen)
    assert.is_nil(seen[1].batch)
    assert.are.equal("APITimeoutError", seen[1].err.name)
    assert.are.equal("COMPLETED", seen[2].batch.status)
    assert.is_nil(seen[2].err)
    assert.is_true(seen[1].elapsed < 0.5, "the first poll took " .. seen[1].elapsed)
  end)

  it("cuts a slow poll short at the whole-wait timeout", function()
    scenario({ "RUNNING", { batch_status = "RUNNING", delay = 2 } })
    local t0 = core.now()
    local batch, err = client.batches.wait(ID, { interval = 0.02, backoff = "constant", timeout = 0.3 })
    local took = core.now() - t0
    assert.is_nil(batch)
    assert.are.equal("PollingTimeoutError", err.name)
    assert.are.equal("RUNNING", err.batch.status)
    assert.is_true(took < 0.5 * 2, "took " .. took)
  end)

  it("calls on_poll after each poll with the batch, attempt from 1 and the elapsed seconds", function()
    scenario({ "PENDING", "RUNNING", "RUNNING", "COMPLETED" })
    local seen, on_poll = recorder()
    local t0 = core.now()
    local batch, err = client.batches.wait(ID, { interval = 0.03, backoff = "constant", on_poll = on_poll })
    local took = core.now() - t0
    assert.is_nil(err)
    assert.are.equal("COMPLETED", batch.status)
    assert.are.equal(4, #seen)
    local statuses = {}
    for i, s in ipairs(seen) do
      statuses[i] = s.batch.status
      assert.are.equal(i, s.attempt)
      assert.is_nil(s.err)
      assert.is_true(s.elapsed >= 0 and s.elapsed <= took)
      if i > 1 then assert.is_true(s.elapsed >= seen[i - 1].elapsed + 0.03 - EPS) end
    end
    assert.are.same({ "PENDING", "RUNNING", "RUNNING", "COMPLETED" }, statuses)
  end)

  it("hands on_poll a failure that get's own retries did not cure, and polls on", function()
    local retrying = server:client_closed_by(finally, { api_key = "sk-wait", max_retries = 1 })
    local fail = { status = 500, headers = { ["retry-after-ms"] = "0" } }
    scenario({ fail, fail, "COMPLETED" })
    local seen, on_poll = recorder()
    local batch, err = retrying.batches.wait(ID, { interval = 0.02, on_poll = on_poll })
    assert.is_nil(err)
    assert.are.equal("COMPLETED", batch.status)
    assert.are.equal(2, #seen)
    assert.are.equal("InternalServerError", seen[1].err.name)
    assert.are.equal(2, seen[1].err.attempts)
    assert.are.equal(1, seen[1].attempt)
    assert.are.equal(2, seen[2].attempt)
    assert.are.equal(3, #polls())
  end)

  local RETRYABLE = {
    { "408", { status = 408 }, "APIStatusError" },
    { "409", { status = 409 }, "ConflictError" },
    { "429", { status = 429 }, "RateLimitError" },
    { "500", { status = 500 }, "InternalServerError" },
    { "503", { status = 503 }, "InternalServerError" },
    -- (a connection dropped before any byte is retried by libcurl itself when it was reused)
    { "a connection closed mid-response", { fault = "reset_headers" }, "APIConnectionError" },
  }
  for _, row in ipairs(RETRYABLE) do
    it("keeps waiting past " .. row[1] .. ", passing " .. row[3] .. " to on_poll as info.err", function()
      scenario({ row[2], "RUNNING", "COMPLETED" })
      local seen, on_poll = recorder()
      local batch, err = client.batches.wait(ID, { interval = 0.02, on_poll = on_poll })
      assert.is_nil(err)
      assert.are.equal("COMPLETED", batch.status)
      assert.are.equal(3, #seen)
      assert.is_nil(seen[1].batch)
      assert.are.equal(row[3], seen[1].err.name)
      assert.are.equal(1, seen[1].attempt)
      assert.are.equal("RUNNING", seen[2].batch.status)
      assert.are.equal(3, #polls())
    end)
  end

  local FINAL = {
    { "400", { status = 400 }, "BadRequestError" },
    { "401", { status = 401 }, "AuthenticationError" },
    { "403", { status = 403 }, "PermissionDeniedError" },
    { "422", { status = 422 }, "UnprocessableEntityError" },
    { "a body that is not a batch", { fault = "missing_fields" }, "APIResponseValidationError" },
  }
  for _, row in ipairs(FINAL) do
    it("ends the wait on " .. row[1] .. " with " .. row[3] .. ", after one poll", function()
      scenario({ "RUNNING", row[2], "COMPLETED" })
      local seen, on_poll = recorder()
      local batch, err = client.batches.wait(ID, { interval = 0.02, on_poll = on_poll })
      assert.is_nil(batch)
      assert.are.equal(row[3], err.name)
      assert.are.equal(1, #seen)
      assert.are.equal(2, #polls())
    end)
  end

  it("ends the wait on 404 with NotFoundError", function()
    scenario({ "COMPLETED" })
    local batch, err = client.batches.wait("bat-missing", { interval = 0.02 })
    assert.is_nil(batch)
    assert.are.equal("NotFoundError", err.name)
    assert.are.equal(404, err.status)
    assert.are.equal(1, #polls("bat-missing"))
  end)

  it("ends the wait on 401 from a wrong key with AuthenticationError", function()
    server:scenario({ api_key = "sk-right", batches = { [ID] = { steps = { "COMPLETED" } } } })
    local batch, err = client.batches.wait(ID, { interval = 0.02 })
    assert.is_nil(batch)
    assert.are.equal("AuthenticationError", err.name)
    assert.are.equal(1, #polls())
  end)

  it("stops at once with PollingCancelled when on_poll returns false", function()
    scenario({ "PENDING", "RUNNING" })
    local calls = 0
    local batch, err = client.batches.wait(ID, { interval = 0.02, on_poll = function(_, info)
      calls = calls + 1
      if info.attempt == 2 then return false end
    end })
    assert.is_nil(batch)
    assert.are.equal("PollingCancelled", err.name)
    assert.are.equal("RUNNING", err.batch.status)
    assert.are.equal(2, calls)
    assert.are.equal(2, #polls())
  end)

  it("goes on when on_poll returns nil or true", function()
    scenario({ "PENDING", "RUNNING", "RUNNING", "COMPLETED" })
    local batch, err = client.batches.wait(ID, { interval = 0.02, on_poll = function(_, info)
      if info.attempt % 2 == 1 then return true end
      return nil
    end })
    assert.is_nil(err)
    assert.are.equal("COMPLETED", batch.status)
    assert.are.equal(4, #polls())
  end)

  for _, status in ipairs({ "FAILED", "CANCELLED" }) do
    it("returns PollingError carrying the batch when it ends " .. status, function()
      scenario({ "RUNNING", status })
      local batch, err = client.batches.wait(ID, { interval = 0.02 })
      assert.is_nil(batch)
      assert.are.equal("PollingError", err.name)
      assert.are.equal(status, err.batch.status)
      assert.are.equal(ID, err.batch.id)
      assert.are.equal(2, #polls())
    end)
  end

  it("counts a status it does not know as not terminal, and keeps it as sent", function()
    scenario({ "PENDING", "ARCHIVING", "COMPLETED" })
    local seen, on_poll = recorder()
    local batch, err = client.batches.wait(ID, { interval = 0.02, on_poll = on_poll })
    assert.is_nil(err)
    assert.are.equal("COMPLETED", batch.status)
    assert.are.equal("ARCHIVING", seen[2].batch.status)
    assert.are.equal(3, #polls())
  end)

  local HINTS = {
    { "retry-after", { ["retry-after"] = "0.4" } },
    { "retry-after-ms", { ["retry-after-ms"] = "400" } },
  }
  for _, row in ipairs(HINTS) do
    it("stretches the next sleep past interval when a 2xx poll carries " .. row[1], function()
      scenario({ "PENDING", { batch_status = "RUNNING", headers = row[2] }, "RUNNING", "COMPLETED" })
      local batch, err = client.batches.wait(ID, { interval = 0.02, backoff = "constant" })
      assert.is_nil(err)
      assert.are.equal("COMPLETED", batch.status)
      local g = gaps()
      assert.are.equal(3, #g)
      assert.is_true(g[2] >= 0.4 - EPS, "the gap after the hint was " .. g[2])
      assert.is_true(g[1] < g[2] and g[3] < g[2])
    end)
  end

  local BAD = {
    { "interval", { interval = 0 } },
    { "interval", { interval = -1 } },
    { "interval", { interval = "1" } },
    { "interval", { interval = 0 / 0 } },
    { "max_interval", { max_interval = 0 } },
    { "max_interval", { max_interval = "5" } },
    { "timeout", { timeout = -3 } },
    { "timeout", { timeout = 0 } },
    { "timeout", { timeout = "10" } },
    { "request_timeout", { request_timeout = 0 } },
    { "backoff", { backoff = "fibonacci" } },
    { "backoff", { backoff = 2 } },
    { "on_poll", { on_poll = "print" } },
    { "on_poll", { on_poll = true } },
    { "intervall", { intervall = 1 } },
    { "opts", "fast" },
  }
  for _, row in ipairs(BAD) do
    local shown = type(row[2]) == "table" and tostring(select(2, next(row[2]))) or row[2]
    it("raises naming '" .. row[1] .. "' before any request (" .. shown .. ")", function()
      scenario({ "COMPLETED" })
      local ok, msg = pcall(client.batches.wait, ID, row[2])
      assert.is_false(ok)
      assert.matches(row[1], tostring(msg), 1, true)
      assert.are.equal(0, #server:requests())
    end)
  end

  -- API.md, "Details that are pinned": the timeout bounds get's own retries and their pauses too.
  it("returns PollingTimeoutError about timeout after it began when the server never answers", function()
    scenario({ { batch_status = "RUNNING", delay = 3600 } })
    local retrying = server:client({ api_key = "sk-wait" }) -- the default max_retries, 2
    finally(function() retrying.close() end)
    local t0 = core.now()
    local batch, err = retrying.batches.wait(ID, { timeout = 1 })
    local took = core.now() - t0
    assert.are.same({ nil, "PollingTimeoutError" }, { batch, err.name })
    -- a generous bound: unbounded retries took 4.4 s (3 attempts of 1 s and their pauses)
    assert.is_true(took < 3, "took " .. took .. " s")
    assert.is_true(#polls() <= 2, #polls() .. " attempts")
  end)

  it("bounds every entry of wait_many by its timeout when the server never answers", function()
    server:scenario({ any = { steps = { { batch_status = "RUNNING", delay = 3600 } } } })
    local retrying = server:client({ api_key = "sk-wait" })
    finally(function() retrying.close() end)
    local t0 = core.now()
    local res = retrying.batches.wait_many({ "bat-h1", "bat-h2" }, { timeout = 1 })
    local took = core.now() - t0
    assert.are.same({ "PollingTimeoutError", "PollingTimeoutError" }, { res[1].err.name, res[2].err.name })
    assert.is_true(took < 3, "took " .. took .. " s")
    assert.is_true(#server:requests() <= 4, #server:requests() .. " attempts")
  end)

  it("raises when max_interval is below interval, naming both", function()
    scenario({ "COMPLETED" })
    local ok, msg = pcall(client.batches.wait, ID, { interval = 2, max_interval = 0.5 })
    assert.are.same({ false, "llamacloud: wait: option 'max_interval' (0.5) must not be below option 'interval' (2)" },
      { ok, msg })
    assert.are.equal(0, #server:requests())
  end)

  it("names the caller's line in an argument error, as get does", function()
    local line
    local ok, msg = pcall(function()
      line = debug.getinfo(1, "l").currentline + 1
      local batch = client.batches.wait(ID, { interval = -1 })
      return batch
    end)
    assert.is_false(ok)
    assert.matches("wait_spec.lua:" .. line .. ": llamacloud: wait: option 'interval'", msg, 1, true)
    ok, msg = pcall(function()
      line = debug.getinfo(1, "l").currentline + 1
      local res = client.batches.wait_many({ ID, "" })
      return res
    end)
    assert.is_false(ok)
    assert.matches("wait_spec.lua:" .. line .. ": llamacloud: get: batch_id must not be empty", msg, 1, true)
  end)

  it("raises naming batch_id before any request when the id is not valid", function()
    scenario({ "COMPLETED" })
    for _, id in ipairs({ "", "..", 42 }) do
      local ok, msg = pcall(client.batches.wait, id, { interval = 0.02 })
      assert.is_false(ok)
      assert.matches("batch_id", tostring(msg), 1, true)
    end
    assert.are.equal(0, #server:requests())
  end)
end)
