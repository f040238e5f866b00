-- The API key never shows: not in any error's text, body or headers, nor in the CLI's output and debug log.
local fake = require("spec.support.fake")
local child = require("spec.support.child")
local util = require("spec.support.util")
local llamacloud = require("llamacloud")

local KEY = "sk-redact-Zq7Wm3Kp9Xv2Lt5"
local KEY_CORE = "Zq7Wm3Kp9Xv2Lt5" -- also catches a key cut or re-quoted on its way out

local function leaks(s)
  s = tostring(s)
  return s:find(KEY, 1, true) ~= nil or s:find(KEY_CORE, 1, true) ~= nil
end

local function assert_clean(err, what)
  assert.are.equal("table", type(err), what .. ": expected an error")
  local texts = { tostring(err), err.message }
  for _, s in ipairs(util.strings(err.body)) do texts[#texts + 1] = s end
  for _, s in ipairs(util.strings(err.headers)) do texts[#texts + 1] = s end
  for _, s in ipairs(util.strings(err)) do texts[#texts + 1] = s end
  for _, s in ipairs(texts) do
    assert.is_false(leaks(s), what .. ": the key leaked in: " .. s)
  end
end

local ECHO_JSON = '{"detail":"invalid token ' .. KEY .. '","error":{"key":"' .. KEY
  .. '","seen":["Bearer ' .. KEY .. '"]},"by_key":{"' .. KEY .. '":true}}'

-- name -> { steps, client options, expected error name }
local CASES = {
  { "bat-400", { { status = 400 } }, nil, "BadRequestError" },
  { "bat-403", { { status = 403 } }, nil, "PermissionDeniedError" },
  { "bat-missing", nil, nil, "NotFoundError" },
  { "bat-409", { { status = 409 } }, nil, "ConflictError" },
  { "bat-422", { { status = 422 } }, nil, "UnprocessableEntityError" },
  { "bat-429", { { status = 429 } }, nil, "RateLimitError" },
  { "bat-500", { { status = 500 } }, nil, "InternalServerError" },
  { "bat-418", { { status = 418 } }, nil, "APIStatusError" },
  { "bat-302", { { status = 302, headers = { Location = "/api/v2/batches/bat-400" } } }, nil, "APIStatusError" },
  { "bat-delay", { { delay = 2 } }, { timeout = 0.2 }, "APITimeoutError" },
  { "bat-trickle", { { fault = "trickle", interval = 0.05 } }, { timeout = 0.3 }, "APITimeoutError" },
  { "bat-drop", { { fault = "drop" } }, nil, "APIConnectionError" },
  { "bat-reset", { { fault = "reset_headers" } }, nil, "APIConnectionError" },
  { "bat-truncate", { { fault = "truncate" } }, nil, "APIConnectionError" },
  { "bat-malformed", { { fault = "malformed" } }, nil, "APIResponseValidationError" },
  { "bat-notobj", { { fault = "not_object" } }, nil, "APIResponseValidationError" },
  { "bat-fields", { { fault = "missing_fields" } }, nil, "APIResponseValidationError" },
  { "bat-binary", { { fault = "binary" } }, nil, "APIResponseValidationError" },
  { "bat-huge", { { fault = "huge", size = 1048576 } }, { max_body_bytes = 4096 }, "APIResponseValidationError" },
  -- A server that echoes the key back, in a JSON body, a text body, a 2xx body and a header.
  { "bat-echo-json", { { status = 400, body = ECHO_JSON } }, nil, "BadRequestError" },
  { "bat-echo-text", { { status = 500, body = "bad token: Bearer " .. KEY } }, nil, "InternalServerError" },
  { "bat-echo-2xx", { { status = 200, body = '{"detail":"' .. KEY .. '"}' } }, nil, "APIResponseValidationError" },
  { "bat-echo-header", { { status = 401, headers = { ["WWW-Authenticate"] = 'Bearer error="' .. KEY .. '"',
                                                     ["X-Echo"] = KEY } } }, nil,
    "AuthenticationError" },
  -- A key across the 300-byte cut of err.message, and one nested deeper than any fixed limit.
  { "bat-echo-cut", { { status = 400, body = string.rep("a", 290) .. " key=" .. KEY } }, nil, "BadRequestError" },
  { "bat-echo-deep", { { status = 400, body = string.rep("[", 200) .. '"' .. KEY .. '"' .. string.rep("]", 200) } },
    nil, "BadRequestError" },
  { "bat-echo-request-id", { { status = 500, headers = { ["X-Request-Id"] = string.rep("r", 250) .. KEY } } }, nil,
    "InternalServerError" },
}

local function scenario()
  local batches = {}
  for _, case in ipairs(CASES) do
    if case[2] then
      local steps = {}
      for i, step in ipairs(case[2]) do
        local s = {}
        for k, v in pairs(step) do s[k] = v end
        s.headers = s.headers or {}
        s.headers["retry-after-ms"] = "0"
        steps[i] = s
      end
      batches[case[1]] = { steps = steps }
    end
  end
  return { api_key = KEY, batches = batches }
end

describe("API key redaction", function()
  describe("in new's errors", function()
    -- A token in a base URL's query, or the key's variable given as the URL by mistake, is echoed back
    -- by the message that refuses the URL: masked there.
    local URLS = {
      { "a query", "https://api.example.com/?token=" .. KEY },
      { "a fragment", "https://api.example.com/#" .. KEY },
      { "the key itself", KEY },
      { "another scheme", "ftp://example.com/" .. KEY },
    }
    for _, case in ipairs(URLS) do
      it("base_url with " .. case[1] .. " is refused without the key in the message", function()
        local ok, err = pcall(llamacloud.new, { api_key = KEY, base_url = case[2] })
        assert.is_false(ok)
        assert.is_false(leaks(err), "the key leaked in: " .. tostring(err))
        assert.matches("base_url must", tostring(err))
        assert.matches("[redacted]", tostring(err), 1, true)
      end)
    end
  end)

  local server

  setup(function() server = fake.start({ scenario = scenario() }) end)
  teardown(function() if server then server:stop() end end)

  describe("in errors", function()
    for _, case in ipairs(CASES) do
      local id, name, opts = case[1], case[4], case[3]
      it(name .. " from " .. id .. " holds no key", function()
        local client = server:client_closed_by(finally, { api_key = KEY, max_retries = 1, timeout = 5 }, opts)
        local ok, batch, err = pcall(client.batches.get, id)
        assert.is_true(ok, tostring(batch))
        assert.is_nil(batch)
        assert.are.equal(name, err.name)
        assert_clean(err, id)
      end)
    end

    it("a refused connection's error holds no key", function()
      local client = llamacloud.new({ api_key = KEY, base_url = "http://127.0.0.1:" .. util.free_port(),
                                      max_retries = 0 })
      finally(function() client.close() end)
      local batch, err = client.batches.get("bat-x")
      assert.is_nil(batch)
      assert.are.equal("APIConnectionError", err.name)
      assert_clean(err, "refused")
    end)

    it("an echoed key is redacted where it stood, the rest kept", function()
      local client = server:client_closed_by(finally, { api_key = KEY, max_retries = 0 })
      local _, err = client.batches.get("bat-echo-json")
      assert.are.equal("BadRequestError", err.name)
      assert.truthy(err.message:find("invalid token ", 1, true))
      assert.truthy(err.body.detail:find("^invalid token "))
      assert.are.equal("table", type(err.body.error))
      assert.are.same({ ["[redacted]"] = true }, err.body.by_key)
      local _, terr = client.batches.get("bat-echo-text")
      assert.truthy(terr.body:find("^bad token: Bearer "))
    end)

    it("the key the server saw was the real one (the requests were authenticated)", function()
      server:reset()
      local client = server:client_closed_by(finally, { api_key = KEY, max_retries = 0 })
      local _, err = client.batches.get("bat-400")
      assert.are.equal("BadRequestError", err.name)
      assert.are.equal("Bearer " .. KEY, server:requests()[1].headers.authorization)
    end)
  end)

  describe("in the CLI with LLAMA_CLOUD_LOG=debug", function()
    -- The command's stdout and stderr together, and its exit code.
    local function run(base_url, args)
      local argv = {}
      for word in args:gmatch("%S+") do argv[#argv + 1] = word end
      local code, out = util.sh(child.cli_command(argv,
        { LLAMA_CLOUD_API_KEY = KEY, LLAMA_CLOUD_BASE_URL = base_url, LLAMA_CLOUD_LOG = "debug" }))
      return out, code
    end

    local RUNS = {
      { "a success", "batches get bat-ok", 0 },
      { "a 404", "batches get bat-missing", 3 },
      { "retried 500s", "batches get bat-500 --max-retries 2", 3 },
      { "an echoed key in a JSON body", "batches get bat-echo-json", 3 },
      { "an echoed key in a text body", "batches get bat-echo-text --max-retries 1", 3 },
      { "an echoed key in a 2xx body", "batches get bat-echo-2xx", 3 },
      { "an echoed key in a header", "batches get bat-echo-header", 3 },
      { "a timeout", "batches get bat-delay --timeout 0.2 --max-retries 0", 3 },
      { "a dropped connection", "batches get bat-drop --max-retries 1", 3 },
      { "a malformed body", "batches get bat-malformed", 3 },
      { "several ids at once", "batches get bat-ok bat-400 bat-echo-json", 3 },
    }
    for _, r in ipairs(RUNS) do
      it("prints no key for " .. r[1], function()
        server:scenario((function()
          local sc = scenario()
          sc.batches["bat-ok"] = { steps = { "COMPLETED" } }
          return sc
        end)())
        local out, code = run(server.url, r[2])
        assert.are.equal(r[3], code, out)
        assert.truthy(out:find("llamacloud: GET ", 1, true), "no debug log line in: " .. out)
        assert.is_false(leaks(out), "the key leaked in:\n" .. out)
      end)
    end

    it("prints no key when the request's URL holds it (an id or query the user built from it)", function()
      local out, code = run(server.url, "batches get bat-" .. KEY .. " --max-retries 0")
      assert.are.equal(3, code, out)
      -- The command names the id it was given on its error line; the debug log is what must mask.
      local log = out:match("(llamacloud: GET [^\n]*)")
      assert.truthy(log, "no debug log line in: " .. out)
      assert.is_false(leaks(log), "the key leaked in:\n" .. log)
    end)

    it("prints no key for a refused connection", function()
      local out, code = run("http://127.0.0.1:" .. util.free_port(), "batches get bat-x --max-retries 0")
      assert.are.equal(3, code, out)
      assert.truthy(out:find("APIConnectionError", 1, true), out)
      assert.is_false(leaks(out), "the key leaked in:\n" .. out)
    end)
  end)
end)
