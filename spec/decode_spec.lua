-- core.decode's memory on adversarial bodies: size hints never trust the input (issue 9, defect 7).
local core = require("llamacloud.core")

-- KiB that the decoded value keeps alive.
local function kept_kib(s)
  collectgarbage()
  collectgarbage()
  local before = collectgarbage("count")
  local v = assert(core.decode(s))
  collectgarbage()
  collectgarbage()
  local kept = collectgarbage("count") - before
  assert.is_table(v)
  return kept
end

-- An object with n members that all have the same key: one key in the end.
local function dup_object(n) return "{" .. string.rep('"a":0,', n - 1) .. '"a":0}' end

describe("core.decode memory", function()
  it("duplicate keys do not presize the next object: alternating objects stay within 2x the body", function()
    local parts = {}
    for i = 1, 2000 do
      parts[2 * i - 1] = dup_object(100)
      parts[2 * i] = "{}"
    end
    local body = "[" .. table.concat(parts, ",") .. "]"
    assert.is_true(#body > 1.1e6)
    local kib = kept_kib(body)
    -- Before: each {} was presized to 100 slots, 5x the body on 5.4 and 9x on 5.1.
    assert.is_true(kib * 1024 < 2 * #body, string.format("kept %.0f KiB for a %.0f KiB body", kib, #body / 1024))
  end)

  it("a size guess never exceeds what the rest of the input could fill", function()
    local body = "[" .. dup_object(200000) .. ",{}]"
    local kib = kept_kib(body)
    -- Before: the final {} was presized to 200,000 slots (5 MiB on 5.4).
    assert.is_true(kib * 1024 < 2 * #body, string.format("kept %.0f KiB for a %.0f KiB body", kib, #body / 1024))
  end)

  it("still decodes duplicate keys as the last one wins", function()
    assert.are.same({ a = 2, b = 1 }, core.decode('{"a":1,"b":1,"a":2}'))
    assert.are.same({ { a = 0 }, {} }, core.decode("[" .. dup_object(50) .. ",{}]"))
  end)
end)
