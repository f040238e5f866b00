-- Specs of the llamacloud command, run as a child under busted's own interpreter against the fake server.
local fake = require("spec.support.fake")
local child = require("spec.support.child")
local util = require("spec.support.util")
local socket = require("socket")
local cjson = require("cjson").new()

local KEY = "sk-cli-secret"
local run, run_tty = child.cli, child.cli_tty

local RAW = '{"status":"COMPLETED",  "id":"bat-raw", "zeta":[1, 2.50, null, "a\\"b"], ' ..
  '"empty":[], "obj":{}, "n":1e2}'

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
      { "an unknown batches command", { "batches", "list" } },
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

  describe("fake-server", function()
    it("binds a free port with --port 0 and prints it on its first line", function()
      local log = os.tmpname()
      local pid = util.spawn(child.cli_command({ "fake-server", "--port", "0" }), log)
      finally(function()
        os.execute("kill " .. pid .. " 2>/dev/null")
        os.remove(log)
      end)
      local line = util.wait_for(log, "^([^\n]*)\n", nil, 10)
      local port = tonumber(line:match("^fake%-server listening on http://127%.0%.0%.1:(%d+)$"))
      assert.is_number(port)
      assert.is_true(port > 0)
      local c = socket.connect("127.0.0.1", port)
      assert.is_truthy(c)
      c:send("POST /_fake/shutdown HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
      assert.matches("^HTTP/1.1 200", c:receive("*l"))
      c:close()
    end)
  end)
end)
