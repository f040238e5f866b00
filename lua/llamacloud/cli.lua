-- The llamacloud command: argv in, exit code out.
local M = {}

-- 70 is sysexits' EX_SOFTWARE: a bug in llamacloud (the trace is on stderr); 130 is the shells' code
-- for a process ended by SIGINT (128 + 2).
M.EXIT = { OK = 0, FAILED = 1, USAGE = 2, API = 3, TIMEOUT = 4, SOFTWARE = 70, INTERRUPTED = 130 }
local EXIT = M.EXIT

-- The commands that send requests: the id the flag table names them by, the words that run them,
-- their usage line and what they do (for --help).
M.COMMANDS = {
  { "get", "batches get", "ID... [options]", "print each batch as the server sent it (JSON)" },
  { "wait", "batches wait", "ID... [options]",
    "poll until each batch is COMPLETED, FAILED or CANCELLED, then print it" },
  { "create", "batches create", "--source-directory-id D --type parse_v2|extract_v2 --configuration-id C\n"
    .. "                          [--webhook-url U [--webhook-secret-env VAR]]... [options]",
    "create a batch of jobs over a source directory and print it" },
  { "list", "batches list", "[--status S] [--source-directory-id D] [--created-after T] [--created-before T]\n"
    .. "                        [--page-size N] [--page-token T] [--all] [options]",
    "print one page of batches, or with --all every batch, one per line (JSON lines)" },
  { "cancel", "batches cancel", "ID [options]", "ask the service to cancel a batch and print it" },
  { "files", "batches files", "ID [--concurrency N] [--interval S] [--timeout S] [--progress | --quiet] [options]",
    "wait for a batch and for each file's job, then print the per-file report (JSON)" },
  { "jobs", "jobs get", "parse_v2|extract_v2 ID [--expand X]... [options]",
    "print a file's parse or extract job as the server sent it" },
}
local COMMAND_OF = {} -- "batches get" -> "get"
for _, c in ipairs(M.COMMANDS) do COMMAND_OF[c[2]] = c[1] end

M.STATUSES = { "PENDING", "THROTTLED", "RUNNING", "COMPLETED", "FAILED", "CANCELLED" }
M.JOB_TYPES = { "parse_v2", "extract_v2" }

-- The options of the commands above, in the order --help lists them.
-- kind: "number" (seconds, decimal, > 0), "count" (whole, decimal, >= 0), "size" (whole, decimal,
-- > 0), "string", "list" (repeatable), "flag" (no value), "webhook" (repeatable: starts a webhook)
-- or "secret" (the name of an environment variable, for the webhook before it).
-- key: the library option (or parameter) it sets. commands: where it applies.
-- values: the only values it takes (for completion too).
local function set(...)
  local t = {}
  for _, c in ipairs({ ... }) do t[c] = true end
  return t
end
local ALL = set("get", "wait", "create", "list", "cancel", "files", "jobs")
local ONE_REQUEST = set("get", "create", "list", "cancel", "jobs")
local POLLING = set("wait", "files")
M.FLAGS = {
  { "--source-directory-id", "string", "source_directory_id", set("create", "list"), "D",
    "the source directory whose files become jobs (create), or only its batches (list)" },
  { "--type", "string", "type", set("create"), "TYPE", "the job made for each file: parse_v2 or extract_v2",
    values = M.JOB_TYPES },
  { "--configuration-id", "string", "configuration_id", set("create"), "C",
    "the product configuration for that job type (cfg-...)" },
  { "--webhook-url", "webhook", "webhook_url", set("create"), "U",
    "a URL the service POSTs the batch's events to, repeatable" },
  { "--webhook-secret-env", "secret", "webhook_signing_secret", set("create"), "VAR",
    "sign the deliveries of the --webhook-url before it with the secret in the environment variable VAR" },
  { "--status", "string", "status", set("list"), "S", "only batches in this status", values = M.STATUSES },
  { "--created-after", "string", "created_at_on_or_after", set("list"), "T",
    "only batches created at or after T (RFC 3339: 2026-01-31T00:00:00Z)" },
  { "--created-before", "string", "created_at_on_or_before", set("list"), "T",
    "only batches created at or before T (RFC 3339)" },
  { "--page-size", "size", "page_size", set("list"), "N", "batches per page (the service's default when not given)" },
  { "--page-token", "string", "page_token", set("list"), "T", "the next_page_token of the page before" },
  { "--all", "flag", "all", set("list"), nil, "follow next_page_token: every batch, one JSON object per line" },
  { "--expand", "list", "expand", set("get", "wait", "jobs"), "NAME",
    "expand a field, repeatable (batches: --expand results; jobs get: --expand markdown)" },
  { "--job-expand", "list", "job_expand", set("files"), "NAME",
    "expand a field of every job fetched, repeatable (--job-expand markdown)" },
  { "--project-id", "string", "project_id", ALL, "ID", "the project_id query parameter" },
  { "--organization-id", "string", "organization_id", ALL, "ID", "the organization_id query parameter" },
  { "--pretty", "flag", "pretty", ALL, nil, "indent the JSON (the default when stdout is a terminal)" },
  { "--compact", "flag", "compact", ALL, nil, "print the JSON on one line (the default when piped)" },
  { "--max-retries", "count", "max_retries", ALL, "N", "retries of each request, 0 to 100 (default 2)" },
  { "--concurrency", "count", "concurrency", set("get", "wait", "files"), "N",
    "requests in flight at once (several ids; the jobs of files), 1 to 10000 (default 16)" },
  { "--timeout", "number", "timeout", ONE_REQUEST, "S", "seconds for each attempt (default 60)" },
  { "--timeout", "number", "timeout", POLLING, "S", "give up after S seconds in all (default 7200)" },
  { "--request-timeout", "number", "request_timeout", POLLING, "S", "seconds for each attempt (default 60)" },
  { "--interval", "number", "interval", POLLING, "S", "pause after the first poll (default 1)" },
  { "--max-interval", "number", "max_interval", POLLING, "S", "longest pause between polls (default 5)" },
  { "--backoff", "string", "backoff", POLLING, "KIND", "linear (default), exponential or constant",
    values = { "linear", "exponential", "constant" } },
  { "--progress", "flag", "progress", POLLING, nil, "progress lines on stderr even when it is not a terminal" },
  { "--quiet", "flag", "quiet", POLLING, nil, "no progress" },
}

