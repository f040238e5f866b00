-- A finalizer the collector runs while a call builds its request or makes the client's blocking multi,
-- and that closes the client or makes a blocking call of its own on the same client. Before: the
-- client's strings were read after a close freed them (a crash), and a second blocking multi stayed
-- referenced with its descriptors until lua_close. The collector is made aggressive and the window is hit by
-- repetition (PUC 5.1 and 5.4 hit each within a few hundred calls). Run in a child: a crash is a
-- failed exit status.
local child = require("spec.support.child")
local fake = require("spec.support.fake")

local KEY = "sk-review2-lazy-key"

local COMMON = [[
local core = require("llamacloud.core")
]] .. child.GARBAGE .. [[
if not pcall(collectgarbage, "incremental", 1, 1000, 0) then
  collectgarbage("setpause", 1)
  collectgarbage("setstepmul", 1000)
end
local probe = core.new({ api_key = KEY, base_url = URL })
local multi_mt = getmetatable(probe:multi(1))
probe:close()
-- multis the registry still holds (a client's blocking one is referenced from there)
local function live_multis()
  local n = 0
  for _, v in pairs(debug.getregistry()) do
    if type(v) == "userdata" and getmetatable(v) == multi_mt then n = n + 1 end
  end
  return n
end
local target, act, acted = nil, nil, 0
local function fin()
  if target then
    local t = target
    target = nil
    acted = acted + 1
    pcall(act, t)
  end
  garbage(fin)
end
garbage(fin)
]]

local NESTED_GET = [[
act = function(c) c:get("bat-x") end
local base, grew = live_multis(), 0
for _ = 1, N do
  local c = core.new({ api_key = KEY, base_url = URL, max_retries = 0 })
  target = c
  local b = c:get("bat-x")
  target = nil
  assert(b and b.status == "RUNNING", "the outer get failed")
  c:close()
  if live_multis() > base then grew = grew + 1 end
end
return "acted " .. tostring(acted > 0) .. ", multis left " .. grew
]]

local CLOSE_CLIENT = [[
act = function(c) c:close() end
local other = 0
for _ = 1, N do
  local c = core.new({ api_key = KEY, base_url = URL, max_retries = 0 })
  target = c
  local ok, b = pcall(c.get, c, "bat-x")
  target = nil
  if ok then
    if not (b and b.status == "RUNNING") then other = other + 1 end
  elseif not tostring(b):find("the client is closed", 1, true) then
    other = other + 1
  end
  pcall(c.close, c)
end
return "acted " .. tostring(acted > 0) .. ", other outcomes " .. other
]]

describe("review2: a finalizer run while a call makes its request or multi", function()
  local server
  setup(function()
    server = fake.start({ scenario = { api_key = KEY, batches = { ["bat-x"] = { steps = { "RUNNING" } } } } })
  end)
  teardown(function() if server then server:stop() end end)

  local function run(body, n)
    return child.script(string.format("local URL, KEY, N = %q, %q, %d\n", server.url, KEY, n) .. COMMON, body)
  end

  it("making a blocking call on the same client leaves no second multi behind", function()
    local status, out = run(NESTED_GET, 1500)
    assert.are.equal(0, status, out)
    assert.are.equal("acted true, multis left 0", out)
  end)

  it("closing the client ends the call with a result or 'the client is closed', never a crash", function()
    local status, out = run(CLOSE_CLIENT, 1500)
    assert.are.equal(0, status, out)
    assert.are.equal("acted true, other outcomes 0", out)
  end)
end)
