-- The decode floor: cjson.decode timed on a body file (a batch or a list page), per call, with a plain Lua loop.
-- Usage: lua bench/decode_floor.lua FILE CALLS RUNS; prints "run MS_PER_CALL" per run, then "rss_kb N" (peak RSS).
-- A plain loop, as lib_workload.lua's: each call also pays its share of collecting the ones before.
local cjson = require("cjson")
local now = require("llamacloud.core").now -- a monotonic clock; os.clock is CPU time

local file, calls, runs = arg[1], tonumber(arg[2]), tonumber(arg[3])
local f = assert(io.open(file, "rb"))
local body = f:read("*a")
f:close()
local decode = cjson.decode

local function peak_rss_kb()
  local s = io.open("/proc/self/status"):read("*a")
  return tonumber(s:match("VmHWM:%s*(%d+)"))
end

local result = decode(body) -- warm-up
for _ = 1, runs do
  local t = now()
  for _ = 1, calls do result = decode(body) end
  local total = now() - t
  assert(type(result) == "table" and (result.status == "COMPLETED" or type(result.items) == "table"))
  io.write(string.format("run %.6f\n", total * 1000 / calls))
  io.stdout:flush()
end
io.write(string.format("rss_kb %d\n", peak_rss_kb()))
