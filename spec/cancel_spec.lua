-- batches.cancel over TCP: a POST with no body that returns the batch, retried like get.
local fake = require("spec.support.fake")

local KEY = "sk-cancel-spec-key"

describe("batches.cancel", function()
  local server, client

  local function scenario(cancel_steps)
    server:scenario({ api_key = KEY, cancel = cancel_steps and { steps = cancel_steps } or nil, batches = {
      ["bat-run"] = { steps = { "RUNNING" } },
      ["bat-done"] = { steps = { "COMPLETED" } },
      ["a/b"] = { steps = { "RUNNING" } },
    } })
  end

  setup(function()
    server = fake.start({ scenario = { api_key = KEY } })
    client = server:client({ api_key = KEY, max_retries = 2 })
  end)
  teardown(function() if server then server:stop(client) end end)
  before_each(function() scenario() end)

  it("POSTs to .../cancel with no body and returns the batch; it then reads CANCELLED", function()
    local batch, err = client.batches.cancel("bat-run")
    assert.is_nil(err)
    assert.are.equal("bat-run", batch.id)
    local reqs = server:requests()
    assert.are.equal(1, #reqs)
    assert.are.equal("POST", reqs[1].method)
    assert.are.equal("/api/v2/batches/bat-run/cancel", reqs[1].path)
    assert.are.equal("", reqs[1].body)
    assert.is_nil(reqs[1].headers["content-type"])
    assert.are.equal("CANCELLED", assert(client.batches.get("bat-run")).status)
  end)

  it("encodes the id as one path segment", function()
    assert(client.batches.cancel("a/b"))
    assert.are.equal("/api/v2/batches/a%2Fb/cancel", server:requests()[1].path)
  end)

  it("is retried like get (repeating a cancel is harmless)", function()
    scenario({ { status = 503, headers = { ["retry-after-ms"] = "0" } }, { status = 502, headers = { ["retry-after-ms"] = "0" } }, {} })
    local batch, err = client.batches.cancel("bat-run")
    assert.is_nil(err)
    assert.are.equal("bat-run", batch.id)
    assert.are.equal(3, #server:requests())
    assert.is_nil(rawget(batch, "may_have_created"))
  end)

  it("returns the batch when a retry follows a cancel whose answer was lost", function()
    -- The first cancel acts, then its connection drops; the retry finds the batch CANCELLED.
    scenario({ { fault = "drop" }, {} })
    local batch, err = client.batches.cancel("bat-run")
    assert.is_nil(err)
    assert.are.equal("bat-run", batch.id)
    assert.are.equal(2, #server:requests())
    assert.are.equal("CANCELLED", assert(client.batches.get("bat-run")).status)
  end)

  it("returns the service's refusal for a batch already ended as nil, err", function()
    local batch, err = client.batches.cancel("bat-done")
    assert.is_nil(batch)
    assert.are.equal("BadRequestError", err.name)
    assert.is_nil(err.may_have_created)
    assert.are.equal(1, #server:requests())
  end)

  it("gives APIResponseValidationError when the answer is not a batch", function()
    scenario({ { body = '{"ok":true}' } })
    local batch, err = client.batches.cancel("bat-run")
    assert.is_nil(batch)
    assert.are.equal("APIResponseValidationError", err.name)
  end)

  it("takes get's per-call options but expand, and raises on bad input before sending", function()
    assert(client.batches.cancel("bat-run", { project_id = "prj-1", timeout = 5, headers = { ["X-A"] = "1" } }))
    assert.are.equal("project_id=prj-1", server:requests()[1].query)
    server:reset()
    for _, case in ipairs({
      { { nil }, "llamacloud: cancel: batch_id must be a string" },
      { { "" }, "llamacloud: cancel: batch_id must not be empty" },
      { { ".." }, "llamacloud: cancel: batch_id must not be '.' or '..'" },
      { { "bat-run", { expand = "results" } }, "llamacloud: cancel: unknown option 'expand'" },
      { { "bat-run", "x" }, "llamacloud: cancel: opts must be a table" },
    }) do
      local ok, msg = pcall(client.batches.cancel, case[1][1], case[1][2])
      assert.is_false(ok)
      assert.truthy(tostring(msg):find(case[2], 1, true), msg)
    end
    assert.are.equal(0, #server:requests())
  end)

  it("names the caller's line", function()
    local line = debug.getinfo(1, "l").currentline + 1
    local ok, msg = pcall(function() client.batches.cancel(42) end)
    assert.is_false(ok)
    -- LuaJIT may tail-call the C closure: then the message has no position of the caller
    assert.truthy(msg:find("cancel_spec.lua:" .. line .. ": llamacloud: cancel:", 1, true)
      or msg:find("^llamacloud: cancel:"), msg)
  end)
end)
