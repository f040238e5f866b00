-- The llamacloud command: argv in, exit code out.
local M = {}

-- 70 is sysexits' EX_SOFTWARE: a bug in llamacloud (the trace is on stderr); 130 is the shells' code
-- for a process ended by SIGINT (128 + 2).
M.EXIT = { OK = 0, FAILED = 1, USAGE = 2, API = 3, TIMEOUT = 4, SOFTWARE = 70, INTERRUPTED = 130 }
local EXIT = M.EXIT

-- The options of `batches get` and `batches wait`, in the order --help lists them.
-- kind: "number" (seconds, decimal, > 0), "count" (whole, decimal, >= 0), "string", "list"
-- (repeatable) or "flag" (no value). key: the library option it sets. commands: where it applies.
-- values: the only values it takes (for completion too).
local BOTH, GET, WAIT = { get = true, wait = true }, { get = true }, { wait = true }
M.FLAGS = {
  { "--expand", "list", "expand", BOTH, "NAME", "expand a field, repeatable (--expand results)" },
  { "--project-id", "string", "project_id", BOTH, "ID", "the project_id query parameter" },
  { "--organization-id", "string", "organization_id", BOTH, "ID", "the organization_id query parameter" },
  { "--pretty", "flag", "pretty", BOTH, nil, "indent the JSON (the default when stdout is a terminal)" },
  { "--compact", "flag", "compact", BOTH, nil, "print the JSON as the server sent it (the default when piped)" },
  { "--max-retries", "count", "max_retries", BOTH, "N", "retries of each request, 0 to 100 (default 2)" },
  { "--concurrency", "count", "concurrency", BOTH, "N",
    "requests in flight at once for several ids, 1 to 10000 (default 16)" },
  { "--timeout", "number", "timeout", GET, "S", "seconds for each attempt (default 60)" },
  { "--timeout", "number", "timeout", WAIT, "S", "give up after S seconds in all (default 7200)" },
  { "--request-timeout", "number", "request_timeout", WAIT, "S", "seconds for each attempt (default 60)" },
  { "--interval", "number", "interval", WAIT, "S", "pause after the first poll (default 1)" },
  { "--max-interval", "number", "max_interval", WAIT, "S", "longest pause between polls (default 5)" },
  { "--backoff", "string", "backoff", WAIT, "KIND", "linear (default), exponential or constant",
    values = { "linear", "exponential", "constant" } },
  { "--progress", "flag", "progress", WAIT, nil, "progress lines on stderr even when it is not a terminal" },
  { "--quiet", "flag", "quiet", WAIT, nil, "no progress" },
}

-- command -> flag name -> { name, kind, key, commands, arg, help, values = ... }
local FLAGS_OF = { get = {}, wait = {} }
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
  batches get ID... [options]    print each batch as the server sent it (JSON)
  batches wait ID... [options]   poll until each batch is COMPLETED, FAILED or CANCELLED,
                                 then print it
  fake-server [--port N] [--host H] [--scenario FILE]
                                 serve a local fake LlamaCloud on 127.0.0.1
  completion bash|zsh|fish       print a shell completion script
  help                           this text (also: llamacloud COMMAND --help)

Options:
  -h, --help                     this text
  --version                      print the version

Run `llamacloud batches --help` for the options of get and wait.

Environment: LLAMA_CLOUD_API_KEY (or LLAMA_PARSE_API_KEY), LLAMA_CLOUD_BASE_URL,
LLAMA_CLOUD_CUSTOM_HEADERS, LLAMA_CLOUD_LOG=debug (each attempt on stderr).

Exit codes: 0 done (COMPLETED for wait), 1 FAILED or CANCELLED, 2 usage
(or no API key), 3 API or network error (or stdout could not be written),
4 wait timed out, 130 interrupted (Ctrl-C).
]]

