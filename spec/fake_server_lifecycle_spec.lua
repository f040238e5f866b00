-- The fake server's batch lifecycle (issue 10): create, list, cancel, and the parse and extract jobs
-- a batch's files point to, with scripted faults on every endpoint. Raw HTTP over TCP.
local socket = require("socket")
local cjson = require("cjson").new()
local fake = require("spec.support.fake")

local null = cjson.null

local function api(server, method, path, body, headers)
  if type(body) == "table" then body = fake.encode(body) end
  local status, resp, hdrs = server:http(method, path, body, headers)
  assert(status, resp)
  local ok, decoded = pcall(cjson.decode, resp)
  return status, ok and decoded or resp, hdrs
end

local function create_body(dir, job_type, extra)
  local b = { source_directory_id = dir,
              config = { job = { type = job_type or "parse_v2", configuration_id = "cfg-test" } } }
  for k, v in pairs(extra or {}) do b[k] = v end
  return b
end

local function create(server, dir, job_type, extra)
  local status, b = api(server, "POST", "/api/v2/batches", create_body(dir, job_type, extra))
  assert.are.equal(200, status, cjson.encode(b))
  return b
end

local function ids_of(items)
  local out = {}
  for i, b in ipairs(items) do out[i] = b.id end
  return out
end

-- The status a batch has in the list (which does not count as a poll).
local function page_status(server, id)
  local _, p = api(server, "GET", "/api/v2/batches")
  for _, b in ipairs(p.items) do if b.id == id then return b.status end end
end

local DIRS = {
  ["dir-mixed"] = { files = {
    { id = "dfl-ok", name = "ok.pdf", job = { steps = { "RUNNING", "COMPLETED" },
      pages = { "# One", { markdown = "Two", text = "two", header = "h" }, { error = "unreadable page" } } } },
    { id = "dfl-bad", job = { steps = { "PENDING", "FAILED" }, error_message = "password protected" } },
    { id = "dfl-unmappable", mapping_error = "unsupported file type" },
    { id = "dfl-later", unmapped = true },
  } },
  ["dir-many"] = { count = 3, file = { job = { steps = { "COMPLETED" } } } },
  ["dir-slow"] = { count = 2, batch = { steps = { "PENDING", "RUNNING" } },
                   file = { job = { steps = { "RUNNING" } } } },
  ["dir-big"] = { count = 1001 },
}

