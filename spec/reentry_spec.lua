-- Lua code that runs while a multi is in the middle of a step (a finalizer the collector calls while a
-- response becomes Lua values) and closes the multi or a request in it, or steps it again, is refused
-- with an error; it never pulls a transfer out from under the step. Before, this was a use-after-free
-- and a crash. And building an error runs no metamethod of the public core.error_mt. Run in a child
-- process, so a crash is a failed exit status.
local child = require("spec.support.child")
local fake = require("spec.support.fake")

local KEY = "sk-reentry-spec-key"

-- The child, with URL, KEY and MODE set before it. Its result: what it saw, "|"-separated.
local COMMON = [[
local core = require("llamacloud.core")
local ud = core.new({ api_key = KEY, base_url = URL, max_retries = 0 })
local function drive(m, req)
  local ok, err = pcall(function()
    for _ = 1, 2000 do
      if req:done() then return end
      m:step(0.01)
    end
  end)
  return ok, err
end
-- The multi still works afterwards, and so does lua_close (the caller's exit status).
local function after(m)
  local r2 = ud:request("bat-big")
  m:add(r2)
  drive(m, r2)
  local b = r2:result()
  m:close()
  ud:close()
  collectgarbage()
  collectgarbage()
  return b and b.status or "none"
end
]]

-- A finalizer that re-arms itself and, once the collector runs it inside a step (while a large body
-- is decoded), closes the multi, closes or cancels a request in it, or steps it again (MODE): what a
-- wrapper object closing its handles in __gc does.
local FINALIZER = child.GARBAGE .. [[
local m, stepping, inside, refused = nil, false, 0, 0
local reqs
local function pending() -- a request still in the multi
  for _, r in ipairs(reqs) do
    if not r:done() then return r end
  end
end
local ACT = {
  multi = function() m:close() end,
  request = function() pending():close() end,
  cancel = function() pending():cancel() end,
  step = function() m:step(0) end,
}
local function fin()
  if stepping and (MODE == "multi" or MODE == "step" or pending()) then
    inside = inside + 1
    local ok, err = pcall(ACT[MODE])
    if not ok and tostring(err):find("the multi is in a step", 1, true) then refused = refused + 1 end
    return
  end
  garbage(fin)
end
collectgarbage("setpause", 100)
for _ = 1, 20 do
  m = ud:multi(4)
  reqs = {}
  for i = 1, 4 do reqs[i] = ud:request("bat-big"); m:add(reqs[i]) end
  garbage(fin)
  for _ = 1, 2000 do
    stepping = true
    local ok = pcall(m.step, m, 0.01)
    stepping = false
    if not ok or (reqs[1]:done() and reqs[2]:done() and reqs[3]:done() and reqs[4]:done()) then break end
  end
  m:close()
  if inside > 0 then break end
end
m = ud:multi(4)
return tostring(inside > 0) .. "|" .. tostring(refused == inside) .. "|" .. after(m)
]]

describe("Lua code run from inside a multi's step", function()
  local server
  setup(function()
    server = fake.start({ scenario = { api_key = KEY, batches = {
      ["bat-big"] = { steps = { { body = child.big_body(20000) } } } } } })
  end)
  teardown(function() if server then server:stop() end end)

  local function run(mode, body)
    return child.script(string.format("local URL, KEY, MODE = %q, %q, %q\n", server.url, KEY, mode) .. COMMON, body)
  end

  local ACTS = { multi = "closing the multi", request = "closing a request in it", cancel = "cancelling a request "
    .. "in it", step = "stepping it again" }
  for _, mode in ipairs({ "multi", "request", "cancel", "step" }) do
    it("refuses " .. ACTS[mode] .. " from a finalizer the collector runs mid-step, and goes on working", function()
      local status, out = run(mode, FINALIZER)
      assert.are.equal(0, status, out)
      assert.are.equal("true|true|COMPLETED", out)
    end)
  end

  it("builds an error raw: a __newindex on core.error_mt neither runs nor loses a field", function()
    local status, out = run("raw", [[
local m = ud:multi(2)
local req = ud:request("bat-missing")
m:add(req)
local ran = 0
core.error_mt.__newindex = function() ran = ran + 1 end -- swallows every assignment
drive(m, req)
core.error_mt.__newindex = nil
local _, err = req:result()
return table.concat({ ran, err.name, tostring(err.status), tostring(err.attempts), type(err.headers),
  type(err.body) }, "|") .. "|" .. after(m)
]])
    assert.are.equal(0, status, out)
    assert.are.equal("0|NotFoundError|404|1|table|table|COMPLETED", out)
  end)

end)
