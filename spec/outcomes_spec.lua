-- Specs of batches.outcomes: an expanded batch's results sorted into files with jobs, failed and unmapped.
local fake = require("spec.support.fake")
local llamacloud = require("llamacloud")

local function file_ids(list)
  local out = {}
  for i, r in ipairs(list) do out[i] = r.source_directory_file_id end
  return out
end

describe("batches.outcomes", function()
  local server, client

  setup(function()
    server = fake.start()
    client = server:client({ api_key = "sk-outcomes" })
  end)
  teardown(function() server:stop(client) end)

  it("sorts the demo batch's files into jobs, failed and unmapped", function()
    local batch, err = client.batches.wait("bat-demo", { expand = "results", interval = 0.02 })
    assert.is_nil(err)
    assert.are.equal("COMPLETED", batch.status)
    local o = client.batches.outcomes(batch)
    assert.are.same({ "dfl-demo-0001", "dfl-demo-0002" }, file_ids(o.jobs))
    assert.are.same({ "dfl-demo-0003" }, file_ids(o.failed))
    assert.are.same({ "dfl-demo-0004" }, file_ids(o.unmapped))
    assert.are.same({ type = "parse_v2", id = "pjb-demo-0001" }, o.jobs[1].job_reference)
    assert.are.equal("unsupported file type", o.failed[1].error_message)
    assert.are.same({ source_directory_file_id = "dfl-demo-0004" }, o.unmapped[1])
  end)

  it("is the same function at module level and on a client", function()
    local batch = assert(client.batches.get("bat-done", { expand = "results" }))
    assert.are.same(client.batches.outcomes(batch), llamacloud.batches.outcomes(batch))
  end)

  it("gives three empty lists when results is nil (not expanded, or not there yet)", function()
    local batch, err = client.batches.get("bat-done")
    assert.is_nil(err)
    assert.is_nil(batch.results)
    assert.are.same({ jobs = {}, failed = {}, unmapped = {} }, client.batches.outcomes(batch))
  end)

  it("gives three empty lists for an empty results array", function()
    assert.are.same({ jobs = {}, failed = {}, unmapped = {} },
      llamacloud.batches.outcomes({ id = "bat-x", status = "COMPLETED", results = {} }))
  end)

  it("skips a null entry in results", function()
    local o = llamacloud.batches.outcomes({ id = "bat-x", status = "RUNNING", results = {
      llamacloud.null, { source_directory_file_id = "dfl-1" } } })
    assert.are.same({ jobs = {}, failed = {}, unmapped = { { source_directory_file_id = "dfl-1" } } }, o)
  end)

  for _, bad in ipairs({ { "nil", nil }, { "a string", "bat-x" }, { "a number", 3 } }) do
    it("raises naming batch when given " .. bad[1], function()
      local ok, msg = pcall(llamacloud.batches.outcomes, bad[2])
      assert.is_false(ok)
      assert.matches("batch", tostring(msg), 1, true)
    end)
  end
end)
