-- What the command writes (stdout through one writer, messages on stderr, JSON) and its exit codes.
local M = {}

-- 70 is sysexits' EX_SOFTWARE: a bug in llamacloud (the trace is on stderr); 130 is the shells' code
-- for a process ended by SIGINT (128 + 2).
M.EXIT = { OK = 0, FAILED = 1, USAGE = 2, API = 3, TIMEOUT = 4, SOFTWARE = 70, INTERRUPTED = 130 }
local EXIT = M.EXIT

-- What the command writes on stdout goes through out(); the first failed write is kept, and main
-- turns it into exit 3 (cli_spec: "exits 3 when stdout is a full disk").
local stdout_err

function M.reset()
  stdout_err = nil
end

local function out(...)
  if stdout_err then return end
  local ok, err = io.stdout:write(...)
  if not ok then stdout_err = err end
end
M.out = out

-- The first failed write or flush of stdout, or nil.
function M.flush()
  if not stdout_err then
    local ok, err = io.stdout:flush()
    if not ok then stdout_err = err end
  end
  return stdout_err
end

-- True, and the failure forgotten, when stdout failed because its reader went away (head): not an
-- error of a stream.
function M.forget_gone_reader()
  local err = stdout_err
  if type(err) == "string" and (err:find("Broken pipe", 1, true) or err:find("EPIPE", 1, true)) then
    stdout_err = nil
    return true
  end
  return false
end

function M.usage_error(msg, help)
  io.stderr:write("llamacloud: ", msg, " (try '", help or "llamacloud --help", "')\n")
  return EXIT.USAGE
end

function M.api_error(err, what)
  io.stderr:write("llamacloud: ", what and (what .. ": ") or "", tostring(err), "\n")
  return EXIT.API
end

-- --pretty, --compact, else pretty on a terminal.
local function pretty_of(flags)
  return flags.json == "pretty" or (flags.json == nil and require("llamacloud.core").isatty(1))
end
M.pretty_of = pretty_of

-- The server's text when the library kept it, else the value as JSON.
function M.print_value(value, raw, flags)
  local json_text = require("llamacloud.json_text")
  local text = raw or json_text.encode(value)
  if pretty_of(flags) then text = json_text.pretty(text) end
  out(text, "\n")
end

-- texts: JSON texts, printed as one array when several.
function M.print_json(texts, several, pretty)
  local text = several and ("[" .. table.concat(texts, ",") .. "]") or texts[1]
  if pretty then text = require("llamacloud.json_text").pretty(text) end
  out(text, "\n")
end

return M
