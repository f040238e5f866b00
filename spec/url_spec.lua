-- URL building: core.encode_segment as a pure unit, then the path and query the fake server really received.
local fake = require("spec.support.fake")
local llamacloud = require("llamacloud")
local core = require("llamacloud.core")

local KEY = "sk-url-spec-key"
local PREFIX = "/api/v2/batches/"

local function unreserved(b)
  return (b >= 65 and b <= 90) or (b >= 97 and b <= 122) or (b >= 48 and b <= 57)
      or b == 45 or b == 46 or b == 95 or b == 126
end

local function pct_decode(s)
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

-- The raw query as a list of { key, value } pairs, still encoded, in the order sent.
local function pairs_of(query)
  local out = {}
  for pair in query:gmatch("[^&]+") do
    local k, v = pair:match("^([^=]*)=(.*)$")
    out[#out + 1] = { k or pair, v }
  end
  return out
end

describe("core.encode_segment", function()
  it("keeps the RFC 3986 unreserved characters", function()
    local s = "ABCXYZabcxyz0189-._~"
    assert.equal(s, core.encode_segment(s))
  end)

  it("writes every other byte as %XX in upper case", function()
    for b = 0, 255 do
      local c = string.char(b)
      local want = unreserved(b) and c or string.format("%%%02X", b)
      assert.equal(want, core.encode_segment(c), "byte " .. b)
    end
  end)

  it("encodes a slash, so an id stays one path segment", function()
    assert.equal("a%2Fb", core.encode_segment("a/b"))
    assert.equal("%2F%2F", core.encode_segment("//"))
  end)

  it("encodes ? # % & = + and space", function()
    assert.equal("a%3Fb%23c%25d%26e%3Df%2Bg%20h", core.encode_segment("a?b#c%d&e=f+g h"))
  end)

  it("encodes UTF-8 byte by byte", function()
    assert.equal("b%C3%A4t-%E6%97%A5%E6%9C%AC", core.encode_segment("bät-日本"))
  end)

  it("keeps a NUL byte and the empty string", function()
    assert.equal("a%00b", core.encode_segment("a\0b"))
    assert.equal("", core.encode_segment(""))
  end)

  it("round-trips every byte through percent-decoding", function()
    local all = {}
    for b = 0, 255 do all[#all + 1] = string.char(b) end
    local s = table.concat(all)
    local enc = core.encode_segment(s)
    assert.is_nil(enc:find("[^%w%-%._~%%]"))
    assert.equal(s, pct_decode(enc))
  end)
end)

describe("batches.get URL", function()
  local server, client

  setup(function()
    server = fake.start({ scenario = { api_key = KEY, any = { steps = { "COMPLETED" } } } })
    client = server:client({ api_key = KEY, max_retries = 0 })
  end)
  teardown(function() if server then server:stop(client) end end)
  before_each(function() server:reset() end)

  -- The one request the server saw for a get that must succeed.
  local function sent(c, id, opts)
    local batch, err = c.batches.get(id, opts)
    assert.is_nil(err)
    assert.equal("COMPLETED", batch.status)
    local reqs = server:requests()
    assert.equal(1, #reqs)
    return reqs[1], batch
  end

  describe("path", function()
    local IDS = {
      { "a/b", "a%2Fb" },
      { "a?b", "a%3Fb" },
      { "a#b", "a%23b" },
      { "100%", "100%25" },
      { "a&b=c", "a%26b%3Dc" },
      { "a b", "a%20b" },
      { "a+b", "a%2Bb" },
      { "bät-日本", "b%C3%A4t-%E6%97%A5%E6%9C%AC" },
      -- Contract-silent, pinned: only "." and ".." are dot segments; "..." is an ordinary id.
      { "...", "..." },
    }
    for _, row in ipairs(IDS) do
      it(string.format("sends the id %q as %s", row[1], row[2]), function()
        local req, batch = sent(client, row[1])
        assert.equal(PREFIX .. row[2], req.path)
        assert.equal(row[1], req.batch_id)
        assert.equal(row[1], batch.id)
      end)
    end

    it("has no // when base_url ends in a slash", function()
      local c = llamacloud.new({ api_key = KEY, base_url = server.url .. "/" })
      finally(function() c.close() end)
      assert.equal(server.url, c.config().base_url)
      local req = sent(c, "bat-1")
      assert.equal(PREFIX .. "bat-1", req.path)
    end)

    it("has no // when base_url ends in several slashes", function()
      local c = llamacloud.new({ api_key = KEY, base_url = server.url .. "///" })
      finally(function() c.close() end)
      local req = sent(c, "bat-1")
      assert.equal(PREFIX .. "bat-1", req.path)
    end)
  end)

  describe("query", function()
    it("sends no query without options", function()
      assert.equal("", (sent(client, "bat-1")).query)
    end)

    it("sends expand given as a string", function()
      local req, batch = sent(client, "bat-1", { expand = "results" })
      assert.equal("expand=results", req.query)
      assert.same({}, batch.results)
    end)

    it("sends expand given as a list as repeated keys, in order", function()
      assert.equal("expand=results&expand=file_details",
                   (sent(client, "bat-1", { expand = { "results", "file_details" } })).query)
    end)

    it("keeps the caller's order of expand values", function()
      assert.equal("expand=file_details&expand=results",
                   (sent(client, "bat-1", { expand = { "file_details", "results" } })).query)
    end)

    it("passes expand values through as given, encoded", function()
      -- no allow-list
      assert.equal("expand=a%20b%26c", (sent(client, "bat-1", { expand = "a b&c" })).query)
    end)

    it("sends organization_id and project_id from the client's defaults", function()
      local c = server:client_closed_by(finally, { api_key = KEY, organization_id = "org-1", project_id = "prj-1" })
      assert.same({ { "organization_id", "org-1" }, { "project_id", "prj-1" } },
                  pairs_of((sent(c, "bat-1")).query))
    end)

    it("lets a per-call organization_id and project_id replace the client's", function()
      local c = server:client_closed_by(finally, { api_key = KEY, organization_id = "org-1", project_id = "prj-1" })
      assert.same({ { "organization_id", "org-2" }, { "project_id", "prj-2" } },
                  pairs_of((sent(c, "bat-1", { organization_id = "org-2", project_id = "prj-2" })).query))
    end)

    it("encodes organization_id and project_id values", function()
      assert.same({ { "organization_id", "o%20%26%3D1" }, { "project_id", "p%2F%C3%A9" } },
                  pairs_of((sent(client, "bat-1", { organization_id = "o &=1", project_id = "p/é" })).query))
    end)

    it("encodes extra_query strings, numbers, booleans and lists", function()
      local req = sent(client, "bat-1", { extra_query = {
        s = "a b&c=d", n = 42, f = 1.5, t = true, no = false, list = { "x", 2, false },
        ["k y"] = "v",
      } })
      -- Contract-silent, pinned: extra_query keys go out sorted, a list as repeated keys.
      assert.same({
        { "f", "1.5" }, { "k%20y", "v" },
        { "list", "x" }, { "list", "2" }, { "list", "false" },
        { "n", "42" }, { "no", "false" }, { "s", "a%20b%26c%3Dd" }, { "t", "true" },
      }, pairs_of(req.query))
    end)

    it("orders expand, organization_id, project_id, then extra_query", function()
      -- Contract-silent, pinned: the order of distinct keys.
      local req = sent(client, "bat-1", { expand = { "results", "file_details" }, organization_id = "o",
                                          project_id = "p", extra_query = { z = "1", a = "2" } })
      assert.equal("expand=results&expand=file_details&organization_id=o&project_id=p&a=2&z=1", req.query)
    end)
  end)
end)
