-- batches.list (one page) and batches.each (every batch of every page, fetched as the loop gets
-- there) over TCP: the query, pagination's edges, shapes the service should not send, bad input.
local fake = require("spec.support.fake")
local cjson = require("cjson")

local KEY = "sk-list-spec-key"

local function batch(id, status)
  return { id = id, status = status or "COMPLETED" }
end

-- A list step answering a page of these batches with that token (fake.null for a JSON null).
local function page(ids, token)
  local items = {}
  for i, id in ipairs(ids) do items[i] = batch(id) end
  local body = '{"items":' .. (#items == 0 and "[]" or cjson.encode(items)) .. ',"next_page_token":'
    .. (token == nil and "null" or cjson.encode(token)) .. "}"
  return { body = body }
end

local BATCHES = {
  ["bat-a"] = { steps = { "RUNNING" } },
  ["bat-b"] = { steps = { "COMPLETED" } },
  ["bat-c"] = { steps = { "RUNNING" } },
  ["bat-d"] = { steps = { "FAILED" } },
  ["bat-e"] = { steps = { "RUNNING" } },
}

describe("batches.list and batches.each", function()
  local server, client

  local function scenario(list_steps)
    server:scenario({ api_key = KEY, batches = BATCHES, list = list_steps and { steps = list_steps } or nil })
  end
  local function queries()
    local out = {}
    for _, r in ipairs(server:requests()) do out[#out + 1] = r.query end
    return out
  end
  local function collect(params, opts)
    local ids, errs = {}, {}
    for b, err in client.batches.each(params, opts) do
      if b then ids[#ids + 1] = b.id else errs[#errs + 1] = err end
    end
    return ids, errs
  end

  setup(function()
    server = fake.start({ scenario = { api_key = KEY } })
    client = server:client({ api_key = KEY, max_retries = 0 })
  end)
  teardown(function() if server then server:stop(client) end end)
  before_each(function() scenario() end)

  describe("list", function()
    it("returns one page: items and next_page_token", function()
      local p, err = client.batches.list({ page_size = 2 })
      assert.is_nil(err)
      assert.are.equal(2, #p.items)
      assert.are.equal("bat-a", p.items[1].id)
      assert.are.equal("string", type(p.next_page_token))
      assert.are.same({ "page_size=2" }, queries())
    end)

    it("sends every filter as the service names it, page_size without a fraction", function()
      local p, err = client.batches.list({ status = "RUNNING", source_directory_id = "dir-fake",
        created_at_on_or_after = "2020-01-01T00:00:00Z", created_at_on_or_before = "2030-01-01T00:00:00Z",
        page_size = 50.0, page_token = "" }, { project_id = "prj-1" })
      assert.is_nil(err)
      assert.are.equal(3, #p.items)
      assert.is_nil(p.next_page_token)
      assert.are.same({ "created_at_on_or_after=2020-01-01T00%3A00%3A00Z&created_at_on_or_before=2030-01-01T00%3A00%3A00Z"
        .. "&page_size=50&page_token=&source_directory_id=dir-fake&status=RUNNING&project_id=prj-1" }, queries())
    end)

    it("takes no params at all", function()
      local p, err = client.batches.list()
      assert.is_nil(err)
      assert.are.equal(5, #p.items)
    end)

    it("returns a wire error as nil, err", function()
      scenario({ { status = 422 } })
      local p, err = client.batches.list({})
      assert.is_nil(p)
      assert.are.equal("UnprocessableEntityError", err.name)
    end)

    it("gives APIResponseValidationError for a page without an items array", function()
      for _, body in ipairs({ '{"detail":"ok"}', '{"items":{"a":1}}', '[1,2]', '{"items":"x"}' }) do
        scenario({ { body = body } })
        local p, err = client.batches.list({})
        assert.is_nil(p, body)
        assert.are.equal("APIResponseValidationError", err.name, body)
      end
    end)
  end)

  describe("each", function()
    it("goes through every page, fetching the next only when the loop gets there", function()
      local it_fn = client.batches.each({ page_size = 2 })
      assert.are.equal(0, #server:requests())
      assert.are.equal("bat-a", it_fn().id)
      assert.are.equal(1, #server:requests())
      assert.are.equal("bat-b", it_fn().id)
      assert.are.equal(1, #server:requests())
      assert.are.equal("bat-c", it_fn().id)
      assert.are.equal(2, #server:requests())
      local rest = {}
      for b in it_fn do rest[#rest + 1] = b.id end
      assert.are.same({ "bat-d", "bat-e" }, rest)
      assert.are.same({ "page_size=2", "page_size=2&page_token=pt-2", "page_size=2&page_token=pt-4" }, queries())
    end)

    it("stops on an empty page even with a token", function()
      scenario({ page({ "bat-1", "bat-2" }, "pt-1"), page({}, "pt-2"), page({ "bat-9" }, nil) })
      local ids, errs = collect({})
      assert.are.same({ "bat-1", "bat-2" }, ids)
      assert.are.same({}, errs)
      assert.are.equal(2, #server:requests())
    end)

    it("stops on a null token", function()
      scenario({ page({ "bat-1" }, nil), page({ "bat-9" }, nil) })
      local ids = collect({})
      assert.are.same({ "bat-1" }, ids)
      assert.are.equal(1, #server:requests())
    end)

    it("stops on an empty token", function()
      scenario({ page({ "bat-1" }, ""), page({ "bat-9" }, nil) })
      assert.are.same({ "bat-1" }, (collect({})))
      assert.are.equal(1, #server:requests())
    end)

    it("stops with an error on a token it has already followed, instead of looping", function()
      scenario({ page({ "bat-1" }, "pt-1"), page({ "bat-2" }, "pt-1") })
      local ids, errs = collect({})
      assert.are.same({ "bat-1", "bat-2" }, ids)
      assert.are.equal(1, #errs)
      assert.are.equal("APIResponseValidationError", errs[1].name)
      assert.matches("pt%-1", errs[1].message)
      assert.are.equal(2, #server:requests())
    end)

    it("counts the token it was given as followed", function()
      scenario({ page({ "bat-1" }, "pt-0") })
      local ids, errs = collect({ page_token = "pt-0" })
      assert.are.same({ "bat-1" }, ids)
      assert.are.equal(1, #errs)
      assert.are.equal(1, #server:requests())
    end)

    it("yields false, err once on a wire error, then ends", function()
      scenario({ page({ "bat-1" }, "pt-1"), { status = 400 } })
      local seen = {}
      for b, err in client.batches.each({}) do seen[#seen + 1] = b and b.id or ("err:" .. err.name) end
      assert.are.same({ "bat-1", "err:BadRequestError" }, seen)
      assert.are.equal(2, #server:requests())
    end)

    it("yields nothing for an empty first page", function()
      scenario({ page({}, nil) })
      assert.are.same({}, (collect({})))
    end)

    it("passes the options to every page", function()
      collect({ page_size = 2 }, { project_id = "prj-9" })
      for _, q in ipairs(queries()) do assert.matches("project_id=prj%-9", q) end
    end)
  end)

  describe("bad input raises before anything is sent", function()
    local cases = {
      { "unknown field 'size'", { size = 3 } },
      { "'page_size' must be a positive whole number", { page_size = 0 } },
      { "'page_size' must be a positive whole number", { page_size = 2.5 } },
      { "'page_size' must be a positive whole number", { page_size = "10" } },
      { "'status' must be one of", { status = "DONE" } },
      { "'created_at_on_or_after' must be a string", { created_at_on_or_after = 1700000000 } },
      { "'created_at_on_or_before' must be a string", { created_at_on_or_before = {} } },
      { "'source_directory_id' must be a string", { source_directory_id = 1 } },
      { "'page_token' must be a string", { page_token = false } },
      { "params must be a table", "RUNNING" },
    }
    for _, case in ipairs(cases) do
      it("list: " .. case[1], function()
        local ok, msg = pcall(client.batches.list, case[2])
        assert.is_false(ok)
        assert.truthy(tostring(msg):find("llamacloud: list: " .. case[1], 1, true), msg)
      end)
      it("each: " .. case[1], function()
        local ok, msg = pcall(client.batches.each, case[2])
        assert.is_false(ok)
        assert.truthy(tostring(msg):find("llamacloud: each: " .. case[1], 1, true), msg)
      end)
    end

    it("raises on an unknown option at the call, not in the loop", function()
      local ok, msg = pcall(client.batches.each, {}, { expand = "results" })
      assert.is_false(ok)
      assert.matches("llamacloud: list: unknown option 'expand'", msg)
      ok, msg = pcall(client.batches.list, {}, { expnad = 1 })
      assert.is_false(ok)
      assert.matches("llamacloud: list: unknown option 'expnad'", msg)
      assert.are.equal(0, #server:requests())
    end)
  end)
end)