local function option_lines(command, only)
  local lines = {}
  for _, f in ipairs(M.FLAGS) do
    local c = f[4]
    if (only and c[command] and not c[only == "get" and "wait" or "get"]) or (not only and c.get and c.wait) then
      lines[#lines + 1] = string.format("  %-22s  %s", f[1] .. (f[5] and (" " .. f[5]) or ""), f[6])
    end
  end
  return table.concat(lines, "\n")
end

M.BATCHES_USAGE = table.concat({
  "Usage: llamacloud batches get ID... [options]",
  "       llamacloud batches wait ID... [options]",
  "",
  "One id prints its JSON object; several run at once and print a JSON array.",
  "",
  "Options for get and wait:",
  option_lines(),
  "  -h, --help              this text",
  "Option of get:",
  option_lines("get", "get"),
  "Options of wait:",
  option_lines("wait", "wait"),
  "",
  "Numbers are decimal; seconds may be fractions (--interval 0.2). A value may follow its",
  "option (--interval 2) or be joined to it (--interval=2; needed for a value starting with",
  "'-'). `--` ends the options: every word after it is an id.",
  "",
  "Exit codes: 0 done (COMPLETED for wait), 1 FAILED or CANCELLED, 2 usage",
  "(or no API key), 3 API or network error (or stdout could not be written),",
  "4 wait timed out, 130 interrupted (Ctrl-C).",
  "",
}, "\n")

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
        if command == "get" and FLAGS_OF.wait[name] then return nil, name .. " is an option of wait, not of get" end
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
        if kind == "number" or kind == "count" then
          local n = decimal(value, kind == "count")
          if not n or not (n > 0 or (kind == "count" and n == 0)) or n == math.huge then
            return nil, name .. " needs " .. (kind == "count" and "a whole decimal number" or
              "a positive decimal number") .. " (got '" .. shorten(value) .. "')"
          end
          flags[key] = n
          flags.given[key] = value
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
    if command == "wait" and key == "timeout" and fn == "get" then key = "request_timeout" end
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
  function H.get(ud, id, opts, want_raw)
    return ud:get(id, opts, want_raw)
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

local function run_batches(argv)
  local command = argv[2]
  if command == nil then
    io.stderr:write(M.BATCHES_USAGE)
    return EXIT.USAGE
  end
  if command == "--help" or command == "-h" or command == "help" then
    out(M.BATCHES_USAGE)
    return EXIT.OK
  end
  if command ~= "get" and command ~= "wait" then
    return usage_error("unknown command 'batches " .. command .. "'", "llamacloud batches --help")
  end
  local ids, flags = parse_args(argv, 3, command)
  if not ids then return usage_error(flags, "llamacloud batches --help") end
  if flags.help then
    out(M.BATCHES_USAGE)
    return EXIT.OK
  end
  if #ids == 0 then
    return usage_error("batches " .. command .. " needs at least one batch id", "llamacloud batches --help")
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

-- Completion scripts, built from M.FLAGS and M.fake_server_flags() so they name every command and flag.
local COMMANDS = {
  { "batches", "get or wait for batches" },
  { "fake-server", "serve a local fake LlamaCloud" },
  { "completion", "print a shell completion script" },
  { "help", "show the usage" },
}
local SHELLS = { "bash", "zsh", "fish" }

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

local function valued(fake_flags)
  local names, seen = {}, {}
  for _, f in ipairs(M.FLAGS) do
    if f[2] ~= "flag" and not f.values and not seen[f[1]] then
      seen[f[1]] = true
      names[#names + 1] = f[1]
    end
  end
  for _, f in ipairs(fake_flags) do
    if f[1] ~= "--scenario" and not seen[f[1]] then names[#names + 1] = f[1] end
  end
  return names
end

local function fake_names(fake_flags)
  local names = {}
  for _, f in ipairs(fake_flags) do names[#names + 1] = f[1] end
  names[#names + 1] = "--help"
  return table.concat(names, " ")
end

local function command_names()
  local names = {}
  for _, c in ipairs(COMMANDS) do names[#names + 1] = c[1] end
  return table.concat(names, " ")
end

local function backoff_values()
  for _, f in ipairs(M.FLAGS) do
    if f.values then return f[1], table.concat(f.values, " ") end
  end
end

function M.completion(shell)
  local backoff, kinds = backoff_values()
  local fake_flags = M.fake_server_flags()
  if shell == "bash" then
    return table.concat({
      "# bash completion for llamacloud; load it with: source <(llamacloud completion bash)",
      "_llamacloud() {",
      '  local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}',
      '  case "$prev" in',
      "    " .. backoff .. ') COMPREPLY=($(compgen -W "' .. kinds .. '" -- "$cur")); return ;;',
      '    --scenario) COMPREPLY=($(compgen -f -- "$cur")); return ;;',
      "    " .. table.concat(valued(fake_flags), "|") .. ") return ;;",
      "  esac",
      "  if [[ $COMP_CWORD -eq 1 ]]; then",
      '    COMPREPLY=($(compgen -W "' .. command_names() .. ' --help --version" -- "$cur")); return',
      "  fi",
      '  case "${COMP_WORDS[1]}" in',
      "    batches)",
      "      if [[ $COMP_CWORD -eq 2 ]]; then",
      '        COMPREPLY=($(compgen -W "get wait --help" -- "$cur")); return',
      "      fi",
      '      [[ $cur == -* ]] || return',
      '      case "${COMP_WORDS[2]}" in',
      '        get) COMPREPLY=($(compgen -W "' .. names_of("get") .. '" -- "$cur")) ;;',
      '        wait) COMPREPLY=($(compgen -W "' .. names_of("wait") .. '" -- "$cur")) ;;',
      "      esac ;;",
      '    fake-server) COMPREPLY=($(compgen -W "' .. fake_names(fake_flags) .. '" -- "$cur")) ;;',
      '    completion) [[ $COMP_CWORD -eq 2 ]] && COMPREPLY=($(compgen -W "' .. table.concat(SHELLS, " ")
        .. '" -- "$cur")) ;;',
      "  esac",
      "}",
      "complete -F _llamacloud llamacloud",
      "",
    }, "\n")
  elseif shell == "zsh" then
    return table.concat({
      "#compdef llamacloud",
      "# zsh completion for llamacloud: save as _llamacloud in a directory of $fpath,",
      "# or load it with: source <(llamacloud completion zsh)",
      "_llamacloud() {",
      "  local cur=${words[CURRENT]} prev=${words[CURRENT-1]}",
      '  case "$prev" in',
      "    " .. backoff .. ") compadd -- " .. kinds .. "; return ;;",
      "    --scenario) _files; return ;;",
      "    " .. table.concat(valued(fake_flags), "|") .. ") return ;;",
      "  esac",
      "  if (( CURRENT == 2 )); then",
      "    compadd -- " .. command_names() .. " --help --version; return",
      "  fi",
      '  case "${words[2]}" in',
      "    batches)",
      "      if (( CURRENT == 3 )); then compadd -- get wait --help; return; fi",
      "      [[ $cur == -* ]] || return",
      '      case "${words[3]}" in',
      "        get) compadd -- " .. names_of("get") .. " ;;",
      "        wait) compadd -- " .. names_of("wait") .. " ;;",
      "      esac ;;",
      "    fake-server) compadd -- " .. fake_names(fake_flags) .. " ;;",
      "    completion) (( CURRENT == 3 )) && compadd -- " .. table.concat(SHELLS, " ") .. " ;;",
      "  esac",
      "}",
      'if [[ "${zsh_eval_context[-1]}" == loadautofunc ]]; then',
      '  _llamacloud "$@"',
      "else",
      "  compdef _llamacloud llamacloud",
      "fi",
      "",
    }, "\n")
  elseif shell == "fish" then
    local lines = {
      "# fish completion for llamacloud: llamacloud completion fish > ~/.config/fish/completions/llamacloud.fish",
      "complete -c llamacloud -f",
    }
    local function add(s) lines[#lines + 1] = s end
    local function quote(s) return "'" .. s:gsub("\\", "\\\\"):gsub("'", "\\'") .. "'" end
    for _, c in ipairs(COMMANDS) do
      add("complete -c llamacloud -n __fish_use_subcommand -a " .. c[1] .. " -d " .. quote(c[2]))
    end
    add("complete -c llamacloud -n __fish_use_subcommand -l version -d 'print the version'")
    add("complete -c llamacloud -s h -l help -d 'show the usage'")
    add("complete -c llamacloud -n '__fish_seen_subcommand_from batches; and not __fish_seen_subcommand_from get wait'"
      .. " -a 'get wait'")
    for _, f in ipairs(M.FLAGS) do
      local cond = f[4].get and f[4].wait and "get wait" or (f[4].get and "get" or "wait")
      local arg = ""
      if f[2] ~= "flag" then arg = f.values and (" -x -a " .. quote(table.concat(f.values, " "))) or " -x" end
      add("complete -c llamacloud -n '__fish_seen_subcommand_from batches; and __fish_seen_subcommand_from "
        .. cond .. "' -l " .. f[1]:sub(3) .. arg .. " -d " .. quote(f[6]))
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
  if command == "batches" then return run_batches(argv) end
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
