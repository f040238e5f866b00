-- Lua code that runs while a multi is in the middle of a step (a finalizer the collector calls while a
-- response becomes Lua values, or a metamethod) and closes the multi, its client or a request in it is
-- refused with an error; it never pulls a transfer out from under the step. Before, this was a
-- use-after-free and a crash. Run in a child process, so a crash is a failed exit status.
local fake = require("spec.support.fake")
local util = require("spec.support.util")

local KEY = "sk-reentry-spec-key"

local function big_body(n)
  local parts = {}
  for i = 1, n do parts[i] = '{"source_directory_file_id":"dfl-' .. i .. '","n":' .. i .. '}' end
  return '{"id":"bat-big","status":"COMPLETED","results":[' .. table.concat(parts, ",") .. ']}'
end

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

-- A metamethod on the error table's metatable (core.error_mt is public) runs while a 404 becomes
-- an error: deterministic, at the moment C holds the finished transfer.
local METAMETHOD = [[
local m = ud:multi(4)
local req = ud:request("bat-missing")
m:add(req)
local armed = true
core.error_mt.__newindex = function(t, k, v)
  rawset(t, k, v)
  if not armed then return end
  armed = false
  if MODE == "multi" then m:close() elseif MODE == "request" then req:close() else req:cancel() end
end
local ok, err = drive(m, req)
core.error_mt.__newindex = nil
local _, rerr = req:result()
return tostring(ok) .. "|" .. tostring(err):gsub("^.-llamacloud: ", "") .. "|" .. tostring(req:done()) .. "|"
  .. tostring(rerr and rerr.name) .. "|" .. after(m)
]]

-- A finalizer that re-arms itself and closes the multi once the collector runs it inside a step,
-- while a large body is decoded: what a wrapper object closing its handles in __gc does.
local FINALIZER = [[
local function garbage(f)
  if newproxy then
    local p = newproxy(true)
    getmetatable(p).__gc = f
  else
    setmetatable({}, { __gc = f })
  end
end
local m, stepping, inside, refused = nil, false, 0, 0
local function fin()
  if stepping then
    inside = inside + 1
    local ok = pcall(m.close, m)
    if not ok then refused = refused + 1 end
    return
  end
  garbage(fin)
end
collectgarbage("setpause", 100)
for _ = 1, 20 do
  m = ud:multi(4)
  local reqs = {}
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
      ["bat-big"] = { steps = { { body = big_body(20000) } } } } } })
  end)
  teardown(function() if server then server:stop() end end)

  local function run(mode, body)
    local script = os.tmpname()
    finally(function() os.remove(script) end)
    util.write_file(script, "package.path = " .. string.format("%q", package.path) .. "\npackage.cpath = "
      .. string.format("%q", package.cpath) .. string.format("\nlocal URL, KEY, MODE = %q, %q, %q\n", server.url,
      KEY, mode) .. COMMON .. "\nio.write((function() " .. body .. " end)())\n")
    return util.sh(util.quote(fake.interpreter()) .. " " .. util.quote(script))
  end

  for _, mode in ipairs({ "multi", "request", "cancel" }) do
    it("refuses " .. mode .. " from a metamethod while the step builds an error, and goes on working", function()
      local status, out = run(mode, METAMETHOD)
      assert.are.equal(0, status, out)
      assert.are.same({ "false", "the multi is in a step: it cannot be stepped, closed, or have a request "
        .. "cancelled from inside that step (a __gc or metamethod running mid-step?)", "true",
        "APIConnectionError", "COMPLETED" }, { out:match("^(.-)|(.-)|(.-)|(.-)|(.-)$") })
    end)
  end

  it("refuses close from a finalizer the collector runs mid-step, and goes on working", function()
    local status, out = run("gc", FINALIZER)
    assert.are.equal(0, status, out)
    assert.are.equal("true|true|COMPLETED", out)
  end)
end)
