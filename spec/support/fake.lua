-- Runs the fake LlamaCloud server in a child process for specs, drives its control endpoints and builds
-- clients of it.
local socket = require("socket")
local cjson = require("cjson").new()
local util = require("spec.support.util")

local M = {}

M.null = cjson.null

local START_TIMEOUT = 10
local STOP_TIMEOUT = 3

-- The server's own encoder: sorted keys, cjson.null is null, an empty table is [].
M.encode = require("llamacloud.fake_server").encode

-- The interpreter running busted, so the server runs under the same Lua.
function M.interpreter()
  local p = io.popen("readlink -f /proc/" .. util.PID .. "/exe 2>/dev/null")
  local exe = p:read("*l")
  p:close()
  -- under valgrind the executable is its tool: fall back to the name the interpreter was run as
  if exe and exe ~= "" and not exe:find("valgrind", 1, true) then return exe end
  local i, best = -1, nil
  while arg and arg[i] do best = arg[i]; i = i - 1 end
  return best or "lua"
end

local function repo_root()
  local src = debug.getinfo(1, "S").source
  return src:match("^@(.-)spec/support/fake%.lua$") or ""
end

-- One request on a fresh connection: status, body, headers (lower-case names).
local function http(port, method, path, body, headers)
  body = body or ""
  local sock = socket.tcp()
  sock:settimeout(10)
  local ok, err = sock:connect("127.0.0.1", port)
  if not ok then return nil, "connect: " .. tostring(err) end
  local lines = { method .. " " .. path .. " HTTP/1.1", "Host: 127.0.0.1",
                  "Connection: close", "Content-Length: " .. #body }
  for name, value in pairs(headers or {}) do lines[#lines + 1] = name .. ": " .. value end
  sock:send(table.concat(lines, "\r\n") .. "\r\n\r\n" .. body)
  local data, rerr, partial = sock:receive("*a")
  sock:close()
  data = data or partial
  if not data or data == "" then return nil, "no response: " .. tostring(rerr) end
  local head, rest = data:match("^(.-)\r\n\r\n(.*)$")
  if not head then return nil, "bad response: " .. data:sub(1, 200) end
  local status = tonumber(head:match("^HTTP/%d%.%d (%d%d%d)"))
  local hdrs = {}
  for name, value in head:gmatch("\n([^:\r\n]+):%s*([^\r\n]*)") do hdrs[name:lower()] = value end
  return status, rest, hdrs
end

local Server = {}
Server.__index = Server

function Server:http(method, path, body, headers)
  return http(self.port, method, path, body, headers)
end

local function control(self, method, path, body)
  local status, resp = http(self.port, method, path, body)
  if status ~= 200 then
    error(string.format("fake server %s %s: %s %s", method, path, tostring(status),
      tostring(resp)), 3)
  end
  return cjson.decode(resp)
end

-- tbl: a scenario table, or a string sent as the raw JSON body.
function Server:scenario(tbl)
  local body = type(tbl) == "string" and tbl or M.encode(tbl)
  return control(self, "PUT", "/_fake/scenario", body)
end

-- query: an optional "id=…&since=…&limit=…" filter.
function Server:requests(query)
  return control(self, "GET", "/_fake/requests" .. (query and ("?" .. query) or ""))
end
-- The webhook deliveries the server attempted (same filter as requests).
function Server:deliveries(query)
  return control(self, "GET", "/_fake/deliveries" .. (query and ("?" .. query) or ""))
end
function Server:stats() return control(self, "GET", "/_fake/stats") end
function Server:reset() return control(self, "POST", "/_fake/reset") end

-- The stats once cond(stats) holds, or the last ones read when `tries` reads 10 ms apart did not get
-- there (no time is asserted: the caller asserts on what comes back).
function Server:stats_when(cond, tries)
  local st
  for _ = 1, tries do
    st = self:stats()
    if cond(st) then break end
    socket.sleep(0.01)
  end
  return st
end

-- Options for a llamacloud client of this server: its base_url, then each table given (a later one wins).
function Server:options(...)
  return util.merge({ base_url = self.url }, ...)
end

-- A llamacloud client built from self:options(...).
function Server:client(...)
  return require("llamacloud").new(self:options(...))
end

-- A client as self:client(...), closed by `finally` when the it ends (busted hands finally to spec
-- files only, so the spec passes its own).
function Server:client_closed_by(finally, ...)
  local c = self:client(...)
  finally(function() c.close() end)
  return c
end

-- How many connections the server has seen a client close, once that is at least one or `tries` reads
-- 10 ms apart did not get there (no time is asserted).
function Server:closed_by_client(tries)
  return self:stats_when(function(st) return st.connections_closed_by_client > 0 end, tries)
    .connections_closed_by_client
end

-- Stops the server, first closing the clients given (a describe's teardown passes what its setup built).
function Server:stop(...)
  for i = 1, select("#", ...) do
    local c = select(i, ...)
    if c then c.close() end
  end
  if self.stopped then return end
  self.stopped = true
  http(self.port, "POST", "/_fake/shutdown")
  local deadline = socket.gettime() + STOP_TIMEOUT
  while util.alive(self.pid) and socket.gettime() < deadline do socket.sleep(0.02) end
  if util.alive(self.pid) then
    os.execute("kill " .. self.pid .. " 2>/dev/null")
    socket.sleep(0.2)
    if util.alive(self.pid) then os.execute("kill -9 " .. self.pid .. " 2>/dev/null") end
  end
  os.remove(self.log)
end

-- client.batches.get(id, opts) under pcall, for specs where a wire event must never raise: batch, err.
function M.get(client, id, opts)
  local res = { pcall(client.batches.get, id, opts) }
  require("luassert").is_true(res[1], "get raised: " .. tostring(res[2]))
  return res[2], res[3]
end

-- M.get and how long it took: batch, err, seconds.
function M.timed_get(client, id, opts)
  local now = require("llamacloud.core").now
  local t0 = now()
  local batch, err = M.get(client, id, opts)
  return batch, err, now() - t0
end

-- opts.scenario: a table (written to a temporary JSON file) or nil for the
-- built-in one; opts.args: further command-line arguments.
function M.start(opts)
  opts = opts or {}
  local root = repo_root()
  local lpath = root .. "lua/?.lua;" .. root .. "lua/?/init.lua;"
  local args = { "--port", "0" }
  local scenario_file
  if opts.scenario ~= nil then
    scenario_file = os.tmpname()
    util.write_file(scenario_file, type(opts.scenario) == "string" and opts.scenario or M.encode(opts.scenario))
    args[#args + 1] = "--scenario"
    args[#args + 1] = scenario_file
  end
  for _, a in ipairs(opts.args or {}) do args[#args + 1] = a end
  -- argv goes inside the -e code: PUC 5.1 runs -e chunks before it sets `arg`.
  local argv = {}
  for i, a in ipairs(args) do argv[i] = string.format("%q", a) end

  local log = os.tmpname()
  local cmd = util.quote(M.interpreter()) .. " -e " .. util.quote(string.format(
    "package.path=%q..package.path os.exit(require('llamacloud.fake_server').main({%s}))",
    lpath, table.concat(argv, ",")))
  local pid = util.spawn(cmd, log)
  if not pid or not pid:match("^%d+$") then
    error("fake server: could not spawn: " .. cmd, 2)
  end

  -- without a url, the second value is what the server printed
  local url, port = util.wait_for(log, "fake%-server listening on (http://[^%s]+:(%d+))\n", pid, START_TIMEOUT)
  if not url then
    if util.alive(pid) then os.execute("kill -9 " .. pid .. " 2>/dev/null") end
    if scenario_file then os.remove(scenario_file) end
    os.remove(log)
    error("fake server did not start (" .. cmd .. "):\n" .. port, 2)
  end
  if scenario_file then os.remove(scenario_file) end
  return setmetatable({ url = url, port = tonumber(port), pid = pid, log = log }, Server)
end

return M
