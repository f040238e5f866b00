-- The help texts: the usage, `llamacloud batches --help` and each command's --help, built from the flag table.
local flags = require("llamacloud.cli.flags")

local M = {}
local COMMANDS, FLAGS = flags.COMMANDS, flags.FLAGS

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
  fake-server [--port N] [--host H] [--scenario FILE] [--log-limit N]
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

-- A --help text from its lines: the options' last line, then how values are written and the exit codes.
local function with_ending(lines)
  lines[#lines + 1] = "  -h, --help                  this text"
  lines[#lines + 1] = ""
  for _, l in ipairs(NUMBERS_TEXT) do lines[#lines + 1] = l end
  lines[#lines + 1] = ""
  for _, l in ipairs(EXIT_TEXT) do lines[#lines + 1] = l end
  lines[#lines + 1] = ""
  return table.concat(lines, "\n")
end

local function flag_line(f, group)
  local line = string.format("  %-26s  %s", f[1] .. (f[5] and (" " .. f[5]) or ""), f[6])
  if group then
    local names, all = {}, true
    for _, c in ipairs(COMMANDS) do
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
  for _, c in ipairs(COMMANDS) do
    if c[2]:match("^%S+") == group then
      lines[#lines + 1] = usage_line(c, first)
      first = false
    end
  end
  lines[#lines + 1] = ""
  for _, c in ipairs(COMMANDS) do
    if c[2]:match("^%S+") == group then lines[#lines + 1] = string.format("  %-15s %s", c[2]:match("%S+$"), c[4]) end
  end
  lines[#lines + 1] = ""
  lines[#lines + 1] = "Options (the commands that take each one in brackets):"
  for _, f in ipairs(FLAGS) do
    local mine = false
    for _, c in ipairs(COMMANDS) do mine = mine or (f[4][c[1]] and c[2]:match("^%S+") == group) end
    if mine then lines[#lines + 1] = flag_line(f, group) end
  end
  return with_ending(lines)
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
  for _, c in ipairs(COMMANDS) do
    if c[1] == command then
      local lines = { usage_line(c, true), "", c[4]:sub(1, 1):upper() .. c[4]:sub(2) .. ".", "" }
      if DETAILS[command] then
        lines[#lines + 1] = DETAILS[command]
        lines[#lines + 1] = ""
      end
      lines[#lines + 1] = "Options:"
      for _, f in ipairs(FLAGS) do
        if f[4][command] then lines[#lines + 1] = flag_line(f) end
      end
      return with_ending(lines)
    end
  end
end

M.BATCHES_USAGE = group_usage("batches")
M.JOBS_USAGE = M.command_usage("jobs")

return M
