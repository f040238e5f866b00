-- batches.get against the fake server over TCP: fields and nulls, request headers, bad arguments.
local fake = require("spec.support.fake")
local child = require("spec.support.child")
local llamacloud = require("llamacloud")
local core = require("llamacloud.core")
local cjson = require("cjson")

local KEY = "sk-get-spec-key"

-- Every null placement the contract names, plus fields and a status it does not know.
local RAW = [[{
  "id": "bat-raw", "project_id": "prj-1", "source_directory_id": "dir-1",
  "config": {"job": {"type": "extract_v2", "configuration_id": "cfg-1", "x_job_extra": {"depth": 3}}},
  "status": "PAUSED_FOR_MAINTENANCE",
  "created_at": "2019-12-27T18:11:19.117Z", "updated_at": null,
  "results": [
    {"source_directory_file_id": "dfl-1", "job_reference": {"type": "parse_v2", "id": "pjb-1"},
     "error_message": null},
    {"source_directory_file_id": "dfl-2", "job_reference": null, "error_message": "unsupported file type"},
    {"source_directory_file_id": "dfl-3"}
  ],
  "x_new_field": {"nested": [1, null, "three"], "flag": false, "empty": []},
  "tags": [null, "a", null]
}]]

-- The key set of a table, sorted, to show a sequence has nothing but 1..n.
local function keys(t)
  local out = {}
  for k in pairs(t) do out[#out + 1] = k end
  table.sort(out, function(a, b) return tostring(a) < tostring(b) end)
  return out
end

local function read_version_file()
  local f = assert(io.open("VERSION", "rb"))
  local v = f:read("*a"):gsub("%s+$", "")
  f:close()
  return v
end

describe("batches.get", function()
  local server, client

  setup(function()
    server = fake.start()
    -- The built-in scenario's bat-done plus a raw body for the null rules.
    local sc = { api_key = KEY, batches = {
      ["bat-done"] = { steps = { "COMPLETED" }, results = {
        { source_directory_file_id = "dfl-a", job_reference = { type = "parse_v2", id = "pjb-a" },
          error_message = fake.null },
        { source_directory_file_id = "dfl-b", job_reference = fake.null, error_message = "bad file" },
      } },
      ["bat-raw"] = { steps = { { body = RAW } } },
    } }
    server:scenario(sc)
    client = server:client({ api_key = KEY, max_retries = 0 })
  end)
  teardown(function() if server then server:stop(client) end end)
  before_each(function() server:reset() end)

  describe("fields and nulls", function()
    it("returns a plain table with the server's field names", function()
      local batch, err = client.batches.get("bat-done")
      assert.is_nil(err)
      assert.is_nil(getmetatable(batch))
      assert.same({
        id = "bat-done", project_id = "prj-fake", source_directory_id = "dir-fake",
        config = { job = { type = "parse_v2", configuration_id = "cfg-fake" } },
        status = "COMPLETED",
        created_at = "2026-01-01T00:00:00.000Z", updated_at = "2026-01-01T00:01:00.000Z",
      }, batch)
    end)

    it("drops a JSON null member, so its key is absent", function()
      local batch, err = client.batches.get("bat-raw")
      assert.is_nil(err)
      assert.is_nil(rawget(batch, "updated_at"))
      assert.same({ source_directory_file_id = "dfl-1",
                    job_reference = { type = "parse_v2", id = "pjb-1" } }, batch.results[1])
      assert.same({ source_directory_file_id = "dfl-2", error_message = "unsupported file type" },
                  batch.results[2])
      assert.same({ source_directory_file_id = "dfl-3" }, batch.results[3])
      -- `if r.error_message then` is safe
      local failed = {}
      for _, r in ipairs(batch.results) do
        if r.error_message then failed[#failed + 1] = r.source_directory_file_id end
      end
      assert.same({ "dfl-2" }, failed)
    end)

    it("keeps a null inside an array as llamacloud.null, so positions hold", function()
      local batch, err = client.batches.get("bat-raw")
      assert.is_nil(err)
      assert.equal(3, #batch.tags)
      assert.equal(llamacloud.null, batch.tags[1])
      assert.equal("a", batch.tags[2])
      assert.equal(llamacloud.null, batch.tags[3])
      assert.equal(3, #batch.x_new_field.nested)
      assert.equal(1, batch.x_new_field.nested[1])
      assert.equal(llamacloud.null, batch.x_new_field.nested[2])
      assert.equal("three", batch.x_new_field.nested[3])
    end)

    it("makes llamacloud.null the same value as core.null and cjson.null", function()
      assert.equal("userdata", type(llamacloud.null))
      assert.equal(core.null, llamacloud.null)
      assert.equal(cjson.null, llamacloud.null)
    end)

    it("keeps unknown fields and unknown status values as they are", function()
      local batch, err = client.batches.get("bat-raw")
      assert.is_nil(err)
      assert.equal("PAUSED_FOR_MAINTENANCE", batch.status)
      assert.equal(false, batch.x_new_field.flag)
      assert.same({ depth = 3 }, batch.config.job.x_job_extra)
    end)

    it("decodes arrays as Lua sequences", function()
      local batch, err = client.batches.get("bat-raw")
      assert.is_nil(err)
      assert.same({ 1, 2, 3 }, keys(batch.results))
      assert.same({ 1, 2, 3 }, keys(batch.tags))
      local n = 0
      for _ in ipairs(batch.results) do n = n + 1 end
      assert.equal(3, n)
      -- Contract-silent, pinned: an empty JSON array is an empty table.
      assert.same({}, batch.x_new_field.empty)
    end)

    it("leaves results absent without expand", function()
      local batch, err = client.batches.get("bat-done")
      assert.is_nil(err)
      assert.is_nil(rawget(batch, "results"))
      assert.equal("", server:requests()[1].query)
    end)

    it("fills results with expand = results", function()
      local batch, err = client.batches.get("bat-done", { expand = "results" })
      assert.is_nil(err)
      assert.same({
        { source_directory_file_id = "dfl-a", job_reference = { type = "parse_v2", id = "pjb-a" } },
        { source_directory_file_id = "dfl-b", error_message = "bad file" },
      }, batch.results)
    end)

    it("decodes the nested config.job fields", function()
      local batch, err = client.batches.get("bat-raw")
      assert.is_nil(err)
      assert.same({ type = "extract_v2", configuration_id = "cfg-1", x_job_extra = { depth = 3 } },
                  batch.config.job)
    end)
  end)

  describe("request headers", function()
    local function headers_of(n)
      local reqs = server:requests()
      assert.equal(n or 1, #reqs)
      return reqs[n or 1].headers
    end

    it("sends Authorization: Bearer <api key>", function()
      local batch, err = client.batches.get("bat-done")
      assert.is_nil(err)
      assert.equal("COMPLETED", batch.status)
      assert.equal("Bearer " .. KEY, headers_of().authorization)
    end)

    it("sends Accept: application/json", function()
      assert.is_table((client.batches.get("bat-done")))
      assert.equal("application/json", headers_of().accept)
    end)

    it("sends User-Agent llamacloud-lua/<VERSION> (<Lua version>; libcurl/<version>)", function()
      assert.is_table((client.batches.get("bat-done")))
      local ua = headers_of()["user-agent"]
      local version, lua_version, curl = ua:match("^llamacloud%-lua/([^%s/]+) %((.+); libcurl/([%w%.%-]+)%)$")
      assert.is_string(version, "User-Agent: " .. ua)
      assert.equal(read_version_file(), version)
      assert.equal(llamacloud.VERSION, version)
      assert.equal(core.curl_version, curl)
      if jit then
        assert.equal(jit.version, lua_version)
      else
        -- the release ("Lua 5.4.4"), which starts with _VERSION ("Lua 5.4")
        assert.equal(_VERSION, lua_version:sub(1, #_VERSION))
        assert.matches("^Lua 5%.%d%.%d+$", lua_version)
      end
    end)

    it("adds the client's headers option to every request", function()
      local c = server:client_closed_by(finally, { api_key = KEY, headers = { ["X-Team"] = "docs" } })
      assert.is_table((c.batches.get("bat-done")))
      assert.is_table((c.batches.get("bat-done")))
      local reqs = server:requests()
      assert.equal(2, #reqs)
      assert.equal("docs", reqs[1].headers["x-team"])
      assert.equal("docs", reqs[2].headers["x-team"])
    end)

    it("adds per-call headers to that call only", function()
      assert.is_table((client.batches.get("bat-done", { headers = { ["X-Trace"] = "t-1" } })))
      assert.is_table((client.batches.get("bat-done")))
      local reqs = server:requests()
      assert.equal("t-1", reqs[1].headers["x-trace"])
      assert.is_nil(reqs[2].headers["x-trace"])
    end)

    it("lets a per-call header replace the client's, names compared without case", function()
      local c = server:client_closed_by(finally, { api_key = KEY, headers = { ["X-Team"] = "client" } })
      assert.is_table((c.batches.get("bat-done", { headers = { ["x-team"] = "call" } })))
      -- one header, not "client, call"
      assert.equal("call", headers_of()["x-team"])
    end)

    it("lets the headers option replace a default header", function()
      -- Contract-silent, pinned: defaults are the lowest layer, so a caller may set its own.
      local c = server:client_closed_by(finally, { api_key = KEY, headers = { ["User-Agent"] = "my-app/1.0" } })
      assert.is_table((c.batches.get("bat-done", { headers = { Accept = "application/x-call" } })))
      local h = headers_of()
      assert.equal("my-app/1.0", h["user-agent"])
      assert.equal("application/x-call", h.accept)
      assert.equal("Bearer " .. KEY, h.authorization)
    end)

    it("reads LLAMA_CLOUD_CUSTOM_HEADERS as lines of Name: value", function()
      local res = child.run({
        LLAMA_CLOUD_API_KEY = KEY, LLAMA_CLOUD_BASE_URL = server.url,
        -- CRLF, blanks around the value and an empty line are all fine
        LLAMA_CLOUD_CUSTOM_HEADERS = "X-One: 1\r\nX-Two:two words  \n\nX-Three:\t3",
      }, [[
        local batch, err = require("llamacloud").batches.get("bat-done")
        return batch and batch.status or tostring(err)
      ]])
      assert.same({ ok = true, value = "COMPLETED" }, res)
      local h = headers_of()
      assert.equal("1", h["x-one"])
      assert.equal("two words", h["x-two"])
      assert.equal("3", h["x-three"])
    end)

    it("layers headers: per-call over the client option over LLAMA_CLOUD_CUSTOM_HEADERS over defaults", function()
      local res = child.run({
        LLAMA_CLOUD_API_KEY = KEY,
        LLAMA_CLOUD_CUSTOM_HEADERS = "X-Env: env\nX-Client: env\nX-Call: env\nAccept: application/x-env",
      }, string.format([[
        local c = require("llamacloud").new({ base_url = %q,
          headers = { ["x-client"] = "client", ["X-Call"] = "client" } })
        local batch, err = c.batches.get("bat-done", { headers = { ["X-CALL"] = "call" } })
        return batch and batch.status or tostring(err)
      ]], server.url))
      assert.same({ ok = true, value = "COMPLETED" }, res)
      local h = headers_of()
      assert.equal("env", h["x-env"])
      assert.equal("client", h["x-client"])
      assert.equal("call", h["x-call"])
      assert.equal("application/x-env", h.accept)
      assert.equal("Bearer " .. KEY, h.authorization)
    end)
  end)

  describe("bad arguments", function()
    -- Each raises before anything is sent, with a message naming the culprit.
    local ROWS = {
      { "a number id", function(c) return c.batches.get(42) end, "batch_id must be a string" },
      { "a nil id", function(c) return c.batches.get(nil) end, "batch_id must be a string" },
      { "an empty id", function(c) return c.batches.get("") end, "batch_id must not be empty" },
      { "the id '.'", function(c) return c.batches.get(".") end, "batch_id must not be '%.' or '%.%.'" },
      { "the id '..'", function(c) return c.batches.get("..") end, "batch_id must not be '%.' or '%.%.'" },
      { "opts that are not a table", function(c) return c.batches.get("bat-done", "results") end,
        "opts must be a table" },
      { "an unknown option (max_retry)", function(c) return c.batches.get("bat-done", { max_retry = 1 }) end,
        "unknown option 'max_retry'" },
      { "a negative timeout", function(c) return c.batches.get("bat-done", { timeout = -1 }) end,
        "option 'timeout'" },
      { "a zero timeout", function(c) return c.batches.get("bat-done", { timeout = 0 }) end,
        "option 'timeout'" },
      { "a timeout that is not a number", function(c) return c.batches.get("bat-done", { timeout = "10" }) end,
        "option 'timeout'" },
      { "a NaN timeout", function(c) return c.batches.get("bat-done", { timeout = 0 / 0 }) end,
        "option 'timeout'" },
      { "a fractional max_retries", function(c) return c.batches.get("bat-done", { max_retries = 1.5 }) end,
        "option 'max_retries'" },
      { "a negative max_retries", function(c) return c.batches.get("bat-done", { max_retries = -1 }) end,
        "option 'max_retries'" },
      -- NaN and huge numbers are refused before any cast (UBSan under make asan would flag the cast).
      { "a NaN max_retries", function(c) return c.batches.get("bat-done", { max_retries = 0 / 0 }) end,
        "option 'max_retries'" },
      { "a huge max_retries", function(c) return c.batches.get("bat-done", { max_retries = 1e300 }) end,
        "option 'max_retries'" },
      { "an infinite max_retries", function(c) return c.batches.get("bat-done", { max_retries = math.huge }) end,
        "option 'max_retries'" },
      { "an expand that is a number", function(c) return c.batches.get("bat-done", { expand = 1 }) end,
        "option 'expand'" },
      { "an expand list holding a non-string", function(c)
          return c.batches.get("bat-done", { expand = { "results", true } }) end, "option 'expand'" },
      { "an expand table that is not a list", function(c)
          return c.batches.get("bat-done", { expand = { results = true } }) end, "option 'expand'" },
      { "a header value with CR", function(c)
          return c.batches.get("bat-done", { headers = { ["X-A"] = "a\rb" } }) end, "header 'X%-A' contains CR" },
      { "a header value with LF", function(c)
          return c.batches.get("bat-done", { headers = { ["X-A"] = "a\nX-Injected: 1" } }) end,
        "header 'X%-A' contains CR" },
      { "a header name with a space", function(c)
          return c.batches.get("bat-done", { headers = { ["X A"] = "v" } }) end, "option 'headers': invalid header name" },
      { "a header name with a colon", function(c)
          return c.batches.get("bat-done", { headers = { ["X:A"] = "v" } }) end, "option 'headers': invalid header name" },
      { "an empty header name", function(c)
          return c.batches.get("bat-done", { headers = { [""] = "v" } }) end, "option 'headers': invalid header name" },
      { "a header value that is not a string", function(c)
          return c.batches.get("bat-done", { headers = { ["X-A"] = 1 } }) end, "header 'X%-A' must be a string" },
      { "headers that are not a table", function(c)
          return c.batches.get("bat-done", { headers = "X-A: 1" }) end, "option 'headers' must be a table" },
      { "an organization_id that is not a string", function(c)
          return c.batches.get("bat-done", { organization_id = 7 }) end, "option 'organization_id'" },
      { "a project_id that is not a string", function(c)
          return c.batches.get("bat-done", { project_id = {} }) end, "option 'project_id'" },
      { "an extra_query that is not a table", function(c)
          return c.batches.get("bat-done", { extra_query = "a=1" }) end, "option 'extra_query' must be a table" },
      { "an extra_query key that is not a string", function(c)
          return c.batches.get("bat-done", { extra_query = { "a" } }) end, "option 'extra_query' keys" },
      { "an extra_query value that is a function", function(c)
          return c.batches.get("bat-done", { extra_query = { a = print } }) end, "option 'extra_query': 'a'" },
      { "an extra_query list holding a table", function(c)
          return c.batches.get("bat-done", { extra_query = { a = { "x", {} } } }) end, "option 'extra_query': 'a'" },
      { "an extra_query value that is a table but not a list", function(c)
          return c.batches.get("bat-done", { extra_query = { a = { x = 1 } } }) end, "option 'extra_query': 'a'" },
    }

    for _, row in ipairs(ROWS) do
      it("raises for " .. row[1] .. " before anything is sent", function()
        local ok, msg = pcall(row[2], client)
        assert.is_false(ok)
        assert.is_string(msg)
        -- The message may start with the caller's position (none where LuaJIT tail-calls the C getter).
        assert.matches("^[^\n]-llamacloud: get: ", msg)
        assert.matches(row[3], msg)
        assert.same({}, server:requests())
      end)
    end
  end)
end)

describe("batches.get argument errors", function()
  it("point at the caller's line, not at the library", function()
    local client = require("llamacloud").new({ api_key = "sk-position", base_url = "http://127.0.0.1:1" })
    local line = debug.getinfo(1, "l").currentline + 2
    local ok, msg = pcall(function()
      local batch = client.batches.get("bat-x", { max_retry = 1 }) -- not a tail call: LuaJIT drops those frames
      return batch
    end)
    assert.is_false(ok)
    assert.are.equal("get_spec.lua:" .. line .. ": llamacloud: get: unknown option 'max_retry'",
      msg:match("[^/]*$"))
  end)

  it("returns exactly batch, err: no third value", function()
    local client = require("llamacloud").new({ api_key = "sk-position", base_url = "http://127.0.0.1:1" })
    assert.are.equal(2, select("#", client.batches.get("bat-x", { max_retries = 0 })))
  end)
end)
