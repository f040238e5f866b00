-- The fake server delivers a created batch's webhook events (issue 11): to loopback URLs only, with the
-- configured headers and events, signed with LC-Signature, retried with backoff, recorded in
-- /_fake/deliveries. The receiver is a plain TCP server in this process.
local socket = require("socket")
local cjson = require("cjson").new()
local fake = require("spec.support.fake")
local llamacloud = require("llamacloud")

local null = cjson.null

-- A one-connection-at-a-time HTTP receiver: each call to :take(status) accepts one delivery, answers
-- it with `status` and returns what came in.
local Receiver = {}
Receiver.__index = Receiver

local function receiver()
  local srv = assert(socket.bind("127.0.0.1", 0))
  srv:settimeout(10)
  local _, port = srv:getsockname()
  return setmetatable({ srv = srv, port = tonumber(port) }, Receiver)
end

function Receiver:url(path) return "http://127.0.0.1:" .. self.port .. (path or "/hook") end

function Receiver:take(status)
  local sock = assert(self.srv:accept())
  sock:settimeout(10)
  local line = assert(sock:receive("*l"))
  local method, path = line:match("^(%u+) (%S+) HTTP/1%.1$")
  local headers = {}
  while true do
    local h = assert(sock:receive("*l"))
    if h == "" then break end
    local name, value = h:match("^([^:]+):%s*(.*)$")
    headers[name:lower()] = value
  end
  local body = assert(sock:receive(tonumber(headers["content-length"])))
  local answer = tostring(status or 200)
  sock:send("HTTP/1.1 " .. answer .. " X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
  sock:close()
  return { method = method, path = path, headers = headers, body = body, json = cjson.decode(body) }
end

function Receiver:close() self.srv:close() end

local function create(server, hooks, dir)
  local status, body = server:http("POST", "/api/v2/batches", fake.encode({
    source_directory_id = dir or "dir-ok",
    config = { job = { type = "parse_v2", configuration_id = "cfg-test" } },
    webhook_configurations = hooks,
  }))
  assert.are.equal(200, status, body)
  return cjson.decode(body)
end

local function deliveries(server, query)
  local status, body = server:http("GET", "/_fake/deliveries" .. (query or ""))
  assert.are.equal(200, status, body)
  return cjson.decode(body)
end

-- The deliveries once there are n of them: the receiver has its answer before the fake has read it.
-- Reads 10 ms apart, at most `tries` (no time is asserted).
local function deliveries_when(server, n, query)
  local recs
  for _ = 1, 500 do
    recs = deliveries(server, query)
    if #recs >= n then break end
    socket.sleep(0.01)
  end
  return recs
end

local SCENARIO = {
  webhooks = { advance_every = 0.01, backoff = 0.01, retries = 2, timeout = 5 },
  directories = {
    ["dir-ok"] = { count = 1 },
    ["dir-fails"] = { count = 1, batch = { steps = { "PENDING", "RUNNING", "FAILED" } } },
    ["dir-stuck"] = { count = 1, batch = { steps = { "PENDING", "RUNNING" } } },
  },
}

describe("fake server webhook deliveries", function()
  local server, rx
  setup(function()
    server = fake.start({ scenario = SCENARIO })
    rx = receiver()
  end)
  teardown(function()
    rx:close()
    server:stop()
  end)
  before_each(function() server:scenario(SCENARIO) end)

  it("POSTs every event, signed, with the configured headers", function()
    local b = create(server, { { webhook_url = rx:url("/in?x=1"), webhook_signing_secret = "s3cret",
                                 webhook_headers = { ["X-Tenant"] = "t1" }, webhook_output_format = "json" } })
    local got = { rx:take(), rx:take(), rx:take() }
    local events = {}
    for i, d in ipairs(got) do
      events[i] = d.json.event
      assert.are.same({ "POST", "/in?x=1", "t1", "application/json" },
        { d.method, d.path, d.headers["x-tenant"], d.headers["content-type"] })
      assert.are.equal(b.id, d.json.batch_id)
      assert.is_true(llamacloud.webhooks.verify(d.body, d.headers["lc-signature"], "s3cret"))
      assert.are.same({ false, "mismatch" }, { llamacloud.webhooks.verify(d.body, d.headers["lc-signature"], "other") })
    end
    assert.are.same({ "batch.pending", "batch.running", "batch.success" }, events)
    assert.are.same({ "PENDING", "RUNNING", "COMPLETED" }, { got[1].json.status, got[2].json.status, got[3].json.status })
    local recs = deliveries_when(server, 3, "?id=" .. b.id)
    assert.are.equal(3, #recs)
    assert.are.same({ true, 200, 1, rx:url("/in?x=1") },
      { recs[3].delivered, recs[3].response_status, recs[3].attempt, recs[3].url })
  end)

  it("sends only the events asked for, unsigned without a secret, as text by default", function()
    create(server, { { webhook_url = rx:url(), webhook_events = { "batch.success", "batch.error" } } })
    local d = rx:take()
    assert.are.same({ "batch.success", "COMPLETED" }, { d.json.event, d.json.status })
    assert.is_nil(d.headers["lc-signature"])
    assert.truthy(d.headers["content-type"]:find("text/plain", 1, true))
    assert.are.equal(1, #deliveries_when(server, 1))
  end)

  it("sends batch.error for a failed batch and batch.cancelled for a cancelled one", function()
    create(server, { { webhook_url = rx:url(), webhook_events = { "batch.error" } } }, "dir-fails")
    assert.are.equal("batch.error", rx:take().json.event)
    local b = create(server, { { webhook_url = rx:url(), webhook_events = { "batch.cancelled" } } }, "dir-stuck")
    assert.are.equal(200, (server:http("POST", "/api/v2/batches/" .. b.id .. "/cancel")))
    local d = rx:take()
    assert.are.same({ "batch.cancelled", "CANCELLED", b.id }, { d.json.event, d.json.status, d.json.batch_id })
  end)

  it("retries a failed delivery with backoff and records every attempt", function()
    local b = create(server, { { webhook_url = rx:url(), webhook_events = { "batch.success" } } })
    rx:take(500)
    rx:take(503)
    rx:take(204)
    local recs = deliveries_when(server, 3, "?id=" .. b.id)
    local seen = {}
    for i, r in ipairs(recs) do seen[i] = { r.attempt, r.response_status, r.delivered } end
    assert.are.same({ { 1, 500, false }, { 2, 503, false }, { 3, 204, true } }, seen)
  end)

  it("gives up after the retries on an unreachable URL while serving everything else", function()
    local dead = receiver()
    local url = dead:url()
    dead:close()
    local b = create(server, { { webhook_url = url, webhook_events = { "batch.pending" } } })
    local recs
    for _ = 1, 500 do
      assert.are.equal(200, (server:http("GET", "/api/v2/batches?page_size=1")))
      recs = deliveries(server)
      if #recs == 3 then break end
      socket.sleep(0.01)
    end
    assert.are.equal(3, #recs)
    for i, r in ipairs(recs) do
      assert.are.same({ i, null, false, b.id }, { r.attempt, r.response_status, r.delivered, r.batch_id })
      assert.is_string(r.error)
    end
  end)

  it("delivers to every configuration", function()
    local rx2 = receiver()
    finally(function() rx2:close() end)
    create(server, { { webhook_url = rx:url("/a"), webhook_events = { "batch.success" } },
                     { webhook_url = "http://localhost:" .. rx2.port .. "/b", webhook_events = { "batch.success" } } })
    assert.are.equal("/a", rx:take().path)
    assert.are.equal("/b", rx2:take().path)
  end)
end)
