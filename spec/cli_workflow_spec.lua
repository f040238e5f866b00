-- Specs of the workflow commands (issue 10): batches create, list, cancel, files and jobs get, run as
-- a child under busted's own interpreter against the fake server.
local fake = require("spec.support.fake")
local child = require("spec.support.child")
local util = require("spec.support.util")
local cjson = require("cjson").new()

local KEY = "sk-cli-workflow-secret"
local SECRET = "whsec-never-in-argv-4711"
local run, run_tty = child.cli, child.cli_tty

local shell = child.shell

local function lines_of(text)
  local list = {}
  for line in text:gmatch("[^\n]+") do list[#list + 1] = line end
  return list
end

local DIRS = {
  ["dir-ok"] = { count = 3, file = { job = { steps = { "RUNNING", "COMPLETED" }, pages = { "# Page" } } } },
  ["dir-mixed"] = { files = {
    { id = "dfl-ok", job = { steps = { "RUNNING", "COMPLETED" } } },
    { id = "dfl-bad", job = { steps = { "RUNNING", "FAILED" }, error_message = "password protected" } },
    { id = "dfl-unmappable", mapping_error = "unsupported file type" },
  } },
  ["dir-orchestration"] = { count = 2, batch = { steps = { "RUNNING", "FAILED" } } },
  ["dir-stuck"] = { count = 2, file = { job = { steps = { "RUNNING" } } } },
  -- each job's first poll answers after a second: the progress time must move meanwhile
  ["dir-slow"] = { count = 1, file = { job = { steps = { { job_status = "RUNNING", delay = 1 }, "COMPLETED" } } } },
  ["dir-empty"] = {},
  -- a job that never answers
  ["dir-hang"] = { count = 1, file = { job = { steps = { { job_status = "RUNNING", delay = 60 } } } } },
}

describe("the workflow commands", function()
  local server, env

  setup(function()
    server = fake.start({ scenario = { batches = {}, directories = DIRS } })
    env = { LLAMA_CLOUD_API_KEY = KEY, LLAMA_CLOUD_BASE_URL = server.url }
  end)
  teardown(function() server:stop() end)
  before_each(function() server:scenario({ batches = {}, directories = DIRS }) end)

  local function with(extra)
    local e = {}
    for k, v in pairs(env) do e[k] = v end
    for k, v in pairs(extra) do e[k] = v end
    return e
  end

  local function create(dir, job_type)
    local code, out, err = run({ "batches", "create", "--source-directory-id", dir, "--type", job_type or "parse_v2",
                                 "--configuration-id", "cfg-x" }, env)
    assert.are.equal(0, code, err)
    return cjson.decode(out).id
  end

  local function requests(method, path_prefix)
    local list = {}
    for _, r in ipairs(server:requests()) do
      if r.method == method and r.path:sub(1, #path_prefix) == path_prefix then list[#list + 1] = r end
    end
    return list
  end

  describe("batches create", function()
    it("sends the body the flags describe and prints the new batch", function()
      local code, out, err = run({ "batches", "create", "--source-directory-id", "dir-ok", "--type", "parse_v2",
                                   "--configuration-id", "cfg-x", "--project-id", "prj-1" }, env)
      assert.are.equal(0, code, err)
      assert.are.equal("", err)
      local batch = cjson.decode(out)
      assert.matches("^bat%-new%-", batch.id)
      assert.are.equal("dir-ok", batch.source_directory_id)
      local posts = requests("POST", "/api/v2/batches")
      assert.are.equal(1, #posts)
      assert.are.equal("project_id=prj-1", posts[1].query)
      assert.are.same({ source_directory_id = "dir-ok", config = { job = { type = "parse_v2",
        configuration_id = "cfg-x" } } }, cjson.decode(posts[1].body))
    end)

    it("reads each webhook's signing secret from the variable --webhook-secret-env names", function()
      local code, out, err = run({ "batches", "create", "--source-directory-id", "dir-ok", "--type", "extract_v2",
        "--configuration-id", "cfg-x", "--webhook-url", "http://127.0.0.1:9/a", "--webhook-secret-env", "HOOK_SECRET",
        "--webhook-url", "http://127.0.0.1:9/b" }, with({ HOOK_SECRET = SECRET }))
      assert.are.equal(0, code, err)
      assert.is_nil(out:find(SECRET, 1, true))
      local body = cjson.decode(requests("POST", "/api/v2/batches")[1].body)
      assert.are.same({ { webhook_url = "http://127.0.0.1:9/a", webhook_signing_secret = SECRET },
                        { webhook_url = "http://127.0.0.1:9/b" } }, body.webhook_configurations)
    end)

    local USAGE = {
      { "a secret variable that is not set", { "--webhook-url", "http://127.0.0.1:9/a", "--webhook-secret-env",
        "LLAMACLOUD_SPEC_UNSET" }, "LLAMACLOUD_SPEC_UNSET" },
      { "a secret before any --webhook-url", { "--webhook-secret-env", "HOOK_SECRET" }, "--webhook-secret-env" },
      { "a secret that is not a variable name", { "--webhook-url", "http://127.0.0.1:9/a", "--webhook-secret-env",
        "whsec-1" }, "--webhook-secret-env" },
      { "an unknown job type", { "--type", "parse" }, "--type" },
      { "an argument", { "bat-1" }, "bat-1" },
    }
    for _, row in ipairs(USAGE) do
      it("exits 2 for " .. row[1] .. ", naming it, sending nothing", function()
        local args = { "batches", "create", "--source-directory-id", "dir-ok", "--configuration-id", "cfg-x" }
        if not (row[2][1] == "--type") then args[#args + 1] = "--type"; args[#args + 1] = "parse_v2" end
        for _, a in ipairs(row[2]) do args[#args + 1] = a end
        local code, out, err = run(args, with({ HOOK_SECRET = SECRET }))
        assert.are.equal(2, code)
        assert.are.equal("", out)
        assert.matches("^llamacloud: [^\n]*" .. row[3]:gsub("%-", "%%-") .. "[^\n]*\n$", err)
        assert.is_nil(err:find(SECRET, 1, true))
        assert.are.equal(0, #server:requests())
      end)
    end

    for _, flag in ipairs({ "--source-directory-id", "--type", "--configuration-id" }) do
      it("exits 2 naming " .. flag .. " when it is missing", function()
        local args = { "batches", "create" }
        for _, f in ipairs({ { "--source-directory-id", "dir-ok" }, { "--type", "parse_v2" },
                             { "--configuration-id", "cfg-x" } }) do
          if f[1] ~= flag then args[#args + 1] = f[1]; args[#args + 1] = f[2] end
        end
        local code, _, err = run(args, env)
        assert.are.equal(2, code)
        assert.matches(flag:gsub("%-", "%%-"), err)
        assert.are.equal(0, #server:requests())
      end)
    end

    it("sends a create once when the answer was lost, and says how to look for the batch", function()
      server:scenario({ batches = {}, directories = DIRS, create = { steps = { { fault = "drop" } } } })
      local code, out, err = run({ "batches", "create", "--source-directory-id", "dir-ok", "--type", "parse_v2",
                                   "--configuration-id", "cfg-x" }, env)
      assert.are.equal(3, code)
      assert.are.equal("", out)
      assert.matches("may have been created", err, 1, true)
      assert.matches("llamacloud batches list --source-directory-id dir-ok", err, 1, true)
      assert.are.equal(1, #requests("POST", "/api/v2/batches"))
      -- and the batch is there to be found
      code, out = run({ "batches", "list", "--source-directory-id", "dir-ok" }, env)
      assert.are.equal(0, code)
      assert.are.equal(1, #cjson.decode(out).items)
    end)
  end)

  describe("batches list", function()
    local function make(n)
      local ids = {}
      for i = 1, n do ids[i] = create("dir-ok") end
      return ids
    end

    it("prints one page, sending the query parameters as the service names them", function()
      local ids = make(3)
      local code, out, err = run({ "batches", "list", "--status", "PENDING", "--source-directory-id", "dir-ok",
        "--created-after", "2000-01-01T00:00:00Z", "--created-before", "2999-01-01T00:00:00Z", "--page-size", "2" }, env)
      assert.are.equal(0, code, err)
      local page = cjson.decode(out)
      assert.are.same({ ids[1], ids[2] }, { page.items[1].id, page.items[2].id })
      assert.are.equal(2, #page.items)
      assert.is_string(page.next_page_token)
      local q = requests("GET", "/api/v2/batches")
      q = q[#q].query
      for _, part in ipairs({ "status=PENDING", "source_directory_id=dir%-ok", "page_size=2",
                              "created_at_on_or_after=2000", "created_at_on_or_before=2999" }) do
        assert.matches(part, q)
      end
      -- the next page from its token
      code, out = run({ "batches", "list", "--page-size", "2", "--page-token", page.next_page_token }, env)
      assert.are.equal(0, code)
      page = cjson.decode(out)
      assert.are.equal(ids[3], page.items[1].id)
      assert.are.equal(cjson.null, page.next_page_token)
    end)

    it("prints an empty page's items as a list", function()
      local code, out = run({ "batches", "list" }, env)
      assert.are.equal(0, code)
      assert.matches('"items":%[%]', out)
    end)

    it("prints every batch of every page with --all, one JSON object per line", function()
      local ids = make(5)
      local before = #requests("GET", "/api/v2/batches")
      local code, out, err = run({ "batches", "list", "--all", "--page-size", "2" }, env)
      assert.are.equal(0, code, err)
      local lines = lines_of(out)
      assert.are.equal(5, #lines)
      for i, line in ipairs(lines) do assert.are.equal(ids[i], cjson.decode(line).id) end
      assert.are.equal(3, #requests("GET", "/api/v2/batches") - before)
    end)

    it("ends quietly when head closes the pipe, asking for no page past the one it needed", function()
      -- Every page after the first takes 0.3 s, so head has read its line and gone before the
      -- second page's line is written (without it, a loaded machine let a third page through).
      server:scenario({ batches = {}, directories = DIRS, list = { steps = { {}, { delay = 0.3 } } } })
      make(6)
      for _, trap in ipairs({ "", "trap '' PIPE; " }) do
        local before = #requests("GET", "/api/v2/batches")
        local errfile = os.tmpname()
        local code, out = shell("bash -c " .. util.quote(trap .. "set -o pipefail; " .. child.cli_command(
          { "batches", "list", "--all", "--page-size", "1" }, env) .. " 2>" .. errfile .. " | head -n 1"))
        local err = util.read_file(errfile) or ""
        os.remove(errfile)
        assert.are.equal("", err)
        assert.are.equal(1, #lines_of(out))
        -- killed by SIGPIPE (141) where it is not ignored, exit 0 where it is
        assert.truthy(code == 0 or code == 141, tostring(code))
        assert.is_true(#requests("GET", "/api/v2/batches") - before <= 3)
      end
    end)

    it("exits 3 when a page fails, having printed the batches before it", function()
      server:scenario({ batches = { ["bat-l1"] = {}, ["bat-l2"] = {}, ["bat-l3"] = {} }, directories = DIRS,
                        list = { steps = { {}, { status = 400 } } } })
      local code, out, err = run({ "batches", "list", "--all", "--page-size", "2" }, env)
      assert.are.equal(3, code)
      local lines = lines_of(out)
      assert.are.same({ "bat-l1", "bat-l2" }, { cjson.decode(lines[1]).id, cjson.decode(lines[2]).id })
      assert.are.equal(2, #lines)
      assert.matches("^llamacloud: [^\n]*BadRequestError", err)
    end)

    for _, row in ipairs({ { "--status", "DONE" }, { "--page-size", "0" }, { "--page-size", "1.5" } }) do
      it("exits 2 for " .. row[1] .. " " .. row[2] .. ", sending nothing", function()
        local code, _, err = run({ "batches", "list", row[1], row[2] }, env)
        assert.are.equal(2, code)
        assert.matches(row[1]:gsub("%-", "%%-"), err)
        assert.are.equal(0, #server:requests())
      end)
    end
  end)

  describe("batches cancel", function()
    it("cancels a running batch and prints it", function()
      local id = create("dir-stuck")
      local code, out, err = run({ "batches", "cancel", id }, env)
      assert.are.equal(0, code, err)
      assert.are.equal(id, cjson.decode(out).id)
      assert.are.equal(1, #requests("POST", "/api/v2/batches/" .. id .. "/cancel"))
      local _, after = run({ "batches", "get", id }, env)
      assert.are.equal("CANCELLED", cjson.decode(after).status)
    end)

    it("exits 3 for a batch that cannot be cancelled", function()
      -- A batch that ended COMPLETED (cancelling a cancelled one again is harmless: 200).
      server:scenario({ batches = { ["bat-done"] = { steps = { "COMPLETED" } } }, directories = DIRS })
      local code, out, err = run({ "batches", "cancel", "bat-done" }, env)
      assert.are.equal(3, code)
      assert.are.equal("", out)
      assert.matches("BadRequestError", err)
    end)

    for _, args in ipairs({ {}, { "bat-1", "bat-2" }, { ".." } }) do
      it("exits 2 for " .. #args .. " ids " .. table.concat(args, " "), function()
        local argv = { "batches", "cancel" }
        for _, a in ipairs(args) do argv[#argv + 1] = a end
        local code = run(argv, env)
        assert.are.equal(2, code)
        assert.are.equal(0, #server:requests())
      end)
    end
  end)

  describe("jobs get", function()
    -- the id of a created batch's first job, once the batch shows its results
    local function first_job(dir)
      local id = create(dir)
      local code, out = run({ "batches", "wait", id, "--expand", "results", "--interval", "0.05" }, env)
      assert.are.equal(0, code)
      return cjson.decode(out).results[1].job_reference.id
    end

    it("prints a parse job with its markdown pages", function()
      local job = first_job("dir-ok")
      local code, out, err
      for _ = 1, 3 do -- RUNNING, COMPLETED
        code, out, err = run({ "jobs", "get", "parse_v2", job, "--expand", "markdown", "--expand", "text" }, env)
        if cjson.decode(out).job.status == "COMPLETED" then break end
      end
      assert.are.equal(0, code, err)
      local j = cjson.decode(out)
      assert.are.equal("COMPLETED", j.job.status)
      assert.are.equal("# Page", j.markdown.pages[1].markdown)
      local gets = requests("GET", "/api/v2/parse/" .. job)
      assert.are.equal("expand=markdown&expand=text", gets[#gets].query)
    end)

    it("exits 3 for a job of the other type", function()
      local job = first_job("dir-ok")
      local code, out, err = run({ "jobs", "get", "extract_v2", job }, env)
      assert.are.equal(3, code)
      assert.are.equal("", out)
      assert.matches("NotFoundError", err)
    end)

    for _, args in ipairs({ { "parse", "pjb-1" }, { "parse_v2" }, { "parse_v2", "pjb-1", "x" }, { "parse_v2", "" } }) do
      it("exits 2 for jobs get " .. table.concat(args, " "), function()
        local argv = { "jobs", "get" }
        for _, a in ipairs(args) do argv[#argv + 1] = a end
        local code, out, err = run(argv, env)
        assert.are.equal(2, code)
        assert.are.equal("", out)
        assert.matches("^llamacloud: ", err)
        assert.are.equal(0, #server:requests())
      end)
    end
  end)

  describe("batches files", function()
    local function files(id, extra, e)
      local args = { "batches", "files", id, "--interval", "0.05" }
      for _, a in ipairs(extra or {}) do args[#args + 1] = a end
      return run(args, e or env)
    end

    it("exits 0 when every file's job COMPLETED, printing the report", function()
      local id = create("dir-ok")
      local code, out, err = files(id)
      assert.are.equal(0, code, err)
      assert.are.equal("", err)
      local report = cjson.decode(out)
      assert.are.equal(id, report.batch.id)
      assert.are.equal(3, #report.files)
      assert.are.equal(3, report.counts.COMPLETED)
      for _, k in ipairs({ "FAILED", "CANCELLED", "MAPPING_FAILED", "UNMAPPED" }) do
        assert.are.equal(0, report.counts[k], k)
      end
      for _, f in ipairs(report.files) do
        assert.are.equal("COMPLETED", f.status)
        assert.are.equal("parse_v2", f.job_reference.type)
      end
    end)

    it("exits 1 when a job failed or a mapping failed, naming each", function()
      local id = create("dir-mixed")
      local code, out = files(id)
      assert.are.equal(1, code)
      local report = cjson.decode(out)
      local by = {}
      for _, f in ipairs(report.files) do by[f.source_directory_file_id] = f end
      assert.are.equal("COMPLETED", by["dfl-ok"].status)
      assert.are.equal("FAILED", by["dfl-bad"].status)
      assert.are.equal("MAPPING_FAILED", by["dfl-unmappable"].status)
      assert.are.equal("unsupported file type", by["dfl-unmappable"].error_message)
      assert.are.same({ COMPLETED = 1, FAILED = 1, CANCELLED = 0, MAPPING_FAILED = 1, UNMAPPED = 0 }, report.counts)
    end)

    it("exits 1 printing nothing when the batch FAILED", function()
      local id = create("dir-orchestration")
      local code, out, err = files(id)
      assert.are.equal(1, code)
      assert.are.equal("", out)
      assert.matches("PollingError", err)
    end)

    it("exits 4 on timeout, printing the report so far", function()
      local id = create("dir-stuck")
      local code, out, err = files(id, { "--timeout", "0.5" })
      assert.are.equal(4, code)
      assert.matches("PollingTimeoutError", err)
      local report = cjson.decode(out)
      assert.are.equal(2, #report.files)
    end)

    it("exits 1 for a batch cancelled while its jobs run", function()
      local id = create("dir-stuck")
      assert.are.equal(0, (run({ "batches", "cancel", id }, env)))
      local code, out = files(id)
      assert.are.equal(1, code)
      assert.are.equal("CANCELLED", cjson.decode(out).batch.status)
    end)

    it("exits 0 for a batch of no files", function()
      local code, out = files(create("dir-empty"))
      assert.are.equal(0, code)
      assert.matches('"files":%[%]', out)
    end)

    it("prints progress lines with --progress, the report alone on stdout", function()
      local id = create("dir-mixed")
      local code, out, err = files(id, { "--progress" })
      assert.are.equal(1, code)
      cjson.decode(out)
      assert.matches("files 3/3 settled", err, 1, true)
      assert.matches(id .. " COMPLETED: 3 files: 1 COMPLETED, 1 FAILED, 1 MAPPING_FAILED in ", err, 1, true)
      code, out, err = files(create("dir-ok"), { "--quiet", "--progress" })
      assert.are.equal(0, code)
      assert.are.equal(3, cjson.decode(out).counts.COMPLETED)
      assert.are.equal("", err)
    end)

    it("shows files settled of total on a terminal, time moving while a job request is in flight", function()
      local id = create("dir-slow")
      local code, tty, out = run_tty({ "batches", "files", id, "--interval", "0.05" }, env)
      assert.are.equal(0, code)
      assert.are.equal(1, cjson.decode(out).counts.COMPLETED)
      assert.matches("files 0/1 settled", tty, 1, true)
      assert.matches(id .. " COMPLETED: 1 file: 1 COMPLETED in ", tty, 1, true)
      -- the line redrawn with new times while the first job poll (a second long) was answered
      local times = {}
      for t in tty:gmatch("files 0/1 settled%s+(%d+%.%d) s") do times[t] = true end
      local distinct = 0
      for _ in pairs(times) do distinct = distinct + 1 end
      assert.is_true(distinct >= 3, tty)
      code, tty = run_tty({ "batches", "files", create("dir-ok"), "--interval", "0.05", "--quiet" }, env)
      assert.are.equal(0, code)
      assert.are.equal("", tty)
    end)

    it("puts each job's expanded fields in the report with --job-expand", function()
      local id = create("dir-ok")
      local code, out = files(id, { "--job-expand", "markdown" })
      assert.are.equal(0, code)
      for _, f in ipairs(cjson.decode(out).files) do
        assert.are.equal("# Page", f.job.markdown.pages[1].markdown)
      end
      local gets = requests("GET", "/api/v2/parse/")
      assert.are.equal("expand=markdown", gets[#gets].query)
    end)

    it("exits 130 without a trace when interrupted while a job request is in flight", function()
      local id = create("dir-hang")
      local rc, out, err = child.cli_interrupted({ "batches", "files", id, "--interval", "0.05" }, env,
        function() return #requests("GET", "/api/v2/parse/") > 0 end)
      assert.are.equal(1, #requests("GET", "/api/v2/parse/"))
      assert.are.equal("130", rc)
      assert.are.equal("", out)
      assert.is_nil(err:find("traceback", 1, true), err)
      assert.is_nil(err:find("interrupted", 1, true), err)
    end)

    for _, args in ipairs({ {}, { "bat-1", "bat-2" }, { "bat-1", "--concurrency", "0" }, { "bat-1", "--timeout", "0" } }) do
      it("exits 2 for batches files " .. table.concat(args, " "), function()
        local argv = { "batches", "files" }
        for _, a in ipairs(args) do argv[#argv + 1] = a end
        local code, out = run(argv, env)
        assert.are.equal(2, code)
        assert.are.equal("", out)
        assert.are.equal(0, #server:requests())
      end)
    end
  end)

  describe("help", function()
    local cli = require("llamacloud.cli")
    for _, c in ipairs(cli.COMMANDS) do
      it("prints " .. c[2] .. " --help naming each of its flags", function()
        local argv = {}
        for w in c[2]:gmatch("%S+") do argv[#argv + 1] = w end
        argv[#argv + 1] = "--help"
        local code, out, err = run(argv, env)
        assert.are.equal(0, code)
        assert.are.equal("", err)
        assert.matches("Usage: llamacloud " .. c[2], out, 1, true)
        for _, f in ipairs(cli.FLAGS) do
          if f[4][c[1]] then assert.truthy(out:find("\n  " .. f[1] .. " ", 1, true), f[1]) end
        end
      end)
    end

    it("exits 2 for a flag of another command, naming the commands that take it", function()
      local code, _, err = run({ "batches", "cancel", "bat-1", "--all" }, env)
      assert.are.equal(2, code)
      assert.matches("%-%-all is not an option of batches cancel %(it is one of batches list%)", err)
    end)
  end)
end)

describe("files progress", function()
  local progress = require("llamacloud.progress")

  -- an output that keeps what was written, and a clock moved by hand
  local function sink()
    local o = { text = "" }
    function o:write(...) self.text = self.text .. table.concat({ ... }) end
    function o.flush() end
    return o
  end
  local function clock()
    local c = { t = 100 }
    return c, function() return c.t end
  end

  local function report(statuses)
    local files, counts = {}, { COMPLETED = 0, FAILED = 0, CANCELLED = 0, MAPPING_FAILED = 0, UNMAPPED = 0 }
    for i, st in ipairs(statuses) do
      files[i] = { status = st }
      counts[st] = counts[st] + 1
    end
    return { batch = { status = "COMPLETED" }, files = files, counts = counts }
  end

  it("prints a line per event and a summary without a terminal", function()
    local out, c, now = sink(), clock()
    local p = progress.files("bat-1", "lines", out, { now = now })
    p.batch({ status = "RUNNING" }, { attempt = 1 })
    c.t = 100.5
    p.batch({ status = "COMPLETED", results = { {}, {}, {} } }, { attempt = 2 })
    p.file({ status = "MAPPING_FAILED" })
    c.t = 101
    p.file({ status = "COMPLETED" })
    p.file({ status = "FAILED" })
    p.tick() -- nothing without a terminal
    p.finish(report({ "COMPLETED", "FAILED", "MAPPING_FAILED" }))
    assert.are.equal(table.concat({
      "bat-1 RUNNING  poll 1  0.0 s\n",
      "bat-1 COMPLETED  files 0/3 settled  0.5 s\n",
      "bat-1 COMPLETED  files 1/3 settled: 1 MAPPING_FAILED  0.5 s\n",
      "bat-1 COMPLETED  files 2/3 settled: 1 COMPLETED, 1 MAPPING_FAILED  1.0 s\n",
      "bat-1 COMPLETED  files 3/3 settled: 1 COMPLETED, 1 FAILED, 1 MAPPING_FAILED  1.0 s\n",
      "bat-1 COMPLETED: 3 files: 1 COMPLETED, 1 FAILED, 1 MAPPING_FAILED in 1.0 s\n",
    }), out.text)
  end)

  it("redraws one line in place on a terminal, fitted to its width, the time moving on ticks", function()
    local out, c, now = sink(), clock()
    local p = progress.files("bat-1", "tty", out, { now = now, size = function() return 30, 24 end })
    p.batch({ status = "COMPLETED", results = { {}, {} } }, { attempt = 1 })
    assert.are.equal("\r\27[Kbat-1 COMPLETED  files 0/2...", out.text)
    out.text = ""
    c.t = 100 + progress.TICK / 2
    p.tick()
    assert.are.equal("", out.text) -- too soon after the last draw
    c.t = 100 + progress.TICK * 2
    p.tick()
    assert.matches("^\r\27%[K", out.text)
    for line in out.text:gmatch("\27%[K([^\r]*)") do assert.is_true(#line <= 29, line) end
    out.text = ""
    p.finish(report({ "COMPLETED", "COMPLETED" }))
    assert.are.equal("\r\27[Kbat-1 COMPLETED: 2 files: 2 COMPLETED in 0.4 s\n", out.text)
  end)

  it("says when time ran out and when there is no report", function()
    local out, c, now = sink(), clock()
    local p = progress.files("bat-1", "lines", out, { now = now })
    c.t = 102
    p.finish(report({ "COMPLETED" }), { name = "PollingTimeoutError" })
    p.finish(nil, { name = "PollingError" })
    assert.are.equal("bat-1 COMPLETED: 1 file: 1 COMPLETED in 2.0 s (timed out)\nbat-1: PollingError after 2.0 s\n",
      out.text)
  end)
end)
