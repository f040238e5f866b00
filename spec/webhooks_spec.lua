-- llamacloud.webhooks.verify and core.hmac_sha256_hex (src/webhook.c): RFC 4231 vectors, every bad
-- signature, bad arguments, and a build without libcrypto.
local llamacloud = require("llamacloud")
local core = require("llamacloud.core")
local fake = require("spec.support.fake")
local util = require("spec.support.util")

local verify = llamacloud.webhooks.verify

local function from_hex(h)
  return (h:gsub("..", function(x) return string.char(tonumber(x, 16)) end))
end

-- RFC 4231 section 4, HMAC-SHA-256 of each test case. Case 5's value is the RFC's: its first 128 bits.
local RFC4231 = {
  { 1, string.rep("\11", 20), "Hi There",
    "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7" },
  { 2, "Jefe", "what do ya want for nothing?",
    "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843" },
  { 3, string.rep("\170", 20), string.rep("\221", 50),
    "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe" },
  { 4, from_hex("0102030405060708090a0b0c0d0e0f10111213141516171819"), string.rep("\205", 50),
    "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b" },
  { 5, string.rep("\12", 20), "Test With Truncation", "a3b6167473100ee06e0c796c2955552b" },
  { 6, string.rep("\170", 131), "Test Using Larger Than Block-Size Key - Hash Key First",
    "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54" },
  { 7, string.rep("\170", 131), "This is a test using a larger than block-size key and a larger than block-size"
    .. " data. The key needs to be hashed before being used by the HMAC algorithm.",
    "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2" },
}

