-- Latency and CPU of the OpenResty host against plain Lua, over the fake server on loopback.
-- From the repository root, after `make LUA_VERSION=jit`:
--   LUA_PATH='lua/?.lua;lua/?/init.lua;./?.lua;;' LUA_CPATH='build/jit/?.so;;' luajit bench/hosts_ngx.lua [N]
-- Prints: plain Lua blocking get (wall and CPU per get); nginx /get vs /plain (client-seen latency,
-- worker CPU per request, the difference being the library's share), one at a time and 20 at once; a
-- plain location's latency while 20 gets wait DELAY (env, default 1) seconds on the server, and the
-- worker CPU those waits cost. N (default 2000) requests per figure.
local socket = require("socket")
local fake = require("spec.support.fake")
local llamacloud = require("llamacloud")

local N = tonumber(arg[1]) or 2000
local CONCURRENT, DELAY = 20, tonumber(os.getenv("DELAY") or 1)
local ROOT = (os.getenv("PWD") or "."):gsub("/$", "")

local server = fake.start({ scenario = { batches = {
  ["bat-done"] = { steps = { "COMPLETED" } },
  ["bat-slow"] = { steps = { { batch_status = "COMPLETED", delay = DELAY } } },
} } })

-- CPU seconds a process has used: schedstat's nanoseconds, else stat's clock ticks.
local function cpu_of(pid)
  local f = io.open("/proc/" .. pid .. "/schedstat")
  local ns = f and tonumber(f:read("*l"):match("^(%d+)"))
  if f then f:close() end
  if ns then return ns / 1e9 end
  f = assert(io.open("/proc/" .. pid .. "/stat"))
  local stat = f:read("*l")
  f:close()
  local fields = {}
  for v in stat:match("%) (.*)$"):gmatch("%S+") do fields[#fields + 1] = v end
  -- utime and stime are fields 14 and 15 of stat, 12 and 13 after the command name
  return (tonumber(fields[12]) + tonumber(fields[13])) / 100
end

local function percentile(list, p)
  table.sort(list)
  return list[math.max(1, math.ceil(#list * p))]
end

local function ms(s) return string.format("%.3f ms", s * 1000) end

-- 1. plain Lua, blocking
local client = llamacloud.new({ api_key = "bench", base_url = server.url })
assert(client.batches.get("bat-done"))
local lat = {}
local c0, w0 = os.clock(), socket.gettime()
for i = 1, N do
  local t = socket.gettime()
  assert(client.batches.get("bat-done"))
  lat[i] = socket.gettime() - t
end
local plain_cpu, plain_wall = (os.clock() - c0) / N, (socket.gettime() - w0) / N
print(string.format("plain LuaJIT get: %s wall per get (p50 %s, p99 %s), %s CPU per get",
  ms(plain_wall), ms(percentile(lat, 0.5)), ms(percentile(lat, 0.99)), ms(plain_cpu)))

-- 2. nginx
local dir = io.popen("mktemp -d"):read("*l")
os.execute("mkdir -p " .. dir .. "/tmp")
local port
do
  local s = assert(socket.bind("127.0.0.1", 0))
  port = select(2, s:getsockname())
  s:close()
end
local conf = [[
load_module /usr/lib/nginx/modules/ndk_http_module.so;
load_module /usr/lib/nginx/modules/ngx_http_lua_module.so;
user root;
worker_processes 1;
error_log error.log warn;
pid nginx.pid;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path tmp; proxy_temp_path tmp; fastcgi_temp_path tmp; uwsgi_temp_path tmp; scgi_temp_path tmp;
  keepalive_requests 1000000;
  lua_package_path "@ROOT@/lua/?.lua;@ROOT@/lua/?/init.lua;;";
  lua_package_cpath "@ROOT@/build/jit/?.so;;";
  init_by_lua_block { CLIENT = require("llamacloud").new({ api_key = "bench", base_url = "@URL@" }) }
  server {
    listen 127.0.0.1:@PORT@;
    location = /pid { content_by_lua_block { ngx.say(ngx.worker.pid()) } }
    location = /plain { content_by_lua_block { ngx.say("plain") } }
    location = /get { content_by_lua_block {
      local b, e = CLIENT.batches.get(ngx.var.arg_id)
      ngx.say(b and b.status or tostring(e))
    } }
  }
}
]]
conf = conf:gsub("@ROOT@", ROOT):gsub("@URL@", server.url):gsub("@PORT@", tostring(port))
local f = assert(io.open(dir .. "/nginx.conf", "w"))
f:write(conf)
f:close()
local master = io.popen("nginx -p " .. dir .. "/ -c nginx.conf -e " .. dir .. "/error.log -g 'daemon off;' "
  .. ">/dev/null 2>&1 </dev/null & echo $!"):read("*l")

local function cleanup()
  os.execute("kill -TERM " .. master .. " 2>/dev/null")
  socket.sleep(0.3)
  os.execute("rm -rf " .. dir)
  server:stop()
end

local ok, err = pcall(function()

local function connect()
  for _ = 1, 500 do
    local s = socket.tcp()
    s:settimeout(30)
    if s:connect("127.0.0.1", port) then return s end
    s:close()
    socket.sleep(0.01)
  end
  error("nginx did not start")
end

-- One keep-alive request; returns the body.
local function request(s, path)
  assert(s:send("GET " .. path .. " HTTP/1.1\r\nHost: b\r\n\r\n"))
  local len
  while true do
    local line = assert(s:receive("*l"))
    if line == "" then break end
    len = tonumber(line:match("^[Cc]ontent%-[Ll]ength: (%d+)")) or len
  end
  if len then return s:receive(len) end
  -- chunked: one chunk and the terminator
  local size = tonumber(assert(s:receive("*l")), 16)
  local body = s:receive(size)
  s:receive("*l"); s:receive("*l"); s:receive("*l")
  return body
end

local conn = connect()
local worker = tonumber(request(conn, "/pid"))

local function run(path)
  for _ = 1, 50 do request(conn, path) end -- warm up
  local l = {}
  local cpu0, t0 = cpu_of(worker), socket.gettime()
  for i = 1, N do
    local t = socket.gettime()
    request(conn, path)
    l[i] = socket.gettime() - t
  end
  return (cpu_of(worker) - cpu0) / N, (socket.gettime() - t0) / N, percentile(l, 0.5), percentile(l, 0.99)
end

local pc, pw, p50, p99 = run("/plain")
print(string.format("nginx /plain: %s per request (p50 %s, p99 %s), worker CPU %s per request",
  ms(pw), ms(p50), ms(p99), ms(pc)))
local gc, gw, g50, g99 = run("/get?id=bat-done")
print(string.format("nginx /get: %s per request (p50 %s, p99 %s), worker CPU %s per request",
  ms(gw), ms(g50), ms(g99), ms(gc)))
print(string.format("  library share in nginx: %s CPU per get (plain Lua: %s), %s added latency per get (plain Lua: %s)",
  ms(gc - pc), ms(plain_cpu), ms(gw - pw), ms(plain_wall)))

-- 2b. the same gets, CONCURRENT at a time: the poller's wake-ups are shared
do
  local conns = {}
  for i = 1, CONCURRENT do conns[i] = connect() end
  local rounds = math.floor(N / CONCURRENT)
  local cpu0, t0 = cpu_of(worker), socket.gettime()
  for _ = 1, rounds do
    for i = 1, CONCURRENT do assert(conns[i]:send("GET /get?id=bat-done HTTP/1.1\r\nHost: b\r\n\r\n")) end
    for i = 1, CONCURRENT do
      local len
      while true do
        local line = assert(conns[i]:receive("*l"))
        if line == "" then break end
        len = tonumber(line:match("^[Cc]ontent%-[Ll]ength: (%d+)")) or len
      end
      if len then conns[i]:receive(len) else
        local size = tonumber(assert(conns[i]:receive("*l")), 16)
        conns[i]:receive(size); conns[i]:receive("*l"); conns[i]:receive("*l"); conns[i]:receive("*l")
      end
    end
  end
  local n = rounds * CONCURRENT
  local cc = (cpu_of(worker) - cpu0) / n
  print(string.format("nginx /get, %d at a time: %s wall per round, worker CPU %s per request (%s above /plain)",
    CONCURRENT, ms((socket.gettime() - t0) / rounds), ms(cc), ms(cc - pc)))
  for i = 1, CONCURRENT do conns[i]:close() end
end

-- 3. a plain location while CONCURRENT gets wait DELAY on the server; then the worker's CPU
-- while they wait with no other traffic
local function start_slow()
  local socks = {}
  for i = 1, CONCURRENT do
    local s = connect()
    assert(s:send("GET /get?id=bat-slow HTTP/1.0\r\nHost: b\r\n\r\n"))
    socks[i] = s
  end
  socket.sleep(0.1)
  return socks
end

local function finish_slow(socks)
  for i = 1, CONCURRENT do
    local body = socks[i]:receive("*a")
    assert(body:match("COMPLETED"), body)
    socks[i]:close()
  end
end

local socks = start_slow()
local probes, started = {}, socket.gettime()
while socket.gettime() - started < DELAY * 0.8 do
  local t = socket.gettime()
  request(conn, "/plain")
  probes[#probes + 1] = socket.gettime() - t
  socket.sleep(0.01)
end
finish_slow(socks)
print(string.format("nginx /plain during %d gets delayed %g s: p50 %s, p99 %s, max %s over %d probes",
  CONCURRENT, DELAY, ms(percentile(probes, 0.5)), ms(percentile(probes, 0.99)), ms(percentile(probes, 1)), #probes))

socks = start_slow()
local cpu0, t0 = cpu_of(worker), socket.gettime()
socket.sleep(DELAY * 0.8)
local idle = (cpu_of(worker) - cpu0) / (socket.gettime() - t0)
finish_slow(socks)
print(string.format("  worker CPU while %d gets wait on the server: %s per second in all", CONCURRENT, ms(idle)))

conn:close()
end)
cleanup()
if not ok then error(err, 0) end
