-- The llamacloud command: argv in, exit code out.
local M = {}

M.EXIT = { OK = 0, FAILED = 1, USAGE = 2, API = 3, TIMEOUT = 4 }
local EXIT = M.EXIT

M.USAGE = [[
Usage: llamacloud <command> [options]

Commands:
  batches get ID... [options]    print each batch as the server sent it (JSON)
  batches wait ID... [options]   poll until each batch is COMPLETED, FAILED or CANCELLED,
                                 then print it
  fake-server [--port N] [--scenario FILE]
                                 serve a local fake LlamaCloud on 127.0.0.1
  help                           this text (also: llamacloud COMMAND --help)

Run `llamacloud batches --help` for the options of get and wait.

Environment: LLAMA_CLOUD_API_KEY (or LLAMA_PARSE_API_KEY), LLAMA_CLOUD_BASE_URL,
LLAMA_CLOUD_CUSTOM_HEADERS, LLAMA_CLOUD_LOG=debug (each attempt on stderr).

Exit codes: 0 done (COMPLETED for wait), 1 FAILED or CANCELLED, 2 usage
(or no API key), 3 API or network error, 4 wait timed out.
]]

M.BATCHES_USAGE = [[
Usage: llamacloud batches get ID... [options]
       llamacloud batches wait ID... [options]

One id prints its JSON object unchanged; several run at once and print a JSON array.

Options for get and wait:
  --expand NAME           expand a field, repeatable (--expand results)
  --project-id ID         the project_id query parameter
  --organization-id ID    the organization_id query parameter
  --pretty                indent the JSON (arrays stay arrays, nulls stay null)
  --max-retries N         retries of each request (default 2)
  --concurrency N         requests in flight at once for several ids (default 16)
Option of get:
  --timeout S             seconds for each attempt (default 60)
Options of wait:
  --timeout S             give up after S seconds in all (default 7200)
  --request-timeout S     seconds for each attempt (default 60)
  --interval S            pause after the first poll (default 1)
  --max-interval S        longest pause between polls (default 5)
  --backoff KIND          linear (default), exponential or constant
  --progress              progress lines on stderr even when it is not a terminal
  --quiet                 no progress
Seconds may be fractions (--interval 0.2).

Exit codes: 0 done (COMPLETED for wait), 1 FAILED or CANCELLED, 2 usage
(or no API key), 3 API or network error, 4 wait timed out.
]]

-- name -> { kind, key, commands }: kind "number", "count", "string", "list" or "flag".
local FLAGS = {
  ["--expand"] = { "list", "expand" },
  ["--project-id"] = { "string", "project_id" },
  ["--organization-id"] = { "string", "organization_id" },
  ["--pretty"] = { "flag", "pretty" },
  ["--max-retries"] = { "count", "max_retries" },
  ["--concurrency"] = { "count", "concurrency" },
  ["--timeout"] = { "number", "timeout" },
  ["--request-timeout"] = { "number", "request_timeout", wait = true },
  ["--interval"] = { "number", "interval", wait = true },
  ["--max-interval"] = { "number", "max_interval", wait = true },
  ["--backoff"] = { "string", "backoff", wait = true },
  ["--progress"] = { "flag", "progress", wait = true },
  ["--quiet"] = { "flag", "quiet", wait = true },
}

local function usage_error(msg)
  io.stderr:write("llamacloud: ", msg, "\n", "Run 'llamacloud --help' for usage.\n")
  return EXIT.USAGE
end

