-- What specs and scripts/soak.lua need from the system: files, shell commands, child processes, ports,
-- this process's memory and descriptors, and the strings inside a value.
local socket = require("socket")

local M = {}

function M.quote(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

-- The file's bytes, or nil when it cannot be read.
function M.read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

function M.write_file(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end

-- A new table with the fields of each table given in turn (a later one wins; a nil is skipped).
function M.merge(...)
  local out = {}
  for i = 1, select("#", ...) do
    for k, v in pairs(select(i, ...) or {}) do out[k] = v end
  end
  return out
end

-- Runs cmd in the shell, its stderr joined to its stdout: exit code, output.
function M.sh(cmd)
  local p = assert(io.popen(cmd .. " 2>&1; echo \"exit=$?\""))
  local out = p:read("*a")
  p:close()
  local code = tonumber(out:match("exit=(%d+)%s*$"))
  return code, (out:gsub("exit=%d+%s*$", ""))
end

-- Starts cmd in the background, its stdout and stderr going to the file log, and returns its pid.
function M.spawn(cmd, log)
  local p = assert(io.popen(cmd .. " >" .. M.quote(log) .. " 2>&1 </dev/null & echo $!"))
  local pid = p:read("*l")
  p:close()
  return pid
end

-- Whether process pid runs: an orphan whose reaper never waits stays a zombie, which counts as gone.
function M.alive(pid)
  local stat = M.read_file("/proc/" .. pid .. "/stat") or ""
  local state = stat:match("^%d+ %b() (%a)")
  return state ~= nil and state ~= "Z"
end

-- Reads the file log every 10 ms until pattern matches it, and returns the captures; nil and what the
-- file held once process pid (when given) has ended or `seconds` have passed.
function M.wait_for(log, pattern, pid, seconds)
  local deadline = socket.gettime() + seconds
  while true do
    local out = M.read_file(log) or ""
    local found = { out:match(pattern) }
    if found[1] then return (table.unpack or unpack)(found) end
    if (pid and not M.alive(pid)) or socket.gettime() > deadline then return nil, out end
    socket.sleep(0.01)
  end
end

-- A loopback port nothing listens on (bound, then closed at once).
function M.free_port()
  local probe = assert(socket.bind("127.0.0.1", 0))
  local _, port = probe:getsockname()
  probe:close()
  return tonumber(port)
end

-- The checkout's absolute path, no trailing slash, from where this file lies.
function M.root()
  local dir = debug.getinfo(1, "S").source:match("^@(.-)spec/support/util%.lua$") or ""
  if dir:sub(1, 1) ~= "/" then dir = (os.getenv("PWD") or ".") .. "/" .. dir end
  return (dir:gsub("/%./", "/"):gsub("/$", ""))
end

do
  local f = assert(io.open("/proc/self/stat"))
  M.PID = f:read("*l"):match("^(%d+)")
  f:close()
end

-- A kB figure of this process from /proc/self/status: VmRSS now, VmHWM the peak since reset_peak().
function M.status_kb(field)
  local f = assert(io.open("/proc/self/status"))
  local s = f:read("*a")
  f:close()
  return tonumber(s:match(field .. ":%s*(%d+) kB"))
end

-- Resets VmHWM to the current RSS; false where the kernel does not allow it.
function M.reset_peak()
  local f = io.open("/proc/self/clear_refs", "w")
  if not f then return false end
  local ok = f:write("5")
  f:close()
  return ok ~= nil
end

-- This process's descriptors whose `ls -l` line holds `kind` ("socket:"), or with no kind every one but
-- pipes (io.popen's own pipe comes and goes while ls runs): how many, and their lines.
function M.open_fds(kind)
  local p = assert(io.popen("ls -l /proc/" .. M.PID .. "/fd"))
  local n, lines = 0, {}
  for line in p:lines() do
    local keep
    if kind then keep = line:find(kind, 1, true) ~= nil
    else keep = not line:find("pipe:", 1, true) and not line:find("^total") end
    if keep then
      n = n + 1
      lines[n] = line
    end
  end
  p:close()
  return n, table.concat(lines, "\n") .. (n > 0 and "\n" or "")
end

-- Every string reachable from v, keys included, down to depth 20, appended to out.
function M.strings(v, out, depth)
  out, depth = out or {}, depth or 0
  if type(v) == "string" then
    out[#out + 1] = v
  elseif type(v) == "table" and depth < 20 then
    for k, x in pairs(v) do
      M.strings(k, out, depth + 1)
      M.strings(x, out, depth + 1)
    end
  end
  return out
end

return M
