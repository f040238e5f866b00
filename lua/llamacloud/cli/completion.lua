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

function M.completion(shell)
  local fake_flags = help.fake_server_flags()
  local types = table.concat(flags.JOB_TYPES, " ")
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
      for _, c in ipairs(COMMANDS) do
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
      for _, c in ipairs(COMMANDS) do
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