-- command -> flag name -> { name, kind, key, commands, arg, help, values = ... }
local FLAGS_OF = {}
for _, c in ipairs(M.COMMANDS) do FLAGS_OF[c[1]] = {} end
for _, f in ipairs(M.FLAGS) do
  for command in pairs(f[4]) do FLAGS_OF[command][f[1]] = f end
end

-- The options of `fake-server`, as its --help lists them (llamacloud.fake_server parses them):
-- { name, ARG, help }. Without its module (no luasocket), the ones it has always had.
function M.fake_server_flags()
  local ok, fake = pcall(require, "llamacloud.fake_server")
  local list = {}
  if ok and type(fake) == "table" and type(fake.USAGE) == "string" then
    for name, arg, help in fake.USAGE:gmatch("\n  (%-%-[%w-]+) (%u+)%s+([^\n]*)") do
      list[#list + 1] = { name, arg, help }
    end
  end
  if #list == 0 then
    list = {
      { "--port", "N", "TCP port (default 0: pick a free one)" },
      { "--host", "H", "loopback address to bind (default 127.0.0.1)" },
      { "--scenario", "FILE", "a JSON file, or a .lua file returning a table" },
    }
  end
  return list
end

M.USAGE = [[
Usage: llamacloud <command> [options]

Commands:
  batches get ID...              print each batch as the server sent it (JSON)
  batches wait ID...             poll until each batch is COMPLETED, FAILED or CANCELLED,
                                 then print it
  batches create --source-directory-id D --type T --configuration-id C
                                 create a batch of jobs over a source directory
  batches list [--all]           list batches (a page, or every one as JSON lines)
  batches cancel ID              cancel a batch
  batches files ID               wait for a batch and each file's job; print the report
  jobs get TYPE ID               print a parse_v2 or extract_v2 job (--expand markdown)
  fake-server [--port N] [--host H] [--scenario FILE]
                                 serve a local fake LlamaCloud on 127.0.0.1
  completion bash|zsh|fish       print a shell completion script
  help                           this text (also: llamacloud COMMAND --help)

Options:
  -h, --help                     this text
  --version                      print the version

Run `llamacloud batches --help` for every option, `llamacloud batches files --help` for one
command's.

Environment: LLAMA_CLOUD_API_KEY (or LLAMA_PARSE_API_KEY), LLAMA_CLOUD_BASE_URL,
LLAMA_CLOUD_CUSTOM_HEADERS, LLAMA_CLOUD_LOG=debug (each attempt on stderr).

Exit codes: 0 done (COMPLETED for wait; every file's job COMPLETED for files),
1 FAILED or CANCELLED (files: any file failed, was cancelled or not mapped),
2 usage (or no API key), 3 API or network error (or stdout could not be written),
4 wait or files timed out, 130 interrupted (Ctrl-C).
]]

local EXIT_TEXT = {
  "Exit codes: 0 done (COMPLETED for wait; every file's job COMPLETED for files),",
  "1 FAILED or CANCELLED (files: any file failed, was cancelled or not mapped),",
  "2 usage (or no API key), 3 API or network error (or stdout could not be written),",
  "4 wait or files timed out, 130 interrupted (Ctrl-C).",
}

local NUMBERS_TEXT = {
  "Numbers are decimal; seconds may be fractions (--interval 0.2). A value may follow its",
  "option (--interval 2) or be joined to it (--interval=2; needed for a value starting with",
  "'-'). `--` ends the options: every word after it is an argument.",
}

local function flag_line(f, group)
  local line = string.format("  %-26s  %s", f[1] .. (f[5] and (" " .. f[5]) or ""), f[6])
  if group then
    local names, all = {}, true
    for _, c in ipairs(M.COMMANDS) do
      if c[2]:match("^%S+") == group then
        if f[4][c[1]] then names[#names + 1] = c[2]:match("%S+$") else all = false end
      end
    end
    line = line .. " [" .. (all and "all" or table.concat(names, ", ")) .. "]"
  end
  -- wrapped at 96 columns, under the help's first column
  local lines, width = {}, 96
  while #line > width do
    local cut = line:sub(1, width):match("^.*() ")
    if not cut or cut <= 31 then break end
    lines[#lines + 1] = line:sub(1, cut - 1)
    line = string.rep(" ", 30) .. line:sub(cut + 1)
  end
  lines[#lines + 1] = line
  return table.concat(lines, "\n")
end

-- "Usage: llamacloud batches create ARGS", a continuation line of ARGS under its first word.
local function usage_line(c, first)
  local head = (first and "Usage: " or "       ") .. "llamacloud " .. c[2] .. " "
  return head .. c[3]:gsub("\n%s*", "\n" .. string.rep(" ", #head))
end

-- `llamacloud batches --help`: every command of the group and every option, each naming its commands.
local function group_usage(group)
  local lines, first = {}, true
  for _, c in ipairs(M.COMMANDS) do
    if c[2]:match("^%S+") == group then
      lines[#lines + 1] = usage_line(c, first)
      first = false
    end
  end
  lines[#lines + 1] = ""
  for _, c in ipairs(M.COMMANDS) do
    if c[2]:match("^%S+") == group then lines[#lines + 1] = string.format("  %-15s %s", c[2]:match("%S+$"), c[4]) end
  end
  lines[#lines + 1] = ""
  lines[#lines + 1] = "Options (the commands that take each one in brackets):"
  for _, f in ipairs(M.FLAGS) do
    local mine = false
    for _, c in ipairs(M.COMMANDS) do mine = mine or (f[4][c[1]] and c[2]:match("^%S+") == group) end
    if mine then lines[#lines + 1] = flag_line(f, group) end
  end
  lines[#lines + 1] = "  -h, --help                  this text"
  lines[#lines + 1] = ""
  for _, l in ipairs(NUMBERS_TEXT) do lines[#lines + 1] = l end
  lines[#lines + 1] = ""
  for _, l in ipairs(EXIT_TEXT) do lines[#lines + 1] = l end
  lines[#lines + 1] = ""
  return table.concat(lines, "\n")
end

-- What a command does beyond its one-line summary, for its own --help.
local DETAILS = {
  get = "One id prints its JSON object; several run at once and print a JSON array.",
  wait = "One id prints its JSON object; several run at once and print a JSON array. Live progress\n"
    .. "on stderr when it is a terminal.",
  create = "The batch is created once: a create is never sent twice unless the first attempt certainly\n"
    .. "did not reach the service. When the answer was lost (a timeout, a reset, a 5xx) the\n"
    .. "error says the batch may have been created: look for it with\n"
    .. "`llamacloud batches list --source-directory-id D` before creating again.\n"
    .. "A signing secret is never an argument (argv is visible to every user of the machine):\n"
    .. "--webhook-secret-env names the environment variable that holds it.",
  list = "Prints the page as JSON ({\"items\": [...], \"next_page_token\": ...}). With --all it follows\n"
    .. "next_page_token and prints one batch per line as the pages arrive, so it streams into\n"
    .. "jq or head (a reader that goes away ends it quietly).",
  cancel = "The batch is printed as the service answered (not yet CANCELLED: `batches wait` for that).",
  files = "Waits for the batch, then for every file's job, and prints\n"
    .. "{\"batch\": ..., \"files\": [...], \"counts\": {...}}: one entry per file with its status\n"
    .. "(COMPLETED, FAILED, CANCELLED, MAPPING_FAILED, UNMAPPED), error_message and job. Live\n"
    .. "progress on stderr when it is a terminal: files settled of total, counts by status, time.\n"
    .. "Exits 0 only when every file's job is COMPLETED, 1 when any file failed, was cancelled or\n"
    .. "was not mapped (or the batch FAILED: then nothing is printed), 4 on timeout (the report\n"
    .. "so far is printed).",
  jobs = "TYPE is a result's job_reference.type: parse_v2 (GET /api/v2/parse/ID) or extract_v2\n"
    .. "(GET /api/v2/extract/ID).",
}

-- `llamacloud batches create --help`: one command, its options.
function M.command_usage(command)
  for _, c in ipairs(M.COMMANDS) do
    if c[1] == command then
      local lines = { usage_line(c, true), "", c[4]:sub(1, 1):upper() .. c[4]:sub(2) .. ".", "" }
      if DETAILS[command] then
        lines[#lines + 1] = DETAILS[command]
        lines[#lines + 1] = ""
      end
      lines[#lines + 1] = "Options:"
      for _, f in ipairs(M.FLAGS) do
        if f[4][command] then lines[#lines + 1] = flag_line(f) end
      end
      lines[#lines + 1] = "  -h, --help                  this text"
      lines[#lines + 1] = ""
      for _, l in ipairs(NUMBERS_TEXT) do lines[#lines + 1] = l end
      lines[#lines + 1] = ""
      for _, l in ipairs(EXIT_TEXT) do lines[#lines + 1] = l end
      lines[#lines + 1] = ""
      return table.concat(lines, "\n")
    end
  end
end

M.BATCHES_USAGE = group_usage("batches")
M.JOBS_USAGE = M.command_usage("jobs")

-- What the command writes on stdout goes through out(); the first failed write is kept, and main
-- turns it into exit 3 (cli_spec: "exits 3 when stdout is a full disk").
local stdout_err

local function out(...)
  if stdout_err then return end
  local ok, err = io.stdout:write(...)
  if not ok then stdout_err = err end
end

local function flush_stdout()
  if not stdout_err then
    local ok, err = io.stdout:flush()
    if not ok then stdout_err = err end
  end
  return stdout_err
end

local function usage_error(msg, help)
  io.stderr:write("llamacloud: ", msg, " (try '", help or "llamacloud --help", "')\n")
  return EXIT.USAGE
end

-- A value echoed in a message, cut if long.
local function shorten(s)
  if #s > 40 then return s:sub(1, 37) .. "..." end
  return s
end

-- Decimal numbers only: digits with an optional fraction (no sign, exponent or hex).
local function decimal(s, whole)
  if whole then return s:match("^%d+$") and tonumber(s) end
  if s:match("^%d+%.?%d*$") or s:match("^%.%d+$") then return tonumber(s) end
end

-- "batches files", "jobs get": how a command is typed.
function M.command_name(command)
  for _, c in ipairs(M.COMMANDS) do
    if c[1] == command then return c[2] end
  end
  return command
end

-- Returns ids, flags or nil, message.
local function parse_args(argv, first, command)
  local ids, flags = {}, { given = {} } -- given: key -> the number as typed
  local known = FLAGS_OF[command]
  local i, options_done = first, false
  while i <= #argv do
    local a = argv[i]
    if options_done or a == "-" or a:sub(1, 1) ~= "-" then
      ids[#ids + 1] = a
    elseif a == "--" then
      options_done = true
    elseif a == "-h" or a == "--help" then
      flags.help = true
    else
      local name, value = a:match("^(%-%-[^=]+)=(.*)$")
      name = name or a
      local spec = known[name]
      if not spec then
        local others = {}
        for _, c in ipairs(M.COMMANDS) do
          if FLAGS_OF[c[1]][name] then others[#others + 1] = c[2] end
        end
        if #others > 0 then
          return nil, name .. " is not an option of " .. M.command_name(command) .. " (it is one of "
            .. table.concat(others, ", ") .. ")"
        end
        return nil, "unknown option " .. name
      end
      local kind, key = spec[2], spec[3]
      if kind == "flag" then
        if value then return nil, name .. " takes no value" end
        flags[key] = true
        if key == "pretty" or key == "compact" then flags.json = key end -- the last one wins
      else
        if not value then
          local nxt = argv[i + 1]
          if nxt == nil then return nil, name .. " needs a value" end
          -- An option never takes the next option as its value.
          if nxt:sub(1, 1) == "-" and nxt ~= "-" then
            return nil, name .. " needs a value (got the option '" .. nxt .. "'; write " .. name
              .. "=VALUE for a value starting with '-')"
          end
          i = i + 1
          value = nxt
        end
        if kind == "number" or kind == "count" or kind == "size" then
          local n = decimal(value, kind ~= "number")
          if not n or not (n > 0 or (kind == "count" and n == 0)) or n == math.huge or (kind == "size" and n > 2^31) then
            return nil, name .. " needs " .. (kind == "count" and "a whole decimal number" or kind == "size"
              and "a whole decimal number from 1" or "a positive decimal number") .. " (got '" .. shorten(value) .. "')"
          end
          flags[key] = n
          flags.given[key] = value
        elseif kind == "webhook" then
          flags.webhooks = flags.webhooks or {}
          table.insert(flags.webhooks, { webhook_url = value })
        elseif kind == "secret" then
          local last = flags.webhooks and flags.webhooks[#flags.webhooks]
          if not last then return nil, name .. " must follow the --webhook-url it signs" end
          if last.secret_env then return nil, name .. " given twice for --webhook-url " .. shorten(last.webhook_url) end
          if not value:match("^[%a_][%w_]*$") then
            return nil, name .. " needs the name of an environment variable (got '" .. shorten(value) .. "')"
          end
          last.secret_env = value
        elseif kind == "list" then
          flags[key] = flags[key] or {}
          table.insert(flags[key], value)
        else
          if spec.values then
            local ok = false
            for _, v in ipairs(spec.values) do ok = ok or v == value end
            if not ok then
              return nil, name .. " must be " .. table.concat(spec.values, ", ") .. " (got '" .. value .. "')"
            end
          end
          flags[key] = value
        end
      end
    end
    i = i + 1
  end
  return ids, flags
end

-- A library error raised for an option the command line passed on ("llamacloud: get_many: option
-- 'concurrency' must be ...") as one line naming the flag (every option it names becomes its flag);
-- nil for any other error. Exported for cli_spec.
function M.flag_error(err, command, flags)
  if type(err) ~= "string" then return nil end
  local fn, text = err:match("llamacloud: ([%w_]+): (option '[%w_]+'.*)$")
  if not fn then return nil end
  local first
  text = text:gsub("option '([%w_]+)'", function(key)
    -- wait passes --request-timeout on to each request as its 'timeout'
    if POLLING[command] and key == "timeout" and fn ~= command and fn ~= command .. "_many"
        and fn ~= "wait_files" then
      key = "request_timeout"
    end
    for name, spec in pairs(FLAGS_OF[command]) do
      if spec[3] == key then
        first = first or key
        return name
      end
    end
  end)
  if not first then return nil end
  local v = flags.given and flags.given[first]
  if v and not text:find(v, 1, true) then text = text .. " (got '" .. shorten(v) .. "')" end
  return text
end
local flag_error = M.flag_error

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
  out(text, "\n")
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

local function run_get_wait(command, ids, flags)
  if #ids == 0 then
    return usage_error("batches " .. command .. " needs at least one batch id", "llamacloud batches " .. command .. " --help")
  end
  local core = require("llamacloud.core")
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
      return usage_error((tostring(msg):gsub("^.-llamacloud: ", "")))
    end
  end
  local opts = request_options(flags, command)
  local progress
  local function tick() if progress then progress.tick() end end
  local host = M.slicing_host(tick)
  -- Option errors raise before anything is sent; anything else raised (Ctrl-C's "interrupted!")
  -- goes on up to main.
  local called, entries = pcall(function()
    if command == "get" then return wait.get_many(host, ud, ids, opts, true) end
    local mode = "off"
    if not flags.quiet then
      if core.isatty(2) then mode = "tty" elseif flags.progress then mode = "lines" end
    end
    progress = require("llamacloud.progress").new(ids, mode, io.stderr,
      { now = core.now, size = terminal_size_reader(core.now) })
    opts.on_poll = function(batch, info) progress.update(info.index, batch, info) end
    local list = wait.wait_many(host, ud, ids, opts, true)
    local with_files = false
    for _, e in ipairs(flags.expand or {}) do with_files = with_files or e == "results" end
    progress.finish(list, with_files)
    return list
  end)
  if not called then
    local msg = flag_error(entries, command, flags)
    ud:close()
    if msg then return usage_error(msg, "llamacloud batches --help") end
    error(entries, 0)
  end

  local texts = {}
  for i, e in ipairs(entries) do
    texts[i] = e.raw or "null"
    if e.err then io.stderr:write("llamacloud: ", ids[i], ": ", tostring(e.err), "\n") end
  end
  local pretty = flags.json == "pretty" or (flags.json == nil and core.isatty(1))
  local code = exit_code_for(entries, command)
  if code ~= EXIT.API or #ids > 1 then print_json(texts, #ids > 1, pretty)
  elseif entries[1].raw then print_json(texts, false, pretty) end
  ud:close()
  return code
end


-- The workflow commands' client: the library's calls bound to a core client on a host whose waits
-- are cut into slices with tick() between them (progress time moves while a request is in flight),
-- plus raw(resource, name, first, opts): the same call through its declaration in calls.lua, run
-- with the body's text kept, so create, list, cancel and jobs get print the server's bytes as get
-- does. nil, exit code when the client cannot be made.
local function new_client(tick)
  local core = require("llamacloud.core")
  local ok, ud = pcall(core.new, {})
  if not ok then
    -- no key, or a base URL refused: the setup is wrong, nothing was sent; a usage error
    io.stderr:write(tostring(ud), "\n")
    return nil, EXIT.USAGE
  end
  local host = M.slicing_host(tick)
  local client = require("llamacloud.bind").bind(ud, host)
  client.close = function() ud:close() end
  function client.raw(resource, name, first, opts)
    for _, decl in ipairs(require("llamacloud.calls").list) do
      if decl.resource == resource and decl.name == name then
        local engine, id, o, query, body
        if decl.prepare then
          engine, id, o, query, body = decl.prepare(first, opts)
        else
          engine, id, o = decl.engine, first, opts
        end
        return require("llamacloud.wait").run(host, ud, ud:prepare(engine, id, o, query, body, true))
      end
    end
    error("llamacloud: internal: no call " .. resource .. "." .. name)
  end
  return client
end

-- The per-call options every new command passes on.
local function call_options(flags, command)
  local o = { project_id = flags.project_id, organization_id = flags.organization_id,
              max_retries = flags.max_retries }
  if command == "files" then
    o.timeout, o.request_timeout = flags.timeout, flags.request_timeout
    o.interval, o.max_interval, o.backoff = flags.interval, flags.max_interval, flags.backoff
    o.concurrency, o.job_expand = flags.concurrency, flags.job_expand
  else
    o.timeout = flags.timeout
  end
  if command == "jobs" then o.expand = flags.expand end
  return o
end

-- A batch or job id as the library takes it: a usage error here instead of a raise there.
local function check_id(id, what)
  if id == "" then return what .. " must not be empty" end
  if id == "." or id == ".." then return what .. " must not be '.' or '..'" end
end

-- Calls fn() (which calls the library); a raise naming an option the command line set becomes a
-- usage error naming its flag, anything else raised goes on up to main.
local function calling(command, flags, fn)
  local results = { pcall(fn) }
  if not results[1] then
    local msg = flag_error(results[2], command, flags)
    if msg then return false, usage_error(msg, "llamacloud " .. M.command_name(command) .. " --help") end
    error(results[2], 0)
  end
  return true, results[2], results[3], results[5]
end

local function pretty_of(flags)
  return flags.json == "pretty" or (flags.json == nil and require("llamacloud.core").isatty(1))
end

-- The server's text when the library kept it, else the value as JSON.
local function print_value(value, raw, flags)
  local json_text = require("llamacloud.json_text")
  local text = raw or json_text.encode(value)
  if pretty_of(flags) then text = json_text.pretty(text) end
  out(text, "\n")
end

local function api_error(err, what)
  io.stderr:write("llamacloud: ", what and (what .. ": ") or "", tostring(err), "\n")
  return EXIT.API
end

local function run_create(client, ids, flags)
  if #ids > 0 then
    return usage_error("batches create takes no arguments (got '" .. shorten(ids[1]) .. "')",
      "llamacloud batches create --help")
  end
  for _, need in ipairs({ { "--source-directory-id", "source_directory_id" }, { "--type", "type" },
                          { "--configuration-id", "configuration_id" } }) do
    if not flags[need[2]] then return usage_error("batches create needs " .. need[1], "llamacloud batches create --help") end
  end
  local params = {
    source_directory_id = flags.source_directory_id,
    config = { job = { type = flags.type, configuration_id = flags.configuration_id } },
  }
  if flags.webhooks then
    params.webhook_configurations = {}
    for i, w in ipairs(flags.webhooks) do
      local conf = { webhook_url = w.webhook_url }
      if w.secret_env then
        -- read here, never from argv; the message names the variable, never a value
        local secret = os.getenv(w.secret_env)
        if secret == nil or secret == "" then
          return usage_error("--webhook-secret-env " .. w.secret_env .. ": the variable is not set or empty",
            "llamacloud batches create --help")
        end
        conf.webhook_signing_secret = secret
      end
      params.webhook_configurations[i] = conf
    end
  end
  local ok, batch, err, raw = calling("create", flags, function()
    return client.raw("batches", "create", params, call_options(flags, "create"))
  end)
  if not ok then return batch end
  if not batch then
    if type(err) == "table" and err.may_have_created then
      io.stderr:write("llamacloud: ", tostring(err), "\n", "llamacloud: the batch may have been created: look for it",
        " with `llamacloud batches list --source-directory-id ", flags.source_directory_id,
        "` before creating again\n")
      return EXIT.API
    end
    return api_error(err)
  end
  print_value(batch, raw, flags)
  return EXIT.OK
end

local function list_params(flags)
  return { status = flags.status, source_directory_id = flags.source_directory_id,
           created_at_on_or_after = flags.created_at_on_or_after,
           created_at_on_or_before = flags.created_at_on_or_before,
           page_size = flags.page_size, page_token = flags.page_token }
end

-- A write to stdout failed because its reader went away (head): not an error of a stream.
local function reader_gone(err)
  return type(err) == "string" and (err:find("Broken pipe", 1, true) or err:find("EPIPE", 1, true)) ~= nil
end

local function run_list(client, ids, flags)
  if #ids > 0 then
    return usage_error("batches list takes no arguments (got '" .. shorten(ids[1]) .. "')",
      "llamacloud batches list --help")
  end
  local opts = call_options(flags, "list")
  if not flags.all then
    local ok, page, err, raw = calling("list", flags, function()
      return client.raw("batches", "list", list_params(flags), opts)
    end)
    if not ok then return page end
    if not page then return api_error(err) end
    print_value(page, raw, flags)
    return EXIT.OK
  end
  -- One batch per line, flushed at once: the lines of a page reach the reader as the page arrives,
  -- and a reader that has gone (head -n 3) is seen at the next line, ending the loop before the
  -- next page is asked for. cli_list_spec: "ends quietly when head closes the pipe".
  local json_text = require("llamacloud.json_text")
  local pretty = flags.json == "pretty"
  local _, code = calling("list", flags, function()
    for batch, err in client.batches.each(list_params(flags), opts) do
      if not batch then return api_error(err) end
      local text = json_text.encode(batch)
      if pretty then text = json_text.pretty(text) end
      out(text, "\n")
      if flush_stdout() then
        if reader_gone(stdout_err) then stdout_err = nil; return EXIT.OK end
        return EXIT.API
      end
    end
    return EXIT.OK
  end)
  return code
end

local function run_cancel(client, ids, flags)
  if #ids ~= 1 then return usage_error("batches cancel needs one batch id", "llamacloud batches cancel --help") end
  local bad = check_id(ids[1], "batch_id")
  if bad then return usage_error(bad, "llamacloud batches cancel --help") end
  local ok, batch, err, raw = calling("cancel", flags, function()
    return client.raw("batches", "cancel", ids[1], call_options(flags, "cancel"))
  end)
  if not ok then return batch end
  if not batch then return api_error(err, ids[1]) end
  print_value(batch, raw, flags)
  return EXIT.OK
end

local function run_job_get(client, ids, flags)
  if #ids ~= 2 then
    return usage_error("jobs get needs a job type (parse_v2 or extract_v2) and a job id", "llamacloud jobs get --help")
  end
  local kind, id = ids[1], ids[2]
  if kind ~= "parse_v2" and kind ~= "extract_v2" then
    return usage_error("jobs get: the job type must be parse_v2 or extract_v2 (got '" .. shorten(kind) .. "')",
      "llamacloud jobs get --help")
  end
  local bad = check_id(id, "job id")
  if bad then return usage_error(bad, "llamacloud jobs get --help") end
  local ok, job, err, raw = calling("jobs", flags, function()
    return client.raw("jobs", "get", { type = kind, id = id }, call_options(flags, "jobs"))
  end)
  if not ok then return job end
  if not job then return api_error(err, id) end
  print_value(job, raw, flags)
  return EXIT.OK
end

-- The exit code of a files report: 0 when every file's job COMPLETED, else 1.
local function files_code(report)
  if report.batch and report.batch.status == "CANCELLED" then return EXIT.FAILED end
  for _, f in ipairs(report.files or {}) do
    if f.status ~= "COMPLETED" then return EXIT.FAILED end
  end
  return EXIT.OK
end
M.files_code = files_code

local function run_files(client, ids, flags, progress)
  if #ids ~= 1 then return usage_error("batches files needs one batch id", "llamacloud batches files --help") end
  local bad = check_id(ids[1], "batch_id")
  if bad then return usage_error(bad, "llamacloud batches files --help") end
  local opts = call_options(flags, "files")
  opts.on_poll = function(batch, info) progress.batch(batch, info) end
  opts.on_file = function(file) progress.file(file) end
  local ok, report, err = calling("files", flags, function() return client.batches.wait_files(ids[1], opts) end)
  if not ok then return report end
  progress.finish(report, err)
  if not report then
    if type(err) == "table" and err.name == "PollingError" then
      io.stderr:write("llamacloud: ", ids[1], ": ", tostring(err), " (no per-file results)\n")
      return EXIT.FAILED
    end
    return api_error(err, ids[1])
  end
  print_value(report, nil, flags)
  if err then
    io.stderr:write("llamacloud: ", ids[1], ": ", tostring(err), "\n")
    return err.name == "PollingTimeoutError" and EXIT.TIMEOUT or EXIT.API
  end
  return files_code(report)
end

local RUNNERS = { create = run_create, list = run_list, cancel = run_cancel, files = run_files, jobs = run_job_get }

-- `llamacloud batches ...` and `llamacloud jobs ...`.
local function run_group(argv)
  local group, word = argv[1], argv[2]
  local group_help = group == "batches" and M.BATCHES_USAGE or M.JOBS_USAGE
  if word == nil then
    io.stderr:write(group_help)
    return EXIT.USAGE
  end
  if word == "--help" or word == "-h" or word == "help" then
    out(group_help)
    return EXIT.OK
  end
  local command = COMMAND_OF[group .. " " .. word]
  if not command then
    return usage_error("unknown command '" .. group .. " " .. word .. "'", "llamacloud " .. group .. " --help")
  end
  local help = "llamacloud " .. group .. " " .. word .. " --help"
  local ids, flags = parse_args(argv, 3, command)
  if not ids then return usage_error(flags, help) end
  if flags.help then
    out(M.command_usage(command))
    return EXIT.OK
  end
  if command == "get" or command == "wait" then return run_get_wait(command, ids, flags) end
  local core = require("llamacloud.core")
  local progress = { batch = function() end, file = function() end, tick = function() end, finish = function() end }
  if command == "files" then
    local mode = "off"
    if not flags.quiet then
      if core.isatty(2) then mode = "tty" elseif flags.progress then mode = "lines" end
    end
    if mode ~= "off" then
      progress = require("llamacloud.progress").files(ids[1] or "", mode, io.stderr,
        { now = core.now, size = terminal_size_reader(core.now) })
    end
  end
  local client, code = new_client(function() progress.tick() end)
  if not client then return code end
  code = RUNNERS[command](client, ids, flags, progress)
  client.close()
  return code
end

-- fake-server's own parser reads the rest; a --scenario that cannot be read (a directory, a
-- missing file) is refused here as a usage error naming the flag.
local function run_fake_server(argv)
  local rest = {}
  for i = 2, #argv do
    local a = argv[i]
    rest[#rest + 1] = a
    local path = a:match("^%-%-scenario=(.*)$")
    if a == "--scenario" then path = argv[i + 1] end
    if path and path ~= "" then
      local f, err = io.open(path, "rb")
      if f then
        local text, rerr = f:read(1)
        f:close()
        if text == nil and rerr then err = rerr; f = nil end
      end
      if not f then return usage_error("--scenario " .. path .. ": " .. tostring(err), "llamacloud fake-server --help") end
    end
  end
  return require("llamacloud.fake_server").main(rest)
end

-- Completion scripts, built from M.COMMANDS, M.FLAGS and M.fake_server_flags() so they name every
-- command and flag (cli_spec: "completion").
local TOP = {
  { "batches", "get, wait for, create, list, cancel batches; their files' jobs" },
  { "jobs", "get a parse or extract job" },
  { "fake-server", "serve a local fake LlamaCloud" },
  { "completion", "print a shell completion script" },
  { "help", "show the usage" },
}
local SHELLS = { "bash", "zsh", "fish" }
local GROUPS = { "batches", "jobs" }

-- The words after a group: "get wait create list cancel files".
local function words_of(group)
  local words = {}
  for _, c in ipairs(M.COMMANDS) do
    if c[2]:match("^%S+") == group then words[#words + 1] = c[2]:match("%S+$") end
  end
  return words
end

local function names_of(command)
  local seen, names = {}, {}
  for _, f in ipairs(M.FLAGS) do
    if f[4][command] and not seen[f[1]] then
      seen[f[1]] = true
      names[#names + 1] = f[1]
    end
  end
  names[#names + 1] = "--help"
  return table.concat(names, " ")
end

-- Flags whose value is free text: nothing to complete.
local function valued(fake_flags)
  local names, seen = {}, {}
  for _, f in ipairs(M.FLAGS) do
    if f[2] ~= "flag" and f[2] ~= "secret" and not f.values and not seen[f[1]] then
      seen[f[1]] = true
      names[#names + 1] = f[1]
    end
  end
  for _, f in ipairs(fake_flags) do
    if f[1] ~= "--scenario" and not seen[f[1]] then names[#names + 1] = f[1] end
  end
  return names
end

-- { flag name, "v1 v2 ..." } for each flag with fixed values.
local function value_flags()
  local list = {}
  for _, f in ipairs(M.FLAGS) do
    if f.values then list[#list + 1] = { f[1], table.concat(f.values, " ") } end
  end
  return list
end

local function fake_names(fake_flags)
  local names = {}
  for _, f in ipairs(fake_flags) do names[#names + 1] = f[1] end
  names[#names + 1] = "--help"
  return table.concat(names, " ")
end

local function top_names()
  local names = {}
  for _, c in ipairs(TOP) do names[#names + 1] = c[1] end
  return table.concat(names, " ")
end

local function secret_flag()
  for _, f in ipairs(M.FLAGS) do
    if f[2] == "secret" then return f[1] end
  end
end

function M.completion(shell)
  local fake_flags = M.fake_server_flags()
  local types = table.concat(M.JOB_TYPES, " ")
  if shell == "bash" then
    local lines = {
      "# bash completion for llamacloud; load it with: source <(llamacloud completion bash)",
      "_llamacloud() {",
      '  local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}',
      '  case "$prev" in',
    }
    local function add(l) lines[#lines + 1] = l end
    for _, v in ipairs(value_flags()) do
      add("    " .. v[1] .. ') COMPREPLY=($(compgen -W "' .. v[2] .. '" -- "$cur")); return ;;')
    end
    add("    " .. secret_flag() .. ') COMPREPLY=($(compgen -v -- "$cur")); return ;;')
    add('    --scenario) COMPREPLY=($(compgen -f -- "$cur")); return ;;')
    add("    " .. table.concat(valued(fake_flags), "|") .. ") return ;;")
    add("  esac")
    add("  if [[ $COMP_CWORD -eq 1 ]]; then")
    add('    COMPREPLY=($(compgen -W "' .. top_names() .. ' --help --version" -- "$cur")); return')
    add("  fi")
    add('  case "${COMP_WORDS[1]}" in')
    for _, group in ipairs(GROUPS) do
      add("    " .. group .. ")")
      add("      if [[ $COMP_CWORD -eq 2 ]]; then")
      add('        COMPREPLY=($(compgen -W "' .. table.concat(words_of(group), " ") .. ' --help" -- "$cur")); return')
      add("      fi")
      if group == "jobs" then
        add('      if [[ ${COMP_WORDS[2]} == get && $COMP_CWORD -eq 3 && $cur != -* ]]; then')
        add('        COMPREPLY=($(compgen -W "' .. types .. '" -- "$cur")); return')
        add("      fi")
      end
      add('      [[ $cur == -* ]] || return')
      add('      case "${COMP_WORDS[2]}" in')
      for _, c in ipairs(M.COMMANDS) do
        if c[2]:match("^%S+") == group then
          add("        " .. c[2]:match("%S+$") .. ') COMPREPLY=($(compgen -W "' .. names_of(c[1]) .. '" -- "$cur")) ;;')
        end
      end
      add("      esac ;;")
    end
    add('    fake-server) COMPREPLY=($(compgen -W "' .. fake_names(fake_flags) .. '" -- "$cur")) ;;')
    add('    completion) [[ $COMP_CWORD -eq 2 ]] && COMPREPLY=($(compgen -W "' .. table.concat(SHELLS, " ")
      .. '" -- "$cur")) ;;')
    add("  esac")
    add("}")
    add("complete -F _llamacloud llamacloud")
    add("")
    return table.concat(lines, "\n")
  elseif shell == "zsh" then
    local lines = {
      "#compdef llamacloud",
      "# zsh completion for llamacloud: save as _llamacloud in a directory of $fpath,",
      "# or load it with: source <(llamacloud completion zsh)",
      "_llamacloud() {",
      "  local cur=${words[CURRENT]} prev=${words[CURRENT-1]}",
      '  case "$prev" in',
    }
    local function add(l) lines[#lines + 1] = l end
    for _, v in ipairs(value_flags()) do add("    " .. v[1] .. ") compadd -- " .. v[2] .. "; return ;;") end
    add("    " .. secret_flag() .. ") _parameters; return ;;")
    add("    --scenario) _files; return ;;")
    add("    " .. table.concat(valued(fake_flags), "|") .. ") return ;;")
    add("  esac")
    add("  if (( CURRENT == 2 )); then")
    add("    compadd -- " .. top_names() .. " --help --version; return")
    add("  fi")
    add('  case "${words[2]}" in')
    for _, group in ipairs(GROUPS) do
      add("    " .. group .. ")")
      add("      if (( CURRENT == 3 )); then compadd -- " .. table.concat(words_of(group), " ") .. " --help; return; fi")
      if group == "jobs" then
        add('      if [[ ${words[3]} == get && $cur != -* ]] && (( CURRENT == 4 )); then compadd -- ' .. types
          .. "; return; fi")
      end
      add("      [[ $cur == -* ]] || return")
      add('      case "${words[3]}" in')
      for _, c in ipairs(M.COMMANDS) do
        if c[2]:match("^%S+") == group then
          add("        " .. c[2]:match("%S+$") .. ") compadd -- " .. names_of(c[1]) .. " ;;")
        end
      end
      add("      esac ;;")
    end
    add("    fake-server) compadd -- " .. fake_names(fake_flags) .. " ;;")
    add("    completion) (( CURRENT == 3 )) && compadd -- " .. table.concat(SHELLS, " ") .. " ;;")
    add("  esac")
    add("}")
    add('if [[ "${zsh_eval_context[-1]}" == loadautofunc ]]; then')
    add('  _llamacloud "$@"')
    add("else")
    add("  compdef _llamacloud llamacloud")
    add("fi")
    add("")
    return table.concat(lines, "\n")
  elseif shell == "fish" then
    local lines = {
      "# fish completion for llamacloud: llamacloud completion fish > ~/.config/fish/completions/llamacloud.fish",
      "complete -c llamacloud -f",
    }
    local function add(s) lines[#lines + 1] = s end
    local function quote(s) return "'" .. s:gsub("\\", "\\\\"):gsub("'", "\\'") .. "'" end
    for _, c in ipairs(TOP) do
      add("complete -c llamacloud -n __fish_use_subcommand -a " .. c[1] .. " -d " .. quote(c[2]))
    end
    add("complete -c llamacloud -n __fish_use_subcommand -l version -d 'print the version'")
    add("complete -c llamacloud -s h -l help -d 'show the usage'")
    for _, group in ipairs(GROUPS) do
      local words = table.concat(words_of(group), " ")
      add("complete -c llamacloud -n '__fish_seen_subcommand_from " .. group .. "; and not __fish_seen_subcommand_from "
        .. words .. "' -a '" .. words .. "'")
    end
    add("complete -c llamacloud -n '__fish_seen_subcommand_from jobs; and __fish_seen_subcommand_from get; and not"
      .. " __fish_seen_subcommand_from " .. types .. "' -a '" .. types .. "'")
    for _, f in ipairs(M.FLAGS) do
      for _, group in ipairs(GROUPS) do
        local words = {}
        for _, c in ipairs(M.COMMANDS) do
          if f[4][c[1]] and c[2]:match("^%S+") == group then words[#words + 1] = c[2]:match("%S+$") end
        end
        if #words > 0 then
          local arg = ""
          if f[2] == "secret" then arg = " -x -a '(set -n)'"
          elseif f[2] ~= "flag" then arg = f.values and (" -x -a " .. quote(table.concat(f.values, " "))) or " -x" end
          add("complete -c llamacloud -n '__fish_seen_subcommand_from " .. group .. "; and __fish_seen_subcommand_from "
            .. table.concat(words, " ") .. "' -l " .. f[1]:sub(3) .. arg .. " -d " .. quote(f[6]))
        end
      end
    end
    for _, f in ipairs(fake_flags) do
      add("complete -c llamacloud -n '__fish_seen_subcommand_from fake-server' -l " .. f[1]:sub(3)
        .. (f[1] == "--scenario" and " -r -F" or " -x") .. " -d " .. quote(f[3]))
    end
    add("complete -c llamacloud -n '__fish_seen_subcommand_from completion' -a '" .. table.concat(SHELLS, " ") .. "'")
    add("")
    return table.concat(lines, "\n")
  end
end

local HELP_WORDS = { ["--help"] = true, ["-h"] = true, help = true }

local function run(argv)
  local command = argv[1]
  if command == nil then
    io.stderr:write(M.USAGE)
    return EXIT.USAGE
  end
  if HELP_WORDS[command] then
    out(M.USAGE)
    return EXIT.OK
  end
  if command == "--version" then
    out("llamacloud ", require("llamacloud.core").VERSION, "\n")
    return EXIT.OK
  end
  if command == "batches" or command == "jobs" then return run_group(argv) end
  if command == "fake-server" then return run_fake_server(argv) end
  if command == "completion" then
    local shell = argv[2]
    if HELP_WORDS[shell] then
      out("Usage: llamacloud completion bash|zsh|fish\n\nPrints a completion script for the shell, e.g.\n",
        "  source <(llamacloud completion bash)\n")
      return EXIT.OK
    end
    local script = shell and M.completion(shell)
    if not script or argv[3] ~= nil then
      return usage_error("completion needs one shell: bash, zsh or fish")
    end
    out(script)
    return EXIT.OK
  end
  return usage_error("unknown command '" .. command .. "'")
end

-- Ctrl-C: plain Lua turns SIGINT into the error "interrupted!" at the next Lua instruction.
local function interrupted(err)
  return type(err) == "string" and err:find("interrupted!$") ~= nil
end

function M.main(argv)
  argv = argv or {}
  stdout_err = nil
  local ok, code = xpcall(function() return run(argv) end, function(err)
    if interrupted(err) then return err end
    return debug.traceback(tostring(err), 2)
  end)
  if not ok then
    if interrupted(code) then return EXIT.INTERRUPTED end
    io.stderr:write("llamacloud: internal error (please report it): ", tostring(code), "\n")
    return EXIT.SOFTWARE
  end
  local werr = flush_stdout()
  if werr then
    io.stderr:write("llamacloud: cannot write to standard output: ", tostring(werr), "\n")
    return EXIT.API
  end
  return code
end

return M
