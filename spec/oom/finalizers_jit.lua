-- Raising finalizers on LuaJIT, in one process: for each call of spec/oom/driver.lua, an unrelated __gc
-- raises at the K-th point where the collector runs, for every K until the call ends first. Each run
-- must fail cleanly or succeed and leave the client working; the process then closes its state (run it
-- under ASan through scripts/oom.sh). Usage: luajit spec/oom/finalizers_jit.lua URL [CALL ...]
local driver = require("spec.oom.driver")
io.stdout:setvbuf("line")

local url = arg[1] or error("usage: finalizers_jit.lua URL [CALL ...]")
local calls = { select(2, unpack(arg)) }
if #calls == 0 then calls = { "decode", "get", "get_many", "wait", "wait_many" } end

-- streaming: from gc_start until the call is over (a collection may run between them).
local armed, streaming, count, fire_at, fired = false, false, 0, 0, false
local function tick()
  if not armed then return streaming and 0 or -1 end
  count = count + 1
  if count == fire_at then
    fired = true
    return 1
  end
  return 0
end

-- One run with the K-th finalizer raising (0: none); the verdict and the points the call passed.
local function run(name, k)
  local call = driver.setup(url, name, "jit-" .. name .. "-" .. k, "gc")
  streaming = true
  driver.gc_start(tick)
  count, fire_at, fired, armed = 0, k, false, true
  local res = { pcall(call) }
  armed, streaming = false, false
  driver.gc_stop()
  local ok, verdict = pcall(driver.check, name, "gc", fired, res[1], res[2], res[3])
  driver.teardown()
  if not ok then error(string.format("LuaJIT gc %s K=%d: %s", name, k, tostring(verdict)), 0) end
  return verdict, count
end

local bad = 0
for _, name in ipairs(calls) do
  local t0 = os.clock()
  local verdict, total = run(name, 0)
  if verdict ~= "succeeded" then error("LuaJIT gc " .. name .. ": with no fault the call gave " .. verdict, 0) end
  local k, raised = 0, 0
  while true do
    k = k + 1
    local ok, v = pcall(run, name, k)
    if not ok then
      print("BAD " .. v)
      bad = bad + 1
      if bad >= 5 then break end
    elseif v == "raised" then
      raised = raised + 1
    elseif not fired then
      break
    end
    if k > 2 * total + 1000 then
      print("BAD LuaJIT gc " .. name .. ": still failing past twice the calibration")
      bad = bad + 1
      break
    end
  end
  print(string.format("LuaJIT gc    %-14s %6d budgets (calibration %d, every K) in %5.1f s CPU: raised %d",
    name, k, total, os.clock() - t0, raised))
end
collectgarbage()
if bad > 0 then os.exit(1) end
