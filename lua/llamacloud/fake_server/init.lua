-- The local fake LlamaCloud: scripted batches, jobs and wire faults over HTTP/1.1, one select loop.
-- require("llamacloud.fake_server") gives main (the `llamacloud fake-server` command), the JSON
-- encoder the specs share, the usage text and the built-in scenario. The parts:
--   json.lua      JSON with [] and {} kept apart
--   scenario.lua  the scenario format (validation, the demo scenario)
--   model.lua     the state: poll counters, created batches, jobs, cancellations, listing
--   routes.lua    the /api and /_fake endpoints, each request as a plan
--   http.lua      the select loop, connections, faults on the wire, outgoing requests
--   webhooks.lua  deliveries of a created batch's events
local socket = require("socket")
local json = require("llamacloud.fake_server.json")
local scenario = require("llamacloud.fake_server.scenario")
local model = require("llamacloud.fake_server.model")
local http = require("llamacloud.fake_server.http")
local routes = require("llamacloud.fake_server.routes")
local webhooks = require("llamacloud.fake_server.webhooks")

local M = {}

local find, match, sub = string.find, string.match, string.sub
local num_str = json.num_str

local DEFAULT_LOG_LIMIT = 10000

M.USAGE = [[
Usage: llamacloud fake-server [--port N] [--host H] [--scenario FILE] [--log-limit N]

Serve a scripted fake LlamaCloud batch API on a loopback address, for offline
tests and demos: GET, create, list and cancel batches (/api/v2/batches), the
parse and extract jobs (/api/v2/parse/{id}, /api/v2/extract/{id}), and webhook
deliveries to loopback URLs.

Options:
  --port N         TCP port (default 0: pick a free one)
  --host H         loopback address to bind (default 127.0.0.1)
  --scenario FILE  a JSON file, or a .lua file returning a table
                   (default: the built-in demo scenario)
  --log-limit N    keep the last N requests for GET /_fake/requests
                   (default 10000; the stats count every request)
  -h, --help       show this help

Once ready it prints one line, "fake-server listening on http://HOST:PORT",
then serves until killed or until POST /_fake/shutdown.

Built-in batches: bat-demo (PENDING, RUNNING, COMPLETED), bat-done,
bat-failed, bat-cancelled; any other id is a 404. POST /api/v2/batches with
source_directory_id dir-demo creates a batch of four files.
Control endpoints: GET /_fake/requests, GET /_fake/deliveries, GET /_fake/stats,
POST /_fake/reset, PUT /_fake/scenario, GET /_fake/scenario,
POST /_fake/shutdown.
Scenario format and faults: docs/fake-server.md.
]]

M.DEFAULT_SCENARIO = scenario.DEFAULT_SCENARIO
-- Scenarios and bodies as the server writes them: sorted keys, [] kept apart from {}, null kept.
M.encode = json.encode

local is_loopback = routes.is_loopback

-- Clears the recorded requests and deliveries, the counters, the created batches and the stats.
local function reset(srv)
  srv.records, srv.nrec, srv.log_first = {}, 0, 1
  srv.deliveries, srv.ndeliveries = {}, 0
  srv.state = model.new(srv.scenario, webhooks.on_event(srv))
  local st = srv.stats
  st.requests_total, st.connections_total, st.connections_open = 0, 0, 0
  st.max_connections_open, st.connections_closed_by_client = 0, 0
  http.uncount_conns(srv)
end

-- A server around a bound, non-blocking listening socket (main runs it with http.run).
function M.new_server(server, sc, src, log_limit)
  local srv = http.new(server, routes.handle)
  srv.scenario, srv.scenario_src = sc, src
  srv.log_limit = log_limit or DEFAULT_LOG_LIMIT
  srv.reset = reset
  srv.created = function(b) webhooks.created(srv, b) end
  reset(srv)
  return srv
end

-- One line naming the flag, exit 2: the command line's usage errors (README, exit codes).
local function usage_error(msg)
  io.stderr:write("fake-server: ", msg, " (try 'llamacloud fake-server --help')\n")
  return 2
end

function M.main(argv)
  argv = argv or {}
  local port, host, scenario_path, log_limit = 0, "127.0.0.1", nil, DEFAULT_LOG_LIMIT
  local i = 1
  while argv[i] ~= nil do
    local a = tostring(argv[i])
    local name, inline = match(a, "^(%-%-[%w-]+)=(.*)$")
    name = name or a
    -- The flag's value, or nil: a flag never takes the next flag as its value (write --flag=-x).
    local function value()
      if inline then return inline end
      local nxt = argv[i + 1]
      if nxt == nil or (sub(tostring(nxt), 1, 1) == "-" and nxt ~= "-") then return nil end
      i = i + 1
      return tostring(nxt)
    end
    local known = name == "--port" or name == "--host" or name == "--log-limit" or name == "--scenario"
    local v = known and value()
    if known and v == nil then
      local nxt = argv[i + 1]
      return usage_error(name .. " needs a value" .. (nxt and (" (got the option '" .. tostring(nxt)
        .. "'; write " .. name .. "=VALUE for a value starting with '-')") or ""))
    end
    if a == "-h" or a == "--help" then
      -- a failed write or flush says why; a stand-in stdout (fake_server_spec) may return nothing
      local ok, err = io.stdout:write(M.USAGE)
      if ok or not err then ok, err = io.stdout:flush() end
      if not ok and err then
        io.stderr:write("fake-server: cannot write to standard output: ", tostring(err), "\n")
        return 3
      end
      return 0
    elseif name == "--port" then
      local n = match(v, "^%d+$") and tonumber(v)
      if not n or n > 65535 then
        return usage_error("--port wants a number from 0 to 65535 (got '" .. v .. "')")
      end
      port = n
    elseif name == "--host" then
      if not is_loopback(v) then
        return usage_error("--host must be a loopback address (127.0.0.1, localhost, ::1) (got '" .. v .. "')")
      end
      host = v
    elseif name == "--log-limit" then
      local n = match(v, "^%d+$") and tonumber(v)
      if not n or n < 1 then
        return usage_error("--log-limit wants a whole number >= 1 (got '" .. v .. "')")
      end
      log_limit = n
    elseif name == "--scenario" then
      if v == "" then return usage_error("--scenario wants a file") end
      scenario_path = v
    else
      return usage_error("unknown argument '" .. a .. "'")
    end
    i = i + 1
  end

  local sc, src
  if scenario_path then
    sc, src = scenario.load_file(scenario_path)
    if not sc then return usage_error("bad scenario: " .. tostring(src)) end
  else
    src = M.DEFAULT_SCENARIO
    sc = scenario.compile(src)
  end

  local bind_host = host
  if host == "localhost" then bind_host = "127.0.0.1" end
  if host == "[::1]" then bind_host = "::1" end
  local server, err = socket.bind(bind_host, port, 1024)
  if not server then
    -- 3 as for a network error: the command line keeps 1 for FAILED and CANCELLED.
    io.stderr:write("fake-server: cannot listen on ", host, ":", num_str(port), ": ",
      tostring(err), "\n")
    return 3
  end
  server:settimeout(0)
  local ip, bound = server:getsockname()
  if find(ip, ":", 1, true) then ip = "[" .. ip .. "]" end

  local srv = M.new_server(server, sc, src, log_limit)
  io.stdout:write("fake-server listening on http://", ip, ":", num_str(tonumber(bound)), "\n")
  io.stdout:flush()
  http.run(srv)
  return 0
end

return M
