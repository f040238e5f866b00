-- The llamacloud command: argv in, exit code out.
local flags = require("llamacloud.cli.flags")
local help = require("llamacloud.cli.help")
local completion = require("llamacloud.cli.completion")
local output = require("llamacloud.cli.output")
local client = require("llamacloud.cli.client")
local commands = require("llamacloud.cli.commands")

-- The tables and helpers of the parts, exported as before the split: cli_spec and cli_workflow_spec
-- read them.
local M = {
  EXIT = output.EXIT,
  COMMANDS = flags.COMMANDS, FLAGS = flags.FLAGS, STATUSES = flags.STATUSES, JOB_TYPES = flags.JOB_TYPES,
  command_name = flags.command_name, flag_error = flags.flag_error,
  USAGE = help.USAGE, BATCHES_USAGE = help.BATCHES_USAGE, JOBS_USAGE = help.JOBS_USAGE,
  command_usage = help.command_usage, fake_server_flags = help.fake_server_flags,
  completion = completion.completion,
  SLICE = client.SLICE, slicing_host = client.slicing_host,
  files_code = commands.files_code,
}
local EXIT = output.EXIT
local out, usage_error = output.out, output.usage_error

local HELP_WORDS = { ["--help"] = true, ["-h"] = true, help = true }

-- `llamacloud batches ...` and `llamacloud jobs ...`.
local function run_group(argv)
  local group, word = argv[1], argv[2]
  local group_help = group == "batches" and help.BATCHES_USAGE or help.JOBS_USAGE
  if word == nil then
    io.stderr:write(group_help)
    return EXIT.USAGE
  end
  if HELP_WORDS[word] then
    out(group_help)
    return EXIT.OK
  end
  local command = flags.COMMAND_OF[group .. " " .. word]
  if not command then
    return usage_error("unknown command '" .. group .. " " .. word .. "'", "llamacloud " .. group .. " --help")
  end
  local ids, parsed = flags.parse_args(argv, 3, command)
  if not ids then return usage_error(parsed, "llamacloud " .. group .. " " .. word .. " --help") end
  if parsed.help then
    out(help.command_usage(command))
    return EXIT.OK
  end
  return commands.run(command, ids, parsed)
end

local function run(argv)
  local command = argv[1]
  if command == nil then
    io.stderr:write(help.USAGE)
    return EXIT.USAGE
  end
  if HELP_WORDS[command] then
    out(help.USAGE)
    return EXIT.OK
  end
  if command == "--version" then
    out("llamacloud ", require("llamacloud.core").VERSION, "\n")
    return EXIT.OK
  end
  if command == "batches" or command == "jobs" then return run_group(argv) end
  if command == "fake-server" then return commands.fake_server(argv) end
  if command == "completion" then
    local shell = argv[2]
    if HELP_WORDS[shell] then
      out("Usage: llamacloud completion bash|zsh|fish\n\nPrints a completion script for the shell, e.g.\n",
        "  source <(llamacloud completion bash)\n")
      return EXIT.OK
    end
    local script = shell and completion.completion(shell)
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
  output.reset()
  local ok, code = xpcall(function() return run(argv) end, function(err)
    if interrupted(err) then return err end
    return debug.traceback(tostring(err), 2)
  end)
  if not ok then
    if interrupted(code) then return EXIT.INTERRUPTED end
    io.stderr:write("llamacloud: internal error (please report it): ", tostring(code), "\n")
    return EXIT.SOFTWARE
  end
  local werr = output.flush()
  if werr then
    io.stderr:write("llamacloud: cannot write to standard output: ", tostring(werr), "\n")
    return EXIT.API
  end
  return code
end

return M
