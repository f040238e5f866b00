-- Specs of the llamacloud command, run as a child under busted's own interpreter against the fake server.
local fake = require("spec.support.fake")
local child = require("spec.support.child")
local util = require("spec.support.util")
local socket = require("socket")
local cjson = require("cjson").new()

local KEY = "sk-cli-secret"
local run, run_tty = child.cli, child.cli_tty

-- 46 characters, 48 bytes, its second "é" at bytes 37-38: the old cut at 37 bytes split it.
local LONG_ID = "bat-long-id\195\169-0123456789012345678901\195\169-end-of-it"

local RAW = '{"status":"COMPLETED",  "id":"bat-raw", "zeta":[1, 2.50, null, "a\\"b"], ' ..
  '"empty":[], "obj":{}, "n":1e2}'

-- Runs the command on a pseudo-terminal (util-linux script) of `cols` columns and 40 rows: exit code,
-- what reached the terminal (stderr, and stdout too when to_file is false), and stdout when to_file.
local function run_pty(args, env, cols, to_file)
  return child.run_to_files(function(tty, out)
    local inner = "stty cols " .. cols .. " rows 40; " .. child.cli_command(args, env) .. (to_file and (" >" .. out) or "")
    return "script -qfec " .. util.quote(inner) .. " /dev/null >" .. tty .. " 2>&1"
  end)
end

local shell = child.shell

-- Whether s is valid UTF-8 (no cut sequence).
local function valid_utf8(s)
  local i = 1
  while i <= #s do
    local b = s:byte(i)
    local n = b < 0x80 and 0 or (b >= 0xC2 and b < 0xE0) and 1 or (b >= 0xE0 and b < 0xF0) and 2
      or (b >= 0xF0 and b < 0xF5) and 3 or nil
    if not n then return false end
    for k = 1, n do
      local c = s:byte(i + k)
      if not c or c < 0x80 or c >= 0xC0 then return false end
    end
    i = i + n + 1
  end
  return true
end

