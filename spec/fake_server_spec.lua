-- Specs of the fake LlamaCloud server itself, over raw TCP.
local socket = require("socket")
local cjson = require("cjson").new()
local fake = require("spec.support.fake")
local fake_server = require("llamacloud.fake_server")

local null = cjson.null

-- Raw HTTP/1.1 client: just enough to observe what the server really sends.
local function connect(port)
  local sock = assert(socket.connect("127.0.0.1", port))
  sock:settimeout(5)
  return sock
end

local function send_request(sock, path, headers, method)
  local lines = { (method or "GET") .. " " .. path .. " HTTP/1.1", "Host: 127.0.0.1" }
  for _, h in ipairs(headers or {}) do lines[#lines + 1] = h end
  assert(sock:send(table.concat(lines, "\r\n") .. "\r\n\r\n"))
end

-- Reads one response framed by Content-Length; nil, err, partial on failure.
local function read_response(sock)
  local status_line, err = sock:receive("*l")
  if not status_line then return nil, err end
  local res = { status = tonumber(status_line:match("^HTTP/1%.1 (%d%d%d) ")),
                headers = {}, header_count = 0 }
  while true do
    local line, herr = sock:receive("*l")
    if not line then return nil, herr end
    if line == "" then break end
    local name, value = line:match("^([^:]+):%s*(.*)$")
    res.headers[name:lower()] = value
    res.header_count = res.header_count + 1
  end
  local len = tonumber(res.headers["content-length"])
  if len and len > 0 then
    local body, berr, partial = sock:receive(len)
    if not body then return nil, berr, partial, res end
    res.body = body
  else
    res.body = ""
  end
  return res
end

local function get(port, path, headers)
  local sock = connect(port)
  local h = { "Connection: close" }
  for _, x in ipairs(headers or {}) do h[#h + 1] = x end
  send_request(sock, path, h)
  local res, err = read_response(sock)
  sock:close()
  assert(res, "no response: " .. tostring(err))
  return res
end

-- Everything the server sends until it closes the connection.
local function get_raw(port, path)
  local sock = connect(port)
  send_request(sock, path, { "Connection: close" })
  local data, err, partial = sock:receive("*a")
  sock:close()
  return data or partial, err
end

local function body_of(raw)
  return raw:match("\r\n\r\n(.*)$")
end

local function decode(s) return cjson.decode(s) end

local function batch(port, id, query)
  local res = get(port, "/api/v2/batches/" .. id .. (query or ""))
  return decode(res.body), res
end

describe("fake_server.main", function()
  local function capture(fn)
    local out, err = {}, {}
    local real_out, real_err = io.stdout, io.stderr
    local function sink(t)
      return { write = function(self, ...) for _, s in ipairs({ ... }) do t[#t + 1] = s end return self end,
               flush = function() end }
    end
    io.stdout, io.stderr = sink(out), sink(err) -- luacheck: ignore 122
    local ok, code = pcall(fn)
    io.stdout, io.stderr = real_out, real_err -- luacheck: ignore 122
    assert(ok, code)
    return code, table.concat(out), table.concat(err)
  end

  it("prints the usage for --help and returns 0", function()
    local code, out = capture(function() return fake_server.main({ "--help" }) end)
    assert.are.equal(0, code)
    assert.are.equal(fake_server.USAGE, out)
    assert.truthy(out:find("--scenario", 1, true))
  end)

  it("accepts -h", function()
    local code = capture(function() return fake_server.main({ "-h" }) end)
    assert.are.equal(0, code)
  end)

  it("returns 2 for an unknown flag", function()
    local code, out, err = capture(function() return fake_server.main({ "--bogus" }) end)
    assert.are.equal(2, code)
    assert.are.equal("", out)
    assert.truthy(err:find("--bogus", 1, true))
  end)

  it("returns 2 for a bad port", function()
    assert.are.equal(2, (capture(function() return fake_server.main({ "--port", "abc" }) end)))
    assert.are.equal(2, (capture(function() return fake_server.main({ "--port", "70000" }) end)))
    assert.are.equal(2, (capture(function() return fake_server.main({ "--port" }) end)))
  end)

  it("refuses a host that is not loopback", function()
    local code, _, err = capture(function() return fake_server.main({ "--host", "0.0.0.0" }) end)
    assert.are.equal(2, code)
    assert.truthy(err:find("loopback", 1, true))
  end)

  it("returns 2 for a missing or invalid scenario file", function()
    assert.are.equal(2, (capture(function()
      return fake_server.main({ "--scenario", "/nonexistent/scenario.json" })
    end)))
    local path = os.tmpname()
    finally(function() os.remove(path) end)
    local f = assert(io.open(path, "wb"))
    f:write('{"batches": {"x": {"steps": [{"fault": "nope"}]}}}')
    f:close()
    local code, _, err = capture(function() return fake_server.main({ "--scenario", path }) end)
    assert.are.equal(2, code)
    assert.truthy(err:find("unknown fault 'nope'", 1, true))
  end)

  it("returns 2, without a traceback, for a scenario path that is a directory", function()
    local code, _, err = capture(function() return fake_server.main({ "--scenario", "spec" }) end)
    assert.are.equal(2, code)
    assert.truthy(err:find("bad scenario: spec", 1, true))
  end)

  it("has a default scenario with the demo batches", function()
    local b = fake_server.DEFAULT_SCENARIO.batches
    assert.are.same({ "PENDING", "RUNNING", "COMPLETED" }, b["bat-demo"].steps)
    assert.are.equal(2, b["bat-demo"].results_from)
    assert.are.equal(4, #b["bat-demo"].results)
    assert.is_table(b["bat-done"])
    assert.is_table(b["bat-failed"])
    assert.is_table(b["bat-cancelled"])
  end)
end)

describe("fake server with the built-in scenario", function()
  local server
  setup(function() server = fake.start() end)
  teardown(function() server:stop() end)

  it("prints its URL on start", function()
    assert.are.equal("http://127.0.0.1:" .. server.port, server.url)
  end)

  it("serves a normal batch body", function()
    local b, res = batch(server.port, "bat-done")
    assert.are.equal(200, res.status)
    assert.are.equal("application/json", res.headers["content-type"])
    assert.truthy(res.headers["x-request-id"]:match("^req%-%d+$"))
    assert.are.equal("bat-done", b.id)
    assert.are.equal("prj-fake", b.project_id)
    assert.are.equal("dir-fake", b.source_directory_id)
    assert.are.same({ job = { type = "parse_v2", configuration_id = "cfg-fake" } }, b.config)
    assert.are.equal("COMPLETED", b.status)
    assert.are.equal("2026-01-01T00:00:00.000Z", b.created_at)
    assert.are.equal("string", type(b.updated_at))
    assert.are.equal(null, b.results)
    assert.truthy(res.body:find('"results":null', 1, true))
  end)

  it("moves bat-demo through PENDING, RUNNING, COMPLETED with results from poll 2", function()
    local q = "?expand=results"
    local b1 = batch(server.port, "bat-demo", q)
    local b2 = batch(server.port, "bat-demo", q)
    local b3 = batch(server.port, "bat-demo", q)
    assert.are.same({ "PENDING", "RUNNING", "COMPLETED" }, { b1.status, b2.status, b3.status })
    assert.are.equal(null, b1.results)
    assert.are.equal(4, #b3.results)
    local jobs, failed, unmapped = 0, 0, 0
    for _, r in ipairs(b3.results) do
      if r.job_reference ~= null then
        jobs = jobs + 1
        assert.are.equal("parse_v2", r.job_reference.type)
        assert.truthy(r.job_reference.id:match("^pjb%-"))
        assert.are.equal(null, r.error_message)
      elseif r.error_message ~= null then
        failed = failed + 1
        assert.are.equal("unsupported file type", r.error_message)
      else
        unmapped = unmapped + 1
      end
    end
    assert.are.same({ 2, 1, 1 }, { jobs, failed, unmapped })
  end)

  it("serves bat-failed and bat-cancelled at once", function()
    assert.are.equal("FAILED", (batch(server.port, "bat-failed")).status)
    assert.are.equal("CANCELLED", (batch(server.port, "bat-cancelled")).status)
  end)

  it("answers 404 for an unknown batch", function()
    local res = get(server.port, "/api/v2/batches/bat-nope")
    assert.are.equal(404, res.status)
    assert.are.same({ detail = "Batch not found" }, decode(res.body))
  end)
end)

describe("fake server", function()
  local server
  setup(function() server = fake.start({ scenario = { batches = {} } }) end)
  teardown(function() server:stop() end)

  describe("batch bodies", function()
    it("merges scenario batch fields over the defaults", function()
      server:scenario({ batches = { ["bat-x"] = {
        batch = { project_id = "prj-mine", config = { job = { type = "extract_v2" } },
                  created_at = null, extra = { 1, 2 } },
      } } })
      local b = batch(server.port, "bat-x")
      assert.are.equal("bat-x", b.id)
      assert.are.equal("prj-mine", b.project_id)
      assert.are.same({ job = { type = "extract_v2", configuration_id = "cfg-fake" } }, b.config)
      assert.are.equal(null, b.created_at)
      assert.are.same({ 1, 2 }, b.extra)
      assert.are.equal("COMPLETED", b.status)
    end)

    it("omits listed fields", function()
      server:scenario({ batches = { x = { omit = { "created_at", "results" } } } })
      local res = get(server.port, "/api/v2/batches/x")
      assert.falsy(res.body:find("created_at", 1, true))
      assert.falsy(res.body:find("results", 1, true))
    end)

    it("sends results only with expand=results", function()
      server:scenario({ batches = { x = { results = { { source_directory_file_id = "dfl-1",
        job_reference = null, error_message = null } } } } })
      assert.are.equal(null, (batch(server.port, "x")).results)
      assert.are.equal(null, (batch(server.port, "x", "?expand=file_details")).results)
      local b = batch(server.port, "x", "?expand=file_details&expand=results&project_id=p")
      assert.are.equal("dfl-1", b.results[1].source_directory_file_id)
    end)

    it("sends results only from poll results_from on", function()
      server:scenario({ batches = { x = { results_from = 3, results = { { source_directory_file_id = "dfl-1" } } } } })
      assert.are.equal(null, (batch(server.port, "x", "?expand=results")).results)
      assert.are.equal(null, (batch(server.port, "x", "?expand=results")).results)
      assert.are.equal(1, #(batch(server.port, "x", "?expand=results")).results)
    end)

    it("keeps empty arrays and empty objects from a JSON scenario", function()
      server:scenario('{"batches": {"x": {"results": [], "batch": {"meta": {}, "tags": [ ]}}}}')
      local res = get(server.port, "/api/v2/batches/x?expand=results")
      assert.truthy(res.body:find('"results":[]', 1, true))
      assert.truthy(res.body:find('"meta":{}', 1, true))
      assert.truthy(res.body:find('"tags":[]', 1, true))
    end)

    it("gives an empty list for expanded results the scenario does not list", function()
      server:scenario({ batches = { x = {} } })
      local res = get(server.port, "/api/v2/batches/x?expand=results")
      assert.truthy(res.body:find('"results":[]', 1, true))
    end)

    it("sends the same bytes for the same poll", function()
      server:scenario({ batches = { x = { batch = { b = 1, a = 2, c = { z = 1, y = 2 } } } } })
      local r1 = get(server.port, "/api/v2/batches/x").body
      local r2 = get(server.port, "/api/v2/batches/x").body
      assert.are.equal(r1, r2)
    end)

    it("percent-decodes the batch id segment", function()
      server:scenario({ batches = { ["a/b c"] = {} } })
      local b = batch(server.port, "a%2Fb%20c")
      assert.are.equal("a/b c", b.id)
      local rec = server:requests()[1]
      assert.are.equal("/api/v2/batches/a%2Fb%20c", rec.path)
      assert.are.equal("a/b c", rec.batch_id)
    end)
  end)

  describe("steps", function()
    it("advance per poll and the last one repeats", function()
      server:scenario({ batches = { x = { steps = { "PENDING", "RUNNING", "COMPLETED" } } } })
      local seen = {}
      for i = 1, 5 do seen[i] = (batch(server.port, "x")).status end
      assert.are.same({ "PENDING", "RUNNING", "COMPLETED", "COMPLETED", "COMPLETED" }, seen)
    end)

    it("serve status codes and headers, counting them as polls", function()
      server:scenario({ batches = { x = { steps = {
        "RUNNING",
        { status = 429, headers = { ["retry-after"] = "0", ["x-should-retry"] = "true" } },
        { status = 200 },
        { status = 503, body = "upstream down" },
        { batch_status = "THROTTLED" },
      } } } })
      local port = server.port
      assert.are.equal("RUNNING", (batch(port, "x")).status)
      local r429 = get(port, "/api/v2/batches/x")
      assert.are.equal(429, r429.status)
      assert.are.equal("0", r429.headers["retry-after"])
      assert.are.equal("true", r429.headers["x-should-retry"])
      assert.are.same({ detail = "Too Many Requests" }, decode(r429.body))
      assert.are.equal("RUNNING", (batch(port, "x")).status)
      local r503 = get(port, "/api/v2/batches/x")
      assert.are.equal(503, r503.status)
      assert.are.equal("upstream down", r503.body)
      assert.are.equal("THROTTLED", (batch(port, "x")).status)
      local ns = {}
      for i, rec in ipairs(server:requests()) do ns[i] = rec.n end
      assert.are.same({ 1, 2, 3, 4, 5 }, ns)
    end)

    it("use the any template with a counter per id", function()
      server:scenario({ batches = { known = { steps = { "FAILED" } } },
                        any = { steps = { "PENDING", "COMPLETED" } } })
      local port = server.port
      assert.are.equal("PENDING", (batch(port, "bat-1")).status)
      assert.are.equal("PENDING", (batch(port, "bat-2")).status)
      assert.are.equal("COMPLETED", (batch(port, "bat-1")).status)
      assert.are.equal("FAILED", (batch(port, "known")).status)
      assert.are.equal("bat-2", (batch(port, "bat-2")).id)
    end)
  end)

  describe("auth and routing", function()
    it("answers 401 without the scenario's api key", function()
      server:scenario({ api_key = "sk-test", batches = { x = {} } })
      local none = get(server.port, "/api/v2/batches/x")
      assert.are.equal(401, none.status)
      assert.are.same({ detail = "Invalid API key" }, decode(none.body))
      local wrong = get(server.port, "/api/v2/batches/x", { "Authorization: Bearer nope" })
      assert.are.equal(401, wrong.status)
      local right = get(server.port, "/api/v2/batches/x", { "Authorization: Bearer sk-test" })
      assert.are.equal(200, right.status)
    end)

    it("answers 404 for other paths under /api", function()
      server:scenario({ batches = { x = {} } })
      assert.are.equal(404, get(server.port, "/api/v1/batches/x").status)
      assert.are.equal(404, get(server.port, "/api/v2/batches/x/extra").status)
      assert.are.equal(404, get(server.port, "/api/v2/batches/").status)
      assert.are.equal(404, get(server.port, "/elsewhere").status)
    end)
  end)

  describe("faults", function()
    local function with_step(step)
      server:scenario({ batches = { x = { steps = { step } } } })
    end

    it("drop closes without answering", function()
      with_step({ fault = "drop" })
      local data = get_raw(server.port, "/api/v2/batches/x")
      assert.are.equal("", data)
    end)

    it("reset_headers sends a piece of the head and closes", function()
      with_step({ fault = "reset_headers" })
      assert.are.equal("HTTP/1.1 200 OK\r\nContent-Type: app", get_raw(server.port, "/api/v2/batches/x"))
    end)

    it("truncate sends half the body under the full Content-Length", function()
      with_step({ fault = "truncate" })
      local raw = get_raw(server.port, "/api/v2/batches/x")
      local len = tonumber(raw:match("Content%-Length: (%d+)"))
      assert.are.equal(math.floor(len / 2), #body_of(raw))
      assert.truthy(len > 100)
    end)

    -- receive("*a") succeeds on a clean close and fails on a reset
    local function get_reset(path)
      local sock = connect(server.port)
      send_request(sock, path)
      local data, err, partial = sock:receive("*a")
      sock:close()
      return data, err, partial
    end

    it("rst_headers sends a piece of the head and resets", function()
      with_step({ fault = "rst_headers" })
      local data, err, partial = get_reset("/api/v2/batches/x")
      assert.are.same({ nil, "closed" }, { data, err })
      assert.are.equal("HTTP/1.1 200 OK\r\nContent-Type: app", partial)
    end)

    it("rst_body sends half the body and resets", function()
      with_step({ fault = "rst_body" })
      local data, err, partial = get_reset("/api/v2/batches/x")
      assert.are.same({ nil, "closed" }, { data, err })
      local len = tonumber(partial:match("Content%-Length: (%d+)"))
      assert.are.equal(math.floor(len / 2), #body_of(partial))
    end)

    it("malformed sends invalid JSON", function()
      with_step({ fault = "malformed" })
      local res = get(server.port, "/api/v2/batches/x")
      assert.are.equal(200, res.status)
      assert.are.equal('{"id": "x", "status": ', res.body)
      assert.is_false((pcall(cjson.decode, res.body)))
    end)

    it("not_object sends an array", function()
      with_step({ fault = "not_object" })
      assert.are.equal("[1, 2, 3]", get(server.port, "/api/v2/batches/x").body)
    end)

    it("missing_fields sends an object without id and status", function()
      with_step({ fault = "missing_fields" })
      assert.are.same({ detail = "ok" }, decode(get(server.port, "/api/v2/batches/x").body))
    end)

    it("huge pads a valid batch to size bytes", function()
      with_step({ fault = "huge", size = 300000 })
      local res = get(server.port, "/api/v2/batches/x")
      assert.are.equal("300000", res.headers["content-length"])
      assert.are.equal(300000, #res.body)
      local b = decode(res.body)
      -- an object step with no string step before it reports PENDING
      assert.are.same({ "x", "PENDING" }, { b.id, b.status })
    end)

    it("endless streams chunks until the client goes away, without blocking others", function()
      server:scenario({ batches = { x = { steps = { { fault = "endless" } } }, y = {} } })
      local sock = connect(server.port)
      send_request(sock, "/api/v2/batches/x")
      local res = read_response(sock)
      assert.are.equal("chunked", res.headers["transfer-encoding"])
      local got = 0
      while got < 500000 do
        local data, err, partial = sock:receive(65536)
        data = data or partial
        assert(data and #data > 0, err)
        got = got + #data
      end
      assert.are.equal("COMPLETED", (batch(server.port, "y")).status)
      sock:close()
      local deadline = socket.gettime() + 5
      while server:stats().connections_closed_by_client < 1 and socket.gettime() < deadline do
        socket.sleep(0.02)
      end
      -- the other request said Connection: close, so the server closed that one
      assert.are.equal(1, server:stats().connections_closed_by_client)
    end)

    it("endless stops after size bytes", function()
      with_step({ fault = "endless", size = 40000 })
      local raw = get_raw(server.port, "/api/v2/batches/x")
      assert.truthy(#raw >= 40000)
      assert.truthy(#raw < 200000)
      assert.falsy(raw:find("\r\n0\r\n\r\n", 1, true))
    end)

    it("trickle sends the normal body byte by byte", function()
      server:scenario({ batches = { x = { steps = { "RUNNING", { fault = "trickle", interval = 0.001 } } } } })
      batch(server.port, "x")
      local res = get(server.port, "/api/v2/batches/x")
      local b = decode(res.body)
      assert.are.same({ "x", "RUNNING" }, { b.id, b.status })
    end)

    it("many_headers adds count x-fill headers", function()
      with_step({ fault = "many_headers", count = 300 })
      local res = get(server.port, "/api/v2/batches/x")
      assert.are.equal("300", res.headers["x-fill-300"])
      assert.are.equal("1", res.headers["x-fill-1"])
      assert.truthy(res.header_count >= 300)
      assert.are.equal("x", decode(res.body).id)
    end)

    it("length_short announces 10 bytes fewer than it sends", function()
      with_step({ fault = "length_short" })
      local raw = get_raw(server.port, "/api/v2/batches/x")
      local len = tonumber(raw:match("Content%-Length: (%d+)"))
      assert.are.equal(len + 10, #body_of(raw))
      assert.are.equal("x", decode(body_of(raw)).id)
    end)

    it("length_long announces 10 bytes more than it sends", function()
      with_step({ fault = "length_long" })
      local raw = get_raw(server.port, "/api/v2/batches/x")
      local len = tonumber(raw:match("Content%-Length: (%d+)"))
      assert.are.equal(len - 10, #body_of(raw))
    end)

    it("binary sends bytes that are not UTF-8 text", function()
      with_step({ fault = "binary" })
      local res = get(server.port, "/api/v2/batches/x")
      assert.are.equal(200, res.status)
      assert.truthy(res.body:find("\0", 1, true))
      assert.truthy(res.body:find("\255", 1, true))
      assert.is_false((pcall(cjson.decode, res.body)))
    end)

    it("fault bodies follow the step's status code", function()
      with_step({ status = 500, fault = "malformed" })
      local res = get(server.port, "/api/v2/batches/x")
      assert.are.equal(500, res.status)
      assert.are.equal('{"id": "x", "status": ', res.body)
    end)

    it("survive clients that leave at any moment", function()
      server:scenario({ batches = { slow = { steps = { { delay = 0.2 } } }, x = {} } })
      local a = connect(server.port)
      a:send("GET /api/v2/batches/x HTTP/1.1\r\nHost: x")
      a:close()
      local b = connect(server.port)
      send_request(b, "/api/v2/batches/slow")
      b:close()
      local c = connect(server.port)
      c:close()
      socket.sleep(0.3)
      assert.are.equal("COMPLETED", (batch(server.port, "x")).status)
    end)
  end)

  describe("concurrency", function()
    it("a delay does not hold up another connection", function()
      server:scenario({ batches = { slow = { steps = { { delay = 0.5 } } }, fast = {} } })
      local a, b = connect(server.port), connect(server.port)
      send_request(a, "/api/v2/batches/slow")
      send_request(b, "/api/v2/batches/fast")
      local fast = assert(read_response(b))
      assert.are.equal("fast", decode(fast.body).id)
      a:settimeout(0)
      local early, err = a:receive(1)
      assert.are.same({ nil, "timeout" }, { early, err })
      a:settimeout(5)
      local slow = assert(read_response(a))
      assert.are.equal("slow", decode(slow.body).id)
      a:close()
      b:close()
    end)

    it("keeps a connection alive for a second request", function()
      server:scenario({ batches = { x = { steps = { "RUNNING", "COMPLETED" } } } })
      local sock = connect(server.port)
      send_request(sock, "/api/v2/batches/x")
      local r1 = assert(read_response(sock))
      assert.are.equal("keep-alive", r1.headers.connection)
      send_request(sock, "/api/v2/batches/x")
      local r2 = assert(read_response(sock))
      assert.are.same({ "RUNNING", "COMPLETED" }, { decode(r1.body).status, decode(r2.body).status })
      sock:close()
      local recs = server:requests()
      assert.are.equal(recs[1].conn, recs[2].conn)
    end)

    it("closes after a response to Connection: close", function()
      server:scenario({ batches = { x = {} } })
      local sock = connect(server.port)
      send_request(sock, "/api/v2/batches/x", { "Connection: close" })
      local res = assert(read_response(sock))
      assert.are.equal("close", res.headers.connection)
      local data, err = sock:receive(1)
      assert.are.same({ nil, "closed" }, { data, err })
      sock:close()
    end)

    it("serves a few hundred connections at once", function()
      server:scenario({ batches = {}, any = { steps = { "RUNNING" } } })
      local socks = {}
      for i = 1, 200 do socks[i] = connect(server.port) end
      for i = 1, 200 do send_request(socks[i], "/api/v2/batches/b" .. i) end
      for i = 200, 1, -1 do
        local res = assert(read_response(socks[i]))
        assert.are.equal("b" .. i, decode(res.body).id)
      end
      local st = server:stats()
      assert.are.equal(200, st.max_connections_open)
      assert.are.equal(200, st.connections_open)
      for i = 1, 200 do socks[i]:close() end
    end)
  end)

  describe("control endpoints", function()
    it("record every /api request in order", function()
      server:scenario({ batches = { x = {} } })
      local sock = connect(server.port)
      send_request(sock, "/api/v2/batches/x?expand=results&expand=file_details&project_id=p",
        { "Authorization: Bearer k", "X-Dup: a", "X-Dup: b" })
      assert(read_response(sock))
      send_request(sock, "/api/v2/nothing", nil, "DELETE")
      assert(read_response(sock))
      sock:close()
      local recs = server:requests()
      assert.are.equal(2, #recs)
      local r = recs[1]
      assert.are.equal("GET", r.method)
      assert.are.equal("/api/v2/batches/x", r.path)
      assert.are.equal("expand=results&expand=file_details&project_id=p", r.query)
      assert.are.equal("x", r.batch_id)
      assert.are.equal(1, r.n)
      assert.are.equal("Bearer k", r.headers.authorization)
      assert.are.equal("a, b", r.headers["x-dup"])
      assert.are.equal("number", type(r.t))
      assert.are.equal(1, r.conn)
      assert.are.same({ "DELETE", "/api/v2/nothing", "", null, null, 1 },
        { recs[2].method, recs[2].path, recs[2].query, recs[2].batch_id, recs[2].n, recs[2].conn })
    end)

    it("count only connections that made /api requests", function()
      server:scenario({ batches = { x = {} } })
      assert.are.same({ requests_total = 0, connections_total = 0, connections_open = 0,
        max_connections_open = 0, connections_closed_by_client = 0 }, server:stats())
      local sock = connect(server.port)
      send_request(sock, "/api/v2/batches/x")
      assert(read_response(sock))
      send_request(sock, "/api/v2/batches/x")
      assert(read_response(sock))
      batch(server.port, "x")
      local st = server:stats()
      assert.are.same({ 3, 2, 1, 2 }, { st.requests_total, st.connections_total,
        st.connections_open, st.max_connections_open })
      sock:close()
      local deadline = socket.gettime() + 5
      while server:stats().connections_open > 0 and socket.gettime() < deadline do socket.sleep(0.01) end
      st = server:stats()
      assert.are.same({ 0, 1 }, { st.connections_open, st.connections_closed_by_client })
    end)

    it("reset clears requests, counters and stats", function()
      server:scenario({ batches = { x = { steps = { "PENDING", "COMPLETED" } } } })
      batch(server.port, "x")
      server:reset()
      assert.are.same({}, server:requests())
      assert.are.equal(0, server:stats().requests_total)
      assert.are.equal("PENDING", (batch(server.port, "x")).status)
      assert.are.equal("req-1", server:requests()[1].request_id)
    end)

    it("rejects an invalid scenario with 400", function()
      local status, body = server:http("PUT", "/_fake/scenario", "{not json")
      assert.are.equal(400, status)
      assert.truthy(decode(body).detail:find("invalid JSON", 1, true))
      status, body = server:http("PUT", "/_fake/scenario", '{"batches": {"x": {"stepz": []}}}')
      assert.are.equal(400, status)
      assert.truthy(decode(body).detail:find("stepz", 1, true))
    end)
  end)
end)

describe("fake server start-up", function()
  it("loads a .lua scenario file", function()
    local base = os.tmpname()
    local path = base .. ".lua"
    local server
    -- busted keeps one finally per block, so it does all the cleanup
    finally(function()
      if server then server:stop() end
      os.remove(path)
      os.remove(base)
    end)
    local f = assert(io.open(path, "wb"))
    f:write('return { batches = { ["bat-lua"] = { steps = { "THROTTLED" } } } }')
    f:close()
    server = fake.start({ args = { "--scenario", path } })
    assert.are.equal("THROTTLED", (batch(server.port, "bat-lua")).status)
  end)

  it("serves examples/scenario.json", function()
    local server = fake.start({ args = { "--scenario", "examples/scenario.json" } })
    finally(function() server:stop() end)
    local auth = { "Authorization: Bearer llx-fake-example-key" }
    assert.are.equal(401, get(server.port, "/api/v2/batches/bat-happy").status)
    local statuses = {}
    for i = 1, 4 do
      local res = get(server.port, "/api/v2/batches/bat-happy?expand=results", auth)
      local b = decode(res.body)
      statuses[i] = b.status
      if i == 4 then assert.are.equal(3, #b.results) end
    end
    assert.are.same({ "PENDING", "THROTTLED", "RUNNING", "COMPLETED" }, statuses)
    local ext = get(server.port, "/api/v2/batches/bat-extract?expand=results", auth)
    assert.truthy(ext.body:find('"results":[]', 1, true))
    assert.truthy(ext.body:find('"created_at":null', 1, true))
    local codes = {}
    for i = 1, 4 do codes[i] = get(server.port, "/api/v2/batches/bat-rate-limited", auth).status end
    assert.are.same({ 200, 429, 429, 200 }, codes)
    local job = decode(get(server.port, "/api/v2/parse/pjb-0001?expand=markdown", auth).body)
    assert.are.same({ "COMPLETED", 2 }, { job.job.status, #job.markdown.pages })
    local status, created = server:http("POST", "/api/v2/batches", fake.encode({ source_directory_id = "dir-invoices",
      config = { job = { type = "parse_v2", configuration_id = "cfg-invoices" } } }),
      { Authorization = "Bearer llx-fake-example-key" })
    assert.are.equal(200, status)
    assert.truthy(decode(created).id:match("^bat%-"))
  end)

  it("stops on POST /_fake/shutdown", function()
    local server = fake.start()
    local status = server:http("POST", "/_fake/shutdown")
    assert.are.equal(200, status)
    local deadline = socket.gettime() + 5
    local sock
    repeat
      socket.sleep(0.02)
      sock = socket.connect("127.0.0.1", server.port)
      if sock then sock:close() end
    until not sock or socket.gettime() > deadline
    assert.is_nil(sock)
    server:stop()
  end)
end)
