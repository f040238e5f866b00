-- The commands that send requests (batches get, wait, create, list, cancel, files; jobs get) and fake-server.
local cli_flags = require("llamacloud.cli.flags")
local output = require("llamacloud.cli.output")
local clients = require("llamacloud.cli.client")

local M = {}
local EXIT = output.EXIT
local flag_error, shorten, command_name = cli_flags.flag_error, cli_flags.shorten, cli_flags.command_name
local usage_error, api_error, print_value = output.usage_error, output.api_error, output.print_value

-- The library options the command line passes on. The flag table sets only the keys a command
-- takes, so one list serves every command.
local function call_options(flags)
  return {
    expand = flags.expand, job_expand = flags.job_expand, project_id = flags.project_id,
    organization_id = flags.organization_id, max_retries = flags.max_retries, concurrency = flags.concurrency,
    timeout = flags.timeout, request_timeout = flags.request_timeout, interval = flags.interval,
    max_interval = flags.max_interval, backoff = flags.backoff,
  }
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

local function run_get_wait(command, ids, flags)
  if #ids == 0 then
    return usage_error("batches " .. command .. " needs at least one batch id", "llamacloud batches " .. command .. " --help")
  end
  local wait = require("llamacloud.wait")
  local ud, setup_code = clients.core_client()
  if not ud then return setup_code end
  -- Each id checked as get checks it, so a bad one is a usage error rather than a Lua error.
  for _, id in ipairs(ids) do
    local valid, msg = pcall(ud.request, ud, id)
    if not valid then
      ud:close()
      return usage_error((tostring(msg):gsub("^.-llamacloud: ", "")))
    end
  end
  local opts = call_options(flags)
  local progress
  local function tick() if progress then progress.tick() end end
  local host = clients.slicing_host(tick)
  -- Option errors raise before anything is sent; anything else raised (Ctrl-C's "interrupted!")
  -- goes on up to main.
  local called, entries = pcall(function()
    if command == "get" then return wait.get_many(host, ud, ids, opts, true) end
    local mode, progress_opts = clients.progress_setup(flags)
    progress = require("llamacloud.progress").new(ids, mode, io.stderr, progress_opts)
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
  local pretty = output.pretty_of(flags)
  local code = exit_code_for(entries, command)
  if code ~= EXIT.API or #ids > 1 then output.print_json(texts, #ids > 1, pretty)
  elseif entries[1].raw then output.print_json(texts, false, pretty) end
  ud:close()
  return code
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
    if msg then return false, usage_error(msg, "llamacloud " .. command_name(command) .. " --help") end
    error(results[2], 0)
  end
  return true, results[2], results[3], results[5]
end

-- One call through client.raw, the server's text printed; what: the id an API error names.
local function print_call(client, command, flags, resource, name, first, what)
  local ok, value, err, raw = calling(command, flags, function()
    return client.raw(resource, name, first, call_options(flags))
  end)
  if not ok then return value end
  if not value then return api_error(err, what) end
  print_value(value, raw, flags)
  return EXIT.OK
end

-- A batches command that takes no arguments was given some.
local function takes_no_arguments(command, ids)
  return usage_error("batches " .. command .. " takes no arguments (got '" .. shorten(ids[1]) .. "')",
    "llamacloud batches " .. command .. " --help")
end

local function run_create(client, ids, flags)
  if #ids > 0 then return takes_no_arguments("create", ids) end
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
    return client.raw("batches", "create", params, call_options(flags))
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

local function run_list(client, ids, flags)
  if #ids > 0 then return takes_no_arguments("list", ids) end
  if not flags.all then return print_call(client, "list", flags, "batches", "list", list_params(flags)) end
  -- One batch per line, flushed at once: the lines of a page reach the reader as the page arrives,
  -- and a reader that has gone (head -n 3) is seen at the next line, ending the loop before the
  -- next page is asked for. cli_list_spec: "ends quietly when head closes the pipe".
  local json_text = require("llamacloud.json_text")
  local pretty = flags.json == "pretty"
  local _, code = calling("list", flags, function()
    for batch, err in client.batches.each(list_params(flags), call_options(flags)) do
      if not batch then return api_error(err) end
      local text = json_text.encode(batch)
      if pretty then text = json_text.pretty(text) end
      output.out(text, "\n")
      if output.flush() then
        if output.forget_gone_reader() then return EXIT.OK end
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
  return print_call(client, "cancel", flags, "batches", "cancel", ids[1], ids[1])
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
  return print_call(client, "jobs", flags, "jobs", "get", { type = kind, id = id }, id)
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
  local opts = call_options(flags)
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

-- Runs a command of the flag table on its parsed arguments; the exit code.
function M.run(command, ids, flags)
  if command == "get" or command == "wait" then return run_get_wait(command, ids, flags) end
  local progress = { batch = function() end, file = function() end, tick = function() end, finish = function() end }
  if command == "files" then
    local mode, opts = clients.progress_setup(flags)
    if mode ~= "off" then progress = require("llamacloud.progress").files(ids[1] or "", mode, io.stderr, opts) end
  end
  local client, code = clients.new(function() progress.tick() end)
  if not client then return code end
  code = RUNNERS[command](client, ids, flags, progress)
  client.close()
  return code
end

-- fake-server's own parser reads the rest; a --scenario that cannot be read (a directory, a
-- missing file) is refused here as a usage error naming the flag.
function M.fake_server(argv)
  local rest = {}
  for i = 2, #argv do
    local a = argv[i]
    rest[#rest + 1] = a
    local path = a:match("^%-%-scenario=(.*)$")
    -- a next word that is a flag is no value: fake-server says so itself
    if a == "--scenario" and argv[i + 1] and (argv[i + 1]:sub(1, 1) ~= "-" or argv[i + 1] == "-") then
      path = argv[i + 1]
    end
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

return M
