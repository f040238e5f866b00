-- Runs a Lua chunk, or the llamacloud command, in a child process with a chosen environment, since Lua
-- has no os.setenv.
local cjson = require("cjson").new()
local fake = require("spec.support.fake")
local util = require("spec.support.util")

local M = {}

-- Cleared in every child so the developer's own settings never leak into a spec.
M.CLEARED = {
  "LLAMA_CLOUD_API_KEY", "LLAMA_PARSE_API_KEY", "LLAMA_CLOUD_BASE_URL",
  "LLAMA_CLOUD_CUSTOM_HEADERS", "LLAMA_CLOUD_LOG",
}

-- The shell command running argv (each word quoted here) under env: name -> value, set on top of a
-- cleared M.CLEARED.
function M.command(env, argv)
  local parts = { "env" }
  for _, name in ipairs(M.CLEARED) do parts[#parts + 1] = "-u " .. name end
  local names = {}
  for name in pairs(env or {}) do names[#names + 1] = name end
  table.sort(names)
  for _, name in ipairs(names) do parts[#parts + 1] = util.quote(name .. "=" .. env[name]) end
  for _, a in ipairs(argv) do parts[#parts + 1] = util.quote(a) end
  return table.concat(parts, " ")
end

-- The child runs `code` (a chunk that returns one value) under the same
-- interpreter, package.path and package.cpath as busted, and prints
-- { ok = ..., value = ... } or { ok = false, err = tostring(error) } as JSON.
local WRAPPER = [[
package.path = %q
package.cpath = %q
local chunk = assert((loadstring or load)(%q, "=child"))
local ok, v = pcall(chunk)
local out = { ok = ok }
if ok then out.value = v else out.err = tostring(v) end
io.write(require("spec.support.fake").encode(out))
-- Flushed now, not at exit: under the sanitizers LeakSanitizer runs first at exit and, on a loaded
-- machine, may end the process before stdio is flushed (the spec then saw no output at all).
io.stdout:flush()
]]

-- Returns the decoded { ok, value, err }; raises if the child printed no JSON.
function M.run(env, code)
  local cmd = M.command(env, { fake.interpreter(), "-e", string.format(WRAPPER, package.path, package.cpath, code) })
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("*a")
  p:close()
  local ok, res = pcall(cjson.decode, out)
  if not ok or type(res) ~= "table" then error("child printed no result:\n" .. out, 2) end
  return res
end

-- The shell command running bin/llamacloud (from the checkout's root) with args under env, as M.command.
function M.cli_command(args, env)
  local argv = { fake.interpreter(), "bin/llamacloud" }
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  return M.command(env, argv)
end

-- Runs the llamacloud command (args, env as cli_command) in the background and interrupts it (SIGINT)
-- once in_flight() is true, polled every 10 ms for up to 10 s. Returns its exit code (a string) and what
-- it printed on stdout and stderr.
function M.cli_interrupted(args, env, in_flight)
  local socket = require("socket")
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir " .. dir))
  local script = M.cli_command(args, env) .. " >" .. dir .. "/out 2>" .. dir
    .. "/err & echo $! >" .. dir .. "/pid; wait $!; echo $? >" .. dir .. "/rc"
  util.spawn("sh -c " .. util.quote(script), dir .. "/log")
  local pid = util.wait_for(dir .. "/pid", "^(%d+)\n", nil, 10)
  if not pid then
    os.execute("rm -rf " .. dir)
    error("the command did not start", 2)
  end
  for _ = 1, 1000 do
    if in_flight() then break end
    socket.sleep(0.01)
  end
  os.execute("kill -INT " .. pid)
  local rc = util.wait_for(dir .. "/rc", "^(%d+)\n", nil, 20)
  local out, err = util.read_file(dir .. "/out"), util.read_file(dir .. "/err") or ""
  os.execute("rm -rf " .. dir)
  return rc, out, err
end

-- Runs a shell command line: exit code and what it printed on stdout (stderr: where cmd sends it).
function M.shell(cmd)
  local p = assert(io.popen(cmd .. "; echo \"exit=$?\""))
  local out = p:read("*a")
  p:close()
  return tonumber(out:match("exit=(%d+)%s*$")), (out:gsub("exit=%d+%s*$", ""))
end

-- Runs the command cmd(a, b) builds, which writes two outputs to the temporary files a and b, with no
-- stdin: exit code and what a and b hold.
local function run_to_files(cmd)
  local a, b = os.tmpname(), os.tmpname()
  local p = assert(io.popen(cmd(a, b) .. " </dev/null; echo $?"))
  local code = tonumber(p:read("*a"):match("(%d+)%s*$"))
  p:close()
  local sa, sb = util.read_file(a) or "", util.read_file(b) or ""
  os.remove(a)
  os.remove(b)
  return code, sa, sb
end

M.run_to_files = run_to_files

-- Starts `llamacloud fake-server --port 0` in the background: its first line ("fake-server listening on
-- URL", waited for up to 10 s) and a function that stops it. Stopped already when the line never came.
function M.cli_fake_server()
  local log = os.tmpname()
  local pid = util.spawn(M.cli_command({ "fake-server", "--port", "0" }), log)
  local function stop()
    os.execute("kill " .. pid .. " 2>/dev/null")
    os.remove(log)
  end
  local ok, line = pcall(util.wait_for, log, "^([^\n]*)\n", nil, 10)
  if not ok then
    stop()
    error(line, 0)
  end
  return line, stop
end

-- Runs the command without a terminal: exit code, stdout, stderr.
function M.cli(args, env)
  return run_to_files(function(out, err)
    return M.cli_command(args, env) .. " >" .. out .. " 2>" .. err
  end)
end

-- Runs the command on a pseudo-terminal (util-linux script) with stdout sent to a file:
-- exit code, what reached the terminal, stdout.
function M.cli_tty(args, env)
  return run_to_files(function(tty, out)
    return "script -qfec " .. util.quote(M.cli_command(args, env) .. " >" .. out) .. " /dev/null >" .. tty .. " 2>&1"
  end)
end

-- Lua source defining garbage(f): makes an unreachable object whose finalizer is f (newproxy where the
-- interpreter has it, since a table's __gc runs only on 5.2+). Pasted into child scripts; M.garbage is
-- the same function for the spec's own process.
M.GARBAGE = [[
local function garbage(f)
  if newproxy then
    local p = newproxy(true)
    getmetatable(p).__gc = f
  else
    setmetatable({}, { __gc = f })
  end
end
]]
M.garbage = assert((loadstring or load)(M.GARBAGE .. "return garbage", "=garbage"))()

-- A COMPLETED batch "bat-big" with n small objects in its results: decoding it allocates a lot, so the
-- collector runs in the middle.
function M.big_body(n)
  local parts = {}
  for i = 1, n do parts[i] = '{"source_directory_file_id":"dfl-' .. i .. '","n":' .. i .. '}' end
  return '{"id":"bat-big","status":"COMPLETED","results":[' .. table.concat(parts, ",") .. ']}'
end

-- Runs a Lua script in a child interpreter (the one busted runs on, with its package.path and
-- package.cpath): `prelude`, then `body` as a function whose result the child writes to stdout. A crash
-- is a failed exit status. Returns the exit status and the output (stdout and stderr).
function M.script(prelude, body)
  local script = os.tmpname()
  util.write_file(script, "package.path = " .. string.format("%q", package.path) .. "\npackage.cpath = "
    .. string.format("%q", package.cpath) .. "\n" .. prelude .. "\nio.write((function() " .. body .. " end)())\nio.stdout:flush()\n")
  local status, out = util.sh(util.quote(fake.interpreter()) .. " " .. util.quote(script))
  os.remove(script)
  return status, out
end

return M
