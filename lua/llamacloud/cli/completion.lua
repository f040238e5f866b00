-- The shell completion scripts (bash, zsh, fish), built from the flag table so they name every command and flag.
local flags = require("llamacloud.cli.flags")
local help = require("llamacloud.cli.help")

local M = {}
local COMMANDS, FLAGS = flags.COMMANDS, flags.FLAGS

-- Every command and flag, fake-server's too, is named by each script (cli_spec: "completion").
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
  for _, c in ipairs(COMMANDS) do
    if c[2]:match("^%S+") == group then words[#words + 1] = c[2]:match("%S+$") end
  end
  return words
end

local function names_of(command)
  local seen, names = {}, {}
  for _, f in ipairs(FLAGS) do
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
  for _, f in ipairs(FLAGS) do
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
  for _, f in ipairs(FLAGS) do
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
  for _, f in ipairs(FLAGS) do
    if f[2] == "secret" then return f[1] end
  end
end

-- How bash and zsh say what the `case` script below needs: offer(words), at(n) (the word being
-- completed is word n), word(n), the variables and the files to complete, and the lines that differ.
local CASE_SHELLS = {
  bash = {
    head = {
      "# bash completion for llamacloud; load it with: source <(llamacloud completion bash)",
      "_llamacloud() {",
      '  local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}',
    },
    offer = function(words) return 'COMPREPLY=($(compgen -W "' .. words .. '" -- "$cur"))' end,
    at = function(n) return "[[ $COMP_CWORD -eq " .. n .. " ]]" end,
    word = function(n) return "${COMP_WORDS[" .. n .. "]}" end,
    variables = 'COMPREPLY=($(compgen -v -- "$cur"))',
    files = 'COMPREPLY=($(compgen -f -- "$cur"))',
    group_words = function(sh, add, words)
      add("      if " .. sh.at(2) .. "; then")
      add("        " .. sh.offer(words) .. "; return")
      add("      fi")
    end,
    job_types = function(sh, add, types)
      add("      if [[ " .. sh.word(2) .. " == get && $COMP_CWORD -eq 3 && $cur != -* ]]; then")
      add("        " .. sh.offer(types) .. "; return")
      add("      fi")
    end,
    tail = { "complete -F _llamacloud llamacloud" },
  },
  zsh = {
    head = {
      "#compdef llamacloud",
      "# zsh completion for llamacloud: save as _llamacloud in a directory of $fpath,",
      "# or load it with: source <(llamacloud completion zsh)",
      "_llamacloud() {",
      "  local cur=${words[CURRENT]} prev=${words[CURRENT-1]}",
    },
    offer = function(words) return "compadd -- " .. words end,
    at = function(n) return "(( CURRENT == " .. (n + 1) .. " ))" end,
    word = function(n) return "${words[" .. (n + 1) .. "]}" end,
    variables = "_parameters",
    files = "_files",
    group_words = function(sh, add, words)
      add("      if " .. sh.at(2) .. "; then " .. sh.offer(words) .. "; return; fi")
    end,
    job_types = function(sh, add, types)
      add("      if [[ " .. sh.word(2) .. " == get && $cur != -* ]] && " .. sh.at(3) .. "; then "
        .. sh.offer(types) .. "; return; fi")
    end,
    tail = {
      'if [[ "${zsh_eval_context[-1]}" == loadautofunc ]]; then',
      '  _llamacloud "$@"',
      "else",
      "  compdef _llamacloud llamacloud",
      "fi",
    },
  },
}

-- The bash or zsh script: a `case` on the word before (a flag's values), then on the words so far.
local function case_script(sh, fake_flags, types)
  local lines = {}
  local function add(l) lines[#lines + 1] = l end
  for _, l in ipairs(sh.head) do add(l) end
  add('  case "$prev" in')
  for _, v in ipairs(value_flags()) do add("    " .. v[1] .. ") " .. sh.offer(v[2]) .. "; return ;;") end
  add("    " .. secret_flag() .. ") " .. sh.variables .. "; return ;;")
  add("    --scenario) " .. sh.files .. "; return ;;")
  add("    " .. table.concat(valued(fake_flags), "|") .. ") return ;;")
  add("  esac")
  add("  if " .. sh.at(1) .. "; then")
  add("    " .. sh.offer(top_names() .. " --help --version") .. "; return")
  add("  fi")
  add('  case "' .. sh.word(1) .. '" in')
  for _, group in ipairs(GROUPS) do
    add("    " .. group .. ")")
    sh.group_words(sh, add, table.concat(words_of(group), " ") .. " --help")
    if group == "jobs" then sh.job_types(sh, add, types) end
    add("      [[ $cur == -* ]] || return")
    add('      case "' .. sh.word(2) .. '" in')
    for _, c in ipairs(COMMANDS) do
      if c[2]:match("^%S+") == group then
        add("        " .. c[2]:match("%S+$") .. ") " .. sh.offer(names_of(c[1])) .. " ;;")
      end
    end
    add("      esac ;;")
  end
  add("    fake-server) " .. sh.offer(fake_names(fake_flags)) .. " ;;")
  add("    completion) " .. sh.at(2) .. " && " .. sh.offer(table.concat(SHELLS, " ")) .. " ;;")
  add("  esac")
  add("}")
  for _, l in ipairs(sh.tail) do add(l) end
  add("")
  return table.concat(lines, "\n")
end

function M.completion(shell)
  local fake_flags = help.fake_server_flags()
  local types = table.concat(flags.JOB_TYPES, " ")
  if CASE_SHELLS[shell] then
    return case_script(CASE_SHELLS[shell], fake_flags, types)
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
    for _, f in ipairs(FLAGS) do
      for _, group in ipairs(GROUPS) do
        local words = {}
        for _, c in ipairs(COMMANDS) do
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

return M
