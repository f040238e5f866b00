-- Fault injection: whatever the server or the network does, get returns the contract's error promptly,
-- with nothing crashed, leaked or buffered without bound (the leak half is proven by make asan / valgrind).
local fake = require("spec.support.fake")
local util = require("spec.support.util")

local KEY = "sk-faults-spec-key"
local ID = "bat-f"

local function get(client, id, opts) return fake.get(client, id or ID, opts) end
local function timed_get(client) return fake.timed_get(client, ID) end

describe("get under faults", function()
  local server

  local function steps(list, id)
    server:scenario({ api_key = KEY, batches = { [id or ID] = { steps = list } } })
  end
  local function client(opts)
    return server:client_closed_by(finally, { api_key = KEY, max_retries = 0, timeout = 20 }, opts)
  end

  setup(function() server = fake.start({ scenario = { api_key = KEY, batches = {} } }) end)
  teardown(function() if server then server:stop() end end)

  describe("a connection reset", function()
    local ROWS = {
      { "rst_headers", "a TCP reset in the middle of the headers" },
      { "reset_headers", "a clean close in the middle of the headers" },
      { "rst_body", "a TCP reset in the middle of the body" },
      { "truncate", "a clean close in the middle of the body" },
    }
    for _, row in ipairs(ROWS) do
      it("returns APIConnectionError for " .. row[2] .. ", long before timeout", function()
        steps({ { fault = row[1], batch_status = "COMPLETED" } })
        local c = client({ timeout = 20 })
        local batch, err, elapsed = timed_get(c)
        assert.is_nil(batch)
        assert.are.equal("APIConnectionError", err.name)
        assert.are.equal(1, err.attempts)
        assert.is_true(elapsed < 20 / 4, "took " .. elapsed .. " s of a 20 s timeout")
      end)
    end

    it("retries a reset and counts every attempt", function()
      steps({ { fault = "rst_body", headers = { ["retry-after-ms"] = "0" } } })
      local batch, err = get(client({ max_retries = 2 }))
      assert.is_nil(batch)
      assert.are.equal("APIConnectionError", err.name)
      assert.are.equal(3, err.attempts)
      assert.are.equal(3, #server:requests())
    end)

    it("leaves the client working: the next get on it succeeds", function()
      steps({ { fault = "rst_body" }, "COMPLETED" })
      local c = client()
      local batch, err = get(c)
      assert.is_nil(batch)
      assert.are.equal("APIConnectionError", err.name)
      batch, err = get(c)
      assert.is_nil(err)
      assert.are.equal("COMPLETED", batch.status)
    end)
  end)

  describe("a trickling body", function()
    it("one byte a second past timeout is an APITimeoutError at about timeout, not per byte", function()
      steps({ { fault = "trickle", interval = 1, batch_status = "COMPLETED" } })
      local timeout = 1.5
      local batch, err, elapsed = timed_get(client({ timeout = timeout }))
      assert.is_nil(batch)
      assert.are.equal("APITimeoutError", err.name)
      -- one deadline for the whole attempt: the bytes that did arrive never extended it
      assert.is_true(elapsed >= timeout * 0.9, "returned after " .. elapsed .. " s")
      assert.is_true(elapsed < timeout * 3, "returned after " .. elapsed .. " s")
      assert.are.equal(1, server:closed_by_client(300))
    end)
  end)

  describe("a body past max_body_bytes", function()
    local CAP = 4 * 1048576

    it("an endless chunked body is refused while receiving, with memory bounded", function()
      steps({ { fault = "endless" } })
      local c = client({ max_body_bytes = CAP })
      local peak_ok = util.reset_peak()
      local rss0 = util.status_kb("VmRSS")
      local batch, err = get(c)
      local hwm = util.status_kb("VmHWM")
      assert.is_nil(batch)
      assert.are.equal("APIResponseValidationError", err.name)
      assert.truthy(err.message:find("max_body_bytes", 1, true), err.message)
      -- the server stopped sending because the client hung up, not because it reached its 1 GiB
      assert.are.equal(1, server:closed_by_client(300))
      if peak_ok then
        assert.is_true(hwm - rss0 < 64 * 1024, "peak RSS grew by " .. (hwm - rss0) .. " kB for a 4 MiB cap")
      end
    end)

    it("a Content-Length past the cap is refused before the body is read", function()
      steps({ { fault = "huge", size = 512 * 1048576 } })
      local c = client({ max_body_bytes = CAP })
      local peak_ok = util.reset_peak()
      local rss0 = util.status_kb("VmRSS")
      local batch, err = get(c)
      local hwm = util.status_kb("VmHWM")
      assert.is_nil(batch)
      assert.are.equal("APIResponseValidationError", err.name)
      assert.are.equal(1, server:closed_by_client(300))
      if peak_ok then
        assert.is_true(hwm - rss0 < 64 * 1024, "peak RSS grew by " .. (hwm - rss0) .. " kB")
      end
    end)

    it("keeps RSS flat over repeated refusals", function()
      steps({ { fault = "endless" } })
      local c = client({ max_body_bytes = 1048576 })
      get(c)
      collectgarbage()
      local rss0 = util.status_kb("VmRSS")
      for _ = 1, 20 do
        local batch, err = get(c)
        assert.is_nil(batch)
        assert.are.equal("APIResponseValidationError", err.name)
      end
      collectgarbage()
      local grew = util.status_kb("VmRSS") - rss0
      assert.is_true(grew < 16 * 1024, "RSS grew by " .. grew .. " kB over 20 refused 1 MiB bodies")
    end)
  end)

  describe("response headers", function()
    it("5,000 headers are read and the batch returned", function()
      steps({ { fault = "many_headers", count = 5000, batch_status = "COMPLETED" } })
      local batch, err = get(client())
      assert.is_nil(err)
      assert.are.equal("COMPLETED", batch.status)
    end)

    it("5,000 headers on an error are all in err.headers", function()
      steps({ { status = 500, fault = "many_headers", count = 5000 } })
      local batch, err = get(client())
      assert.is_nil(batch)
      assert.are.equal("InternalServerError", err.name)
      assert.are.equal("1", err.headers["x-fill-1"])
      assert.are.equal("5000", err.headers["x-fill-5000"])
    end)

    it("a header block past the client's 256 KiB limit is an APIConnectionError", function()
      steps({ { fault = "many_headers", count = 30000, batch_status = "COMPLETED" } })
      local batch, err = get(client())
      assert.is_nil(batch)
      assert.are.equal("APIConnectionError", err.name)
      assert.are.equal(1, err.attempts)
    end)
  end)

  describe("a Content-Length that lies", function()
    it("too small: the body is cut at the length and fails validation", function()
      steps({ { fault = "length_short", batch_status = "COMPLETED" } })
      local batch, err = get(client())
      assert.is_nil(batch)
      assert.are.equal("APIResponseValidationError", err.name)
      assert.are.equal(200, err.status)
    end)

    it("too small: the bytes past it never reach the next response on the client", function()
      steps({ { fault = "length_short", batch_status = "COMPLETED" }, "RUNNING" })
      local c = client()
      get(c)
      local batch, err = get(c)
      assert.is_nil(err)
      assert.are.equal("RUNNING", batch.status)
    end)

    it("too large: the connection closing early is an APIConnectionError", function()
      steps({ { fault = "length_long", batch_status = "COMPLETED" } })
      local c = client({ timeout = 20 })
      local batch, err, elapsed = timed_get(c)
      assert.is_nil(batch)
      assert.are.equal("APIConnectionError", err.name)
      assert.is_true(elapsed < 20 / 4, "took " .. elapsed .. " s")
    end)
  end)

  describe("bodies that are not text", function()
    it("a binary 2xx body is an APIResponseValidationError", function()
      steps({ { fault = "binary", size = 4096 } })
      local batch, err = get(client())
      assert.is_nil(batch)
      assert.are.equal("APIResponseValidationError", err.name)
      assert.are.equal(200, err.status)
    end)

    it("a binary error body is kept whole as err.body, and the message holds its start", function()
      steps({ { status = 500, fault = "binary", size = 4096 } })
      local batch, err = get(client())
      assert.is_nil(batch)
      assert.are.equal("InternalServerError", err.name)
      assert.are.equal("string", type(err.body))
      assert.are.equal(4096, #err.body)
      assert.are.equal("500 ", err.message:sub(1, 4))
    end)

    it("invalid UTF-8 inside JSON strings is kept byte for byte, as lua-cjson does", function()
      local name = "\255\254 \195\40 \237\160\128"
      steps({ { body = '{"id":"' .. ID .. '","status":"RUNNING","name":"' .. name .. '"}' } })
      local batch, err = get(client())
      assert.is_nil(err)
      assert.are.equal("RUNNING", batch.status)
      assert.are.equal(name, batch.name)
    end)

    local REFUSED = {
      { "invalid UTF-8 outside strings", '{"id":"' .. ID .. '","status":"RUNNING",\255:1}' },
      { "a NUL inside a 2xx body", '{"id":"' .. ID .. '","status":"RUNNING"}\0{"x":1}' },
    }
    for _, row in ipairs(REFUSED) do
      it(row[1] .. " is an APIResponseValidationError", function()
        steps({ { body = row[2] } })
        local batch, err = get(client())
        assert.is_nil(batch)
        assert.are.equal("APIResponseValidationError", err.name)
      end)
    end
  end)

  describe("numbers in a 2xx", function()
    local function body(n)
      return '{"id":"' .. ID .. '","status":"COMPLETED","n":' .. n .. '}'
    end
    for _, bad in ipairs({ "NaN", "Infinity", "-Infinity", "007", "-01", "1.", ".5", "0x10", "+1", "1e", "--1" }) do
      it("refuses " .. bad .. " with APIResponseValidationError", function()
        steps({ { body = body(bad) } })
        local batch, err = get(client())
        assert.is_nil(batch)
        assert.are.equal("APIResponseValidationError", err.name)
      end)
    end

    local INTEGERS = {
      { "a 19-digit integer as that number", "1234567890123456789", 1234567890123456789 },
      { "the smallest 64-bit integer as a number", "-9223372036854775808", -9223372036854775807 - 1 },
    }
    for _, row in ipairs(INTEGERS) do
      it("decodes " .. row[1], function()
        steps({ { body = body(row[2]) } })
        local batch, err = get(client())
        assert.is_nil(err)
        assert.are.equal("number", type(batch.n))
        assert.are.equal(row[3], batch.n)
      end)
    end

    it("decodes a 19-digit integer past 64 bits as a float near it", function()
      steps({ { body = body("9999999999999999999") } })
      local batch, err = get(client())
      assert.is_nil(err)
      assert.are.equal("number", type(batch.n))
      assert.is_true(math.abs(batch.n - 1e19) < 1e5, tostring(batch.n))
    end)

    it("decodes numbers past the double range as infinities, not as errors", function()
      steps({ { body = body("[1e400, -1e400, 1e-400]") } })
      local batch, err = get(client())
      assert.is_nil(err)
      assert.are.same({ math.huge, -math.huge, 0 }, batch.n)
    end)
  end)

  describe("odd batch ids", function()
    local function pct_decode(s)
      return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
    end
    local function any()
      server:scenario({ api_key = KEY, any = { steps = { "COMPLETED" } } })
    end
    local IDS = {
      { "of 10,000 characters", string.rep("b", 10000) },
      { "of 10,000 reserved characters", string.rep("/?#%&= ", 1429):sub(1, 10000) },
      { "with / ? # % & = and space", "a/b?c#d%e&f=g h" },
      { "with a NUL byte", "bat-\0-x" },
      { "in UTF-8", "bät-日本-🦙" },
      { "with a percent sign that looks encoded", "%2F%41" },
      { "of three dots", "..." },
    }
    for _, row in ipairs(IDS) do
      it("sends an id " .. row[1] .. " as one path segment the server decodes back", function()
        any()
        local id = row[2]
        local batch, err = get(client(), id)
        assert.is_nil(err)
        assert.are.equal(id, batch.id)
        local reqs = server:requests()
        assert.are.equal(1, #reqs)
        assert.are.equal(id, reqs[1].batch_id)
        local seg = reqs[1].path:match("^/api/v2/batches/([^/?#]+)$")
        assert.is_not_nil(seg, reqs[1].path:sub(1, 200))
        assert.are.equal(id, pct_decode(seg))
        assert.are.equal("", reqs[1].query)
      end)
    end
  end)

  describe("a key echoed after a NUL (found by fuzz/transfer_fuzz.c)", function()
    it("is still redacted from err.body and err.message", function()
      steps({ { status = 400, body = "bad\0 token " .. KEY .. " rejected" } })
      local batch, err = get(client())
      assert.is_nil(batch)
      assert.are.equal("BadRequestError", err.name)
      assert.are.equal("bad\0 token [redacted] rejected", err.body)
      assert.is_nil(err.message:find(KEY, 1, true))
    end)
  end)
end)
