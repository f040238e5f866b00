-- jobs.get over TCP (dispatch on job_reference.type to the parse or extract endpoint, expand passed
-- through, the server's object as is) and jobs.status on both shapes.
local fake = require("spec.support.fake")
local llamacloud = require("llamacloud")

local KEY = "sk-jobs-spec-key"

local JOBS = {
  ["pjb-1"] = { steps = { "COMPLETED" }, pages = { "# One", { error = "unreadable" } } },
  ["pjb-run"] = { steps = { "RUNNING" } },
  ["ejb-1"] = { type = "extract_v2", steps = { "COMPLETED" } },
  ["pjb-nostatus"] = { steps = { { body = '{"job":{"id":"pjb-nostatus"}}' } } },
  ["pjb-array"] = { steps = { { body = '[{"status":"COMPLETED"}]' } } },
  ["pjb-429"] = { steps = { { status = 429, headers = { ["retry-after-ms"] = "0" } }, "COMPLETED" } },
}

describe("jobs.get and jobs.status", function()
  local server, client

  setup(function()
    server = fake.start({ scenario = { api_key = KEY, jobs = JOBS } })
    client = server:client({ api_key = KEY, max_retries = 2 })
  end)
  teardown(function() if server then server:stop(client) end end)
  before_each(function() server:reset() end)

  it("gets a parse job from /api/v2/parse/{id}, as the server sent it", function()
    local job, err = client.jobs.get({ type = "parse_v2", id = "pjb-1" })
    assert.is_nil(err)
    assert.are.equal("pjb-1", job.job.id)
    assert.are.equal("COMPLETED", job.job.status)
    assert.is_nil(job.markdown)
    local r = server:requests()[1]
    assert.are.equal("/api/v2/parse/pjb-1", r.path)
    assert.are.equal("", r.query)
  end)

  it("passes expand through, repeated", function()
    local job, err = client.jobs.get({ type = "parse_v2", id = "pjb-1" }, { expand = { "markdown", "text" } })
    assert.is_nil(err)
    assert.are.equal(2, #job.markdown.pages)
    assert.is_false(job.markdown.pages[2].success)
    assert.is_table(job.text)
    assert.are.equal("expand=markdown&expand=text", server:requests()[1].query)
  end)

  it("gets an extract job from /api/v2/extract/{id}", function()
    local job, err = client.jobs.get({ type = "extract_v2", id = "ejb-1" }, { expand = "usage" })
    assert.is_nil(err)
    assert.are.equal("COMPLETED", job.status)
    assert.are.equal("/api/v2/extract/ejb-1", server:requests()[1].path)
  end)

  it("takes a result's job_reference as it comes (extra fields are fine)", function()
    local job = assert(client.jobs.get({ type = "parse_v2", id = "pjb-run", extra = true }))
    assert.are.equal("RUNNING", client.jobs.status(job))
  end)

  it("retries like get", function()
    local job, err = client.jobs.get({ type = "parse_v2", id = "pjb-429" })
    assert.is_nil(err)
    assert.are.equal("COMPLETED", llamacloud.jobs.status(job))
    assert.are.equal(2, #server:requests())
  end)

  it("returns a 404 for an unknown job as nil, err", function()
    local job, err = client.jobs.get({ type = "extract_v2", id = "ejb-none" })
    assert.is_nil(job)
    assert.are.equal("NotFoundError", err.name)
  end)

  it("gives APIResponseValidationError for a job without a status, or not an object", function()
    for _, id in ipairs({ "pjb-nostatus", "pjb-array" }) do
      local job, err = client.jobs.get({ type = "parse_v2", id = id })
      assert.is_nil(job, id)
      assert.are.equal("APIResponseValidationError", err.name, id)
    end
  end)

  it("jobs.status reads either shape, on the module and on each client", function()
    assert.are.equal("FAILED", llamacloud.jobs.status({ job = { status = "FAILED" } }))
    assert.are.equal("RUNNING", client.jobs.status({ status = "RUNNING" }))
    assert.is_nil(client.jobs.status({}))
    local ok, msg = pcall(client.jobs.status, "x")
    assert.is_false(ok)
    assert.matches("llamacloud: jobs.status: job must be a table", msg)
  end)

  describe("bad input raises before anything is sent", function()
    local cases = {
      { "job_reference must be a table", "pjb-1" },
      { "job_reference.type must be \"parse_v2\" or \"extract_v2\" (got parse)", { type = "parse", id = "x" } },
      { "job_reference.type must be", { id = "x" } },
      { "job_reference.id must be a string (got number)", { type = "parse_v2", id = 7 } },
      { "job_reference.id must not be empty", { type = "parse_v2", id = "" } },
      { "job_reference.id must not be '.' or '..'", { type = "extract_v2", id = ".." } },
    }
    for _, case in ipairs(cases) do
      it(case[1], function()
        local ok, msg = pcall(client.jobs.get, case[2])
        assert.is_false(ok)
        assert.truthy(tostring(msg):find("llamacloud: jobs.get: " .. case[1], 1, true), msg)
        assert.are.equal(0, #server:requests())
      end)
    end

    it("an unknown option, naming it", function()
      local ok, msg = pcall(client.jobs.get, { type = "parse_v2", id = "x" }, { job_expand = "markdown" })
      assert.is_false(ok)
      assert.matches("llamacloud: jobs.get: unknown option 'job_expand'", msg)
      assert.are.equal(0, #server:requests())
    end)
  end)
end)
