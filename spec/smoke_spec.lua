local fake = require("spec.support.fake")

describe("batches.get against the fake server", function()
  local server
  setup(function() server = fake.start() end)
  teardown(function() server:stop() end)

  it("returns the demo batch with its results", function()
    local llamacloud = require("llamacloud")
    local client = llamacloud.new({ api_key = "sk-smoke", base_url = server.url })
    local batch, err = client.batches.get("bat-done", { expand = "results" })
    assert.is_nil(err)
    assert.are.equal("COMPLETED", batch.status)
    assert.are.equal(4, #batch.results)
  end)
end)
