-- examples/webhook_receiver/ as shipped, in a real nginx (moved to a temporary prefix and port): signed
-- deliveries are recorded, forged or unsigned ones get 401 and are not. Needs nginx and build/jit.
local core = require("llamacloud.core")
local ngx_support = require("spec.support.nginx")
local util = require("spec.support.util")

local ROOT = util.root()
local SECRET = "whsec-spec-receiver"
local PATH = "/webhooks/llamacloud"

-- The example's nginx.conf with its port, paths and daemon line replaced for spec/support/nginx.lua.
local function example_conf()
  local conf = assert(util.read_file(ROOT .. "/examples/webhook_receiver/nginx.conf"))
  return (conf:gsub("daemon off;", "@USER@")
    :gsub("/tmp/llamacloud%-webhook%-nginx", "@DIR@/tmp/webhook")
    :gsub("error_log /dev/stderr", "error_log error.log")
    :gsub("127%.0%.0%.1:8082", "127.0.0.1:@PORT@")
    :gsub("%$prefix", "@ROOT@"))
end

local function payload(id, status, event, padding)
  return '{"event":"' .. event .. '","batch_id":"' .. id .. '","status":"' .. status .. '"'
    .. (padding and (',"padding":"' .. padding .. '"') or "") .. "}"
end

local function signed(body, secret)
  return "LC-Signature: sha256=" .. core.hmac_sha256_hex(secret or SECRET, body)
end

describe("webhook receiver example in nginx", function()
  local nginx

  setup(function()
    ngx_support.check_prerequisites(ROOT)
    nginx = ngx_support.start(example_conf(), ROOT, "LLAMA_CLOUD_WEBHOOK_SECRET=" .. util.quote(SECRET))
  end)

  teardown(function()
    if nginx then ngx_support.stop(nginx) end
  end)

  local function post(body, headers)
    return ngx_support.request(nginx.port, "POST", PATH, body, headers)
  end

  local function recorded(id)
    return ngx_support.request(nginx.port, "GET", "/batches/" .. id .. "/webhook-status")
  end

  it("records the status of a correctly signed delivery", function()
    local body = payload("bat-good", "COMPLETED", "batch.success")
    assert.are.same({ 200, "ok" }, { post(body, { signed(body) }) })
    assert.are.same({ 200, "COMPLETED" }, { recorded("bat-good") })
  end)

  it("accepts upper-case hex", function()
    local body = payload("bat-upper", "RUNNING", "batch.running")
    assert.are.same({ 200, "ok" }, { post(body, { "LC-Signature: sha256=" .. core.hmac_sha256_hex(SECRET, body):upper() }) })
    assert.are.same({ 200, "RUNNING" }, { recorded("bat-upper") })
  end)

  it("reads a body nginx buffered to a file (1 MB, past client_body_buffer_size)", function()
    local body = payload("bat-big", "COMPLETED", "batch.success", string.rep("x", 1024 * 1024))
    assert.are.same({ 200, "ok" }, { post(body, { signed(body) }) })
    assert.are.same({ 200, "COMPLETED" }, { recorded("bat-big") })
  end)

  -- Each is refused with 401 and its reason, and nothing is recorded for its batch.
  local FORGED = {
    { "a signature made with another secret", "bat-f1", function(b) return { signed(b, "whsec-guess") } end,
      "mismatch" },
    { "a signature of another body", "bat-f2",
      function(b) return { signed((b:gsub("FAILED", "COMPLETED"))) } end, "mismatch" },
    { "no LC-Signature header", "bat-f3", function() return {} end, "missing" },
    { "an empty LC-Signature header", "bat-f4", function() return { "LC-Signature: " } end, "missing" },
    { "a signature without sha256=", "bat-f5",
      function(b) return { "LC-Signature: " .. core.hmac_sha256_hex(SECRET, b) } end, "malformed" },
    { "two LC-Signature headers, one of them right", "bat-f6",
      function(b) return { signed(b), "LC-Signature: sha256=" .. string.rep("0", 64) } end, "malformed" },
  }
  for _, row in ipairs(FORGED) do
    it("answers 401 to " .. row[1] .. " and records nothing", function()
      local body = payload(row[2], "FAILED", "batch.error")
      assert.are.same({ 401, row[4] }, { post(body, row[3](body)) })
      assert.are.equal(404, (recorded(row[2])))
    end)
  end

  it("answers 401, not 400, to a forged body that is not JSON: the body is not parsed before it verifies", function()
    assert.are.same({ 401, "mismatch" }, { post("{not json", { signed("{other") }) })
    assert.are.same({ 400, "no batch id or status" }, { post("{not json", { signed("{not json") }) })
  end)

  it("keeps a finished status when a late batch.running arrives after batch.success", function()
    local done = payload("bat-order", "COMPLETED", "batch.success")
    local late = payload("bat-order", "RUNNING", "batch.running")
    assert.are.equal(200, (post(done, { signed(done) })))
    assert.are.equal(200, (post(late, { signed(late) })))
    assert.are.same({ 200, "COMPLETED" }, { recorded("bat-order") })
  end)

  it("answers 500 to every delivery when the secret is not in the environment", function()
    local bare = ngx_support.start(example_conf(), ROOT, "env -u LLAMA_CLOUD_WEBHOOK_SECRET")
    finally(function() ngx_support.stop(bare) end)
    local body = payload("bat-nosecret", "COMPLETED", "batch.success")
    assert.are.equal(500, (ngx_support.request(bare.port, "POST", PATH, body, { signed(body) })))
    assert.truthy(ngx_support.log(bare):find("LLAMA_CLOUD_WEBHOOK_SECRET is not set", 1, true))
  end)

  it("logs no error of its own in the worker", function()
    local text = ngx_support.log(nginx)
    assert.is_nil(text:match("%[error%]") or text:match("%[alert%]") or text:match("%[crit%]"), text)
  end)
end)
