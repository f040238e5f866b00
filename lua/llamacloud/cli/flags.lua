-- The commands and their flags, as one table each, and argv parsed against them.
local M = {}

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
M.COMMAND_OF = COMMAND_OF

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

-- A value echoed in a message, cut if long.
local function shorten(s)
  if #s > 40 then return s:sub(1, 37) .. "..." end
  return s
end
M.shorten = shorten

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
function M.parse_args(argv, first, command)
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
-- nil for any other error. cli_spec calls it.
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

return M
