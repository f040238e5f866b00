-- The scale table's workload: one get_many or wait_many of N ids (concurrency 64) against the bench server, which
-- answers COMPLETED at once; prints the client's CPU per id, so that growth with N shows as a ratio.
-- Usage: lua bench/scale.lua get_many|wait_many BASE_URL N CONCURRENCY
-- Prints "cpu_us_per_id X", "wall_ms X", "rss_kb N". CPU is the process's (os.clock: user + system,
-- libcurl's included), measured around the one call, after a warm-up call has opened the connections.
local llamacloud = require("llamacloud")

local call, base_url, n, conc = arg[1], arg[2], tonumber(arg[3]), tonumber(arg[4])
assert(call == "get_many" or call == "wait_many", "bench: scale: get_many or wait_many")
local client = llamacloud.new({ api_key = "bench-key", base_url = base_url })
local now = require("llamacloud.core").now

local function ids_of(count, prefix)
  local ids = {}
  for i = 1, count do ids[i] = string.format("small-%s%07d", prefix, i) end
  return ids
end

local function run(ids)
  local out = client.batches[call](ids, { concurrency = conc })
  for i = 1, #ids do
    local e = out[i]
    if not (e.batch and e.batch.status == "COMPLETED") then
      error("bench: scale: " .. call .. " entry " .. i .. ": " .. tostring(e.err))
    end
  end
end

run(ids_of(2 * conc, "w")) -- warm-up: connects
local ids = ids_of(n, "s")
collectgarbage("collect")
local c0, t0 = os.clock(), now()
run(ids)
local cpu, wall = os.clock() - c0, now() - t0

local f = assert(io.open("/proc/self/status"))
local status = f:read("*a")
f:close()
io.write(string.format("cpu_us_per_id %.3f\nwall_ms %.1f\nrss_kb %d\n", cpu * 1e6 / n, wall * 1000,
  tonumber(status:match("VmHWM:%s*(%d+)"))))
client.close()
