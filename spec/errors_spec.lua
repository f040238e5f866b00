-- The contract's error table: one status -> name row per `it`, and the fields every error carries.
local fake = require("spec.support.fake")
local llamacloud = require("llamacloud")

local KEY = "sk-errors-spec-key"

-- One batch id per row; each answers with its status on every poll.
local ROWS = {
  { 400, "BadRequestError" },
  { 401, "AuthenticationError" },
  { 403, "PermissionDeniedError" },
  { 404, "NotFoundError" },
  { 409, "ConflictError" },
  { 422, "UnprocessableEntityError" },
  { 429, "RateLimitError" },
  { 500, "InternalServerError" },
  { 503, "InternalServerError" },
  { 418, "APIStatusError" },
  { 302, "APIStatusError" },
}

local function scenario()
  local batches = {
    ["bat-ok"] = { steps = { "COMPLETED" } },
    ["bat-text"] = { steps = { { status = 500, body = "upstream exploded, not json" } } },
    ["bat-headers"] = { steps = { { status = 404, headers = { ["X-Custom-Thing"] = "v1",
                                                               ["X-Request-Id"] = "req-custom-42" } } } },
    ["bat-empty"] = { steps = { { status = 503, body = "" } } },
  }
  for _, row in ipairs(ROWS) do
    local status = row[1]
    if status ~= 401 and status ~= 404 then
      local headers = { ["retry-after-ms"] = "0" }
      -- The redirect points at a batch that exists, so following it would succeed.
      if status == 302 then headers.Location = "/api/v2/batches/bat-ok" end
      batches["bat-" .. status] = { steps = { { status = status, headers = headers } } }
    end
  end
  return { api_key = KEY, batches = batches }
end

-- get under pcall: it must not raise.
local get = fake.get

describe("batches.get errors", function()
  local server, client

  setup(function()
    server = fake.start({ scenario = scenario() })
    client = server:client({ api_key = KEY, max_retries = 0, timeout = 5 })
  end)
  teardown(function() if server then server:stop(client) end end)
  before_each(function() server:reset() end)

  for _, row in ipairs(ROWS) do
    local status, name = row[1], row[2]
    it(string.format("maps status %d to %s", status, name), function()
      local c, id = client, "bat-" .. status
      if status == 401 then
        c = llamacloud.new({ api_key = "sk-wrong", base_url = server.url, max_retries = 0 })
        id = "bat-ok"
      elseif status == 404 then
        id = "bat-missing"
      end
      finally(function() if c ~= client then c.close() end end)
      local batch, err = get(c, id)
      assert.is_nil(batch)
      assert.are.equal(name, err.name)
      assert.are.equal(status, err.status)
      assert.are.equal(1, err.attempts)
      assert.are.equal(1, #server:requests())
    end)
  end

  it("does not follow a 302 Location", function()
    local batch, err = get(client, "bat-302")
    assert.is_nil(batch)
    assert.are.equal("APIStatusError", err.name)
    assert.are.equal("/api/v2/batches/bat-ok", err.headers.location)
    local reqs = server:requests()
    assert.are.equal(1, #reqs)
    assert.are.equal("bat-302", reqs[1].batch_id)
  end)

  it("builds the error with name, message, status, body, headers, request_id and attempts", function()
    local batch, err = get(client, "bat-missing")
    assert.is_nil(batch)
    assert.are.equal("NotFoundError", err.name)
    assert.are.equal("404 Batch not found", err.message)
    assert.are.equal(404, err.status)
    assert.are.same({ detail = "Batch not found" }, err.body)
    assert.are.equal("application/json", err.headers["content-type"])
    assert.are.equal("req-1", err.request_id)
    assert.are.equal("req-1", err.headers["x-request-id"])
    assert.are.equal(1, err.attempts)
  end)

  it("formats tostring(err) as 'Name: message'", function()
    local _, err = get(client, "bat-missing")
    assert.are.equal("NotFoundError: 404 Batch not found", tostring(err))
    assert.are.equal("string", type(tostring(err)))
  end)

  it("keeps a non-JSON error body as raw text", function()
    local batch, err = get(client, "bat-text")
    assert.is_nil(batch)
    assert.are.equal("InternalServerError", err.name)
    assert.are.equal("upstream exploded, not json", err.body)
    assert.are.equal("500 upstream exploded, not json", err.message)
  end)

  it("gives an empty body a readable message", function()
    local batch, err = get(client, "bat-empty")
    assert.is_nil(batch)
    assert.are.equal("InternalServerError", err.name)
    assert.are.equal(503, err.status)
    assert.are.equal("", err.body)
    assert.are.equal("InternalServerError: 503 (empty body)", tostring(err))
  end)

  it("lower-cases header names and takes request_id from x-request-id", function()
    local _, err = get(client, "bat-headers")
    assert.are.equal("NotFoundError", err.name)
    assert.are.equal("v1", err.headers["x-custom-thing"])
    assert.are.equal("req-custom-42", err.request_id)
    for name in pairs(err.headers) do
      assert.are.equal(name:lower(), name)
    end
  end)

  it("returns nil, err and never raises for a failure on the wire", function()
    local n = select("#", client.batches.get("bat-missing"))
    local ok, batch, err = pcall(client.batches.get, "bat-missing")
    assert.is_true(ok)
    assert.is_nil(batch)
    assert.are.equal("NotFoundError", err.name)
    assert.are.equal(2, n)
  end)

  it("counts every attempt in err.attempts when retries ran out", function()
    local batch, err = get(client, "bat-500", { max_retries = 2 })
    assert.is_nil(batch)
    assert.are.equal("InternalServerError", err.name)
    assert.are.equal(3, err.attempts)
    assert.are.equal(3, #server:requests())
  end)

  it("succeeds on the same client after errors", function()
    assert.are.equal("NotFoundError", select(2, get(client, "bat-missing")).name)
    local batch, err = get(client, "bat-ok")
    assert.is_nil(err)
    assert.are.equal("COMPLETED", batch.status)
  end)
end)

describe("batches.get error bodies over max_body_bytes", function()
  local server
  setup(function()
    server = fake.start({ scenario = { batches = {
      ["bat-big503"] = { steps = { { status = 503, fault = "huge", size = 5000,
                                     headers = { ["retry-after-ms"] = "0" } }, "COMPLETED" } },
      ["bat-big404"] = { steps = { { status = 404, fault = "huge", size = 5000 } } },
    } } })
  end)
  teardown(function() server:stop() end)

  it("still names the status and retries a 5xx whose body is too large to keep", function()
    local client = server:client({ api_key = KEY, max_body_bytes = 1000, max_retries = 2 })
    local batch, err = client.batches.get("bat-big503")
    assert.are.same({ "COMPLETED", nil }, { batch and batch.status, err })
    assert.are.equal(2, #server:requests())
  end)

  it("keeps the start of a too large error body, cut at max_body_bytes", function()
    local client = server:client({ api_key = KEY, max_body_bytes = 1000, max_retries = 0 })
    local batch, err = client.batches.get("bat-big404")
    assert.are.same({ nil, "NotFoundError", 404, 1 }, { batch, err.name, err.status, err.attempts })
    assert.are.equal(1000, #err.body)
  end)
end)

describe("core.sleep", function()
  it("returns at once for NaN, zero and negative seconds", function()
    local core = require("llamacloud.core")
    assert.are.same({ nil, nil, nil }, { core.sleep(0 / 0), core.sleep(0), core.sleep(-1) })
  end)
end)
