-- The client the commands send with, on a host whose waits are cut into slices; the progress setup.
local M = {}

-- The longest the command blocks in libcurl or in a sleep at once: how often progress time moves
-- and how soon Ctrl-C is seen while a request is in flight.
M.SLICE = 0.1

-- A host like llamacloud.host.blocking (see wait.lua for the interface) whose waits are cut into
-- slices of at most `slice` seconds with tick() between them. cli_spec: "shows time moving on a
-- terminal while a request is in flight".
function M.slicing_host(tick, slice)
  local core = require("llamacloud.core")
  slice = slice or M.SLICE
  local H = { now = core.now, name = "cli" }
  function H.sleep(s)
    local stop = core.now() + s
    while true do
      local left = stop - core.now()
      if left <= 0 then return end
      core.sleep(left < slice and left or slice)
      tick()
    end
  end
  function H.step(multi, max_wait)
    local stop = core.now() + max_wait
    local finished, next_wait = multi:step(max_wait < slice and max_wait or slice)
    while not finished do
      local left = stop - core.now()
      if left <= 0 then break end
      tick()
      finished, next_wait = multi:step(left < slice and left or slice)
    end
    return finished, next_wait
  end
  return H
end

-- Columns and rows of the terminal on stderr: stty on it, else COLUMNS/LINES, else 80 x 24.
-- Asked at most once a second, so a resized window is followed.
local function terminal_size_reader(now)
  local cols, rows, asked = 80, 24, nil
  return function()
    local t = now()
    if asked and t - asked < 1 then return cols, rows end
    asked = t
    local c, r
    local p = io.popen("stty size <&2 2>/dev/null")
    if p then
      local text = p:read("*a") or ""
      p:close()
      r, c = text:match("^%s*(%d+)%s+(%d+)")
      r, c = tonumber(r), tonumber(c)
    end
    if not c or c < 1 then c = tonumber(os.getenv("COLUMNS") or "") end
    if not r or r < 1 then r = tonumber(os.getenv("LINES") or "") end
    cols = (c and c >= 1) and math.floor(c) or 80
    rows = (r and r >= 1) and math.floor(r) or 24
    return cols, rows
  end
end

-- A core client from the environment, or nil and the exit code: no key, or a base URL refused, is a
-- setup that is wrong with nothing sent, a usage error.
function M.core_client()
  local ok, ud = pcall(require("llamacloud.core").new, {})
  if not ok then
    io.stderr:write(tostring(ud), "\n")
    return nil, require("llamacloud.cli.output").EXIT.USAGE
  end
  return ud
end

-- Where progress goes ("tty", "lines" or "off") and the clock and terminal size it reads.
function M.progress_setup(flags)
  local core = require("llamacloud.core")
  local mode = "off"
  if not flags.quiet then
    if core.isatty(2) then mode = "tty" elseif flags.progress then mode = "lines" end
  end
  return mode, { now = core.now, size = terminal_size_reader(core.now) }
end

-- The workflow commands' client: the library's calls bound to a core client on a host whose waits
-- are cut into slices with tick() between them (progress time moves while a request is in flight),
-- plus raw(resource, name, first, opts): the same call through its declaration in calls.lua, run
-- with the body's text kept, so create, list, cancel and jobs get print the server's bytes as get
-- does. nil, exit code when the client cannot be made.
function M.new(tick)
  local ud, code = M.core_client()
  if not ud then return nil, code end
  local host = M.slicing_host(tick)
  local bind = require("llamacloud.bind")
  local client = bind.bind(ud, host)
  client.close = function() ud:close() end
  function client.raw(resource, name, first, opts)
    for _, decl in ipairs(require("llamacloud.calls").list) do
      if decl.resource == resource and decl.name == name then
        return require("llamacloud.wait").run(host, ud, bind.prepare(ud, decl, first, opts, true))
      end
    end
    error("llamacloud: internal: no call " .. resource .. "." .. name)
  end
  return client
end

return M
