-- batches.wait_files end to end against the fake server: the batch, then every file's job, the
-- report (files, counts, on_file), a cancelled or failed batch, a 429 storm, timeouts, bad input.
local fake = require("spec.support.fake")

local KEY = "sk-files-spec-key"

local function ref(id, t) return { type = t or "parse_v2", id = id } end
local function result(file, job_id, message)
  return { source_directory_file_id = file, job_reference = job_id and ref(job_id) or fake.null,
           error_message = message or fake.null }
end

local SCENARIO = {
  api_key = KEY,
  created = { steps = { "PENDING", "RUNNING", "COMPLETED" } },
  directories = {
    ["dir-mix"] = { files = {
      { id = "dfl-ok", job = { steps = { "PENDING", "RUNNING", "COMPLETED" }, pages = { "# A", "B" } } },
      { id = "dfl-bad", job = { steps = { "RUNNING", "FAILED" }, error_message = "password protected" } },
      { id = "dfl-map", mapping_error = "unsupported file type" },
      { id = "dfl-none", unmapped = true },
      { id = "dfl-ok2", job = { steps = { "COMPLETED" } } },
    } },
  },
  batches = {
    ["bat-cancelled"] = { steps = { "RUNNING", "CANCELLED" }, results = {
      result("dfl-1", "pjb-done"), result("dfl-2", "pjb-cancelled") } },
    ["bat-failed"] = { steps = { "RUNNING", "FAILED" }, results = { result("dfl-1", "pjb-done") } },
    ["bat-slow-jobs"] = { steps = { "COMPLETED" }, results = {
      result("dfl-1", "pjb-done"), result("dfl-2", "pjb-forever"), result("dfl-3", "pjb-forever") } },
    ["bat-never"] = { steps = { "RUNNING" }, results = { result("dfl-1", "pjb-done") } },
    ["bat-storm"] = { steps = { "COMPLETED" }, results = {
      result("dfl-1", "pjb-429"), result("dfl-2", "pjb-r1"), result("dfl-3", "pjb-r2"), result("dfl-4", "pjb-r3") } },
    ["bat-hung"] = { steps = { "COMPLETED" }, results = { result("dfl-1", "pjb-done"), result("dfl-2", "pjb-hung") } },
    ["bat-lost"] = { steps = { "COMPLETED" }, results = { result("dfl-1", "pjb-done"), result("dfl-2", "pjb-gone") } },
    ["bat-empty"] = { steps = { "COMPLETED" } },
  },
  jobs = {
    ["pjb-done"] = { steps = { "COMPLETED" } },
    ["pjb-cancelled"] = { steps = { "RUNNING", "CANCELLED" } },
    ["pjb-forever"] = { steps = { "RUNNING" } },
    ["pjb-hung"] = { steps = { { job_status = "RUNNING", delay = 3600 } } },
    -- the 429 answers at once; the others' first answers take 0.2 s, so their second polls fall due
    -- (0.22 s) well inside the 429's retry-after (0.5 s) after the client has seen it
    ["pjb-429"] = { steps = { { status = 429, headers = { ["retry-after"] = "0.5" } }, "COMPLETED" } },
    ["pjb-r1"] = { steps = { { job_status = "RUNNING", delay = 0.2 }, "RUNNING", "COMPLETED" } },
    ["pjb-r2"] = { steps = { { job_status = "RUNNING", delay = 0.2 }, "RUNNING", "COMPLETED" } },
    ["pjb-r3"] = { steps = { { job_status = "RUNNING", delay = 0.2 }, "RUNNING", "COMPLETED" } },
  },
}

local FAST = { interval = 0.02, max_interval = 0.05 }
local function opts(extra)
  local o = {}
  for k, v in pairs(FAST) do o[k] = v end
  for k, v in pairs(extra or {}) do o[k] = v end
  return o
end

