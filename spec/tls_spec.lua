-- TLS and the key: certificates are verified (ca_file and ca_path can add a CA, nothing turns it off),
-- redirects are never followed so the key never reaches another server, and plain http leaves loopback
-- only when allowed. Certificates are made for the run with the openssl command into a temporary dir.
local fake = require("spec.support.fake")
local child = require("spec.support.child")
local util = require("spec.support.util")
local llamacloud = require("llamacloud")

local KEY = "sk-tls-spec-Hq4Rv8Wz2Nc6"

local HAVE_OPENSSL = util.sh("command -v openssl >/dev/null") == 0

-- A CA, a leaf it signed for localhost and 127.0.0.1, and a self-signed leaf for the same names.
local function make_certs(dir)
  local ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
  util.write_file(dir .. "/leaf.ext", "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
    .. "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n")
  local steps = {
    "openssl req -x509 " .. ec .. " -keyout ca.key -out ca.pem -days 2 -subj '/CN=llamacloud spec CA'"
      .. " -addext 'basicConstraints=critical,CA:TRUE' -addext 'keyUsage=critical,keyCertSign,cRLSign'",
    "openssl req " .. ec .. " -keyout leaf.key -out leaf.csr -subj '/CN=localhost'",
    "openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out leaf.pem -days 2"
      .. " -extfile leaf.ext",
    "openssl req -x509 " .. ec .. " -keyout self.key -out self.pem -days 2 -subj '/CN=localhost'"
      .. " -addext 'subjectAltName=DNS:localhost,IP:127.0.0.1'",
    "mkdir -p capath && cp ca.pem capath/ && openssl rehash capath",
    "mkdir -p www/api/v2/batches && printf '%s' '{\"id\":\"bat-tls\",\"status\":\"COMPLETED\"}'"
      .. " > www/api/v2/batches/bat-tls",
  }
  for _, step in ipairs(steps) do
    local rc, out = util.sh("cd " .. util.quote(dir) .. " && " .. step)
    if rc ~= 0 then error("certificate setup failed: " .. step .. "\n" .. out, 0) end
  end
end

-- openssl s_server serving dir/www (GET /api/v2/batches/bat-tls is the file) on every address.
local function start_tls_server(dir, cert, key)
  for _ = 1, 10 do
    local port = util.free_port()
    local log = dir .. "/s_server." .. port .. ".log"
    local pid = util.spawn(string.format("cd %s && exec openssl s_server -accept %d -cert %s -key %s -WWW",
      util.quote(dir .. "/www"), port, util.quote(dir .. "/" .. cert), util.quote(dir .. "/" .. key)), log)
    if util.wait_for(log, "ACCEPT", pid, 5) then
      return { pid = pid, port = port }
    end
    if util.alive(pid) then os.execute("kill " .. pid) end
  end
  error("openssl s_server did not start", 0)
end

local function stop_tls_server(s)
  if s and s.pid and util.alive(s.pid) then os.execute("kill " .. s.pid) end
end

local function get(opts, id)
  local c = llamacloud.new(util.merge({ api_key = KEY, max_retries = 0, timeout = 10 }, opts))
  local batch, err = fake.get(c, id or "bat-tls")
  c.close()
  return batch, err
end

local describe_tls = HAVE_OPENSSL and describe or pending

