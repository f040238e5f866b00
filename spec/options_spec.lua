-- llamacloud.new: client options, their defaults, the environment (in child processes) and allow_insecure_http.
local fake = require("spec.support.fake")
local child = require("spec.support.child")
local llamacloud = require("llamacloud")

local KEY = "sk-options-spec-key"
local DEFAULT_BASE_URL = "https://api.cloud.llamaindex.ai"
local EU_BASE_URL = "https://api.cloud.eu.llamaindex.ai"
local NO_KEY = "^llamacloud: no API key: .*LLAMA_CLOUD_API_KEY.*LLAMA_PARSE_API_KEY"

-- Child code: a client from `opts_src` (Lua source for new's options), then one get of bat-done.
-- Returns "<status>|<base_url>" or raises in the child.
local function get_code(opts_src)
  return string.format([[
    local c = require("llamacloud").new(%s)
    local batch, err = c.batches.get("bat-done")
    return (batch and batch.status or tostring(err)) .. "|" .. c.config().base_url
  ]], opts_src or "")
end

local function config_code(opts_src)
  return string.format([[return require("llamacloud").new(%s).config()]], opts_src or "")
end

-- The position prefix luaL_error adds, which names a library line.
local function strip_where(msg)
  return (tostring(msg):gsub("^[^:]*:%d+: ", ""))
end

describe("llamacloud.new", function()
  local server

  setup(function()
    server = fake.start()
  end)
  teardown(function()
    if server then server:stop() end
  end)
  before_each(function() server:reset() end)

  local function authorization()
    local reqs = server:requests()
    assert.equal(1, #reqs)
    return reqs[1].headers.authorization
  end

  describe("api key", function()
    it("takes the key from LLAMA_CLOUD_API_KEY", function()
      local res = child.run({ LLAMA_CLOUD_API_KEY = "sk-cloud", LLAMA_PARSE_API_KEY = "sk-parse" },
                            get_code(string.format("{ base_url = %q }", server.url)))
      assert.same({ ok = true, value = "COMPLETED|" .. server.url }, res)
      assert.equal("Bearer sk-cloud", authorization())
    end)

    it("falls back to LLAMA_PARSE_API_KEY", function()
      local res = child.run({ LLAMA_PARSE_API_KEY = "sk-parse" },
                            get_code(string.format("{ base_url = %q }", server.url)))
      assert.same({ ok = true, value = "COMPLETED|" .. server.url }, res)
      assert.equal("Bearer sk-parse", authorization())
    end)

    it("prefers the api_key option over the environment", function()
      local res = child.run({ LLAMA_CLOUD_API_KEY = "sk-cloud" },
                            get_code(string.format("{ api_key = 'sk-option', base_url = %q }", server.url)))
      assert.same({ ok = true, value = "COMPLETED|" .. server.url }, res)
      assert.equal("Bearer sk-option", authorization())
    end)

    it("raises naming both variables when no key is set anywhere", function()
      local res = child.run({}, get_code(string.format("{ base_url = %q }", server.url)))
      assert.is_false(res.ok)
      assert.matches(NO_KEY, strip_where(res.err))
      assert.same({}, server:requests())
    end)

    it("treats an empty api_key option as unset", function()
      -- Contract-silent, pinned: like an empty environment value.
      local res = child.run({ LLAMA_CLOUD_API_KEY = "sk-cloud" },
                            get_code(string.format("{ api_key = '', base_url = %q }", server.url)))
      assert.same({ ok = true, value = "COMPLETED|" .. server.url }, res)
      assert.equal("Bearer sk-cloud", authorization())
    end)

    it("trims environment values", function()
      local res = child.run({ LLAMA_CLOUD_API_KEY = " \tsk-cloud \r\n", LLAMA_CLOUD_BASE_URL = "  " .. server.url .. "/\n" },
                            get_code())
      assert.same({ ok = true, value = "COMPLETED|" .. server.url }, res)
      assert.equal("Bearer sk-cloud", authorization())
      assert.equal("/api/v2/batches/bat-done", server:requests()[1].path)
    end)

    it("counts an empty LLAMA_CLOUD_API_KEY as unset", function()
      local res = child.run({ LLAMA_CLOUD_API_KEY = "  ", LLAMA_PARSE_API_KEY = "sk-parse" },
                            get_code(string.format("{ base_url = %q }", server.url)))
      assert.same({ ok = true, value = "COMPLETED|" .. server.url }, res)
      assert.equal("Bearer sk-parse", authorization())
    end)

    it("raises when every key variable is empty", function()
      local res = child.run({ LLAMA_CLOUD_API_KEY = "", LLAMA_PARSE_API_KEY = " \n" },
                            get_code(string.format("{ base_url = %q }", server.url)))
      assert.is_false(res.ok)
      assert.matches(NO_KEY, strip_where(res.err))
    end)
  end)

  describe("module-level calls", function()
    it("require never raises for a missing key", function()
      local res = child.run({}, [[return type(require("llamacloud").batches.get)]])
      assert.same({ ok = true, value = "function" }, res)
    end)

    it("raise new's message on the first call without a key, having sent nothing", function()
      local res = child.run({ LLAMA_CLOUD_BASE_URL = server.url }, [[
        local llamacloud = require("llamacloud")
        local ok1, get_err = pcall(llamacloud.batches.get, "bat-done")
        local ok2, new_err = pcall(llamacloud.new)
        return { get_ok = ok1, get_err = tostring(get_err), new_ok = ok2, new_err = tostring(new_err) }
      ]])
      assert.is_true(res.ok)
      assert.is_false(res.value.get_ok)
      assert.is_false(res.value.new_ok)
      assert.matches(NO_KEY, strip_where(res.value.get_err))
      assert.equal(res.value.new_err, res.value.get_err)
      assert.same({}, server:requests())
    end)

    it("name the caller's line when the key is missing, as argument errors do", function()
      local res = child.run({ LLAMA_CLOUD_BASE_URL = server.url }, [[
        local llamacloud = require("llamacloud")
        local ok, err = pcall(function()
          local batch = llamacloud.batches.get("bat-done")
          return batch
        end)
        return tostring(err)
      ]])
      assert.is_true(res.ok)
      assert.matches("^child:3: llamacloud: no API key", res.value)
    end)

    it("use a default client built from the environment", function()
      local res = child.run({ LLAMA_CLOUD_API_KEY = "sk-env", LLAMA_CLOUD_BASE_URL = server.url }, [[
        local batch, err = require("llamacloud").batches.get("bat-done", { expand = "results" })
        return batch and (batch.status .. " " .. #batch.results) or tostring(err)
      ]])
      assert.same({ ok = true, value = "COMPLETED 4" }, res)
      assert.equal("Bearer sk-env", authorization())
    end)
  end)

  describe("base URL", function()
    it("defaults to " .. DEFAULT_BASE_URL, function()
      local res = child.run({ LLAMA_CLOUD_API_KEY = KEY }, config_code())
      assert.is_true(res.ok)
      assert.equal(DEFAULT_BASE_URL, res.value.base_url)
    end)

    it("comes from LLAMA_CLOUD_BASE_URL", function()
      local res = child.run({ LLAMA_CLOUD_API_KEY = KEY, LLAMA_CLOUD_BASE_URL = server.url }, get_code())
      assert.same({ ok = true, value = "COMPLETED|" .. server.url }, res)
      assert.equal(1, #server:requests())
    end)

    it("counts an empty LLAMA_CLOUD_BASE_URL as unset", function()
      local res = child.run({ LLAMA_CLOUD_API_KEY = KEY, LLAMA_CLOUD_BASE_URL = " " }, config_code())
      assert.is_true(res.ok)
      assert.equal(DEFAULT_BASE_URL, res.value.base_url)
    end)

    it("prefers the base_url option over LLAMA_CLOUD_BASE_URL", function()
      local res = child.run({ LLAMA_CLOUD_API_KEY = KEY, LLAMA_CLOUD_BASE_URL = "http://127.0.0.1:9" },
                            get_code(string.format("{ base_url = %q }", server.url)))
      assert.same({ ok = true, value = "COMPLETED|" .. server.url }, res)
    end)

    it("accepts a trailing slash", function()
      local c = llamacloud.new({ api_key = KEY, base_url = server.url .. "/" })
      finally(function() c.close() end)
      assert.equal(server.url, c.config().base_url)
      local batch, err = c.batches.get("bat-done")
      assert.is_nil(err)
      assert.equal("COMPLETED", batch.status)
      assert.equal("/api/v2/batches/bat-done", server:requests()[1].path)
    end)

    it("region = \"eu\" picks " .. EU_BASE_URL, function()
      local res = child.run({ LLAMA_CLOUD_API_KEY = KEY }, config_code("{ region = 'eu' }"))
      assert.is_true(res.ok)
      assert.equal(EU_BASE_URL, res.value.base_url)
    end)

    it("region = \"eu\" yields to a base_url option", function()
      local c = llamacloud.new({ api_key = KEY, region = "eu", base_url = server.url })
      finally(function() c.close() end)
      assert.equal(server.url, c.config().base_url)
    end)

    it("region = \"eu\" wins over LLAMA_CLOUD_BASE_URL", function()
      -- Contract-silent, pinned: an option in code beats the environment.
      local res = child.run({ LLAMA_CLOUD_API_KEY = KEY, LLAMA_CLOUD_BASE_URL = server.url },
                            config_code("{ region = 'eu' }"))
      assert.is_true(res.ok)
      assert.equal(EU_BASE_URL, res.value.base_url)
    end)

    it("region = \"us\" picks " .. DEFAULT_BASE_URL, function()
      -- Contract-silent, pinned: "us" is accepted as the default region.
      local res = child.run({ LLAMA_CLOUD_API_KEY = KEY }, config_code("{ region = 'us' }"))
      assert.is_true(res.ok)
      assert.equal(DEFAULT_BASE_URL, res.value.base_url)
    end)
  end)

  describe("defaults", function()
    local cfg

    setup(function()
      local res = child.run({ LLAMA_CLOUD_API_KEY = KEY }, config_code())
      assert.is_true(res.ok, res.err)
      cfg = res.value
    end)

    it("timeout is 60 seconds", function() assert.equal(60, cfg.timeout) end)
    it("max_retries is 2", function() assert.equal(2, cfg.max_retries) end)
    it("max_body_bytes is 256 MiB", function() assert.equal(256 * 1024 * 1024, cfg.max_body_bytes) end)
    it("base_url is " .. DEFAULT_BASE_URL, function() assert.equal(DEFAULT_BASE_URL, cfg.base_url) end)
    it("organization_id and project_id are unset", function()
      assert.is_nil(cfg.organization_id)
      assert.is_nil(cfg.project_id)
    end)
    it("config() never holds the key", function()
      local res = child.run({ LLAMA_CLOUD_API_KEY = KEY },
                            [[return require("spec.support.fake").encode(require("llamacloud").new().config())]])
      assert.is_true(res.ok)
      assert.is_nil(res.value:find(KEY, 1, true))
      assert.is_nil(res.value:find("Authorization", 1, true))
    end)
  end)

  describe("options", function()
    it("takes a fractional timeout", function()
      local c = server:client_closed_by(finally, { api_key = KEY, timeout = 0.25 })
      assert.equal(0.25, c.config().timeout)
    end)

    it("takes max_retries, max_body_bytes, organization_id and project_id", function()
      local c = server:client_closed_by(finally, { api_key = KEY, max_retries = 0,
        max_body_bytes = 1024, organization_id = "org-1", project_id = "prj-1" })
      local cfg = c.config()
      assert.equal(0, cfg.max_retries)
      assert.equal(1024, cfg.max_body_bytes)
      assert.equal("org-1", cfg.organization_id)
      assert.equal("prj-1", cfg.project_id)
    end)
  end)

  describe("allow_insecure_http", function()
    local function new_with(url, allow)
      return pcall(llamacloud.new, { api_key = KEY, base_url = url, allow_insecure_http = allow })
    end

    it("refuses http to a host other than loopback, saying why", function()
      local ok, msg = new_with("http://example.com")
      assert.is_false(ok)
      msg = strip_where(msg)
      assert.matches("^llamacloud: base_url: refusing plain http to example%.com", msg)
      assert.matches("API key in clear text", msg)
      assert.matches("allow_insecure_http", msg)
    end)

    for _, url in ipairs({ "http://localhost:9", "http://LOCALHOST:9", "http://127.0.0.1:9",
                           "http://127.200.3.4:9", "http://[::1]:9" }) do
      it("allows loopback http: " .. url, function()
        local ok, c = new_with(url)
        assert.is_true(ok, tostring(c))
        assert.equal(url, c.config().base_url)
        c.close()
      end)
    end

    for _, url in ipairs({ "http://127.0.0.1.example.com", "http://localhost.example.com",
                           "http://10.0.0.1", "http://[::2]" }) do
      it("refuses http to a look-alike of loopback: " .. url, function()
        local ok, msg = new_with(url)
        assert.is_false(ok)
        assert.matches("refusing plain http", msg)
      end)
    end

    it("allows http to any host with allow_insecure_http = true", function()
      local ok, c = new_with("http://example.com", true)
      assert.is_true(ok, tostring(c))
      assert.equal("http://example.com", c.config().base_url)
      c.close()
    end)

    it("allows https to any host without the flag", function()
      local ok, c = new_with("https://example.com")
      assert.is_true(ok, tostring(c))
      c.close()
    end)

    it("refuses http to a host other than loopback from LLAMA_CLOUD_BASE_URL", function()
      local res = child.run({ LLAMA_CLOUD_API_KEY = KEY, LLAMA_CLOUD_BASE_URL = "http://example.com" },
                            config_code())
      assert.is_false(res.ok)
      assert.matches("^llamacloud: base_url: refusing plain http to example%.com", strip_where(res.err))
    end)

    it("allows http from LLAMA_CLOUD_BASE_URL with allow_insecure_http = true", function()
      local res = child.run({ LLAMA_CLOUD_API_KEY = KEY, LLAMA_CLOUD_BASE_URL = "http://example.com" },
                            config_code("{ allow_insecure_http = true }"))
      assert.is_true(res.ok, res.err)
      assert.equal("http://example.com", res.value.base_url)
    end)
  end)

  describe("bad arguments", function()
    -- Each raises at new, naming the culprit; new sends nothing.
    local ROWS = {
      { "opts that are not a table", "key", "opts must be a table" },
      { "an unknown option (max_retry)", { max_retry = 1 }, "unknown option 'max_retry'" },
      { "a negative timeout", { timeout = -1 }, "option 'timeout'" },
      { "a zero timeout", { timeout = 0 }, "option 'timeout'" },
      { "a timeout that is not a number", { timeout = "60" }, "option 'timeout'" },
      -- a timeout past the bound is positive: the message must say what is wrong with it
      { "a timeout past 1e9 s", { timeout = 2e9 }, "option 'timeout' must be a positive number of seconds, at most 1e9" },
      { "a fractional max_retries", { max_retries = 0.5 }, "option 'max_retries'" },
      { "a negative max_retries", { max_retries = -2 }, "option 'max_retries'" },
      { "a max_body_bytes of zero", { max_body_bytes = 0 }, "option 'max_body_bytes'" },
      { "a header value with CR", { headers = { ["X-A"] = "a\rb" } }, "header 'X%-A' contains CR" },
      { "a header value with LF", { headers = { ["X-A"] = "a\nb" } }, "header 'X%-A' contains CR" },
      { "an invalid header name", { headers = { ["X A"] = "v" } }, "option 'headers': invalid header name" },
      { "a region it does not know", { region = "mars" }, "option 'region'" },
      { "an allow_insecure_http that is not a boolean", { allow_insecure_http = "yes" },
        "option 'allow_insecure_http'" },
      { "a base_url that is not http(s)", { base_url = "ftp://example.com" }, "base_url must be an http%(s%) URL" },
      { "a base_url that is not a URL", { base_url = "not a url" }, "base_url must be an http%(s%) URL" },
      { "an api_key that is not a string", { api_key = 42 }, "option 'api_key'" },
      { "an api_key with a line break", { api_key = "sk\r\nX-Injected: 1" }, "api_key contains CR" },
      -- The API path would land inside a query or fragment; user-info would travel to the server.
      { "a base_url with a query", { base_url = "https://h.example?x=1" }, "base_url must not have a query" },
      { "a base_url with a fragment", { base_url = "https://h.example/#frag" }, "base_url must not have a query or fragment" },
      { "a base_url with user-info", { base_url = "https://user:pw-Injected@h.example" },
        "base_url must not contain user%-info" },
    }

    for _, row in ipairs(ROWS) do
      it("raises for " .. row[1], function()
        local opts = row[2]
        if type(opts) == "table" then
          if opts.api_key == nil then opts.api_key = KEY end
          if opts.base_url == nil and opts.region == nil then opts.base_url = server.url end
        end
        local ok, msg = pcall(llamacloud.new, opts)
        assert.is_false(ok)
        assert.is_string(msg)
        -- base_url's own messages start "llamacloud: base_url"
        local where = strip_where(msg):match("^llamacloud: ([%w_]+)")
        assert.is_true(where == "new" or where == "base_url", msg)
        assert.matches(row[3], msg)
        assert.is_nil(msg:find("Injected", 1, true))
        assert.same({}, server:requests())
      end)
    end

    it("raises for a LLAMA_CLOUD_CUSTOM_HEADERS line that is not Name: value", function()
      -- Contract-silent, pinned: a malformed line is a mistake, not something to skip.
      local res = child.run({ LLAMA_CLOUD_API_KEY = KEY, LLAMA_CLOUD_CUSTOM_HEADERS = "X-A: 1\nno colon here" },
                            config_code())
      assert.is_false(res.ok)
      assert.matches("LLAMA_CLOUD_CUSTOM_HEADERS: line 2 is not 'Name: value'", res.err)
    end)
  end)

  describe("option tables are read raw", function()
    -- An __index metamethod is never consulted: a key the table does not hold is absent, even when
    -- __index computes a fresh string for it (issue 9, defect 3; run under make asan).
    local function computed(t, names)
      return setmetatable(t, { __index = function(_, k)
        if names[k] then return names[k] .. string.rep("x", 64) .. tostring(math.random()) end
      end })
    end

    it("new ignores what __index computes", function()
      local opts = computed({ api_key = KEY, base_url = server.url }, { organization_id = "org-", project_id = "p-",
        proxy = "http://127.0.0.1:1/", region = "eu", ca_file = "/nonexistent-" })
      local c = llamacloud.new(opts)
      finally(function() c.close() end)
      local cfg = c.config()
      assert.is_nil(cfg.organization_id)
      assert.is_nil(cfg.project_id)
      assert.equal(server.url, cfg.base_url)
      local batch, err = c.batches.get("bat-done")
      assert.is_nil(err)
      assert.equal("COMPLETED", batch.status)
      assert.equal("/api/v2/batches/bat-done", server:requests()[1].path)
    end)

    it("get ignores what __index computes", function()
      local c = llamacloud.new({ api_key = KEY, base_url = server.url })
      finally(function() c.close() end)
      local opts = computed({}, { organization_id = "org-", project_id = "p-", expand = "e-" })
      for _ = 1, 20 do
        collectgarbage()
        local batch, err = c.batches.get("bat-done", opts)
        assert.is_nil(err)
        assert.equal("COMPLETED", batch.status)
      end
      for _, req in ipairs(server:requests()) do assert.equal("", req.query or "") end
    end)
  end)
end)
