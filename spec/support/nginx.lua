-- Real nginx for specs (Debian's ndk and http-lua modules): started in the foreground on a temporary prefix
-- and a free port, and plain HTTP/1.0 requests to it.
local socket = require("socket")
local util = require("spec.support.util")

local M = {}

M.MODULES = { "/usr/lib/nginx/modules/ndk_http_module.so", "/usr/lib/nginx/modules/ngx_http_lua_module.so" }

-- Raises, saying what to install, when build/jit or the nginx Lua module is missing.
function M.check_prerequisites(root)
  if not util.read_file(root .. "/build/jit/llamacloud/core.so") then
    error("build/jit/llamacloud/core.so is missing: run `make LUA_VERSION=jit` first", 0)
  end
  for _, m in ipairs(M.MODULES) do
    if not util.read_file(m) then error(m .. " is missing (Debian: apt-get install libnginx-mod-http-lua)", 0) end
  end
end

local function listening(port)
  local sock = socket.tcp()
  sock:settimeout(0.2)
  local ok = sock:connect("127.0.0.1", port)
  sock:close()
  return ok ~= nil
end

-- Starts nginx on template with @ROOT@, @PORT@, @USER@ and @DIR@ (the temporary prefix) filled in, and env
-- (shell assignments, or nil) in front; returns { dir, port, pid }.
function M.start(template, root, env)
  local _, dir = util.sh("mktemp -d \"${TMPDIR:-/tmp}/llamacloud-ngx.XXXXXX\"")
  dir = dir:gsub("%s+$", "")
  assert(os.execute("mkdir -p " .. util.quote(dir .. "/tmp")))
  local _, uid = util.sh("id -u")
  -- As root the workers would run as nobody; they need the checkout and the temp prefix.
  local user = uid:match("^0%s*$") and "user root;" or ""
  local last = ""
  for _ = 1, 10 do
    local port = util.free_port()
    local conf = template:gsub("@ROOT@", root):gsub("@PORT@", tostring(port)):gsub("@USER@", user):gsub("@DIR@", dir)
    util.write_file(dir .. "/nginx.conf", conf)
    local pid = util.spawn((env and env .. " " or "") .. "nginx -p " .. util.quote(dir .. "/") .. " -c nginx.conf -e "
      .. util.quote(dir .. "/error.log") .. " -g 'daemon off;'", dir .. "/stderr.log")
    for _ = 1, 1000 do
      if listening(port) or not util.alive(pid) then break end
      socket.sleep(0.01)
    end
    if util.alive(pid) and listening(port) then return { dir = dir, port = port, pid = pid } end
    last = (util.read_file(dir .. "/stderr.log") or "") .. (util.read_file(dir .. "/error.log") or "")
    if util.alive(pid) then os.execute("kill -KILL " .. pid .. " 2>/dev/null") end
    if not last:match("Address already in use") then break end
  end
  os.execute("rm -rf " .. util.quote(dir))
  error("nginx did not start:\n" .. last, 0)
end

function M.stop(n)
  os.execute("kill -TERM " .. n.pid .. " 2>/dev/null")
  for _ = 1, 300 do
    if not util.alive(n.pid) then break end
    socket.sleep(0.01)
  end
  if util.alive(n.pid) then os.execute("kill -KILL " .. n.pid .. " 2>/dev/null") end
  os.execute("rm -rf " .. util.quote(n.dir))
end

-- What nginx logged: its error log and its stderr.
function M.log(n)
  return (util.read_file(n.dir .. "/error.log") or "") .. (util.read_file(n.dir .. "/stderr.log") or "")
end

-- One HTTP/1.0 request on a new connection; headers is a list of "Name: value" lines. Returns the status
-- and the body (one trailing newline dropped).
function M.request(port, method, path, body, headers)
  local sock = socket.tcp()
  sock:settimeout(30)
  assert(sock:connect("127.0.0.1", port))
  local head = { method .. " " .. path .. " HTTP/1.0", "Host: 127.0.0.1" }
  for _, h in ipairs(headers or {}) do head[#head + 1] = h end
  if body then head[#head + 1] = "Content-Length: " .. #body end
  assert(sock:send(table.concat(head, "\r\n") .. "\r\n\r\n" .. (body or "")))
  local data, _, partial = sock:receive("*a")
  sock:close()
  data = data or partial or ""
  local status = tonumber(data:match("^HTTP/%d%.%d (%d+)"))
  local text = data:match("\r\n\r\n(.*)$") or ""
  return status, (text:gsub("\n$", ""))
end

return M
