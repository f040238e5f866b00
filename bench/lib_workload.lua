-- The library measured the way the floors are: one workload per process, through the public API, one reused client.
-- Usage: lua bench/lib_workload.lua WORKLOAD BASE_URL ARGS...
--   get ID CALLS RUNS [expand]   prints "run MS_PER_CALL" per run
--   many N CONC RUNS             get_many of N slow-* ids; prints "run WALL_MS" per run
--   files N CONC RUNS            wait_files of files1k-000001 (N files, each job 20 ms); prints "run WALL_MS"
--   each BATCHES PAGE_SIZE RUNS  each over the list pages; prints "run WALL_MS" per whole iteration
--   leak CALLS                   prints "rss_growth_kb N", "fd_growth N"
-- then "rss_kb N" (peak RSS). Plain loops, as decode_floor.lua's: each call also pays its share
-- of collecting the ones before.
local llamacloud = require("llamacloud")
local now = require("llamacloud.core").now

local workload, base_url = arg[1], arg[2]
local client = llamacloud.new({ api_key = "bench-key", base_url = base_url })
local get = client.batches.get

local function status_kb(field)
  local f = assert(io.open("/proc/self/status"))
  local s = f:read("*a")
  f:close()
  return tonumber(s:match(field .. ":%s*(%d+)"))
end

local function open_fds()
  local f = assert(io.open("/proc/self/stat"))
  local pid = f:read("*a"):match("^(%d+)")
  f:close()
  local p = assert(io.popen("ls /proc/" .. pid .. "/fd"))
  local n = 0
  for _ in p:lines() do n = n + 1 end
  p:close()
  return n
end

local function check(batch, err, want_results)
  if not batch then error("bench: get failed: " .. tostring(err)) end
  assert(batch.status == "COMPLETED", "bench: unexpected body")
  if want_results then assert(#batch.results == want_results, "bench: wrong result count") end
end

local function emit(fmt, ...)
  io.write(string.format(fmt, ...), "\n")
  io.stdout:flush()
end

if workload == "get" then
  local id, calls, runs, expand = arg[3], tonumber(arg[4]), tonumber(arg[5]), arg[6]
  local opts = expand and { expand = expand } or nil
  local want = id:match("^r1k%-") and 1000 or id:match("^r100k%-") and 100000 or nil
  local batch, err = get(id, opts) -- warm-up: connects
  check(batch, err, want)
  for _ = 1, runs do
    local t = now()
    for _ = 1, calls do batch, err = get(id, opts) end
    local total = now() - t
    check(batch, err, want)
    emit("run %.6f", total * 1000 / calls)
  end
elseif workload == "many" then
  local n, conc, runs = tonumber(arg[3]), tonumber(arg[4]), tonumber(arg[5])
  local ids = {}
  for i = 1, n do ids[i] = string.format("slow-%06d", i - 1) end
  local opts = { concurrency = conc }
  for _ = 1, runs do
    local t = now()
    local out = client.batches.get_many(ids, opts)
    t = now() - t
    for i = 1, n do check(out[i].batch, out[i].err) end
    emit("run %.3f", t * 1000)
  end
elseif workload == "files" then
  local n, conc, runs = tonumber(arg[3]), tonumber(arg[4]), tonumber(arg[5])
  local opts = { concurrency = conc, interval = 0.02 }
  for _ = 1, runs do
    local t = now()
    local report, err = client.batches.wait_files("files1k-000001", opts)
    t = now() - t
    if not report or err then error("bench: wait_files failed: " .. tostring(err)) end
    assert(#report.files == n and report.counts.COMPLETED == n, "bench: wrong report")
    emit("run %.3f", t * 1000)
  end
elseif workload == "each" then
  local total, size, runs = tonumber(arg[3]), tonumber(arg[4]), tonumber(arg[5])
  local params = { page_size = size }
  local function iterate()
    local n = 0
    for batch, err in client.batches.each(params) do
      if not batch then error("bench: each failed: " .. tostring(err)) end
      n = n + 1
    end
    assert(n == total, "bench: each saw " .. n .. " batches")
  end
  iterate() -- warm-up: connects
  for _ = 1, runs do
    local t = now()
    iterate()
    emit("run %.3f", (now() - t) * 1000)
  end
elseif workload == "leak" then
  local calls = tonumber(arg[3])
  for _ = 1, 200 do check(get("small-leak")) end -- warm-up: pools and caches reach their size
  collectgarbage("collect")
  collectgarbage("collect")
  local rss0, fd0 = status_kb("VmRSS"), open_fds()
  for _ = 1, calls do
    local batch, err = get("small-leak")
    if not batch then check(batch, err) end
  end
  collectgarbage("collect")
  collectgarbage("collect")
  emit("rss_growth_kb %d", status_kb("VmRSS") - rss0)
  emit("fd_growth %d", open_fds() - fd0)
else
  error("bench: unknown workload " .. tostring(workload))
end
emit("rss_kb %d", status_kb("VmHWM"))
client.close()