describe("webhooks", function()
  it("is built with libcrypto here", function()
    assert.are.equal("string", type(core.crypto_version))
    assert.truthy(core.crypto_version:find("SSL", 1, true))
  end)

  describe("RFC 4231 HMAC-SHA256", function()
    for _, case in ipairs(RFC4231) do
      local n, key, data, want = case[1], case[2], case[3], case[4]
      if #want == 64 then
        it("case " .. n .. ": hmac_sha256_hex gives the RFC's digest and verify accepts it", function()
          assert.are.equal(want, core.hmac_sha256_hex(key, data))
          assert.are.same({ true }, { verify(data, "sha256=" .. want, key) })
        end)
      else
        it("case " .. n .. ": the RFC gives the first 128 bits; the digest starts with them and verify "
          .. "turns the truncated value down as malformed", function()
          local got = core.hmac_sha256_hex(key, data)
          assert.are.equal(64, #got)
          assert.are.equal(want, got:sub(1, #want))
          assert.are.same({ false, "malformed" }, { verify(data, "sha256=" .. want, key) })
          assert.are.same({ true }, { verify(data, "sha256=" .. got, key) })
        end)
      end
    end
  end)

  describe("verify", function()
    local SECRET = "whsec-test"
    local BODY = '{"event":"batch.success","status":"COMPLETED"}'
    local HEX = "2db3c5aa6691618de03a5cabc5cae42b0d199a586f4fc69d48c0b77bc23fbb58" -- Python's hmac module
    local GOOD = "sha256=" .. HEX

    -- Where the contract is a table, the spec is too: one row, one it.
    local ROWS = {
      { "accepts the signature of the raw body", BODY, GOOD, SECRET, { true } },
      { "accepts upper-case hex", BODY, "sha256=" .. HEX:upper(), SECRET, { true } },
      { "accepts mixed-case hex", BODY, "sha256=" .. HEX:sub(1, 32):upper() .. HEX:sub(33), SECRET, { true } },
      { "says missing for a nil signature (no header)", BODY, nil, SECRET, { false, "missing" } },
      { "says missing for an empty signature", BODY, "", SECRET, { false, "missing" } },
      { "says malformed without the sha256= prefix", BODY, HEX, SECRET, { false, "malformed" } },
      { "says malformed for another algorithm's prefix", BODY, "sha512=" .. HEX, SECRET, { false, "malformed" } },
      { "says malformed for an upper-case prefix", BODY, "SHA256=" .. HEX, SECRET, { false, "malformed" } },
      { "says malformed for the prefix alone", BODY, "sha256=", SECRET, { false, "malformed" } },
      { "says malformed for an odd number of digits", BODY, GOOD:sub(1, -2), SECRET, { false, "malformed" } },
      { "says malformed for 62 digits", BODY, GOOD:sub(1, -3), SECRET, { false, "malformed" } },
      { "says malformed for 66 digits", BODY, GOOD .. "00", SECRET, { false, "malformed" } },
      { "says malformed for a non-hex digit", BODY, GOOD:sub(1, -2) .. "g", SECRET, { false, "malformed" } },
      { "says malformed for a blank around the value", BODY, " " .. GOOD, SECRET, { false, "malformed" } },
      { "says malformed for a trailing newline", BODY, GOOD:sub(1, -2) .. "\n", SECRET, { false, "malformed" } },
      { "says malformed for a NUL among the digits", BODY, GOOD:sub(1, 20) .. "\0" .. GOOD:sub(22), SECRET,
        { false, "malformed" } },
      { "says malformed for two signatures joined by a comma", BODY, GOOD .. "," .. GOOD, SECRET,
        { false, "malformed" } },
      { "says mismatch for a signature of another body", BODY .. " ", GOOD, SECRET, { false, "mismatch" } },
      { "says mismatch for a signature made with another secret", BODY, GOOD, SECRET .. "x", { false, "mismatch" } },
      { "says mismatch when the last digit differs", BODY, GOOD:sub(1, -2) .. (HEX:sub(-1) == "0" and "1" or "0"),
        SECRET, { false, "mismatch" } },
      { "says mismatch for an all-zero digest", BODY, "sha256=" .. string.rep("0", 64), SECRET,
        { false, "mismatch" } },
      { "verifies an empty body signed over \"\"", "",
        "sha256=5a618d7948668cb33835e3698b4dc6bc7b1f8fbac1044834ed9a22a70788b716", SECRET, { true } },
      { "says mismatch for an empty body under a non-empty body's signature", "", GOOD, SECRET,
        { false, "mismatch" } },
      { "verifies raw bytes past a NUL", "a\0b",
        "sha256=ab89a9caac5968fceed6a065227b8e67f367fd1ef6c64dadd7b5daa04e926fa4", SECRET, { true } },
      { "verifies a body that is not JSON (it never parses it)", "{not json",
        "sha256=" .. core.hmac_sha256_hex(SECRET, "{not json"), SECRET, { true } },
    }
    for _, row in ipairs(ROWS) do
      it(row[1], function()
        assert.are.same(row[5], { verify(row[2], row[3], row[4]) })
      end)
    end

    it("verifies a 10 MB body, and says mismatch when one byte of it changes", function()
      local body = string.rep("0123456789abcdef", 655360)
      assert.are.equal(10 * 1024 * 1024, #body)
      local sig = "sha256=2fa2150eb8b45b59869b899d8115fdfe9447aa096fd59ee49a9e8cc5de21300e" -- Python's hmac
      assert.are.same({ true }, { verify(body, sig, "whsec-10mb") })
      local changed = body:sub(1, 5242880) .. "X" .. body:sub(5242882)
      assert.are.equal(#body, #changed)
      assert.are.same({ false, "mismatch" }, { verify(changed, sig, "whsec-10mb") })
    end)

    it("hmac_sha256_hex is lower-case hex of 64 digits", function()
      local h = core.hmac_sha256_hex(SECRET, BODY)
      assert.are.equal(HEX, h)
      assert.truthy(h:match("^[0-9a-f]+$"))
    end)
  end)

  describe("bad arguments", function()
    -- Each raises naming the argument; a nil signature is a missing header, not a mistake.
    local ROWS = {
      { "a nil raw_body", function() return verify(nil, "sha256=00", "s") end, "raw_body must be a string %(got nil%)" },
      { "a table raw_body", function() return verify({}, "sha256=00", "s") end, "raw_body must be a string %(got table%)" },
      { "a number raw_body", function() return verify(42, "sha256=00", "s") end, "raw_body must be a string %(got number%)" },
      { "a number signature", function() return verify("b", 42, "s") end,
        "signature must be a string or nil %(got number%)" },
      { "a table signature (several headers)", function() return verify("b", { "sha256=00", "sha256=11" }, "s") end,
        "signature must be a string or nil %(got table%)" },
      { "a boolean signature", function() return verify("b", false, "s") end,
        "signature must be a string or nil %(got boolean%)" },
      { "a nil secret", function() return verify("b", "sha256=00", nil) end, "secret must be a string %(got nil%)" },
      { "no secret", function() return verify("b", "sha256=00") end, "secret must be a string %(got no value%)" },
      { "a number secret", function() return verify("b", "sha256=00", 7) end, "secret must be a string %(got number%)" },
      -- `os.getenv("SECRET") or ""` must not make every delivery signed with the empty key pass.
      { "an empty secret", function() return verify("b", "sha256=" .. core.hmac_sha256_hex("", "b"), "") end,
        "secret must not be empty" },
      { "hmac_sha256_hex with a nil key", function() return core.hmac_sha256_hex(nil, "m") end,
        "key must be a string %(got nil%)" },
      { "hmac_sha256_hex with a table msg", function() return core.hmac_sha256_hex("k", {}) end,
        "msg must be a string %(got table%)" },
    }
    for _, row in ipairs(ROWS) do
      it("raises for " .. row[1], function()
        local ok, err = pcall(row[2])
        assert.is_false(ok)
        assert.truthy(tostring(err):find(row[3]), tostring(err))
        assert.truthy(tostring(err):find("bad argument", 1, true), tostring(err))
      end)
    end
  end)

  describe("without libcrypto", function()
    -- The Makefile leaves libcrypto out when pkg-config finds none; LC_NO_CRYPTO=1 does the same here.
    local version = jit and "jit" or _VERSION:match("%d%.%d")
    local build = "build/nocrypto/" .. version

    it("the module still loads, and verify and hmac_sha256_hex raise naming libssl-dev", function()
      -- not under the parent make's flags, nor the ASan runtime sanitize.sh preloads
      local code, out = util.sh("env -u LD_PRELOAD -u MAKEFLAGS -u MAKELEVEL make -s LUA_VERSION=" .. version
        .. " LC_NO_CRYPTO=1 BUILD=" .. build .. " " .. build .. "/llamacloud/core.so")
      assert.are.equal(0, code, out)
      local _, needed = util.sh("readelf -d " .. build .. "/llamacloud/core.so")
      assert.falsy(needed:find("libcrypto", 1, true), needed)
      assert.truthy(needed:find("libcurl", 1, true), needed)
      local chunk = [[
        package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
        package.cpath = "]] .. build .. [[/?.so"
        local lc = require("llamacloud")
        local core = require("llamacloud.core")
        local ok1, e1 = pcall(lc.webhooks.verify, "body", "sha256=00", "secret")
        local ok2, e2 = pcall(core.hmac_sha256_hex, "k", "m")
        io.write(tostring(core.crypto_version), "|", tostring(ok1), "|", tostring(e1), "|", tostring(ok2), "|",
          tostring(e2))
      ]]
      local rc, res = util.sh("env -u LD_PRELOAD " .. util.quote(fake.interpreter()) .. " -e " .. util.quote(chunk))
      assert.are.equal(0, rc, res)
      local cv, ok1, e1, ok2, e2 = res:match("^(.-)|(.-)|(.-)|(.-)|(.*)$")
      assert.are.equal("false", cv, res)
      assert.are.equal("false", ok1)
      assert.are.equal("llamacloud: webhooks.verify needs libcrypto, and this build has none: rebuild with "
        .. "libssl-dev installed (pkg-config libcrypto)", e1)
      assert.are.equal("false", ok2)
      assert.truthy(e2:find("hmac_sha256_hex needs libcrypto", 1, true), e2)
    end)
  end)
end)
