-- A Lua error raised while a response becomes Lua values (here: a finalizer that raises, run by the
-- collector in the middle of decoding) propagates from get, leaves the client working, and lua_close
-- afterwards is clean (issue 9, defect 1). Run in a child process, so a crash is a failed exit status.
local child = require("spec.support.child")
local fake = require("spec.support.fake")

local KEY = "sk-raise-spec-key"

-- Lua 5.4 turns an error in __gc into a warning: there the out-of-memory harness covers the same path.
local GC_RAISES = _VERSION ~= "Lua 5.4"

-- The child: arms a finalizer that re-arms itself until Lua's heap is `grow` KiB past where it started
-- (it is only while the body is decoded), then raises.  mode picks how the call is driven.
local CHILD = [[
local URL, KEY, MODE = %q, %q, %q
local llamacloud = require("llamacloud")
local core = require("llamacloud.core")
local armed, raised = true, 0
local base
]] .. child.GARBAGE .. [[
local function fin()
  if armed and collectgarbage("count") > base + 4096 then
    raised = raised + 1
    error("boom from __gc")
  end
  if armed then garbage(fin) end
end
local c = llamacloud.new({ api_key = KEY, base_url = URL, max_retries = 0 })
local ud = core.new({ api_key = KEY, base_url = URL, max_retries = 0 })
collectgarbage()
collectgarbage("setpause", 100)
base = collectgarbage("count")
garbage(fin)
local ok, err
if MODE == "get" then
  ok, err = pcall(c.batches.get, "bat-big")
else
  local m = ud:multi(2)
  local req = ud:request("bat-big")
  m:add(req)
  ok, err = pcall(function()
    local done, wait = m:step(0)
    while not done and wait do done, wait = m:step(wait) end
  end)
  assert(req:done(), "the request that raised is ended")
  m:close()
end
armed = false
collectgarbage()
local first = tostring(ok) .. " " .. tostring(err)
-- The same client works afterwards, on the same connection pool.
local b, e = c.batches.get("bat-big")
local second = b and b.status or tostring(e)
local m2 = ud:multi(2)
local r2 = ud:request("bat-big")
m2:add(r2)
local done, wait = m2:step(0)
while not done and wait do done, wait = m2:step(wait) end
local b2 = r2:result()
c.close()
ud:close()
collectgarbage()
collectgarbage()
return first .. "|" .. second .. "|" .. (b2 and b2.status or "none") .. "|" .. raised
]]

describe("a Lua error while a response becomes Lua values", function()
  local server
  setup(function()
    server = fake.start({ scenario = { api_key = KEY, batches = {
      ["bat-big"] = { steps = { { body = child.big_body(60000) } } } } } })
  end)
  teardown(function() if server then server:stop() end end)

  local function run(mode)
    return child.script("", string.format(CHILD, server.url, KEY, mode))
  end

  for _, mode in ipairs({ "get", "multi" }) do
    it("propagates from " .. mode .. ", then the client works and lua_close is clean", function()
      if not GC_RAISES then return end
      local status, out = run(mode)
      assert.are.equal(0, status, out)
      local first, second, third, raised = out:match("^(.-)|(.-)|(.-)|(%d+)$")
      assert.is_truthy(first, out)
      assert.matches("^false .*boom from __gc", first)
      assert.are.equal("COMPLETED", second)
      assert.are.equal("COMPLETED", third)
      assert.are.equal("1", raised)
    end)
  end
end)
