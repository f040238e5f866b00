-- The fake server stays up and bounded: huge delays, a bounded request log with filters and pages,
-- scenarios that are not objects. Over raw TCP to a server started on port 0.
local socket = require("socket")
local cjson = require("cjson").new()
local fake = require("spec.support.fake")

local function connect(port)
  local sock = assert(socket.connect("127.0.0.1", port))
  sock:settimeout(5)
  return sock
end

local function get_json(server, path)
  local status, body, headers = server:http("GET", path)
  assert.are.equal(200, status, tostring(body))
  return cjson.decode(body), headers
end

local function seqs(recs)
  local out = {}
  for i, r in ipairs(recs) do out[i] = r.seq end
  return out
end

describe("fake server delays", function()
  local server
  setup(function() server = fake.start({ scenario = { batches = {} } }) end)
  teardown(function() server:stop() end)

  -- issue 13, defect 3: a delay past 2^31 s made socket.select fail on every turn of the loop
  it("keep serving others while one connection waits 1e10 s, and notice when its client leaves", function()
    server:scenario({ batches = { never = { steps = { { delay = 1e10 } } }, x = {} } })
    local a = connect(server.port)
    assert(a:send("GET /api/v2/batches/never HTTP/1.1\r\nHost: x\r\n\r\n"))
    -- the delayed request is taken (its record exists) before the other one is sent
    local st = server:stats_when(function(s) return s.requests_total == 1 end, 500)
    assert.are.equal(1, st.requests_total)
    for _ = 1, 3 do
      local status, body = server:http("GET", "/api/v2/batches/x")
      assert.are.equal(200, status)
      assert.are.equal("x", cjson.decode(body).id)
    end
    a:close()
    st = server:stats_when(function(s) return s.connections_open == 0 end, 500)
    assert.are.equal(0, st.connections_open)
    assert.are.equal(1, st.connections_closed_by_client)
  end)

  it("keep a delayed request's pipelined successor", function()
    server:scenario({ batches = { slow = { steps = { { delay = 0.05 } } }, x = {} } })
    local a = connect(server.port)
    assert(a:send("GET /api/v2/batches/slow HTTP/1.1\r\nHost: x\r\n\r\n"
      .. "GET /api/v2/batches/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
    local data, err, partial = a:receive("*a")
    a:close()
    data = data or partial
    assert.is_nil(err)
    local _, n = data:gsub("HTTP/1%.1 200 OK", "")
    assert.are.equal(2, n)
    assert.truthy(data:find('"id":"x"', 1, true))
  end)
end)

describe("fake server request log", function()
  local server
  setup(function()
    server = fake.start({ scenario = { batches = { x = {}, y = {} } }, args = { "--log-limit", "5" } })
  end)
  teardown(function() server:stop() end)
  before_each(function() server:reset() end)

  -- issue 13, defect 7: the log grew without bound
  it("keeps the last N requests and counts all of them", function()
    for i = 1, 12 do server:http("GET", "/api/v2/batches/" .. (i % 3 == 0 and "y" or "x")) end
    local recs, headers = get_json(server, "/_fake/requests")
    assert.are.same({ 8, 9, 10, 11, 12 }, seqs(recs))
    assert.are.equal("req-12", recs[5].request_id)
    assert.are.equal("8", headers["x-fake-log-first"])
    assert.are.equal(12, server:stats().requests_total)
  end)

  it("filters by id and since a sequence number, and pages with limit", function()
    for i = 1, 5 do server:http("GET", "/api/v2/batches/" .. (i % 2 == 0 and "y" or "x")) end
    assert.are.same({ 2, 4 }, seqs((get_json(server, "/_fake/requests?id=y"))))
    assert.are.same({ 4, 5 }, seqs((get_json(server, "/_fake/requests?since=3"))))
    assert.are.same({ 5 }, seqs((get_json(server, "/_fake/requests?since=3&id=x"))))
    local page, headers = get_json(server, "/_fake/requests?limit=2")
    assert.are.same({ 1, 2 }, seqs(page))
    assert.are.equal("2", headers["x-fake-next-since"])
    page, headers = get_json(server, "/_fake/requests?limit=2&since=" .. headers["x-fake-next-since"])
    assert.are.same({ 3, 4 }, seqs(page))
    page, headers = get_json(server, "/_fake/requests?limit=2&since=" .. headers["x-fake-next-since"])
    assert.are.same({ 5 }, seqs(page))
    assert.is_nil(headers["x-fake-next-since"])
    assert.are.same({}, (get_json(server, "/_fake/requests?since=5")))
  end)

  it("refuses a bad filter with 400", function()
    for _, q in ipairs({ "since=-1", "since=x", "limit=0", "limit=1.5", "bogus=1" }) do
      local status, body = server:http("GET", "/_fake/requests?" .. q)
      assert.are.equal(400, status, q)
      assert.is_string(cjson.decode(body).detail)
    end
  end)

  it("takes log_limit from the scenario", function()
    server:scenario({ log_limit = 2, batches = { x = {} } })
    for _ = 1, 4 do server:http("GET", "/api/v2/batches/x") end
    assert.are.same({ 3, 4 }, seqs((get_json(server, "/_fake/requests"))))
    assert.are.equal(4, server:stats().requests_total)
  end)

  it("refuses a bad --log-limit", function()
    local fake_server = require("llamacloud.fake_server")
    local real_err = io.stderr
    io.stderr = { write = function(self) return self end } -- luacheck: ignore 122
    local ok, code = pcall(fake_server.main, { "--log-limit", "0" })
    local ok2, code2 = pcall(fake_server.main, { "--log-limit", "ten" })
    io.stderr = real_err -- luacheck: ignore 122
    assert.are.same({ true, 2, true, 2 }, { ok, code, ok2, code2 })
  end)
end)

describe("fake server scenario upload", function()
  local server
  setup(function() server = fake.start({ scenario = { batches = { x = {} } } }) end)
  teardown(function() server:stop() end)

  -- issue 13: PUT /_fake/scenario with [] installed an empty scenario
  it("refuses a JSON value that is not an object", function()
    for _, body in ipairs({ "[]", "[1]", "3", '"s"', "null" }) do
      local status, resp = server:http("PUT", "/_fake/scenario", body)
      assert.are.equal(400, status, body)
      assert.truthy(cjson.decode(resp).detail:find("object", 1, true), body)
    end
    -- the old scenario is still there
    assert.are.equal(200, (server:http("GET", "/api/v2/batches/x")))
  end)
end)