-- The text rows of terminal output: split at newlines and carriage returns, escape sequences removed.
local function screen_rows(tty)
  local rows = {}
  for piece in tty:gsub("\27%[%d*%a", "\n"):gmatch("[^\r\n]+") do rows[#rows + 1] = piece end
  return rows
end

local function utf8_width(s)
  local _, cont = s:gsub("[\128-\191]", "")
  return #s - cont
end

describe("the llamacloud command", function()
  local server, env

  setup(function()
    server = fake.start()
    env = { LLAMA_CLOUD_API_KEY = KEY, LLAMA_CLOUD_BASE_URL = server.url }
  end)
  teardown(function() server:stop() end)

  local SCENARIO = { batches = {
    ["bat-raw"] = { steps = { { body = RAW } } },
    ["bat-demo"] = { steps = { "PENDING", "RUNNING", "COMPLETED" }, results = {
      { source_directory_file_id = "dfl-1", job_reference = { type = "parse_v2", id = "pjb-1" } },
      { source_directory_file_id = "dfl-2", error_message = "unsupported file type" },
      { source_directory_file_id = "dfl-3" } } },
    ["bat-done"] = { steps = { "COMPLETED" } },
    ["bat-a"] = { steps = { "COMPLETED" } },
    ["bat-b"] = { steps = { "RUNNING" } },
    ["bat-c"] = { steps = { "PENDING" } },
    ["bat-failed"] = { steps = { "RUNNING", "FAILED" } },
    ["bat-cancelled"] = { steps = { "CANCELLED" } },
    ["bat-stuck"] = { steps = { "RUNNING" } },
    ["-bat-dash"] = { steps = { "COMPLETED" } },
    -- the first poll answers after a second: progress time must move meanwhile
    ["bat-slow"] = { steps = { { batch_status = "RUNNING", delay = 1 }, "COMPLETED" } },
    ["bat-hang"] = { steps = { { batch_status = "RUNNING", delay = 60 } } },
    [LONG_ID] = { steps = { { batch_status = "RUNNING", status = 429, headers = { ["retry-after"] = "0" } },
                            "COMPLETED" } },
  } }

  before_each(function() server:scenario(SCENARIO) end)

  -- The body as the server sends it, over a plain socket.
  local function raw_body(id, query)
    local status, body = server:http("GET", "/api/v2/batches/" .. id .. (query or ""), nil,
      { Authorization = "Bearer " .. KEY })
    assert.are.equal(200, status)
    return body
  end

  describe("batches get", function()
    it("prints the server's body unchanged", function()
      local code, out, err = run({ "batches", "get", "bat-raw" }, env)
      assert.are.equal(0, code)
      assert.are.equal("", err)
      assert.are.equal(RAW .. "\n", out)
      assert.are.equal(RAW, raw_body("bat-raw"))
    end)

    it("prints a generated batch byte for byte as a socket reads it", function()
      local code, out = run({ "batches", "get", "bat-done", "--expand", "results" }, env)
      assert.are.equal(0, code)
      assert.are.equal(raw_body("bat-done", "?expand=results") .. "\n", out)
    end)

    it("sends --expand, --project-id and --organization-id as query parameters", function()
      local code = run({ "batches", "get", "bat-done", "--expand", "results", "--expand", "file_details",
                         "--project-id", "prj-1", "--organization-id=org-1" }, env)
      assert.are.equal(0, code)
      local reqs = server:requests()
      assert.are.equal(1, #reqs)
      assert.are.equal("expand=results&expand=file_details&organization_id=org-1&project_id=prj-1", reqs[1].query)
      assert.are.equal("Bearer " .. KEY, reqs[1].headers.authorization)
    end)

    it("indents with --pretty, arrays staying arrays and the values unchanged", function()
      local code, out = run({ "batches", "get", "bat-raw", "--pretty" }, env)
      assert.are.equal(0, code)
      assert.matches('\n  "zeta": %[\n    1,\n    2.50,\n    null,\n    "a\\"b"\n  %],', out)
      assert.matches('\n  "empty": %[%],', out)
      assert.matches('\n  "obj": {},', out)
      assert.are.same(cjson.decode(RAW), cjson.decode(out))
    end)

    it("prints a JSON array in the order of several ids, each body unchanged", function()
      local code, out = run({ "batches", "get", "bat-b", "bat-raw", "bat-a" }, env)
      assert.are.equal(0, code)
      assert.are.equal("[" .. raw_body("bat-b") .. "," .. RAW .. "," .. raw_body("bat-a") .. "]\n", out)
    end)

    it("puts null in the array for an id that failed, and exits 3", function()
      local code, out, err = run({ "batches", "get", "bat-a", "bat-missing" }, env)
      assert.are.equal(3, code)
      local list = cjson.decode(out)
      assert.are.equal("bat-a", list[1].id)
      assert.are.equal(cjson.null, list[2])
      assert.matches("bat-missing: NotFoundError", err, 1, true)
    end)

    it("exits 0 for a FAILED batch: get itself succeeded", function()
      server:scenario({ batches = { ["bat-failed"] = { steps = { "FAILED" } } } })
      local code, out = run({ "batches", "get", "bat-failed" }, env)
      assert.are.equal(0, code)
      assert.are.equal("FAILED", cjson.decode(out).status)
    end)

    it("exits 3 on 404, printing the error on stderr and nothing on stdout", function()
      local code, out, err = run({ "batches", "get", "bat-missing" }, env)
      assert.are.equal(3, code)
      assert.are.equal("", out)
      assert.matches("NotFoundError: 404", err, 1, true)
      assert.is_nil(err:find(KEY, 1, true))
    end)

    it("exits 3 when the server cannot be reached", function()
      local code, out, err = run({ "batches", "get", "bat-a", "--max-retries", "0" },
        { LLAMA_CLOUD_API_KEY = KEY, LLAMA_CLOUD_BASE_URL = "http://127.0.0.1:" .. util.free_port() })
      assert.are.equal(3, code)
      assert.are.equal("", out)
      assert.matches("APIConnectionError", err, 1, true)
    end)

    it("exits 2 without an API key, naming both variables, having sent nothing", function()
      local code, out, err = run({ "batches", "get", "bat-a" }, { LLAMA_CLOUD_BASE_URL = server.url })
      assert.are.equal(2, code)
      assert.are.equal("", out)
      assert.matches("LLAMA_CLOUD_API_KEY", err, 1, true)
      assert.matches("LLAMA_PARSE_API_KEY", err, 1, true)
      assert.are.equal(0, #server:requests())
    end)

    it("accepts a fractional --timeout", function()
      local code, out = run({ "batches", "get", "bat-a", "--timeout", "2.5" }, env)
      assert.are.equal(0, code)
      assert.are.equal("bat-a", cjson.decode(out).id)
    end)
  end)

  describe("batches wait", function()
    it("exits 0 and prints the COMPLETED batch's body unchanged", function()
      local code, out, err = run({ "batches", "wait", "bat-demo", "--interval", "0.05", "--expand", "results" }, env)
      assert.are.equal(0, code)
      assert.are.equal("", err)
      assert.are.equal(3, #server:requests())
      assert.are.equal(raw_body("bat-demo", "?expand=results") .. "\n", out)
    end)

    for _, id in ipairs({ "bat-failed", "bat-cancelled" }) do
      it("exits 1 for " .. id .. ", printing its JSON", function()
        local code, out, err = run({ "batches", "wait", id, "--interval", "0.05" }, env)
        assert.are.equal(1, code)
        assert.are.equal(id, cjson.decode(out).id)
        assert.matches("PollingError", err, 1, true)
      end)
    end

    it("exits 3 on 404", function()
      local code, out, err = run({ "batches", "wait", "bat-missing", "--interval", "0.05" }, env)
      assert.are.equal(3, code)
      assert.are.equal("", out)
      assert.matches("NotFoundError", err, 1, true)
    end)

    it("exits 4 when the wait times out, printing the last batch seen", function()
      local code, out, err = run({ "batches", "wait", "bat-stuck", "--interval", "0.05", "--timeout", "0.3" }, env)
      assert.are.equal(4, code)
      assert.are.equal("RUNNING", cjson.decode(out).status)
      assert.matches("PollingTimeoutError", err, 1, true)
    end)

    it("waits for several ids at once, printing an array in their order", function()
      local code, out = run({ "batches", "wait", "bat-demo", "bat-done", "--interval", "0.05" }, env)
      assert.are.equal(0, code)
      local list = cjson.decode(out)
      assert.are.same({ "bat-demo", "bat-done" }, { list[1].id, list[2].id })
      assert.are.same({ "COMPLETED", "COMPLETED" }, { list[1].status, list[2].status })
    end)

    it("exits with the worst code among several ids (3 over 1 over 0)", function()
      local code = run({ "batches", "wait", "bat-done", "bat-failed", "--interval", "0.05" }, env)
      assert.are.equal(1, code)
      code = run({ "batches", "wait", "bat-done", "bat-failed", "bat-missing", "--interval", "0.05" }, env)
      assert.are.equal(3, code)
    end)

    it("accepts fractions in every numeric flag", function()
      local code, out = run({ "batches", "wait", "bat-demo", "--interval", "0.05", "--max-interval=0.1",
                              "--timeout", "30.5", "--request-timeout", "2.5", "--backoff", "exponential" }, env)
      assert.are.equal(0, code)
      assert.are.equal("COMPLETED", cjson.decode(out).status)
    end)

    it("prints nothing on stderr by default when stderr is not a terminal", function()
      local code, out, err = run({ "batches", "wait", "bat-demo", "--interval", "0.05" }, env)
      assert.are.equal(0, code)
      assert.are.equal("", err)
      assert.are.equal("COMPLETED", cjson.decode(out).status)
    end)

    it("prints one progress line per poll and a summary with --progress, JSON alone on stdout", function()
      local code, out, err = run({ "batches", "wait", "bat-demo", "--interval", "0.05", "--progress",
                                   "--expand", "results" }, env)
      assert.are.equal(0, code)
      assert.are.equal("COMPLETED", cjson.decode(out).status)
      local lines = {}
      for line in err:gmatch("[^\n]+") do lines[#lines + 1] = line end
      assert.are.equal(4, #lines)
      assert.matches("^bat%-demo%s+PENDING%s.*poll 1$", lines[1])
      assert.matches("^bat%-demo%s+RUNNING%s.*poll 2$", lines[2])
      assert.matches("^bat%-demo%s+COMPLETED%s.*poll 3$", lines[3])
      assert.are.equal("1 batch: 1 COMPLETED; files: 1 with jobs, 1 failed, 1 unmapped", lines[4])
      assert.is_nil(err:find("\27", 1, true))
    end)

    it("prints no progress with --quiet", function()
      local code, out, err = run({ "batches", "wait", "bat-demo", "--interval", "0.05", "--progress", "--quiet" }, env)
      assert.are.equal(0, code)
      assert.are.equal("", err)
      assert.are.equal("COMPLETED", cjson.decode(out).status)
    end)

    it("redraws progress in place on a terminal and ends with the summary, JSON alone on stdout", function()
      local code, tty, out = run_tty({ "batches", "wait", "bat-demo", "--interval", "0.05",
                                       "--expand", "results" }, env)
      assert.are.equal(0, code)
      assert.are.equal(raw_body("bat-demo", "?expand=results") .. "\n", out)
      assert.truthy(tty:find("\27[1A", 1, true), "no cursor-up in " .. ("%q"):format(tty))
      assert.truthy(tty:find("\27[K", 1, true))
      assert.matches("PENDING", tty)
      assert.matches("RUNNING", tty)
      assert.matches("1 batch: 1 COMPLETED; files: 1 with jobs, 1 failed, 1 unmapped\r?\n$", tty)
    end)

    it("shows one line of counts on a terminal for more batches than fit", function()
      server:scenario({ any = { steps = { "RUNNING", "COMPLETED" } } })
      local args = { "batches", "wait", "--interval", "0.05" }
      for i = 1, 20 do args[#args + 1] = string.format("bat-t%02d", i) end
      local code, tty, out = run_tty(args, env)
      assert.are.equal(0, code)
      assert.are.equal(20, #cjson.decode(out))
      assert.truthy(tty:find("\r\27[K20 batches: ", 1, true))
      assert.is_nil(tty:find("bat-t01", 1, true))
      assert.matches("20 batches: 20 COMPLETED\r?\n$", tty)
    end)

    it("prints no progress on a terminal with --quiet", function()
      local code, tty, out = run_tty({ "batches", "wait", "bat-demo", "--interval", "0.05", "--quiet" }, env)
      assert.are.equal(0, code)
      assert.are.equal("", tty)
      assert.are.equal("COMPLETED", cjson.decode(out).status)
    end)
  end)

  describe("usage", function()
    local USAGE = {
      { "no arguments", {} },
      { "an unknown command", { "frobnicate" } },
      { "an unknown batches command", { "batches", "frob" } },
      { "an unknown jobs command", { "jobs", "list" } },
      { "jobs without a command", { "jobs" } },
      { "batches without a command", { "batches" } },
      { "an unknown flag", { "batches", "get", "bat-a", "--frob" } },
      { "a wait flag given to get", { "batches", "get", "bat-a", "--interval", "1" } },
      { "a flag missing its value", { "batches", "wait", "bat-a", "--interval" } },
      { "a number flag given a word", { "batches", "wait", "bat-a", "--interval", "soon" } },
      { "a zero interval", { "batches", "wait", "bat-a", "--interval", "0" } },
      { "a fractional concurrency", { "batches", "get", "bat-a", "--concurrency", "1.5" } },
      { "an unknown backoff", { "batches", "wait", "bat-a", "--backoff", "random" } },
      { "get without an id", { "batches", "get" } },
      { "wait without an id", { "batches", "wait", "--interval", "0.1" } },
      { "an invalid id", { "batches", "get", ".." } },
      { "an id starting with '-' before --", { "batches", "get", "-bat-dash" } },
      { "an unknown shell for completion", { "completion", "tcsh" } },
    }
    for _, row in ipairs(USAGE) do
      it("exits 2 for " .. row[1] .. ", saying why on stderr and sending nothing", function()
        local code, out, err = run(row[2], env)
        assert.are.equal(2, code)
        assert.are.equal("", out)
        assert.is_true(#err > 0)
        assert.are.equal(0, #server:requests())
      end)
    end

    -- Each exits 2 with one line on stderr naming the flag, no Lua traceback, nothing sent.
    local FLAG_VALUES = {
      { "--max-retries", { "batches", "get", "bat-a", "--max-retries", "101" } },
      { "--max-retries", { "batches", "wait", "bat-a", "--max-retries", "99999999999999999999" } },
      { "--concurrency", { "batches", "get", "bat-a", "--concurrency", "0" } },
      { "--concurrency", { "batches", "get", "bat-a", "bat-b", "--concurrency", "20000" } },
      { "--concurrency", { "batches", "wait", "bat-a", "--concurrency", "20000" } },
      { "--timeout", { "batches", "get", "bat-a", "--timeout", "1e308" } },
      { "--timeout", { "batches", "get", "bat-a", "--timeout", "1" .. string.rep("0", 400) } },
      { "--timeout", { "batches", "get", "bat-a", "--timeout", "0x10" } },
      { "--timeout", { "batches", "get", "bat-a", "--timeout", "9999999999" }, "at most 1e9" },
      { "--request-timeout", { "batches", "wait", "bat-a", "--request-timeout", "9999999999" }, "at most 1e9" },
      { "--request-timeout", { "batches", "wait", "bat-a", "--request-timeout", "1" .. string.rep("0", 300) } },
      { "--interval", { "batches", "wait", "bat-a", "--interval", "-1" } },
      { "--max-retries", { "batches", "get", "bat-a", "--max-retries", "1e1" } },
      { "--project-id", { "batches", "get", "bat-a", "--project-id", "--pretty" } },
      { "--expand", { "batches", "get", "bat-a", "--expand", "--max-retries", "1" } },
      { "--backoff", { "batches", "wait", "bat-a", "--backoff", "random" } },
      { "--interval", { "batches", "get", "bat-a", "--interval", "1" } },
    }
    for _, row in ipairs(FLAG_VALUES) do
      local flag, args, want = row[1], row[2], row[3]
      it("exits 2 naming " .. flag .. " in one line for " .. table.concat(args, " "):sub(1, 60), function()
        local code, out, err = run(args, env)
        assert.are.equal(2, code)
        assert.are.equal("", out)
        assert.matches("^llamacloud: [^\n]*" .. flag:gsub("%-", "%%-") .. "[^\n]*\n$", err)
        if want then assert.matches(want, err, 1, true) end
        assert.is_nil(err:find("traceback", 1, true))
        assert.are.equal(0, #server:requests())
      end)
    end

    it("turns every option a library error names into its flag", function()
      local flag_error = require("llamacloud.cli").flag_error
      assert.are.equal("--max-interval (0.1) must not be below --interval (1)", flag_error(
        "wait.lua:9: llamacloud: wait_many: option 'max_interval' (0.1) must not be below option 'interval' (1)",
        "wait", { given = { max_interval = "0.1", interval = "1" } }))
      assert.are.equal("--request-timeout must be a positive number of seconds (got '9')", flag_error(
        "llamacloud: get: option 'timeout' must be a positive number of seconds", "wait",
        { given = { request_timeout = "9" } }))
      assert.are.equal("--timeout must be a positive number of seconds (got '9')", flag_error(
        "llamacloud: get: option 'timeout' must be a positive number of seconds", "get", { given = { timeout = "9" } }))
      -- an option the command line never sets, and anything else, stay errors of their own
      assert.is_nil(flag_error("llamacloud: get: option 'headers' must be a table", "get", { given = {} }))
      assert.is_nil(flag_error("cli.lua:1: interrupted!", "get", { given = {} }))
    end)

    it("exits 2 naming --scenario when fake-server is given a directory", function()
      local code, out, err = run({ "fake-server", "--port", "0", "--scenario", "spec" }, env)
      assert.are.equal(2, code)
      assert.are.equal("", out)
      assert.matches("^llamacloud: [^\n]*%-%-scenario[^\n]*\n$", err)
    end)

    it("takes every word after -- as an id, even one starting with '-'", function()
      local code, out = run({ "batches", "get", "--max-retries", "0", "--", "-bat-dash" }, env)
      assert.are.equal(0, code)
      assert.are.equal("-bat-dash", cjson.decode(out).id)
      code, out = run({ "batches", "get", "--", "bat-a", "--pretty" }, env)
      assert.are.equal(3, code) -- "--pretty" is an id there, and the fake server has no such batch
      assert.are.equal("bat-a", cjson.decode(out)[1].id)
    end)

    it("takes a value starting with '-' joined to its option", function()
      local code = run({ "batches", "get", "bat-a", "--project-id=-prj" }, env)
      assert.are.equal(0, code)
      assert.are.equal("project_id=-prj", server:requests()[1].query)
    end)

    it("lists every flag in --help, --version included", function()
      local _, top = run({ "--help" }, env)
      assert.matches("--version", top, 1, true)
      assert.matches("--help", top, 1, true)
      assert.matches("completion bash|zsh|fish", top, 1, true)
      local _, batches = run({ "batches", "--help" }, env)
      for _, f in ipairs(require("llamacloud.cli").FLAGS) do
        assert.truthy(batches:find("\n  " .. f[1] .. " ", 1, true), f[1] .. " missing from batches --help")
      end
      local _, fake_help = run({ "fake-server", "--help" }, env)
      local listed = {}
      for name in fake_help:gmatch("\n%s+(%-%-[%w-]+)") do
        if name ~= "--help" then listed[#listed + 1] = name end
      end
      local known = {}
      for _, f in ipairs(require("llamacloud.cli").fake_server_flags()) do known[#known + 1] = f[1] end
      assert.are.same(listed, known)
    end)

    it("has the README's exit-code table list exactly the codes the command uses", function()
      local readme = util.read_file(util.root() .. "/README.md")
      local section = readme:match("\n## Command line\n(.-)\n## ")
      local listed, used = {}, {}
      for code in section:gmatch("\n| (%d+) |") do listed[#listed + 1] = tonumber(code) end
      for _, code in pairs(require("llamacloud.cli").EXIT) do used[#used + 1] = code end
      table.sort(listed)
      table.sort(used)
      assert.are.same(used, listed)
    end)

    it("prints the version with --version", function()
      local code, out = run({ "--version" }, env)
      assert.are.equal(0, code)
      assert.are.equal("llamacloud " .. require("llamacloud.core").VERSION .. "\n", out)
    end)

    local HELP = {
      { "--help" }, { "-h" }, { "help" }, { "batches", "--help" }, { "batches", "get", "--help" },
      { "batches", "wait", "--help" }, { "batches", "wait", "-h" }, { "fake-server", "--help" },
    }
    for _, args in ipairs(HELP) do
      it("exits 0 printing usage on stdout for " .. table.concat(args, " "), function()
        local code, out, err = run(args, env)
        assert.are.equal(0, code)
        assert.matches("Usage: llamacloud", out, 1, true)
        assert.are.equal("", err)
      end)
    end
  end)

  describe("stdout that cannot be written", function()
    -- exit code and stderr of the command with stdout sent where `redirect` says
    local function run_to(args, redirect)
      local err = os.tmpname()
      local code = shell(child.cli_command(args, env) .. " " .. redirect .. " 2>" .. err)
      local text = util.read_file(err) or ""
      os.remove(err)
      return code, text
    end

    for _, args in ipairs({ { "batches", "get", "bat-a" }, { "batches", "wait", "bat-done", "--interval", "0.05" },
                            { "batches", "get", "bat-a", "bat-b" }, { "--help" } }) do
      it("exits 3 when stdout is a full disk: " .. table.concat(args, " "), function()
        local code, err = run_to(args, ">/dev/full")
        assert.are.equal(3, code)
        assert.matches("^llamacloud: cannot write to standard output: [^\n]+\n$", err)
      end)
    end

    it("exits 3 when stdout is a pipe closed by its reader, SIGPIPE ignored", function()
      -- bash: the reader of the process substitution closes its end and exits before the command runs
      local err = os.tmpname()
      local script = "trap '' PIPE; exec 3> >(exec 0<&-); wait $!; " .. child.cli_command({ "batches", "get", "bat-a" }, env)
        .. " >&3 2>" .. err
      local code = shell("bash -c " .. util.quote(script))
      local text = util.read_file(err) or ""
      os.remove(err)
      assert.are.equal(3, code)
      assert.matches("^llamacloud: cannot write to standard output: [^\n]+\n$", text)
      assert.are.equal(1, #server:requests())
    end)
  end)

  describe("on a terminal", function()
    it("indents JSON written to a terminal, as --pretty does", function()
      local code, tty = run_pty({ "batches", "get", "bat-raw" }, env, 80, false)
      assert.are.equal(0, code)
      local _, pretty = run({ "batches", "get", "bat-raw", "--pretty" }, env)
      assert.are.equal(pretty, (tty:gsub("\r\n", "\n")))
    end)

    it("prints the server's bytes on a terminal with --compact, and --pretty piped", function()
      local code, tty = run_pty({ "batches", "get", "bat-raw", "--compact" }, env, 80, false)
      assert.are.equal(0, code)
      assert.are.equal(RAW .. "\r\n", tty)
      local _, out = run({ "batches", "get", "bat-raw", "--compact", "--pretty" }, env)
      assert.matches('^{\n  "status": "COMPLETED",\n', out)
      _, out = run({ "batches", "get", "bat-raw", "--pretty", "--compact" }, env)
      assert.are.equal(RAW .. "\n", out)
    end)

    it("shows time moving on a terminal while a request is in flight", function()
      local code, tty, out = run_pty({ "batches", "wait", "bat-slow", "--interval", "0.05" }, env, 80, true)
      assert.are.equal(0, code)
      assert.are.equal("COMPLETED", cjson.decode(out).status)
      -- before the first answer (a second late) the row says poll 0 with its time above zero
      local moving = 0
      for _, row in ipairs(screen_rows(tty)) do
        local t = tonumber(row:match("^bat%-slow%s+%.%.%.%s+(%d+%.%d) s  poll 0$"))
        if t and t > 0 then moving = moving + 1 end
      end
      assert.is_true(moving >= 1, "no moving time in " .. ("%q"):format(tty))
    end)

    for _, cols in ipairs({ 80, 50, 30 }) do
      it("fits every row to a " .. cols .. "-column terminal, in characters, never cutting one", function()
        local code, tty, out = run_pty({ "batches", "wait", LONG_ID, "bat-done", "--interval", "0.05",
                                         "--max-retries", "0" }, env, cols, true)
        assert.are.equal(0, code)
        assert.are.equal(2, #cjson.decode(out))
        assert.is_true(valid_utf8(tty), "cut UTF-8 in " .. ("%q"):format(tty))
        local rows = screen_rows(tty)
        local summary = table.remove(rows)
        assert.are.equal("2 batches: 2 COMPLETED", summary)
        assert.is_true(#rows >= 4)
        for _, row in ipairs(rows) do
          assert.is_true(utf8_width(row) < cols, ("row wider than %d: %q"):format(cols - 1, row))
        end
        -- each redraw moves up as many lines as it drew: no wrapped line leaves a stale copy
        for up in tty:gmatch("\27%[(%d+)A") do assert.are.equal("2", up) end
      end)
    end

    it("keeps the 429 note on a wide terminal", function()
      local _, tty = run_pty({ "batches", "wait", LONG_ID, "--interval", "0.05", "--max-retries", "0" }, env, 120, true)
      assert.matches("RateLimitError 429, polling on", tty, 1, true)
    end)
  end)

  describe("progress rows", function()
    local progress = require("llamacloud.progress")

    it("measures width in characters and cuts between them", function()
      assert.are.equal(3, progress.width("\195\169t\195\169"))
      assert.are.equal("ab\195\169de", progress.fit("ab\195\169de", 5))
      assert.are.equal("ab\195\169...", progress.fit("ab\195\169defgh", 6))
      assert.are.equal("ab\195\169", progress.fit("ab\195\169defgh", 3))
      for n = 0, 12 do
        local cut = progress.fit(LONG_ID, n)
        assert.is_true(valid_utf8(cut))
        assert.is_true(progress.width(cut) <= n)
      end
    end)

    it("narrows the id column first, then cuts the note", function()
      local row = { id = LONG_ID, status = "RUNNING", elapsed = 12.5, polls = 3, note = "RateLimitError 429, polling on" }
      local wide = progress.line_for(row, 40, 200)
      assert.matches("RateLimitError 429, polling on$", wide)
      local narrow = progress.line_for(row, 40, 60)
      assert.are.equal(59, progress.width(narrow))
      assert.matches("RUNNING", narrow)
      assert.matches("12.5 s  poll 3", narrow, 1, true)
    end)
  end)

  describe("Ctrl-C", function()
    it("exits 130 without a trace when interrupted while a request is in flight", function()
      -- the poll is in flight once the server has it
      local rc, out, err = child.cli_interrupted({ "batches", "wait", "bat-hang" }, env,
        function() return #server:requests() > 0 end)
      assert.are.equal(1, #server:requests())
      assert.are.equal("130", rc)
      assert.are.equal("", out)
      assert.is_nil(err:find("traceback", 1, true), err)
      assert.is_nil(err:find("interrupted", 1, true), err)
    end)
  end)

  describe("without a build", function()
    it("names the make command in one line when the C module is not built for the interpreter", function()
      local dir = os.tmpname()
      os.remove(dir)
      finally(function() os.execute("rm -rf " .. dir) end)
      assert.are.equal(0, (shell("mkdir -p " .. dir .. " && cd " .. util.quote(util.root()) .. " && cp -r bin lua " .. dir)))
      local nowhere = "/nonexistent/?.so"
      local code, out = shell("env LUA_CPATH=" .. nowhere .. " LUA_CPATH_5_2=" .. nowhere .. " LUA_CPATH_5_3="
        .. nowhere .. " LUA_CPATH_5_4=" .. nowhere .. " " .. util.quote(fake.interpreter()) .. " "
        .. dir .. "/bin/llamacloud --version 2>&1")
      local version = jit and "jit" or _VERSION:match("%d+%.%d+")
      assert.are.equal(2, code)
      assert.matches("^llamacloud: [^\n]*`make LUA_VERSION=" .. version:gsub("%.", "%%.") .. "`[^\n]*\n$", out)
    end)
  end)

  describe("completion", function()
    local cli = require("llamacloud.cli")

    -- every flag of a batches command, as the help and the scripts list them
    local function names_for(command)
      local names, seen = {}, {}
      for _, f in ipairs(cli.FLAGS) do
        if f[4][command] and not seen[f[1]] then
          seen[f[1]] = true
          names[#names + 1] = f[1]
        end
      end
      names[#names + 1] = "--help"
      return table.concat(names, " ")
    end

    local function script_for(shell_name)
      local code, out, err = run({ "completion", shell_name }, env)
      assert.are.equal(0, code)
      assert.are.equal("", err)
      return out
    end

    -- What bash completes for the words typed so far (the last one being completed).
    local function complete(file, words)
      local quoted = {}
      for i, w in ipairs(words) do quoted[i] = util.quote(w) end
      local code, out = shell("bash -c " .. util.quote("source " .. file .. "; COMP_WORDS=(" .. table.concat(quoted, " ")
        .. "); COMP_CWORD=" .. (#words - 1) .. "; _llamacloud; printf '%s\\n' \"${COMPREPLY[@]}\""))
      assert.are.equal(0, code)
      local list = {}
      for line in out:gmatch("[^\n]+") do list[#list + 1] = line end
      return list
    end

    it("prints a bash script that parses and completes every command and flag", function()
      local file = os.tmpname()
      finally(function() os.remove(file) end)
      util.write_file(file, script_for("bash"))
      assert.are.equal(0, (shell("bash -n " .. file .. " 2>&1")))
      assert.are.same({ "fake-server" }, complete(file, { "llamacloud", "fak" }))
      assert.are.same({ "--version" }, complete(file, { "llamacloud", "--v" }))
      assert.are.same({ "get" }, complete(file, { "llamacloud", "batches", "g" }))
      assert.are.same({ "exponential" }, complete(file, { "llamacloud", "batches", "wait", "--backoff", "exp" }))
      assert.are.same({ "zsh" }, complete(file, { "llamacloud", "completion", "z" }))
      assert.are.same({}, complete(file, { "llamacloud", "batches", "get", "--interv" }))
      assert.are.same({ "extract_v2" }, complete(file, { "llamacloud", "jobs", "get", "ext" }))
      assert.are.same({ "RUNNING" }, complete(file, { "llamacloud", "batches", "list", "--status", "RU" }))
      assert.are.same({ "parse_v2" }, complete(file, { "llamacloud", "batches", "create", "--type", "pa" }))
      for _, f in ipairs(cli.FLAGS) do
        for command in pairs(f[4]) do
          local words = { "llamacloud" }
          for w in cli.command_name(command):gmatch("%S+") do words[#words + 1] = w end
          words[#words + 1] = "bat-1"
          words[#words + 1] = f[1]
          local got = complete(file, words)
          assert.truthy(({ [f[1]] = true })[got[1]], f[1] .. " for " .. command)
        end
      end
      for _, f in ipairs(cli.fake_server_flags()) do
        assert.are.same({ f[1] }, complete(file, { "llamacloud", "fake-server", f[1] }))
      end
    end)

    for _, shell_name in ipairs({ "zsh", "fish" }) do
      it("prints a " .. shell_name .. " script naming every command and flag", function()
        local text = script_for(shell_name)
        local flag = shell_name == "fish" and function(n) return "-l " .. n:sub(3) .. " " end
          or function(n) return n end
        for _, f in ipairs(cli.FLAGS) do assert.truthy(text:find(flag(f[1]), 1, true), f[1]) end
        for _, f in ipairs(cli.fake_server_flags()) do assert.truthy(text:find(flag(f[1]), 1, true), f[1]) end
        for _, c in ipairs({ "batches", "jobs", "fake-server", "completion", "get", "wait", "create", "list", "cancel",
                             "files", "parse_v2", "extract_v2", "version" }) do
          assert.truthy(text:find(c, 1, true), c)
        end
        -- the shell itself checks the syntax where it is installed
        if shell("command -v " .. shell_name .. " >/dev/null 2>&1") == 0 then
          local file = os.tmpname()
          util.write_file(file, text)
          local code, msg = shell(shell_name .. " -n " .. file .. " 2>&1")
          assert.are.equal(0, code, msg)
          if shell_name == "zsh" then
            -- the function's choices, with compadd (a builtin of completion widgets) shadowed to print them
            code, msg = shell("zsh -c " .. util.quote("compdef() { :; }; compadd() { print -r -- \"$*\"; }; source "
              .. file .. "; words=(llamacloud batches wait x --inter); CURRENT=5; _llamacloud;"
              .. " words=(llamacloud batches wait x --backoff ''); CURRENT=6; _llamacloud") .. " 2>&1")
            assert.are.equal(0, code, msg)
            assert.are.equal("-- " .. names_for("wait") .. "\n-- linear exponential constant\n", msg)
          else
            code, msg = shell("fish -c " .. util.quote("source " .. file
              .. "; complete -C 'llamacloud batches wait x --inter'; complete -C 'llamacloud batches get x --backoff '"
              .. "; complete -C 'llamacloud batches wait x --backoff e'") .. " 2>&1")
            assert.are.equal(0, code, msg)
            assert.are.equal("--interval\tpause after the first poll (default 1)\n"
              .. "exponential\tlinear (default), exponential or constant\n", msg)
          end
          os.remove(file)
        end
      end)
    end
  end)

  describe("fake-server", function()
    it("binds a free port with --port 0 and prints it on its first line", function()
      local line, stop = child.cli_fake_server()
      finally(stop)
      local port = tonumber(line:match("^fake%-server listening on http://127%.0%.0%.1:(%d+)$"))
      assert.is_number(port)
      assert.is_true(port > 0)
      local c = socket.connect("127.0.0.1", port)
      assert.is_truthy(c)
      c:send("POST /_fake/shutdown HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
      assert.matches("^HTTP/1.1 200", c:receive("*l"))
      c:close()
    end)

    -- The README's exit-code table holds for fake-server's own flags too: a refused value is exit 2
    -- with one line naming the flag, and a value flag never takes the next flag as its value.
    local FAKE_FLAG_VALUES = {
      { "--port", { "fake-server", "--port", "99999" } },
      { "--port", { "fake-server", "--port", "0x10" } },
      { "--port", { "fake-server", "--port" }, "needs a value" },
      { "--port", { "fake-server", "--port", "--host", "127.0.0.1" }, "needs a value" },
      { "--host", { "fake-server", "--host", "--port", "0" }, "needs a value" },
      { "--host", { "fake-server", "--host", "0.0.0.0" } },
      { "--log-limit", { "fake-server", "--log-limit", "0" } },
      { "--log-limit", { "fake-server", "--log-limit", "--port", "0" }, "needs a value" },
      { "--scenario", { "fake-server", "--scenario", "--port", "0" }, "needs a value" },
      { "--bogus", { "fake-server", "--bogus" } },
    }
    for _, row in ipairs(FAKE_FLAG_VALUES) do
      local flag, args, want = row[1], row[2], row[3]
      it("exits 2 naming " .. flag .. " in one line for " .. table.concat(args, " "), function()
        local code, out, err = run(args, env)
        assert.are.equal(2, code)
        assert.are.equal("", out)
        assert.matches("^[^\n]*" .. flag:gsub("%-", "%%-") .. "[^\n]*\n$", err)
        if want then assert.matches(want, err, 1, true) end
        assert.is_nil(err:find("traceback", 1, true))
      end)
    end

    it("exits 3, not 1 (FAILED or CANCELLED), when its port cannot be bound", function()
      local taken = assert(socket.bind("127.0.0.1", 0))
      finally(function() taken:close() end)
      local _, port = taken:getsockname()
      local code, out, err = run({ "fake-server", "--port", tostring(port) }, env)
      assert.are.equal(3, code)
      assert.are.equal("", out)
      assert.matches("^[^\n]*cannot listen on 127%.0%.0%.1:" .. port .. "[^\n]*\n$", err)
    end)

    it("exits 3 when its --help cannot be written", function()
      local err = os.tmpname()
      local code = shell(child.cli_command({ "fake-server", "--help" }, env) .. " >/dev/full 2>" .. err)
      local text = util.read_file(err) or ""
      os.remove(err)
      assert.are.equal(3, code)
      assert.matches("^[^\n]*cannot write to standard output: [^\n]+\n$", text)
    end)
  end)
end)
