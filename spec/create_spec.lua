-- batches.create over TCP: the body it sends, its retry rule (never twice unless the first attempt
-- certainly did not reach the service) and err.may_have_created, and its argument checks; a pooled handle
-- after a create, bodies with NULs, and prepare's argument checks.
local fake = require("spec.support.fake")
local cjson = require("cjson")
local socket = require("socket")

local KEY = "sk-create-spec-key"

local function params(extra)
  local p = { source_directory_id = "dir-demo",
              config = { job = { type = "parse_v2", configuration_id = "cfg-x" } } }
  for k, v in pairs(extra or {}) do p[k] = v end
  return p
end

local DIRS = { ["dir-demo"] = { files = { { id = "dfl-1" } } } }

describe("batches.create", function()
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
  -- create under pcall: a wire event must never raise.
  local function create(p, opts, c)
    local res = { pcall((c or client).batches.create, p or params(), opts) }
    assert.is_true(res[1], "create raised: " .. tostring(res[2]))
    return res[2], res[3]
  end

  setup(function()
    core = require("llamacloud.core")
    calls = require("llamacloud.calls")
    server = fake.start({ scenario = { api_key = KEY } })
    client = server:client({ api_key = KEY, max_retries = 2, timeout = 5 })
  end)
  teardown(function() if server then server:stop(client) end end)
  before_each(function() scenario() end)

  describe("the request", function()
    it("POSTs the params as JSON and returns the new batch", function()
      local batch, err = create()
      assert.is_nil(err)
      assert.are.equal("bat-new-000001", batch.id)
      assert.are.equal("PENDING", batch.status)
      assert.are.equal("dir-demo", batch.source_directory_id)
      local p = posts()
      assert.are.equal(1, #p)
      assert.are.equal("/api/v2/batches", p[1].path)
      assert.are.equal("application/json", p[1].headers["content-type"])
      assert.are.same(params(), cjson.decode(p[1].body))
    end)

    it("sends an empty list as [] and empty webhook_headers as {}; no number or sparse array leaks", function()
      local _, err = create(params({
        webhook_configuration_ids = {},
        webhook_configurations = { { webhook_url = "http://127.0.0.1:9/hook", webhook_events = {},
                                     webhook_headers = {} } },
      }))
      assert.is_nil(err)
      local body = posts()[1].body
      assert.truthy(body:find('"webhook_configuration_ids":[]', 1, true), body)
      assert.truthy(body:find('"webhook_events":[]', 1, true), body)
      assert.truthy(body:find('"webhook_headers":{}', 1, true), body)
    end)

    it("writes webhook headers as a map and lists in their order", function()
      local _, err = create(params({
        webhook_configuration_ids = { "whc-2", "whc-1" },
        webhook_configurations = { { webhook_url = "http://127.0.0.1:9/h", webhook_headers = { B = "2", A = "1" },
                                     webhook_output_format = "json", webhook_signing_secret = "s" } },
      }))
      assert.is_nil(err)
      local sent = cjson.decode(posts()[1].body)
      assert.are.same({ "whc-2", "whc-1" }, sent.webhook_configuration_ids)
      assert.are.same({ A = "1", B = "2" }, sent.webhook_configurations[1].webhook_headers)
      assert.are.equal("json", sent.webhook_configurations[1].webhook_output_format)
    end)

    it("is also a module-level call on the default client", function()
      local llamacloud = require("llamacloud")
      assert.is_function(llamacloud.batches.create)
      assert.is_function(llamacloud.batches.list)
      assert.is_function(llamacloud.batches.each)
      assert.is_function(llamacloud.batches.cancel)
      assert.is_function(llamacloud.batches.wait_files)
      assert.is_function(llamacloud.jobs.get)
      assert.are.equal("RUNNING", llamacloud.jobs.status({ status = "RUNNING" }))
    end)
  end)

  describe("retries only what certainly did not reach the service", function()
    it("retries a 429", function()
      scenario({ { status = 429, headers = { ["retry-after-ms"] = "0" } }, {} })
      local batch, err = create()
      assert.is_nil(err)
      assert.are.equal("bat-new-000001", batch.id)
      assert.are.equal(2, #posts())
    end)

    it("retries a 503", function()
      scenario({ { status = 503, headers = { ["retry-after-ms"] = "0" } }, {} })
      local batch, err = create()
      assert.is_nil(err)
      assert.truthy(batch)
      assert.are.equal(2, #posts())
    end)

    it("after 429s to the end, says nothing was created", function()
      scenario({ { status = 429, headers = { ["retry-after-ms"] = "0" } } })
      local batch, err = create()
      assert.is_nil(batch)
      assert.are.equal("RateLimitError", err.name)
      assert.are.equal(3, err.attempts)
      assert.are.equal(3, #posts())
      assert.is_falsy(err.may_have_created)
    end)

    it("retries a refused connection", function()
      -- a port nobody listens on: bound, then closed
      local s = assert(socket.bind("127.0.0.1", 0))
      local _, port = s:getsockname()
      s:close()
      local c = require("llamacloud").new({ api_key = KEY, base_url = "http://127.0.0.1:" .. port, max_retries = 2 })
      local batch, err = create(nil, nil, c)
      c.close()
      assert.is_nil(batch)
      assert.are.equal("APIConnectionError", err.name)
      assert.are.equal(3, err.attempts)
      assert.is_falsy(err.may_have_created)
    end)

    it("retries a host name that does not resolve", function()
      -- a 70-byte label is no DNS name: the resolver refuses it without asking a server
      local host = string.rep("a", 70) .. ".invalid"
      local c = require("llamacloud").new({ api_key = KEY, base_url = "http://" .. host, allow_insecure_http = true,
                                            max_retries = 2 })
      local batch, err = create(nil, nil, c)
      c.close()
      assert.is_nil(batch)
      assert.are.equal("APIConnectionError", err.name)
      assert.are.equal(3, err.attempts)
      assert.is_false(err.may_have_created)
    end)

    it("does not retry a timeout, and says a batch may have been created", function()
      scenario({ { delay = 30 }, {} })
      local batch, err = create(nil, { timeout = 0.3 })
      assert.is_nil(batch)
      assert.are.equal("APITimeoutError", err.name)
      assert.are.equal(1, err.attempts)
      assert.is_true(err.may_have_created)
      assert.are.equal(1, #posts())
    end)

    it("does not retry a connection dropped after the request went out", function()
      scenario({ { fault = "drop" }, {} })
      local batch, err = create()
      assert.is_nil(batch)
      assert.are.equal("APIConnectionError", err.name)
      assert.is_true(err.may_have_created)
      assert.are.equal(1, #posts())
      -- the fake made the batch its creator never heard of: list finds it
      local page = assert(client.batches.list({ source_directory_id = "dir-demo" }))
      assert.are.equal(1, #page.items)
    end)

    it("does not retry a reset in the middle of the answer", function()
      scenario({ { fault = "rst_body" }, {} })
      local _, err = create()
      assert.are.equal("APIConnectionError", err.name)
      assert.is_true(err.may_have_created)
      assert.are.equal(1, #posts())
    end)

    for _, status in ipairs({ 500, 502, 504 }) do
      it("does not retry a " .. status, function()
        scenario({ { status = status, headers = { ["retry-after-ms"] = "0" } }, {} })
        local _, err = create()
        assert.are.equal("InternalServerError", err.name)
        assert.are.equal(status, err.status)
        assert.is_true(err.may_have_created)
        assert.are.equal(1, #posts())
      end)
    end

    it("does not retry a 500 even when x-should-retry says true", function()
      scenario({ { status = 500, headers = { ["x-should-retry"] = "true", ["retry-after-ms"] = "0" } }, {} })
      local _, err = create()
      assert.is_true(err.may_have_created)
      assert.are.equal(1, #posts())
    end)

    it("gives APIResponseValidationError for a 2xx that is not a batch, and does not send it again", function()
      scenario({ { body = '{"ok":true}' }, {} })
      local batch, err = create()
      assert.is_nil(batch)
      assert.are.equal("APIResponseValidationError", err.name)
      -- The service answered 2xx: it made a batch, whatever the body says.
      assert.is_true(err.may_have_created)
      assert.are.equal(1, #posts())
    end)

    it("leaves may_have_created false on a 4xx", function()
      scenario({ { status = 400 } })
      local _, err = create()
      assert.are.equal("BadRequestError", err.name)
      assert.is_false(err.may_have_created)
      assert.are.equal(1, #posts())
    end)

    -- libcurl sends a request again by itself on a reused connection it finds dead ("Connection
    -- died, retrying a fresh connect"): for a create that would be a second batch.
    it("never rides a kept-alive connection that dies after reading the POST", function()
      scenario({ { fault = "drop" }, {} })
      -- a get leaves a kept-alive connection in the client's pool
      assert(client.batches.get("bat-x"))
      local batch, err = create()
      assert.is_nil(batch)
      assert.are.equal("APIConnectionError", err.name)
      assert.is_true(err.may_have_created)
      local p = posts()
      assert.are.equal(1, #p)
      local get_conn = server:requests()[1].conn
      assert.are_not.equal(get_conn, p[1].conn)
    end)

    it("says a create cut off on the wire may have made a batch, and one never sent did not", function()
      scenario({ { delay = 30 } })
      local ud = core.new({ api_key = KEY, base_url = server.url })
      finally(function() ud:close() end)
      local body = calls.create_body(params())
      local m = ud:multi(1)
      local sent = ud:prepare(calls.engine.create, nil, nil, nil, body)
      local queued = ud:prepare(calls.engine.create, nil, nil, nil, body)
      m:add(sent)
      m:add(queued)
      for _ = 1, 500 do
        m:step(0.01)
        if #posts() == 1 then break end
      end
      assert.are.equal(1, #posts())
      sent:cancel()
      queued:cancel()
      local _, err = sent:result()
      assert.are.equal("request cancelled", err.message)
      assert.is_true(err.may_have_created)
      _, err = queued:result()
      assert.is_false(err.may_have_created)
      m:close()
    end)

    it("other calls still reuse the connection after a create", function()
      assert(create())
      assert(client.batches.get("bat-x"))
      assert(client.batches.get("bat-x"))
      local reqs = server:requests()
      assert.are.equal(reqs[2].conn, reqs[3].conn)
    end)
  end)

  describe("without lua-cjson", function()
    it("loads, and writes the same body with its own string encoder", function()
      local child = require("spec.support.child")
      local res = child.run({}, [[
        package.preload.cjson = function() error("no cjson here") end
        local calls = require("llamacloud.calls")
        require("llamacloud")
        local body = calls.create_body({ source_directory_id = "d\"ir\n\1\127é/",
          config = { job = { type = "parse_v2", configuration_id = "c" } }, webhook_configuration_ids = {} })
        package.preload.cjson, package.loaded.cjson = nil, nil -- the child's own report is written with cjson
        return body
      ]])
      assert.is_true(res.ok, res.err)
      assert.are.equal('{"source_directory_id":"d\\"ir\\n\\u0001\\u007fé/","config":{"job":{"type":"parse_v2",'
        .. '"configuration_id":"c"}},"webhook_configuration_ids":[]}', res.value)
      assert.are.same(cjson.decode(res.value).source_directory_id, "d\"ir\n\1\127é/")
    end)

    it("escapes every byte as cjson does, but for the slash", function()
      local plain = require("llamacloud.calls").plain_encode_string
      local all = {}
      for b = 0, 255 do all[#all + 1] = string.char(b) end
      local s = table.concat(all)
      assert.are.equal((cjson.encode(s):gsub("\\/", "/")), plain(s))
    end)
  end)

  describe("bad input raises before anything is sent", function()
    local cases = {
      { "params must be a table", nil },
      { "'source_directory_id' must be a string", { config = params().config } },
      { "'source_directory_id' must be a string", params({ source_directory_id = 5 }) },
      { "'config' must be a table", { source_directory_id = "d" } },
      { "'config.job' must be a table", params({ config = {} }) },
      { "'config.job.type' must be \"parse_v2\" or \"extract_v2\"",
        params({ config = { job = { type = "parse", configuration_id = "c" } } }) },
      { "'config.job.configuration_id' must be a string", params({ config = { job = { type = "parse_v2" } } }) },
      { "unknown field 'sourceDirectoryId'", params({ sourceDirectoryId = "x" }) },
      { "unknown field 'config.job.tier'",
        params({ config = { job = { type = "parse_v2", configuration_id = "c", tier = 1 } } }) },
      { "'webhook_configuration_ids' must be a list of strings", params({ webhook_configuration_ids = { [2] = "a" } }) },
      { "'webhook_configuration_ids[1]' must be a string", params({ webhook_configuration_ids = { 1 } }) },
      { "'webhook_configurations' must be a list", params({ webhook_configurations = { url = "x" } }) },
      { "'webhook_configurations[1].webhook_url' must be a string",
        params({ webhook_configurations = { { webhook_url = 42 } } }) },
      { "unknown field 'webhook_configurations[1].url'",
        params({ webhook_configurations = { { webhook_url = "u", url = "u" } } }) },
      { "'webhook_configurations[1].webhook_headers' must map strings to strings",
        params({ webhook_configurations = { { webhook_url = "u", webhook_headers = { a = 1 } } } }) },
      { "'webhook_configurations[1].webhook_output_format' must be",
        params({ webhook_configurations = { { webhook_url = "u", webhook_output_format = "xml" } } }) },
    }
    for _, case in ipairs(cases) do
      it("raises naming it: " .. case[1], function()
        local ok, msg = pcall(client.batches.create, case[2])
        assert.is_false(ok)
        assert.truthy(tostring(msg):find("llamacloud: create: " .. case[1], 1, true), msg)
        assert.are.equal(0, #server:requests())
      end)
    end

    it("raises on an unknown option, naming it", function()
      local ok, msg = pcall(client.batches.create, params(), { expand = "results" })
      assert.is_false(ok)
      assert.matches("llamacloud: create: unknown option 'expand'", msg)
      assert.are.equal(0, #server:requests())
    end)

    it("names the caller's line", function()
      local line = debug.getinfo(1, "l").currentline + 1
      local ok, msg = pcall(function() client.batches.create({}) end)
      assert.is_false(ok)
      assert.matches("create_spec.lua:" .. line .. ": llamacloud: create:", msg)
    end)
  end)

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

describe("prepare's arguments", function()
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
