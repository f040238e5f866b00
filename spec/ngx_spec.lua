-- The OpenResty host in a real nginx (Debian's ndk and http-lua modules, worker_processes 1) running
-- spec/ngx/nginx.conf against the fake server. Needs nginx and build/jit (make LUA_VERSION=jit).
local socket = require("socket")
local fake = require("spec.support.fake")
local nginx_host = require("spec.support.nginx")
local util = require("spec.support.util")

local DELAY = 1 -- seconds the fake server holds bat-slow
local CONCURRENT = 20
local STALL = 2

local ROOT = util.root()
local quote, read_file, alive = util.quote, util.read_file, util.alive

local SCENARIO = {
  directories = {
    ["dir-ngx"] = { files = {
      { id = "dfl-1", job = { steps = { { job_status = "RUNNING", delay = 0.3 }, { job_status = "COMPLETED", delay = 0.3 } },
                              pages = { "# One" } } },
      { id = "dfl-2", job = { steps = { "RUNNING", "FAILED" } } },
      { id = "dfl-3", mapping_error = "unsupported file type" },
    } },
  },
  created = { steps = { "PENDING", "RUNNING", "COMPLETED" } },
  batches = {
    ["bat-slow"] = { steps = { { batch_status = "COMPLETED", delay = DELAY } } },
    ["bat-done"] = { steps = { "COMPLETED" } },
    ["bat-run"] = { steps = { "PENDING", "RUNNING", "COMPLETED" } },
    ["bat-timer"] = { steps = { "PENDING", "RUNNING", "COMPLETED" } },
    ["bat-failed"] = { steps = { "FAILED" } },
    -- a server that never answers (within any spec)
    ["bat-hang"] = { steps = { { batch_status = "RUNNING", delay = 3600 } } },
    ["bat-default"] = { steps = { "PENDING", "COMPLETED" } },
    -- answers after STALL: past the specs' one-second look at a light thread that died
    ["bat-stall"] = { steps = { { batch_status = "RUNNING", delay = STALL } } },
  },
}

-- spec/support/nginx.lua's start, with @URL@ (the fake server) filled in too.
local function start_nginx(template, url, env)
  return nginx_host.start((template:gsub("@URL@", url)), ROOT, env)
end

-- Sends a GET on a new connection; the response is read by receive(sock).
local function send(port, path)
  local sock = socket.tcp()
  sock:settimeout(30)
  assert(sock:connect("127.0.0.1", port))
  assert(sock:send("GET " .. path .. " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n"))
  return sock
end

local function receive(sock)
  local data, err, partial = sock:receive("*a")
  sock:close()
  data = data or partial
  local status = tonumber(data and data:match("^HTTP/%d%.%d (%d+)"))
  local body = data and data:match("\r\n\r\n(.*)$")
  return status, body and body:gsub("\n$", ""), err
end

local function get(port, path)
  return receive(send(port, path))
end

-- Seconds of CPU (user + system) process pid has used, from /proc/<pid>/stat.
local TICKS = tonumber((select(2, util.sh("getconf CLK_TCK")):match("%d+"))) or 100
local function cpu_seconds(pid)
  local stat = assert(read_file("/proc/" .. pid .. "/stat"))
  local fields = {}
  for f in stat:match("%) (.*)$"):gmatch("%S+") do fields[#fields + 1] = f end
  -- after the command: state is field 3 of stat, utime 14 and stime 15
  return (tonumber(fields[12]) + tonumber(fields[13])) / TICKS
end

describe("ngx host", function()
  local server, nginx

  setup(function()
    nginx_host.check_prerequisites(ROOT)
    server = fake.start({ scenario = SCENARIO })
    nginx = start_nginx(assert(read_file(ROOT .. "/spec/ngx/nginx.conf")), server.url)
  end)

  teardown(function()
    if nginx then nginx_host.stop(nginx) end
    if server then server:stop() end
  end)

  -- The worker's error log, for failure messages.
  local function log()
    return "\nerror.log:\n" .. (read_file(nginx.dir .. "/error.log") or "")
  end

  -- How many requests for id the fake server has seen since its last reset.
  local function arrived(id)
    local n = 0
    for _, r in ipairs(server:requests()) do
      if r.batch_id == id then n = n + 1 end
    end
    return n
  end

  -- A value the phase handlers store; log runs once the response is out, so it may lag a little.
  local function result(key)
    local status, body
    for _ = 1, 100 do
      status, body = get(nginx.port, "/results?key=" .. key)
      if body ~= "" then break end
      socket.sleep(0.01)
    end
    assert.are.equal(200, status)
    return body
  end

  it("serves a plain location on the same worker while 20 gets wait on a delayed server", function()
    server:reset()
    local started = socket.gettime()
    local socks = {}
    for i = 1, CONCURRENT do socks[i] = send(nginx.port, "/get?id=bat-slow") end
    -- Every get has reached the fake server, which holds each for DELAY.
    for _ = 1, 500 do
      if arrived("bat-slow") >= CONCURRENT then break end
      socket.sleep(0.01)
    end
    -- at least: libcurl may silently resend a request whose reused connection had just closed
    assert.is_true(arrived("bat-slow") >= CONCURRENT, "only " .. arrived("bat-slow") .. " arrived")
    local t0 = socket.gettime()
    local status, body = get(nginx.port, "/plain")
    local plain = socket.gettime() - t0
    assert.are.same({ 200, "plain" }, { status, body })
    assert.is_true(plain < 0.1 * DELAY, "plain took " .. plain .. " s" .. log())
    for i = 1, CONCURRENT do
      assert.are.same({ 200, "bat-slow COMPLETED" }, { receive(socks[i]) })
    end
    -- They ran at once: in series they would take CONCURRENT * DELAY.
    assert.is_true(socket.gettime() - started < 2 * DELAY)
  end)

  it("answers a get with the batch or the error's name", function()
    assert.are.same({ 200, "bat-done COMPLETED" }, { get(nginx.port, "/get?id=bat-done") })
    assert.are.same({ 200, "error NotFoundError" }, { get(nginx.port, "/get?id=bat-missing") })
  end)

  it("completes a wait, sleeping through ngx.sleep while the worker serves others", function()
    server:reset()
    local interval = 0.5
    local sock = send(nginx.port, "/wait?id=bat-run&interval=" .. interval)
    for _ = 1, 500 do
      if arrived("bat-run") >= 1 then break end
      socket.sleep(0.01)
    end
    local t0 = socket.gettime()
    assert.are.same({ 200, "plain" }, { get(nginx.port, "/plain") })
    assert.is_true(socket.gettime() - t0 < 0.1 * interval, log())
    assert.are.same({ 200, "bat-run COMPLETED 3" }, { receive(sock) })
  end)

  it("runs get_many and wait_many in a content handler", function()
    server:reset()
    assert.are.same({ 200, "3 COMPLETED NotFoundError COMPLETED COMPLETED PollingError" },
      { get(nginx.port, "/many") })
  end)

  it("runs in rewrite and access handlers", function()
    assert.are.same({ 200, "COMPLETED" }, { get(nginx.port, "/rewrite") })
    assert.are.same({ 200, "COMPLETED" }, { get(nginx.port, "/access") })
  end)

  it("runs in an ngx.timer", function()
    assert.are.equal("COMPLETED", result("timer"))
  end)

  it("blocks in init, before there are workers", function()
    assert.are.equal("COMPLETED", result("init"))
  end)

  local function refusal(call, phase)
    return "false llamacloud: batches." .. call .. " cannot run in nginx's '" .. phase .. "' phase, which "
      .. "cannot yield; run it from a timer: ngx.timer.at(0, function() ... end)"
  end

  it("raises in init_worker, naming the phase", function()
    assert.are.equal(refusal("get", "init_worker"), result("init_worker"))
  end)

  it("raises in set, naming the phase", function()
    assert.are.same({ 200, refusal("get", "set") }, { get(nginx.port, "/set") })
  end)

  it("raises in header and body filters and in log, naming the phase", function()
    assert.are.same({ 200, "body" }, { get(nginx.port, "/filters") })
    assert.are.equal(refusal("wait", "header_filter"), result("header_filter"))
    assert.are.equal(refusal("get_many", "body_filter"), result("body_filter"))
    assert.are.equal(refusal("wait_many", "log"), result("log"))
  end)

  it("serves a batch from examples/nginx.conf", function()
    server:reset()
    -- The example as shipped, moved to a temporary prefix and port.
    local conf = assert(read_file(ROOT .. "/examples/nginx.conf"))
    conf = conf:gsub("daemon off;", "@USER@")
      :gsub("/tmp/llamacloud%-example%-nginx", "@DIR@/tmp/example")
      :gsub("error_log /dev/stderr", "error_log error.log")
      :gsub("127%.0%.0%.1:8081", "127.0.0.1:@PORT@")
      :gsub("%$prefix", "@ROOT@")
    local env = "LLAMA_CLOUD_API_KEY=example-key LLAMA_CLOUD_BASE_URL=" .. quote(server.url)
    local example = start_nginx(conf, server.url, env)
    finally(function() nginx_host.stop(example) end)
    local status, body = get(example.port, "/batches/bat-done?wait=1")
    assert.are.equal(200, status)
    assert.truthy(body:match('"status":"COMPLETED"'), body)
    assert.truthy(body:match('"id":"bat%-done"'), body)
    assert.are.same({ 404 }, { (get(example.port, "/batches/bat-missing")) })
  end)

  it("sleeps between wait_many's polls at the default interval: the worker idles and serves others", function()
    server:reset()
    local _, pid = get(nginx.port, "/pid")
    local sock = send(nginx.port, "/wait_many_default?id=bat-default")
    for _ = 1, 500 do
      if arrived("bat-default") >= 1 then break end
      socket.sleep(0.01)
    end
    assert.are.equal(1, arrived("bat-default"))
    -- The second poll is due 1 s after the first: probe a plain location meanwhile.
    local cpu0, t0, slowest = cpu_seconds(pid), socket.gettime(), 0
    for _ = 1, 5 do
      local p0 = socket.gettime()
      assert.are.same({ 200, "plain" }, { get(nginx.port, "/plain") })
      slowest = math.max(slowest, socket.gettime() - p0)
      socket.sleep(0.1)
    end
    local used, wall = cpu_seconds(pid) - cpu0, socket.gettime() - t0
    assert.are.same({ 200, "COMPLETED" }, { receive(sock) })
    assert.is_true(slowest < 0.1, "a plain location took " .. slowest .. " s" .. log())
    -- near idle: a spinning worker uses about all of it
    assert.is_true(used < 0.25 * wall, "the worker used " .. used .. " s of CPU in " .. wall .. " s")
  end)

  it("lets go of each call whose light thread dies: no timer after a second, its transfers closed", function()
    server:reset()
    local closed = server:stats().connections_closed_by_client
    -- Each call runs in a light thread that is killed, then in one that ngx.exit ends.
    for _, call in ipairs({ "get", "wait", "get_many", "wait_many" }) do
      assert.are.same({ 200, "kill true" }, { get(nginx.port, "/abandon?how=kill&call=" .. call) })
      assert.are.same({ 200, "exit" }, { get(nginx.port, "/abandon?how=exit&call=" .. call) })
      local timers
      for _ = 1, 100 do
        timers = select(2, get(nginx.port, "/timers"))
        if timers == "0 0" then break end
        socket.sleep(0.01)
      end
      assert.are.equal("0 0", timers, call .. ": timers running and pending" .. log())
    end
    -- Every transfer to bat-stall was aborted: the server sees each close when it answers, after
    -- STALL (one connection per get and wait, two per get_many and wait_many, twice each).
    local st = server:stats_when(function(x) return x.connections_closed_by_client >= closed + 12 end, 500)
    assert.are.equal(12, st.connections_closed_by_client - closed)
  end)

  it("lets the worker exit within 2 s of nginx -s quit while get_many waits on a server that never answers", function()
    server:reset()
    local other = start_nginx(assert(read_file(ROOT .. "/spec/ngx/nginx.conf")), server.url)
    finally(function() nginx_host.stop(other) end)
    local _, pid = get(other.port, "/pid")
    local sock = send(other.port, "/hang_many")
    for _ = 1, 500 do
      if arrived("bat-hang") >= 2 then break end
      socket.sleep(0.01)
    end
    assert.are.equal(2, arrived("bat-hang"))
    local t0 = socket.gettime()
    os.execute("kill -QUIT " .. other.pid)
    -- a generous poll loop; the bound is asserted after it
    while alive(pid) and socket.gettime() - t0 < 10 do socket.sleep(0.01) end
    local took = socket.gettime() - t0
    assert.is_true(took < 2, "the worker took " .. took .. " s to exit")
    -- the handler answered before the worker left: its transfers ended cancelled
    assert.are.same({ 200, "APIConnectionError" }, { receive(sock) })
  end)

  it("runs the batch workflow in a content handler without blocking the worker", function()
    server:reset()
    local sock = send(nginx.port, "/workflow")
    socket.sleep(0.2)
    -- the jobs answer after 0.3 s each: the workflow is still waiting while a plain location answers
    local status, body = get(nginx.port, "/plain")
    assert.are.same({ 200, "plain" }, { status, body })
    sock:settimeout(0)
    local data, err = sock:receive(1)
    assert.is_nil(data)
    assert.are.equal("timeout", err)
    sock:settimeout(30)
    status, body = receive(sock)
    assert.are.equal(200, status, log())
    -- each lists the scenario's 8 batches and the new one, in pages of 3
    assert.are.equal("bat-new-000001 2+true 9 1/1/1/nil COMPLETED:1 bat-run", body, log())
  end)

  it("refuses the new calls in a phase that cannot yield, naming it", function()
    get(nginx.port, "/filters")
    assert.truthy(result("log_files"):match("^false .*batches%.wait_files cannot run in nginx's 'log' phase"))
    assert.truthy(result("log_create"):match("^false .*batches%.create cannot run in nginx's 'log' phase"))
  end)

  it("logs no error of its own in the worker", function()
    local text = read_file(nginx.dir .. "/error.log") or ""
    assert.is_nil(text:match("%[error%]") or text:match("%[alert%]") or text:match("%[crit%]"), text)
  end)
end)
