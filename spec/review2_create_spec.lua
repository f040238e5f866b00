-- Review 2 of the call engine: create's may_have_created on every path, a pooled handle after a
-- create, prepare's argument checks, bodies with NULs, retry-after against the deadline.
local fake = require("spec.support.fake")

local KEY = "sk-review2-key"

local function params()
  return { source_directory_id = "dir-demo", config = { job = { type = "parse_v2", configuration_id = "cfg-x" } } }
end

local DIRS = { ["dir-demo"] = { files = { { id = "dfl-1" } } } }

describe("review2: create", function()
  local server, client, core, calls

  local function scenario(create_steps)
    server:scenario({ api_key = KEY, directories = DIRS, create = { steps = create_steps or {} },
                      batches = { ["bat-x"] = { steps = { "RUNNING" } } } })
  end
  local function posts()
    local out = {}
    for _, r in ipairs(server:requests()) do
      if r.method == "POST" then out[#out + 1] = r end
    end
    return out
  end

  setup(function()
    core = require("llamacloud.core")
    calls = require("llamacloud.calls")
    server = fake.start({ scenario = { api_key = KEY } })
    client = server:client({ api_key = KEY, max_retries = 2, timeout = 5 })
  end)
  teardown(function() if server then server:stop(client) end end)
  before_each(function() scenario() end)

  describe("may_have_created after a 2xx", function()
    it("is true for a 2xx that is not a batch: the service took the create", function()
      scenario({ { body = '{"ok":true}' }, {} })
      local batch, err = client.batches.create(params())
      assert.is_nil(batch)
      assert.are.equal("APIResponseValidationError", err.name)
      assert.is_true(err.may_have_created)
      assert.are.equal(1, #posts())
    end)

    it("is true for a 2xx that is not JSON", function()
      scenario({ { body = 'not json' }, {} })
      local _, err = client.batches.create(params())
      assert.are.equal("APIResponseValidationError", err.name)
      assert.is_true(err.may_have_created)
    end)

    it("is true for a 2xx body larger than max_body_bytes", function()
      local small = server:client({ api_key = KEY, max_retries = 2, max_body_bytes = 64 })
      finally(function() small.close() end)
      scenario({ { body = '{"id":"bat-big","status":"PENDING","pad":"' .. string.rep("x", 4096) .. '"}' }, {} })
      local batch, err = small.batches.create(params())
      assert.is_nil(batch)
      assert.are.equal("APIResponseValidationError", err.name)
      assert.truthy(err.message:find("max_body_bytes", 1, true), err.message)
      assert.is_true(err.may_have_created)
      assert.are.equal(1, #posts())
    end)
  end)

  describe("retry-after against the deadline", function()
    it("does not resend a 429 whose retry-after ends past the deadline, and says nothing was made", function()
      scenario({ { status = 429, headers = { ["retry-after"] = "30" } }, {} })
      local batch, err = client.batches.create(params(), { deadline = core.now() + 2 })
      assert.is_nil(batch)
      assert.are.equal("RateLimitError", err.name)
      assert.are.equal(1, #posts())
      assert.is_false(err.may_have_created)
    end)

    it("resends a 503 whose retry-after fits before the deadline", function()
      scenario({ { status = 503, headers = { ["retry-after-ms"] = "10" } }, {} })
      local batch, err = client.batches.create(params(), { deadline = core.now() + 60 })
      assert.is_nil(err)
      assert.truthy(batch)
      assert.are.equal(2, #posts())
    end)
  end)

  describe("a pooled handle after a create", function()
    it("sends the next call on the same multi as a GET with no body and no Content-Type", function()
      local ud = core.new({ api_key = KEY, base_url = server.url, allow_insecure_http = true })
      finally(function() ud:close() end)
      local m = ud:multi(1)
      local function run(req)
        m:add(req)
        while not req:done() do m:step(0.05) end
        return req:result()
      end
      assert(run(ud:prepare(calls.engine.create, nil, nil, nil, calls.create_body(params()))))
      assert(run(ud:prepare(calls.engine.batch_get, "bat-x", nil, nil, nil)))
      assert(run(ud:prepare(calls.engine.list, nil, nil, { page_size = "5" }, nil)))
      -- a cancel is a POST with no body: no form Content-Type, no leftover JSON body
      assert(run(ud:prepare(calls.engine.cancel, "bat-x", nil, nil, nil)))
      assert(run(ud:prepare(calls.engine.batch_get, "bat-x", nil, nil, nil)))
      m:close()
      local reqs = server:requests()
      assert.are.equal(5, #reqs)
      assert.are.same({ "POST", "GET", "GET", "POST", "GET" },
        { reqs[1].method, reqs[2].method, reqs[3].method, reqs[4].method, reqs[5].method })
      for _, i in ipairs({ 2, 3, 5 }) do
        assert.are.equal("", reqs[i].body or "", "request " .. i)
        assert.is_nil(reqs[i].headers["content-type"], "request " .. i)
        assert.is_nil(reqs[i].headers["content-length"], "request " .. i)
      end
      assert.are.equal("", reqs[4].body or "")
      assert.is_nil(reqs[4].headers["content-type"])
      -- the get after the create may ride a kept-alive connection again
      assert.are.equal(reqs[2].conn, reqs[3].conn)
    end)
  end)

  describe("headers", function()
    it("sends one Content-Type on a create, the caller's when opts.headers sets one", function()
      local batch, err = client.batches.create(params(),
        { headers = { ["Content-Type"] = "application/json; charset=utf-8" } })
      assert.is_nil(err)
      assert.truthy(batch)
      assert.are.equal("application/json; charset=utf-8", posts()[1].headers["content-type"])
    end)
  end)

  describe("bodies", function()
    it("sends a body with embedded NULs whole", function()
      local ud = core.new({ api_key = KEY, base_url = server.url, allow_insecure_http = true, max_retries = 0 })
      finally(function() ud:close() end)
      local body = '{"a":"x\0y"}\0tail'
      local req = ud:prepare(calls.engine.create, nil, nil, nil, body)
      ud:run(req)
      local p = posts()
      assert.are.equal(1, #p)
      assert.are.equal(#body, #p[1].body)
      assert.are.equal(body, p[1].body)
    end)
  end)
end)

describe("review2: prepare's arguments", function()
  local core, calls, ud
  setup(function()
    core = require("llamacloud.core")
    calls = require("llamacloud.calls")
    ud = core.new({ api_key = "k", base_url = "http://127.0.0.1:9", allow_insecure_http = true })
  end)
  teardown(function() ud:close() end)

  local function raises(pattern, ...)
    local ok, msg = pcall(ud.prepare, ud, ...)
    assert.is_false(ok)
    assert.truthy(tostring(msg):find(pattern, 1, true), msg)
  end

  it("names the call", function() raises("llamacloud.call expected", "create", nil, nil, nil, "{}") end)
  it("names the id", function() raises("batch_id must be a string", calls.engine.batch_get, 5) end)
  it("names opts", function() raises("opts must be a table", calls.engine.batch_get, "bat-x", "x") end)
  it("names the query", function() raises("query must be a table", calls.engine.list, nil, nil, "x=1") end)
  it("names the body", function() raises("body must be a string", calls.engine.create, nil, nil, nil, {}) end)
  it("refuses a body for a call that sends none", function()
    raises("get: takes no body", calls.engine.batch_get, "bat-x", nil, nil, "{}")
  end)
  it("refuses an id for a call that takes none", function()
    raises("list: takes no id", calls.engine.list, "bat-x", nil, nil, nil)
  end)
end)