-- Returns ids, flags or nil, message.
local function parse_args(argv, first, command)
  local ids, flags = {}, {}
  local i = first
  while i <= #argv do
    local a = argv[i]
    if a == "-h" or a == "--help" then
      flags.help = true
    elseif a:sub(1, 2) == "--" then
      local name, value = a:match("^(%-%-[^=]+)=(.*)$")
      name = name or a
      local spec = FLAGS[name]
      if not spec or (spec.wait and command ~= "wait") then return nil, "unknown option " .. name end
      local kind, key = spec[1], spec[2]
      if kind == "flag" then
        if value then return nil, name .. " takes no value" end
        flags[key] = true
      else
        if not value then
          i = i + 1
          value = argv[i]
          if value == nil then return nil, name .. " needs a value" end
        end
        if kind == "number" or kind == "count" then
          local n = tonumber(value)
          if not n or not (n > 0 or (kind == "count" and n == 0)) or n == math.huge
              or (kind == "count" and n ~= math.floor(n)) then
            return nil, name .. " needs " .. (kind == "count" and "a whole number" or "a positive number")
              .. " (got '" .. value .. "')"
          end
          flags[key] = n
        elseif kind == "list" then
          flags[key] = flags[key] or {}
          table.insert(flags[key], value)
        else
          flags[key] = value
        end
      end
    elseif a:sub(1, 1) == "-" and a ~= "-" then
      return nil, "unknown option " .. a
    else
      ids[#ids + 1] = a
    end
    i = i + 1
  end
  return ids, flags
end

local function request_options(flags, command)
  local o = {
    expand = flags.expand, project_id = flags.project_id, organization_id = flags.organization_id,
    max_retries = flags.max_retries, concurrency = flags.concurrency,
  }
  if command == "get" then
    o.timeout = flags.timeout
  else
    o.timeout, o.request_timeout = flags.timeout, flags.request_timeout
    o.interval, o.max_interval, o.backoff = flags.interval, flags.max_interval, flags.backoff
  end
  return o
end

local function print_json(texts, several, pretty)
  local text = several and ("[" .. table.concat(texts, ",") .. "]") or texts[1]
  if pretty then text = require("llamacloud.json_text").pretty(text) end
  io.stdout:write(text, "\n")
  io.stdout:flush()
end

local function exit_code_for(entries, command)
  local code = EXIT.OK
  local rank = { [EXIT.OK] = 0, [EXIT.FAILED] = 1, [EXIT.TIMEOUT] = 2, [EXIT.API] = 3 }
  for _, e in ipairs(entries) do
    local c = EXIT.OK
    if e.err then
      if e.err.name == "PollingError" then c = EXIT.FAILED
      elseif e.err.name == "PollingTimeoutError" then c = EXIT.TIMEOUT
      elseif e.err.name ~= "PollingCancelled" then c = EXIT.API end
    elseif command == "wait" and e.batch and e.batch.status ~= "COMPLETED" then
      c = EXIT.FAILED
    end
    if rank[c] > rank[code] then code = c end
  end
  return code
end

local HELP_WORDS = { ["--help"] = true, ["-h"] = true, help = true }

-- A missing command word prints the usage on stderr (exit 2), a help word on stdout (exit 0);
-- anything else returns nil.
local function usage_for(word, text)
  if word == nil then
    io.stderr:write(text)
    return EXIT.USAGE
  end
  if HELP_WORDS[word] then
    io.stdout:write(text)
    return EXIT.OK
  end
end

local function run_batches(argv)
  local command = argv[2]
  local usage_code = usage_for(command, M.BATCHES_USAGE)
  if usage_code then return usage_code end
  if command ~= "get" and command ~= "wait" then return usage_error("unknown command 'batches " .. command .. "'") end
  local ids, flags = parse_args(argv, 3, command)
  if not ids then return usage_error(flags) end
  if flags.help then
    io.stdout:write(M.BATCHES_USAGE)
    return EXIT.OK
  end
  if #ids == 0 then return usage_error("batches " .. command .. " needs at least one batch id") end
  if command == "wait" and flags.backoff and not ({ linear = 1, exponential = 1, constant = 1 })[flags.backoff] then
    return usage_error("--backoff must be linear, exponential or constant")
  end

  local core = require("llamacloud.core")
  local host = require("llamacloud.host.blocking")
  local wait = require("llamacloud.wait")
  -- No key, or a base URL refused: the setup is wrong, nothing was sent; a usage error.
  local ok, ud = pcall(core.new, {})
  if not ok then
    io.stderr:write(tostring(ud), "\n")
    return EXIT.USAGE
  end
  -- Each id checked as get checks it, so a bad one is a usage error rather than a Lua error.
  for _, id in ipairs(ids) do
    local valid, msg = pcall(ud.request, ud, id)
    if not valid then
      ud:close()
      return usage_error((tostring(msg):gsub("^llamacloud: ", "")))
    end
  end
  local opts = request_options(flags, command)
  local entries
  if command == "get" then
    entries = wait.get_many(host, ud, ids, opts, true)
  else
    local mode = "off"
    if not flags.quiet then
      if core.isatty(2) then mode = "tty" elseif flags.progress then mode = "lines" end
    end
    local progress = require("llamacloud.progress").new(ids, mode)
    opts.on_poll = function(batch, info) progress.update(info.index, batch, info) end
    entries = wait.wait_many(host, ud, ids, opts, true)
    local with_files = false
    for _, e in ipairs(flags.expand or {}) do with_files = with_files or e == "results" end
    progress.finish(entries, with_files)
  end

  local texts = {}
  for i, e in ipairs(entries) do
    texts[i] = e.raw or "null"
    if e.err then io.stderr:write("llamacloud: ", ids[i], ": ", tostring(e.err), "\n") end
  end
  local code = exit_code_for(entries, command)
  if code ~= EXIT.API or #ids > 1 then print_json(texts, #ids > 1, flags.pretty)
  elseif entries[1].raw then print_json(texts, false, flags.pretty) end
  ud:close()
  return code
end

function M.main(argv)
  argv = argv or {}
  local command = argv[1]
  local usage_code = usage_for(command, M.USAGE)
  if usage_code then return usage_code end
  if command == "--version" then
    io.stdout:write("llamacloud ", require("llamacloud.core").VERSION, "\n")
    return EXIT.OK
  end
  if command == "batches" then return run_batches(argv) end
  if command == "fake-server" then
    local rest = {}
    for i = 2, #argv do rest[#rest + 1] = argv[i] end
    return require("llamacloud.fake_server").main(rest)
  end
  return usage_error("unknown command '" .. command .. "'")
end

return M