describe("batches.wait_files", function()
  local server, client

  setup(function()
    server = fake.start({ scenario = SCENARIO })
    client = server:client({ api_key = KEY, max_retries = 2, timeout = 5 })
  end)
  teardown(function() if server then server:stop(client) end end)
  before_each(function() server:reset() end)

  local function job_requests()
    local out = {}
    for _, r in ipairs(server:requests()) do
      if r.job_id ~= fake.null then out[#out + 1] = r end
    end
    return out
  end

  it("waits for the batch, then for every file's job, and reports each file in the batch's order", function()
    local batch = assert(client.batches.create({ source_directory_id = "dir-mix",
      config = { job = { type = "parse_v2", configuration_id = "cfg-1" } } }))
    local settled = {}
    local report, err = client.batches.wait_files(batch.id, opts({
      on_file = function(file, info)
        settled[#settled + 1] = file.source_directory_file_id
        assert.is_number(info.index)
        assert.is_number(info.elapsed)
      end }))
    assert.is_nil(err)
    assert.are.equal("COMPLETED", report.batch.status)
    local f = report.files
    assert.are.equal(5, #f)
    assert.are.same({ "dfl-ok", "dfl-bad", "dfl-map", "dfl-none", "dfl-ok2" },
      { f[1].source_directory_file_id, f[2].source_directory_file_id, f[3].source_directory_file_id,
        f[4].source_directory_file_id, f[5].source_directory_file_id })
    assert.are.equal("COMPLETED", f[1].status)
    assert.are.equal("COMPLETED", f[1].job.job.status)
    assert.are.equal("parse_v2", f[1].job_reference.type)
    assert.is_nil(f[1].error_message)
    assert.are.equal("FAILED", f[2].status)
    assert.are.equal("password protected", f[2].error_message)
    assert.are.equal("MAPPING_FAILED", f[3].status)
    assert.are.equal("unsupported file type", f[3].error_message)
    assert.is_nil(f[3].job)
    assert.are.equal("UNMAPPED", f[4].status)
    assert.are.equal("COMPLETED", f[5].status)
    assert.are.same({ COMPLETED = 2, FAILED = 1, CANCELLED = 0, MAPPING_FAILED = 1, UNMAPPED = 1 }, report.counts)
    -- on_file: once per entry
    table.sort(settled)
    assert.are.same({ "dfl-bad", "dfl-map", "dfl-none", "dfl-ok", "dfl-ok2" }, settled)
    -- the batch was asked for with its results; a job is not polled again once it ended
    for _, r in ipairs(server:requests()) do
      if r.batch_id ~= fake.null and r.method == "GET" then assert.matches("expand=results", r.query) end
    end
    local polls = {}
    for _, r in ipairs(job_requests()) do polls[r.job_id] = (polls[r.job_id] or 0) + 1 end
    assert.are.same({ ["pjb-new-000001"] = 3, ["pjb-new-000002"] = 2, ["pjb-new-000003"] = 1 }, polls)
  end)

  it("passes job_expand to every jobs.get and keeps the user's own expand for the batch", function()
    local report, err = client.batches.wait_files("bat-cancelled",
      opts({ expand = "file_details", job_expand = { "markdown" } }))
    assert.is_nil(err)
    assert.truthy(report)
    for _, r in ipairs(server:requests()) do
      if r.job_id ~= fake.null then
        assert.are.equal("expand=markdown", r.query)
      else
        assert.are.equal("expand=file_details&expand=results", r.query)
      end
    end
  end)

  it("returns the report of a CANCELLED batch, finished files keeping their results", function()
    local report, err = client.batches.wait_files("bat-cancelled", opts())
    assert.is_nil(err)
    assert.are.equal("CANCELLED", report.batch.status)
    assert.are.equal("COMPLETED", report.files[1].status)
    assert.are.equal("CANCELLED", report.files[2].status)
    assert.are.equal(1, report.counts.CANCELLED)
    assert.are.equal(1, report.counts.COMPLETED)
  end)

  it("returns nil, PollingError for a FAILED batch, polling no job", function()
    local report, err = client.batches.wait_files("bat-failed", opts())
    assert.is_nil(report)
    assert.are.equal("PollingError", err.name)
    assert.are.equal("FAILED", err.batch.status)
    assert.are.same({}, job_requests())
  end)

  it("returns an empty report for a batch without files", function()
    local report, err = client.batches.wait_files("bat-empty", opts())
    assert.is_nil(err)
    assert.are.same({}, report.files)
    assert.are.same({ COMPLETED = 0, FAILED = 0, CANCELLED = 0, MAPPING_FAILED = 0, UNMAPPED = 0 }, report.counts)
  end)

  it("out of time while jobs run: the report with the last status seen, and PollingTimeoutError", function()
    local calls = 0
    local report, err = client.batches.wait_files("bat-slow-jobs", opts({ timeout = 0.5,
      on_file = function() calls = calls + 1 end }))
    assert.are.equal("PollingTimeoutError", err.name)
    assert.are.equal("COMPLETED", report.files[1].status)
    assert.are.equal("RUNNING", report.files[2].status)
    assert.are.equal("RUNNING", report.files[3].status)
    assert.are.equal(2, report.counts.RUNNING)
    assert.are.equal(1, report.counts.COMPLETED)
    assert.are.equal(1, calls) -- only the file that settled
  end)

  it("out of time while the batch runs: a report of what was seen, and PollingTimeoutError", function()
    local report, err = client.batches.wait_files("bat-never", opts({ timeout = 0.3 }))
    assert.are.equal("PollingTimeoutError", err.name)
    assert.are.equal("RUNNING", report.batch.status)
    assert.are.equal(1, #report.files)
    assert.are.equal("PENDING", report.files[1].status)
    assert.are.same({}, job_requests())
  end)

  -- API.md: one timeout bounds the whole call, a job request's own attempts and retry pauses included.
  it("out of time while a job request hangs: returns about timeout after it began", function()
    local c = server:client({ api_key = KEY, timeout = 20 }) -- the default max_retries, 2
    finally(function() c.close() end)
    local now = require("llamacloud.core").now
    local t0 = now()
    local report, err = c.batches.wait_files("bat-hung", opts({ timeout = 1 }))
    local took = now() - t0
    assert.are.equal("PollingTimeoutError", err.name)
    assert.are.same({ "COMPLETED", "PENDING" }, { report.files[1].status, report.files[2].status })
    -- a generous bound: a job request held to its own 20 s timeout took 20 s
    assert.is_true(took < 3, "took " .. took .. " s")
  end)

  it("ends with report, err on an error that polling again cannot mend (a job gone)", function()
    local report, err = client.batches.wait_files("bat-lost", opts())
    assert.are.equal("NotFoundError", err.name)
    assert.truthy(report)
    assert.are.equal(2, #report.files)
  end)

  for _, retries in ipairs({ 2, 0 }) do
    it("holds every job poll while a 429's retry-after runs (max_retries " .. retries .. ")", function()
      local c = server:client({ api_key = KEY, max_retries = retries, timeout = 5 })
      local report, err = c.batches.wait_files("bat-storm", opts({ concurrency = 4 }))
      c.close()
      assert.is_nil(err)
      assert.are.equal(4, report.counts.COMPLETED)
      local reqs = job_requests()
      local t429
      for _, r in ipairs(reqs) do
        if r.job_id == "pjb-429" and not t429 then t429 = r.t end
      end
      -- every poll after a job's first waited out the retry-after (the first four went at once)
      for k, r in ipairs(reqs) do
        if r.n > 1 then
          assert.is_true(r.t >= t429 + 0.48, ("request %d (%s, poll %d) at %.3f, 429 at %.3f")
            :format(k, r.job_id, r.n, r.t, t429))
        end
      end
      assert.is_true(#reqs >= 7)
    end)
  end

  it("keeps at most concurrency job requests in flight", function()
    local report, err = client.batches.wait_files("bat-storm", opts({ concurrency = 1 }))
    assert.is_nil(err)
    assert.are.equal(4, report.counts.COMPLETED)
    local conns = {}
    for _, r in ipairs(job_requests()) do conns[r.conn] = true end
    local n = 0
    for _ in pairs(conns) do n = n + 1 end
    assert.are.equal(1, n)
  end)

  describe("bad input raises before anything is sent", function()
    local cases = {
      { { concurrency = 0 }, "option 'concurrency' must be a whole number" },
      { { on_file = "x" }, "option 'on_file' must be a function" },
      { { job_expand = 3 }, "option 'job_expand' must be a string or a list of strings" },
      { { on_pol = print }, "unknown option 'on_pol'" },
      { { interval = -1 }, "option 'interval' must be a positive number of seconds" },
      { { job_expand = { 1 } }, "option 'job_expand' must be a string or a list of strings" },
      { { job_expand = "markdown", headers = { ["Bad Name"] = "x" } }, "option 'headers'" },
    }
    for _, case in ipairs(cases) do
      it(case[2], function()
        local ok, msg = pcall(client.batches.wait_files, "bat-empty", case[1])
        assert.is_false(ok)
        assert.truthy(tostring(msg):find(case[2], 1, true), msg)
        assert.are.equal(0, #server:requests())
      end)
    end

    it("a bad batch_id", function()
      local ok, msg = pcall(client.batches.wait_files, 42)
      assert.is_false(ok)
      assert.matches("batch_id must be a string", msg)
    end)
  end)
end)