describe("fake server lifecycle", function()
  local server
  setup(function() server = fake.start({ scenario = { batches = {}, directories = DIRS } }) end)
  teardown(function() server:stop() end)
  before_each(function() server:scenario({ batches = {}, directories = DIRS }) end)

  describe("create", function()
    it("makes a batch with a generated bat- id from the directory", function()
      local a = create(server, "dir-mixed")
      local b = create(server, "dir-many", "extract_v2")
      assert.truthy(a.id:match("^bat%-"))
      assert.are_not.equal(a.id, b.id)
      assert.are.same({ "dir-mixed", "PENDING", null },
        { a.source_directory_id, a.status, a.results })
      assert.are.same({ job = { type = "parse_v2", configuration_id = "cfg-test" } }, a.config)
      assert.truthy(a.created_at:match("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%dZ$"))
      local _, got = api(server, "GET", "/api/v2/batches/" .. b.id)
      assert.are.equal("extract_v2", got.config.job.type)
    end)

    it("maps each file to a job of the batch's type, or fails its mapping", function()
      local a = create(server, "dir-mixed")
      local path = "/api/v2/batches/" .. a.id .. "?expand=results"
      local _, first = api(server, "GET", path)
      assert.are.equal(null, first.results) -- PENDING: no results yet
      local _, b = api(server, "GET", path)
      assert.are.equal("RUNNING", b.status)
      local r = b.results
      assert.are.same({ "dfl-ok", "dfl-bad", "dfl-unmappable", "dfl-later" },
        { r[1].source_directory_file_id, r[2].source_directory_file_id,
          r[3].source_directory_file_id, r[4].source_directory_file_id })
      assert.are.equal("parse_v2", r[1].job_reference.type)
      assert.truthy(r[1].job_reference.id:match("^pjb%-"))
      assert.are.equal(null, r[1].error_message)
      assert.are.same({ null, "unsupported file type" }, { r[3].job_reference, r[3].error_message })
      assert.are.same({ null, null }, { r[4].job_reference, r[4].error_message })
      local _, c = api(server, "GET", path)
      assert.are.equal("COMPLETED", c.status)
    end)

    it("generates count files, and extract jobs for an extract batch", function()
      local a = create(server, "dir-many", "extract_v2")
      api(server, "GET", "/api/v2/batches/" .. a.id)
      local _, b = api(server, "GET", "/api/v2/batches/" .. a.id .. "?expand=results")
      assert.are.equal(3, #b.results)
      assert.are.equal("dfl-many-0003", b.results[3].source_directory_file_id)
      assert.are.equal("extract_v2", b.results[1].job_reference.type)
      local status, job = api(server, "GET", "/api/v2/extract/" .. b.results[1].job_reference.id)
      assert.are.equal(200, status)
      assert.are.equal("COMPLETED", job.status)
    end)

    it("answers 404 for an unknown directory and 422 for a bad body", function()
      local status, body = api(server, "POST", "/api/v2/batches", create_body("dir-nope"))
      assert.are.equal(404, status)
      assert.truthy(body.detail:find("dir-nope", 1, true))
      local bad = {
        "[]", "not json", { config = { job = { type = "parse_v2", configuration_id = "c" } } },
        create_body("dir-many", "parse_v3"),
        { source_directory_id = "dir-many", config = { job = { type = "parse_v2" } } },
        create_body("dir-many", nil, { colour = "red" }),
        create_body("dir-many", nil, { webhook_configurations = { { webhook_url = "https://example.com/h" } } }),
        create_body("dir-many", nil, { webhook_configurations = { { webhook_url = "http://10.0.0.1/h" } } }),
        create_body("dir-many", nil, { webhook_configurations = { { webhook_url = "http://127.0.0.1:1/h",
          webhook_events = { "batch.exploded" } } } }),
        create_body("dir-many", nil, { webhook_configuration_ids = { 1 } }),
      }
      for i, b in ipairs(bad) do
        status, body = api(server, "POST", "/api/v2/batches", b)
        assert.are.equal(422, status, "body " .. i)
        assert.is_string(body.detail, "body " .. i)
      end
      assert.are.same({}, (select(2, api(server, "GET", "/api/v2/batches?source_directory_id=dir-many"))).items)
    end)

    it("refuses a directory past the service's 1,000 files", function()
      local status, body = api(server, "POST", "/api/v2/batches", create_body("dir-big"))
      assert.are.equal(422, status)
      assert.truthy(body.detail:find("1000", 1, true))
    end)

    it("records the request with its body and the new batch's id", function()
      local sent = fake.encode(create_body("dir-many"))
      local status, b = api(server, "POST", "/api/v2/batches", sent)
      assert.are.equal(200, status)
      local rec = server:requests()[1]
      assert.are.same({ "POST", "/api/v2/batches", sent, b.id, 1 },
        { rec.method, rec.path, rec.body, rec.batch_id, rec.n })
    end)
  end)

  describe("jobs", function()
    local function job_refs(dir, job_type)
      local a = create(server, dir, job_type)
      api(server, "GET", "/api/v2/batches/" .. a.id)
      local _, b = api(server, "GET", "/api/v2/batches/" .. a.id .. "?expand=results")
      return b.results, a
    end

    it("answer parse jobs with scripted statuses and the pages asked for", function()
      local r = job_refs("dir-mixed")
      local path = "/api/v2/parse/" .. r[1].job_reference.id
      local _, j1 = api(server, "GET", path .. "?expand=markdown")
      assert.are.same({ r[1].job_reference.id, "RUNNING", null, null },
        { j1.job.id, j1.job.status, j1.job.error_message, j1.markdown })
      local _, j2 = api(server, "GET", path .. "?expand=markdown&expand=text&expand=markdown_full")
      assert.are.equal("COMPLETED", j2.job.status)
      assert.are.same({ pages = {
        { page_number = 1, markdown = "# One", success = true },
        { page_number = 2, markdown = "Two", success = true, header = "h" },
        { page_number = 3, error = "unreadable page", success = false },
      } }, j2.markdown)
      assert.are.same({ pages = { { page_number = 1, text = "# One" }, { page_number = 2, text = "two" },
        { page_number = 3, text = "" } } }, j2.text)
      assert.are.equal("# One\n\nTwo", j2.markdown_full)
      local _, plain = api(server, "GET", path)
      assert.is_nil(plain.markdown)
      assert.is_nil(plain.text)
    end)

    it("fail with the job's error_message", function()
      local r = job_refs("dir-mixed")
      local path = "/api/v2/parse/" .. r[2].job_reference.id
      api(server, "GET", path)
      local _, j = api(server, "GET", path .. "?expand=markdown")
      assert.are.same({ "FAILED", "password protected", null }, { j.job.status, j.job.error_message, j.markdown })
    end)

    it("answer an extract job with its status at the top", function()
      local r = job_refs("dir-many", "extract_v2")
      local _, j = api(server, "GET", "/api/v2/extract/" .. r[1].job_reference.id .. "?expand=usage")
      assert.are.same({ r[1].job_reference.id, "COMPLETED", null }, { j.id, j.status, j.error_message })
      assert.is_table(j.extract_result)
      assert.is_table(j.usage)
      assert.are.equal(null, j.configuration)
    end)

    it("answer 404 for an unknown job or one of the other type", function()
      local r = job_refs("dir-many", "extract_v2")
      assert.are.equal(404, (api(server, "GET", "/api/v2/parse/" .. r[1].job_reference.id)))
      local status, body = api(server, "GET", "/api/v2/parse/pjb-nope")
      assert.are.same({ 404, "Job not found" }, { status, body.detail })
    end)

    it("serve scenario jobs with faults in their steps, recorded by job id", function()
      server:scenario({ jobs = { ["pjb-x"] = { steps = {
        { status = 429, headers = { ["retry-after"] = "0" } }, { fault = "drop" }, "COMPLETED" } } } })
      local status, _, headers = api(server, "GET", "/api/v2/parse/pjb-x")
      assert.are.same({ 429, "0" }, { status, headers["retry-after"] })
      assert.is_nil((server:http("GET", "/api/v2/parse/pjb-x")))
      local _, j = api(server, "GET", "/api/v2/parse/pjb-x")
      assert.are.equal("COMPLETED", j.job.status)
      local status2, recs = api(server, "GET", "/_fake/requests?id=pjb-x")
      assert.are.equal(200, status2)
      assert.are.same({ 1, 2, 3 }, { recs[1].n, recs[2].n, recs[3].n })
    end)
  end)

  describe("list", function()
    local function page(query)
      local status, body = api(server, "GET", "/api/v2/batches" .. (query or ""))
      assert.are.equal(200, status, cjson.encode(body))
      return body
    end

    it("walks every batch page by page until the token is null", function()
      local names = { batches = { ["bat-a"] = {}, ["bat-b"] = {}, ["bat-c"] = {} }, directories = DIRS }
      server:scenario(names)
      local made = {}
      for i = 1, 4 do made[i] = create(server, "dir-many").id end
      local seen, token, pages = {}, nil, 0
      repeat
        local p = page("?page_size=3" .. (token and ("&page_token=" .. token) or ""))
        pages = pages + 1
        for _, b in ipairs(p.items) do seen[#seen + 1] = b.id end
        token = p.next_page_token ~= null and p.next_page_token or nil
      until not token
      assert.are.equal(3, pages)
      assert.are.same({ "bat-a", "bat-b", "bat-c", made[1], made[2], made[3], made[4] }, seen)
      -- an empty page past the end is still a page
      assert.are.same({ {}, null }, { page("?page_token=pt-7").items, page("?page_token=pt-7").next_page_token })
    end)

    it("filters by status, directory and creation time", function()
      server:scenario({ batches = { ["bat-done"] = {}, ["bat-run"] = { steps = { "RUNNING" } } },
                        directories = DIRS })
      local a = create(server, "dir-many")
      local b = create(server, "dir-slow")
      assert.are.same({ "bat-done" }, ids_of(page("?status=COMPLETED").items))
      assert.are.same({ a.id, b.id }, ids_of(page("?status=PENDING").items))
      assert.are.same({ b.id }, ids_of(page("?source_directory_id=dir-slow").items))
      assert.are.same({ a.id, b.id }, ids_of(page("?created_at_on_or_after=" .. a.created_at).items))
      assert.are.same({ "bat-done", "bat-run" }, ids_of(page("?created_at_on_or_before=2026-01-01T00:00:00Z").items))
      assert.are.same({}, ids_of(page("?created_at_on_or_after=2999-01-01T00:00:00%2B02:00").items))
      local p = page("?status=PENDING&page_size=1")
      assert.are.same({ a.id }, ids_of(p.items))
      assert.are.same({ b.id }, ids_of(page("?status=PENDING&page_size=1&page_token=" .. p.next_page_token).items))
    end)

    it("refuses bad parameters", function()
      for q, code in pairs({ ["?page_size=0"] = 422, ["?page_size=x"] = 422, ["?status=DONE"] = 422,
                             ["?page_token=nope"] = 400, ["?created_at_on_or_after=yesterday"] = 422,
                             ["?colour=red"] = 422 }) do
        local status, body = api(server, "GET", "/api/v2/batches" .. q)
        assert.are.equal(code, status, q)
        assert.is_string(body.detail, q)
      end
    end)
  end)

  describe("cancel", function()
    it("ends a running batch and its unfinished jobs CANCELLED; finished jobs keep their status", function()
      local a = create(server, "dir-mixed")
      local path = "/api/v2/batches/" .. a.id
      api(server, "GET", path)
      local _, b = api(server, "GET", path .. "?expand=results")
      local ok_job = "/api/v2/parse/" .. b.results[1].job_reference.id
      local bad_job = "/api/v2/parse/" .. b.results[2].job_reference.id
      api(server, "GET", bad_job)
      api(server, "GET", bad_job) -- FAILED now
      local status, c = api(server, "POST", path .. "/cancel")
      assert.are.same({ 200, a.id, "RUNNING" }, { status, c.id, c.status })
      local _, after = api(server, "GET", path .. "?expand=results")
      assert.are.equal("CANCELLED", after.status)
      assert.are.equal(4, #after.results)
      assert.are.equal("CANCELLED", (select(2, api(server, "GET", ok_job))).job.status)
      assert.are.equal("FAILED", (select(2, api(server, "GET", bad_job))).job.status)
      -- Cancelling again is harmless: the batch comes back, still CANCELLED.
      local again, body = api(server, "POST", path .. "/cancel")
      assert.are.equal(200, again)
      assert.are.equal("CANCELLED", body.status)
    end)

    it("refuses a terminal batch with 400 and an unknown one with 404", function()
      server:scenario({ batches = { ["bat-done"] = {}, ["bat-run"] = { steps = { "RUNNING" } } } })
      local status, body = api(server, "POST", "/api/v2/batches/bat-done/cancel")
      assert.are.same({ 400, "Batch bat-done is COMPLETED and cannot be cancelled" }, { status, body.detail })
      assert.are.equal(404, (api(server, "POST", "/api/v2/batches/bat-nope/cancel")))
      assert.are.equal(200, (api(server, "POST", "/api/v2/batches/bat-run/cancel")))
      assert.are.equal("CANCELLED", (select(2, api(server, "GET", "/api/v2/batches/bat-run"))).status)
      assert.are.equal("CANCELLED", page_status(server, "bat-run"))
    end)
  end)

  describe("scripted faults", function()
    it("on create: a non-2xx step creates nothing, a 2xx step that drops the answer still creates", function()
      server:scenario({ directories = DIRS, create = { steps = {
        { status = 503 }, { fault = "drop" }, {} } } })
      assert.are.equal(503, (api(server, "POST", "/api/v2/batches", create_body("dir-many"))))
      assert.is_nil((server:http("POST", "/api/v2/batches", fake.encode(create_body("dir-many")))))
      local b = create(server, "dir-many")
      local _, p = api(server, "GET", "/api/v2/batches")
      assert.are.equal(2, #p.items)
      assert.are.equal(b.id, p.items[2].id)
      local recs = server:requests()
      assert.are.same({ 1, 2, 3 }, { recs[1].n, recs[2].n, recs[3].n })
      assert.are.same({ null, p.items[1].id }, { recs[1].batch_id, recs[2].batch_id })
    end)

    it("on list and cancel", function()
      server:scenario({ batches = { ["bat-run"] = { steps = { "RUNNING" } } },
                        list = { steps = { { status = 429, headers = { ["retry-after-ms"] = "5" } }, {} } },
                        cancel = { steps = { { status = 500 }, { delay = 0.01 } } } })
      local status, _, headers = api(server, "GET", "/api/v2/batches")
      assert.are.same({ 429, "5" }, { status, headers["retry-after-ms"] })
      assert.are.equal(200, (api(server, "GET", "/api/v2/batches")))
      assert.are.equal(500, (api(server, "POST", "/api/v2/batches/bat-run/cancel")))
      assert.are.equal("RUNNING", (select(2, api(server, "GET", "/api/v2/batches/bat-run"))).status)
      assert.are.equal(200, (api(server, "POST", "/api/v2/batches/bat-run/cancel")))
      assert.are.equal("CANCELLED", (select(2, api(server, "GET", "/api/v2/batches/bat-run"))).status)
    end)
  end)

  it("moves a batch with advance_every on its own", function()
    server:scenario({ directories = { ["dir-t"] = { count = 1,
      batch = { steps = { "PENDING", "RUNNING", "COMPLETED" }, advance_every = 0.01 } } } })
    local a = create(server, "dir-t")
    local status
    for _ = 1, 500 do
      local _, list = api(server, "GET", "/api/v2/batches?status=COMPLETED")
      if #list.items == 1 then status = list.items[1].status; break end
      socket.sleep(0.01)
    end
    assert.are.equal("COMPLETED", status)
    -- no GET of the batch itself was needed
    local _, recs = api(server, "GET", "/_fake/requests?id=" .. a.id)
    assert.are.equal(1, #recs)
  end)
end)

