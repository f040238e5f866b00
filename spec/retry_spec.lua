-- The retry policy: what is retried, how often, and how long it waits (over TCP, counting the server's requests).
local fake = require("spec.support.fake")
local core = require("llamacloud.core")

local KEY = "sk-retry-spec-key"
local ID = "bat-r"

local function http_date(epoch)
  return os.date("!%a, %d %b %Y %H:%M:%S GMT", epoch)
end

local function fail(status, headers)
  local h = { ["retry-after-ms"] = "0" }
  for k, v in pairs(headers or {}) do h[k] = v end
  return { status = status, headers = h }
end

-- get under pcall: it must not raise.
local function get(client, opts, id) return fake.get(client, id or ID, opts) end

describe("batches.get retries", function()
  local server, client

  local function steps(list)
    server:scenario({ api_key = KEY, batches = { [ID] = { steps = list } } })
  end
  local function count() return #server:requests() end
  -- Seconds between the server's arrival times of request i and i + 1.
  local function gap(i)
    local reqs = server:requests()
    assert.is_true(#reqs >= i + 1, "expected at least " .. (i + 1) .. " requests")
    return reqs[i + 1].t - reqs[i].t
  end

  setup(function()
    server = fake.start({ scenario = { api_key = KEY, batches = {} } })
    client = server:client({ api_key = KEY, max_retries = 2, timeout = 5 })
  end)
  teardown(function() if server then server:stop(client) end end)

  describe("a retried kind succeeds when a later step succeeds", function()
    it("after a dropped connection", function()
      steps({ { fault = "drop" }, "COMPLETED" })
      -- A fresh client: libcurl itself resends once when a reused connection dies silently.
      local c = server:client_closed_by(finally, { api_key = KEY, max_retries = 1 })
      local batch, err = get(c)
      assert.is_nil(err)
      assert.are.equal("COMPLETED", batch.status)
      assert.are.equal(2, count())
    end)

    it("after a timeout", function()
      steps({ { delay = 2 }, "COMPLETED" })
      local batch, err = get(client, { timeout = 0.3 })
      assert.is_nil(err)
      assert.are.equal("COMPLETED", batch.status)
      assert.are.equal(2, count())
    end)

    for _, status in ipairs({ 408, 409, 429, 500, 503 }) do
      it("after a " .. status, function()
        steps({ fail(status), fail(status), "COMPLETED" })
        local batch, err = get(client)
        assert.is_nil(err)
        assert.are.equal("COMPLETED", batch.status)
        assert.are.equal(3, count())
      end)
    end
  end)

  describe("a status that is not retried", function()
    for _, row in ipairs({ { 400, "BadRequestError" }, { 403, "PermissionDeniedError" },
                           { 404, "NotFoundError" }, { 422, "UnprocessableEntityError" } }) do
      it("makes one attempt on a " .. row[1], function()
        steps({ fail(row[1]), "COMPLETED" })
        local batch, err = get(client)
        assert.is_nil(batch)
        assert.are.equal(row[2], err.name)
        assert.are.equal(1, err.attempts)
        assert.are.equal(1, count())
      end)
    end

    it("makes one attempt on a 401", function()
      steps({ "COMPLETED" })
      local c = server:client_closed_by(finally, { api_key = "sk-wrong", max_retries = 2 })
      local batch, err = get(c)
      assert.is_nil(batch)
      assert.are.equal("AuthenticationError", err.name)
      assert.are.equal(1, err.attempts)
      assert.are.equal(1, count())
    end)
  end)

  describe("x-should-retry", function()
    it("true retries a 400", function()
      steps({ fail(400, { ["x-should-retry"] = "true" }), "COMPLETED" })
      local batch, err = get(client)
      assert.is_nil(err)
      assert.are.equal("COMPLETED", batch.status)
      assert.are.equal(2, count())
    end)

    it("false stops a 503 from being retried", function()
      steps({ fail(503, { ["x-should-retry"] = "false" }), "COMPLETED" })
      local batch, err = get(client)
      assert.is_nil(batch)
      assert.are.equal("InternalServerError", err.name)
      assert.are.equal(1, err.attempts)
      assert.are.equal(1, count())
    end)
  end)

  describe("never retried", function()
    for _, status in ipairs({ 301, 302, 307 }) do
      it("a " .. status .. ", even with x-should-retry: true", function()
        steps({ fail(status, { ["x-should-retry"] = "true", Location = "/api/v2/batches/" .. ID }),
                "COMPLETED" })
        local batch, err = get(client)
        assert.is_nil(batch)
        assert.are.equal("APIStatusError", err.name)
        assert.are.equal(status, err.status)
        assert.are.equal(1, count())
      end)
    end

    for _, fault in ipairs({ "malformed", "not_object", "missing_fields" }) do
      it("a validation error (" .. fault .. " body)", function()
        steps({ { fault = fault, headers = { ["x-should-retry"] = "true", ["retry-after-ms"] = "0" } },
                "COMPLETED" })
        local batch, err = get(client)
        assert.is_nil(batch)
        assert.are.equal("APIResponseValidationError", err.name)
        assert.are.equal(1, err.attempts)
        assert.are.equal(1, count())
      end)
    end

    it("a body over max_body_bytes", function()
      steps({ { fault = "huge", size = 65536, headers = { ["retry-after-ms"] = "0" } }, "COMPLETED" })
      local c = server:client_closed_by(finally, { api_key = KEY, max_body_bytes = 1024 })
      local batch, err = get(c)
      assert.is_nil(batch)
      assert.are.equal("APIResponseValidationError", err.name)
      assert.are.equal(1, count())
    end)
  end)

  describe("attempt counts", function()
    it("err.attempts is 3 when max_retries is 2 and all failed", function()
      steps({ fail(500) })
      local batch, err = get(client)
      assert.is_nil(batch)
      assert.are.equal("InternalServerError", err.name)
      assert.are.equal(3, err.attempts)
      assert.are.equal(3, count())
    end)

    it("max_retries = 0 makes one attempt", function()
      steps({ fail(500), "COMPLETED" })
      local c = server:client_closed_by(finally, { api_key = KEY, max_retries = 0 })
      local batch, err = get(c)
      assert.is_nil(batch)
      assert.are.equal("InternalServerError", err.name)
      assert.are.equal(1, err.attempts)
      assert.are.equal(1, count())
    end)

    it("a per-call max_retries above the client's wins", function()
      steps({ fail(500), fail(500), fail(500), "COMPLETED" })
      local c = server:client_closed_by(finally, { api_key = KEY, max_retries = 0 })
      local batch, err = get(c, { max_retries = 3 })
      assert.is_nil(err)
      assert.are.equal("COMPLETED", batch.status)
      assert.are.equal(4, count())
    end)

    it("a per-call max_retries below the client's wins", function()
      steps({ fail(500), "COMPLETED" })
      local batch, err = get(client, { max_retries = 0 })
      assert.is_nil(batch)
      assert.are.equal("InternalServerError", err.name)
      assert.are.equal(1, err.attempts)
      assert.are.equal(1, count())
    end)

    it("a connection error that never clears uses every attempt", function()
      steps({ { fault = "drop" }, { fault = "truncate" }, { fault = "reset_headers" } })
      -- A fresh client, so no attempt rides a reused connection (libcurl resends those itself).
      local c = server:client_closed_by(finally, { api_key = KEY, max_retries = 2 })
      local batch, err = get(c)
      assert.is_nil(batch)
      assert.are.equal("APIConnectionError", err.name)
      assert.are.equal(3, err.attempts)
      assert.are.equal(3, count())
    end)
  end)

  describe("the server's delay hints", function()
    -- core's get returns the last response's hint in seconds as its third value.
    local ud
    before_each(function()
      ud = core.new({ api_key = KEY, base_url = server.url, max_retries = 0 })
    end)
    after_each(function() ud:close() end)

    it("retry-after-ms wins over retry-after", function()
      steps({ { status = 503, headers = { ["retry-after-ms"] = "150", ["retry-after"] = "30" } } })
      local batch, err, hint = ud:get(ID)
      assert.is_nil(batch)
      assert.are.equal("InternalServerError", err.name)
      assert.are.equal(0.15, hint)
    end)

    it("waits the retry-after-ms, not the retry-after, between attempts", function()
      steps({ { status = 503, headers = { ["retry-after-ms"] = "200", ["retry-after"] = "4" } },
              "COMPLETED" })
      local batch, err = get(client)
      assert.is_nil(err)
      assert.are.equal("COMPLETED", batch.status)
      local g = gap(1)
      assert.is_true(g >= 0.18, "gap " .. g .. " shorter than retry-after-ms")
      assert.is_true(g < 2, "gap " .. g .. " looks like retry-after (4 s) won")
    end)

    it("waits retry-after given in seconds", function()
      steps({ { status = 429, headers = { ["retry-after"] = "1" } }, "COMPLETED" })
      local batch, err = get(client)
      assert.is_nil(err)
      assert.are.equal("COMPLETED", batch.status)
      local g = gap(1)
      assert.is_true(g >= 0.95, "gap " .. g .. " shorter than retry-after: 1")
    end)

    it("waits retry-after given as an HTTP date", function()
      steps({ { status = 503, headers = { ["retry-after"] = http_date(os.time() + 2) } }, "COMPLETED" })
      local batch, err = get(client)
      assert.is_nil(err)
      assert.are.equal("COMPLETED", batch.status)
      local g = gap(1)
      -- Whole seconds: a date 2 s ahead is between 1 and 2 s away when it is read.
      assert.is_true(g >= 0.9, "gap " .. g .. " shorter than the retry-after date")
    end)

    it("reports an HTTP date as seconds from now", function()
      steps({ { status = 503, headers = { ["retry-after"] = http_date(os.time() + 30) } } })
      local _, err, hint = ud:get(ID)
      assert.are.equal("InternalServerError", err.name)
      assert.is_true(hint >= 28 and hint <= 30, "hint " .. tostring(hint))
    end)

    for _, value in ipairs({ "120", "-5" }) do
      it("falls back to the default backoff for retry-after: " .. value, function()
        steps({ { status = 503, headers = { ["retry-after"] = value } }, "COMPLETED" })
        local _, err, hint = ud:get(ID)
        assert.are.equal("InternalServerError", err.name)
        assert.is_nil(hint)

        steps({ { status = 503, headers = { ["retry-after"] = value } }, "COMPLETED" })
        local batch, gerr = get(client)
        assert.is_nil(gerr)
        assert.are.equal("COMPLETED", batch.status)
        local g = gap(1)
        -- 0.5 s shortened by up to 25 % jitter: at least 0.375 s; far below 60 s or 120 s.
        assert.is_true(g >= 0.36, "gap " .. g .. " shorter than the default backoff")
        assert.is_true(g < 5, "gap " .. g .. " looks like the header was obeyed")
      end)
    end
  end)
end)

describe("core.retry_after", function()
  local NOW = 1767225600 -- 2026-01-01T00:00:00Z

  it("reads retry-after-ms as milliseconds", function()
    assert.are.equal(1.5, core.retry_after("1500", nil, NOW))
    assert.are.equal(0, core.retry_after("0", nil, NOW))
    assert.are.equal(0.25, core.retry_after("250.0", nil, NOW))
    assert.are.equal(60, core.retry_after("60000", nil, NOW))
  end)

  it("reads retry-after as seconds", function()
    assert.are.equal(7, core.retry_after(nil, "7", NOW))
    assert.are.equal(0, core.retry_after(nil, "0", NOW))
    assert.are.equal(0.5, core.retry_after(nil, "0.5", NOW))
    assert.are.equal(60, core.retry_after(nil, "60", NOW))
    assert.are.equal(3, core.retry_after(nil, " 3 ", NOW))
  end)

  it("prefers retry-after-ms over retry-after", function()
    assert.are.equal(0.25, core.retry_after("250", "30", NOW))
    assert.are.equal(0, core.retry_after("0", "30", NOW))
  end)

  it("does not fall back to retry-after when retry-after-ms is out of range", function()
    assert.is_nil(core.retry_after("61000", "5", NOW))
    assert.is_nil(core.retry_after("-1", "5", NOW))
  end)

  it("falls back to retry-after when retry-after-ms is garbage", function()
    assert.are.equal(5, core.retry_after("soon", "5", NOW))
    assert.are.equal(5, core.retry_after("", "5", NOW))
  end)

  it("reads retry-after as an HTTP date relative to now", function()
    assert.are.equal(10, core.retry_after(nil, http_date(NOW + 10), NOW))
    assert.are.equal(60, core.retry_after(nil, http_date(NOW + 60), NOW))
    assert.are.equal(0, core.retry_after(nil, http_date(NOW), NOW))
    assert.are.equal(10, core.retry_after(nil, "Thursday, 01-Jan-26 00:00:10 GMT", NOW))
  end)

  it("ignores a date in the past or more than 60 s ahead", function()
    assert.is_nil(core.retry_after(nil, http_date(NOW - 1), NOW))
    assert.is_nil(core.retry_after(nil, http_date(NOW + 61), NOW))
    assert.is_nil(core.retry_after(nil, http_date(NOW + 3600), NOW))
  end)

  it("ignores values above 60 s or below 0", function()
    assert.is_nil(core.retry_after(nil, "61", NOW))
    assert.is_nil(core.retry_after(nil, "120", NOW))
    assert.is_nil(core.retry_after(nil, "-1", NOW))
    assert.is_nil(core.retry_after(nil, "-0.5", NOW))
    assert.is_nil(core.retry_after("60001", nil, NOW))
    assert.is_nil(core.retry_after("-5", nil, NOW))
  end)

  it("ignores garbage", function()
    for _, s in ipairs({ "", " ", "soon", "1s", "1e3", "0x10", "1.2.3", "--1", "NaN", "inf",
                         "99999999999999999999", "Mon, 99 Foo 2026 00:00:00 GMT" }) do
      assert.is_nil(core.retry_after(nil, s, NOW), "retry-after: " .. s)
      assert.is_nil(core.retry_after(s, nil, NOW), "retry-after-ms: " .. s)
    end
  end)

  it("returns nil with no header", function()
    assert.is_nil(core.retry_after(nil, nil, NOW))
    assert.is_nil(core.retry_after())
  end)
end)

describe("core.retry_delay", function()
  local function close_to(want, got)
    assert.is_true(math.abs(want - got) < 1e-9, "want " .. want .. ", got " .. got)
  end

  it("doubles from 0.5 s without jitter", function()
    close_to(0.5, core.retry_delay(0, nil, 0))
    close_to(1, core.retry_delay(1, nil, 0))
    close_to(2, core.retry_delay(2, nil, 0))
    close_to(4, core.retry_delay(3, nil, 0))
    close_to(8, core.retry_delay(4, nil, 0))
  end)

  it("caps at 8 s", function()
    close_to(8, core.retry_delay(5, nil, 0))
    close_to(8, core.retry_delay(10, nil, 0))
    close_to(8, core.retry_delay(1000, nil, 0))
  end)

  it("shortens by up to 25 % jitter", function()
    close_to(0.5 * 0.75, core.retry_delay(0, nil, 1))
    close_to(8 * 0.875, core.retry_delay(4, nil, 0.5))
    for n = 0, 6 do
      local base = math.min(0.5 * 2 ^ n, 8)
      for _ = 1, 50 do
        local d = core.retry_delay(n, nil, math.random())
        assert.is_true(d >= base * 0.75 - 1e-9 and d <= base + 1e-9,
          "delay " .. d .. " outside [" .. base * 0.75 .. ", " .. base .. "]")
      end
    end
  end)

  it("uses a server hint as it is, without jitter", function()
    close_to(2.5, core.retry_delay(3, 2.5, 0.9))
    close_to(0, core.retry_delay(0, 0, 0.9))
    close_to(60, core.retry_delay(0, 60, 0.5))
  end)

  it("treats a negative hint as none", function()
    close_to(1, core.retry_delay(1, -1, 0))
  end)
end)