describe_tls("TLS verification against a local openssl s_server", function()
  local dir, server, selfsigned

  setup(function()
    dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p " .. util.quote(dir)))
    make_certs(dir)
    server = start_tls_server(dir, "leaf.pem", "leaf.key")
    selfsigned = start_tls_server(dir, "self.pem", "self.key")
  end)
  teardown(function()
    stop_tls_server(server)
    stop_tls_server(selfsigned)
    if dir then os.execute("rm -rf " .. util.quote(dir)) end
  end)

  it("is on by default: an unknown CA is an APIConnectionError that says why", function()
    local batch, err = get({ base_url = "https://127.0.0.1:" .. server.port })
    assert.is_nil(batch)
    assert.are.equal("APIConnectionError", err.name)
    assert.are.equal(1, err.attempts)
    assert.truthy(err.message:find("certificate", 1, true), err.message)
  end)

  it("passes with ca_file naming the CA", function()
    local batch, err = get({ base_url = "https://127.0.0.1:" .. server.port, ca_file = dir .. "/ca.pem" })
    assert.is_nil(err)
    assert.are.same({ id = "bat-tls", status = "COMPLETED" }, batch)
  end)

  it("passes with ca_path naming a hashed directory holding the CA", function()
    local batch, err = get({ base_url = "https://localhost:" .. server.port, ca_path = dir .. "/capath" })
    assert.is_nil(err)
    assert.are.equal("COMPLETED", batch.status)
  end)

  it("fails on a host name the certificate does not name, even with the CA trusted", function()
    local batch, err = get({ base_url = "https://127.0.0.2:" .. server.port, ca_file = dir .. "/ca.pem" })
    assert.is_nil(batch)
    assert.are.equal("APIConnectionError", err.name)
    assert.truthy(err.message:find("127.0.0.2", 1, true), err.message)
  end)

  it("fails on a self-signed certificate for the right name", function()
    local batch, err = get({ base_url = "https://localhost:" .. selfsigned.port, ca_file = dir .. "/ca.pem" })
    assert.is_nil(batch)
    assert.are.equal("APIConnectionError", err.name)
    assert.truthy(err.message:find("certificate", 1, true), err.message)
  end)

  it("fails with a ca_file that does not exist, rather than trusting anything", function()
    local batch, err = get({ base_url = "https://127.0.0.1:" .. server.port, ca_file = dir .. "/nope.pem" })
    assert.is_nil(batch)
    assert.are.equal("APIConnectionError", err.name)
  end)

  it("is retried like any connection error, each attempt failing the same way", function()
    local batch, err = get({ base_url = "https://127.0.0.1:" .. server.port, max_retries = 1 })
    assert.is_nil(batch)
    assert.are.equal("APIConnectionError", err.name)
    assert.are.equal(2, err.attempts)
  end)

  for _, name in ipairs({ "insecure", "verify", "ssl_verify", "verify_peer", "tls_verify" }) do
    it("has no option to turn verification off: '" .. name .. "' is unknown", function()
      local ok, e = pcall(llamacloud.new, { api_key = KEY, base_url = "https://127.0.0.1:1", [name] = false })
      assert.is_false(ok)
      assert.truthy(tostring(e):find("unknown option '" .. name .. "'", 1, true), tostring(e))
    end)
  end
end)

describe("redirects", function()
  local server, other

  setup(function()
    server = fake.start({ scenario = { api_key = KEY, batches = {} } })
    other = fake.start({ scenario = { any = { steps = { "COMPLETED" } } } })
  end)
  teardown(function()
    if server then server:stop() end
    if other then other:stop() end
  end)

  for _, status in ipairs({ 301, 302, 303, 307, 308 }) do
    it("a " .. status .. " to another port is not followed: APIStatusError, the other server never asked", function()
      local location = other.url .. "/api/v2/batches/bat-r"
      server:scenario({ api_key = KEY, batches = { ["bat-r"] = { steps = {
        { status = status, headers = { Location = location } } } } } })
      other:reset()
      local batch, err = get({ base_url = server.url, max_retries = 3 }, "bat-r")
      assert.is_nil(batch)
      assert.are.equal("APIStatusError", err.name)
      assert.are.equal(status, err.status)
      assert.are.equal(location, err.headers.location)
      assert.are.equal(1, err.attempts)
      assert.are.equal(1, #server:requests())
      assert.are.same({}, other:requests())
    end)
  end

  it("a relative Location is not followed either", function()
    server:scenario({ api_key = KEY, batches = {
      ["bat-r"] = { steps = { { status = 302, headers = { Location = "/api/v2/batches/bat-ok" } } } },
      ["bat-ok"] = { steps = { "COMPLETED" } } } })
    local batch, err = get({ base_url = server.url }, "bat-r")
    assert.is_nil(batch)
    assert.are.equal("APIStatusError", err.name)
    assert.are.equal(1, #server:requests())
  end)
end)

describe("plain http", function()
  local REMOTE = { "http://example.com", "http://10.0.0.1:8080", "http://127.0.0.1.nip.io",
                   "http://localhost.example.com", "http://[::2]:80", "http://127.0.0.1@example.com" }
  for _, url in ipairs(REMOTE) do
    it("to " .. url .. " is refused at new without allow_insecure_http", function()
      local ok, e = pcall(llamacloud.new, { api_key = KEY, base_url = url })
      assert.is_false(ok)
      assert.truthy(tostring(e):find("allow_insecure_http", 1, true), tostring(e))
      assert.is_nil(tostring(e):find(KEY, 1, true))
    end)
  end

  it("to a remote host is accepted with allow_insecure_http = true", function()
    local c = llamacloud.new({ api_key = KEY, base_url = "http://example.com", allow_insecure_http = true })
    assert.are.equal("http://example.com", c.config().base_url)
    c.close()
  end)

  it("from LLAMA_CLOUD_BASE_URL to a remote host is refused too", function()
    local res = child.run({ LLAMA_CLOUD_API_KEY = KEY, LLAMA_CLOUD_BASE_URL = "http://example.com" }, [[
      local ok, e = pcall(require("llamacloud").new)
      return tostring(ok) .. " " .. tostring(e)
    ]])
    assert.is_true(res.ok, tostring(res.err))
    assert.truthy(res.value:find("^false .*allow_insecure_http"), res.value)
    assert.is_nil(res.value:find(KEY, 1, true))
  end)
end)
