-- Runs every workload and its floors against the bench server, prints the table and writes results.json.
-- Usage (from bench/run.sh): lua bench/run.lua BASE_URL BIN_DIR WWW_DIR RESULTS_JSON
local cjson = require("cjson")
local core = require("llamacloud.core")

local base, bin, www, results_path = arg[1], arg[2], arg[3], arg[4]
local RUNS = tonumber(os.getenv("BENCH_RUNS") or "") or 7
local unpack_ = table.unpack or unpack
local LUA = os.getenv("LUA") or "lua5.4"
local API = base .. "/api/v2/batches/"

-- BENCH_ONLY=wait_files,each runs only the workloads named (small, r1k, r100k, get_many, wait_files, each,
-- leak, scale); unset, all of them.
local ONLY = os.getenv("BENCH_ONLY")
local function wanted(name)
  if not ONLY or ONLY == "" then return true end
  for w in ONLY:gmatch("[^,%s]+") do if w == name then return true end end
  return false
end

local function sh_quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

-- Runs a measuring program; its "run X" lines become a list, "key N" lines fields.
local function measure(...)
  local words = {}
  for i, w in ipairs({ ... }) do words[i] = sh_quote(tostring(w)) end
  local cmd = table.concat(words, " ")
  local p = assert(io.popen(cmd))
  local out = { runs = {} }
  for line in p:lines() do
    local k, v = line:match("^(%S+)%s+(%S+)$")
    if k == "run" then out.runs[#out.runs + 1] = tonumber(v) elseif k then out[k] = tonumber(v) end
  end
  p:close()
  if not out.rss_kb then error("bench: failed: " .. cmd) end
  return out
end

local function median(t)
  local s = {}
  for i = 1, #t do s[i] = t[i] end
  table.sort(s)
  local n = #s
  if n == 0 then return nil end
  if n % 2 == 1 then return s[(n + 1) / 2] end
  return (s[n / 2] + s[n / 2 + 1]) / 2
end

-- The median over rounds of the library's time over the floor's time in the same round (floor(r)).
local function median_ratio(lib, floor)
  local per_round = {}
  for r = 1, #lib.runs do per_round[r] = lib.runs[r] / floor(r) end
  return median(per_round)
end

-- Each round runs every program of a workload once, floors and library back to back, so that
-- load from elsewhere on the machine falls on all of them alike. Each figure is the median
-- over the rounds, each ratio the median of the rounds' ratios (which cancels drift between
-- rounds), and peak RSS the median of the processes' peaks.
local function rounds(programs)
  local got = {}
  for _ = 1, RUNS do
    for _, prog in ipairs(programs) do
      local name = prog[1]
      local out = measure(unpack_(prog, 2))
      local g = got[name] or { runs = {}, rss = {} }
      got[name] = g
      for _, v in ipairs(out.runs) do g.runs[#g.runs + 1] = v end
      g.rss[#g.rss + 1] = out.rss_kb
      for k, v in pairs(out) do if k ~= "runs" and k ~= "rss_kb" then g[k] = v end end
    end
  end
  for _, g in pairs(got) do
    g.median = median(g.runs)
    g.rss_kb = median(g.rss)
  end
  return got
end

local rows, report = {}, {
  lua = core.lua_version or _VERSION, libcurl = core.curl_version, runs = RUNS,
  date = os.date("!%Y-%m-%dT%H:%M:%SZ"), workloads = {},
}

local function fmt_ms(ms)
  if ms < 1 then return string.format("%.1f us", ms * 1000) end
  return string.format("%.2f ms", ms)
end

-- A per-call workload: library against fetch floor + decode floor.
local function per_call(name, id, file, calls, target, expand, rss_target)
  local url = API .. id .. (expand and "?expand=results" or "")
  local got = rounds({
    { "fetch", bin .. "/fetch_floor", url, calls, 1 },
    { "decode", LUA, "bench/decode_floor.lua", www .. "/" .. file, calls, 1 },
    { "lib", LUA, "bench/lib_workload.lua", "get", base, id, calls, 1, expand },
  })
  local f, d, l = got.fetch, got.decode, got.lib
  local fm, dm, lm = f.median, d.median, l.median
  local floor = fm + dm
  local ratio = median_ratio(l, function(r) return f.runs[r] + d.runs[r] end)
  local pass = ratio <= target
  local target_text = string.format("<= %.2fx", target)
  local rss_text = string.format("%.1f MB (decode floor %.1f MB)", l.rss_kb / 1024, d.rss_kb / 1024)
  local once
  if rss_target then
    -- The memory one call needs, in a process that makes just that call (0 timed runs):
    -- a loop's peak depends on when the collector catches up, which differs by Lua.
    once = rounds({
      { "decode", LUA, "bench/decode_floor.lua", www .. "/" .. file, 1, 0 },
      { "lib", LUA, "bench/lib_workload.lua", "get", base, id, 1, 0, expand },
    })
    pass = pass and once.lib.rss_kb <= once.decode.rss_kb
    target_text = target_text .. ", one call's peak RSS <= decode floor's"
    rss_text = string.format("one call %.1f MB (decode floor %.1f MB); loop %.1f MB (%.1f MB)",
      once.lib.rss_kb / 1024, once.decode.rss_kb / 1024, l.rss_kb / 1024, d.rss_kb / 1024)
  end
  report.workloads[name] = {
    calls = calls, library_ms = lm, fetch_floor_ms = fm, decode_floor_ms = dm, floor_ms = floor, ratio = ratio,
    target = target, pass = pass, library_rss_kb = l.rss_kb, fetch_floor_rss_kb = f.rss_kb,
    decode_floor_rss_kb = d.rss_kb, library_runs = l.runs, fetch_floor_runs = f.runs, decode_floor_runs = d.runs,
    library_one_call_rss_kb = once and once.lib.rss_kb, decode_floor_one_call_rss_kb = once and once.decode.rss_kb,
  }
  rows[#rows + 1] = {
    name, string.format("%s/call (%.0f/s)", fmt_ms(lm), 1000 / lm),
    string.format("%s + %s = %s", fmt_ms(fm), fmt_ms(dm), fmt_ms(floor)), string.format("%.3fx", ratio),
    target_text, pass and "pass" or "FAIL", rss_text,
  }
end

if wanted("small") then per_call("small", "small-000001", "small.json", 5000, 1.15) end
if wanted("r1k") then per_call("r1k", "r1k-000001", "r1k.json", 200, 0.7, "results") end
if wanted("r100k") then per_call("r100k", "r100k-000001", "r100k.json", 5, 0.6, "results", true) end

if wanted("get_many") then
  local n, conc = 1000, 32
  local got = rounds({
    { "multi", bin .. "/multi_floor", API .. "slow-", n, conc, 1 },
    { "lib", LUA, "bench/lib_workload.lua", "many", base, n, conc, 1 },
  })
  local f, l = got.multi, got.lib
  local fm, lm = f.median, l.median
  local ratio = median_ratio(l, function(r) return f.runs[r] end)
  local ideal = math.ceil(n / conc) * 20
  report.workloads.get_many = {
    ids = n, concurrency = conc, delay_ms = 20, library_ms = lm, multi_floor_ms = fm, ideal_ms = ideal,
    ratio = ratio, target = 1.05, pass = ratio <= 1.05, library_rss_kb = l.rss_kb, multi_floor_rss_kb = f.rss_kb,
    library_runs = l.runs, multi_floor_runs = f.runs,
  }
  rows[#rows + 1] = {
    "get_many 1000 x 20 ms @32", string.format("%.1f ms wall", lm),
    string.format("%.1f ms (C multi; ideal %d ms)", fm, ideal), string.format("%.3fx", ratio), "<= 1.05x",
    ratio <= 1.05 and "pass" or "FAIL", string.format("%.1f MB", l.rss_kb / 1024),
  }
end

-- wait_files of a batch of 1,000 files whose jobs each answer after 20 ms, 32 in flight, against the C
-- multi fetching the same 1,000 job URLs (the library's one batch request on top is its own cost).
if wanted("wait_files") then
  local n, conc, target = 1000, 32, 1.05
  local got = rounds({
    { "multi", bin .. "/multi_floor", base .. "/api/v2/parse/pjb-", n, conc, 1 },
    { "lib", LUA, "bench/lib_workload.lua", "files", base, n, conc, 1 },
  })
  local f, l = got.multi, got.lib
  local ratio = median_ratio(l, function(r) return f.runs[r] end)
  local ideal = math.ceil(n / conc) * 20
  report.workloads.wait_files = {
    files = n, concurrency = conc, delay_ms = 20, library_ms = l.median, multi_floor_ms = f.median, ideal_ms = ideal,
    ratio = ratio, target = target, pass = ratio <= target, library_rss_kb = l.rss_kb, multi_floor_rss_kb = f.rss_kb,
    library_runs = l.runs, multi_floor_runs = f.runs,
  }
  rows[#rows + 1] = {
    "wait_files 1000 files x 20 ms @32", string.format("%.1f ms wall", l.median),
    string.format("%.1f ms (C multi, same 1000 jobs; ideal %d ms)", f.median, ideal), string.format("%.3fx", ratio),
    string.format("<= %.2fx", target), ratio <= target and "pass" or "FAIL", string.format("%.1f MB", l.rss_kb / 1024),
  }
end

-- each over 10,000 batches in 100 pages of 100, against 100 fetches and 100 cjson decodes of one page
-- (every page but the last has the same size). A whole iteration takes some 50 ms, short enough for a
-- neighbour's burst to swing one sample by half: each program times EACH_RUNS iterations per round,
-- and the ratio is the median over every round's runs.
if wanted("each") then
  local total, size, target, runs = 10000, 100, 1.1, tonumber(os.getenv("BENCH_EACH_RUNS") or "") or 5
  local pages = math.floor(total / size)
  local page_url = base .. "/api/v2/batches?page_size=" .. size .. "&page_token=pt-050"
  local got = rounds({
    { "fetch", bin .. "/fetch_floor", page_url, pages, runs },
    { "decode", LUA, "bench/decode_floor.lua", www .. "/pages/list-050.json", pages, runs },
    { "lib", LUA, "bench/lib_workload.lua", "each", base, total, size, runs },
  })
  local f, d, l = got.fetch, got.decode, got.lib
  local ratio = median_ratio(l, function(r) return pages * (f.runs[r] + d.runs[r]) end)
  local floor = pages * (f.median + d.median)
  report.workloads.each = {
    batches = total, page_size = size, pages = pages, library_ms = l.median, fetch_floor_ms_per_page = f.median,
    decode_floor_ms_per_page = d.median, floor_ms = floor, ratio = ratio, target = target, pass = ratio <= target,
    library_rss_kb = l.rss_kb, library_runs = l.runs, fetch_floor_runs = f.runs, decode_floor_runs = d.runs,
  }
  rows[#rows + 1] = {
    "each 10,000 batches, pages of 100", string.format("%.1f ms (%.1f us/batch)", l.median, l.median * 1000 / total),
    string.format("100 x (%s + %s) = %.1f ms", fmt_ms(f.median), fmt_ms(d.median), floor), string.format("%.3fx", ratio),
    string.format("<= %.2fx", target), ratio <= target and "pass" or "FAIL", string.format("%.1f MB", l.rss_kb / 1024),
  }
end

if wanted("leak") then
  local calls = 10000
  local l = measure(LUA, "bench/lib_workload.lua", "leak", base, calls)
  local pass = l.rss_growth_kb < 2048 and l.fd_growth <= 0
  report.workloads.leak = {
    calls = calls, rss_growth_kb = l.rss_growth_kb, fd_growth = l.fd_growth, pass = pass, library_rss_kb = l.rss_kb,
  }
  rows[#rows + 1] = {
    "10,000 sequential get", string.format("RSS %+d kB, fds %+d", l.rss_growth_kb, l.fd_growth), "-", "-",
    "RSS < +2 MB, fds +0", pass and "pass" or "FAIL", string.format("%.1f MB", l.rss_kb / 1024),
  }
end

-- The scale table: client CPU per id of one get_many and one wait_many (concurrency 64, every id
-- answered COMPLETED at once) at 2,000, 10,000 and 50,000 ids, each size in a process of its own;
-- the median of SCALE_RUNS rounds. Flat cost per id: 50,000 ids cost at most 1.3x per id what
-- 2,000 cost (issue 9, defect 8).
local SCALE_SIZES, SCALE_CONC, SCALE_TARGET = { 2000, 10000, 50000 }, 64, 1.3
local SCALE_RUNS = tonumber(os.getenv("BENCH_SCALE_RUNS") or "") or 3
local scale_rows = {}
report.workloads.scale = { concurrency = SCALE_CONC, sizes = SCALE_SIZES, target = SCALE_TARGET, runs = SCALE_RUNS }
for _, call in ipairs(wanted("scale") and { "get_many", "wait_many" } or {}) do
  local per = {}
  for _, n in ipairs(SCALE_SIZES) do per[n] = {} end
  for _ = 1, SCALE_RUNS do
    for _, n in ipairs(SCALE_SIZES) do
      local out = measure(LUA, "bench/scale.lua", call, base, n, SCALE_CONC)
      per[n][#per[n] + 1] = out.cpu_us_per_id
    end
  end
  local row, fig = { call }, {}
  for _, n in ipairs(SCALE_SIZES) do
    fig[n] = median(per[n])
    row[#row + 1] = string.format("%.1f us", fig[n])
  end
  local ratio = fig[SCALE_SIZES[#SCALE_SIZES]] / fig[SCALE_SIZES[1]]
  local pass = ratio <= SCALE_TARGET
  row[#row + 1] = string.format("%.2fx", ratio)
  row[#row + 1] = string.format("<= %.1fx", SCALE_TARGET)
  row[#row + 1] = pass and "pass" or "FAIL"
  scale_rows[#scale_rows + 1] = row
  -- keyed by the size as a string: cjson refuses a sparse array
  local fig_by, runs_by = {}, {}
  for _, n in ipairs(SCALE_SIZES) do fig_by[tostring(n)], runs_by[tostring(n)] = fig[n], per[n] end
  report.workloads.scale[call] = { cpu_us_per_id = fig_by, runs = runs_by, ratio = ratio, pass = pass }
end

local header = { "workload", "library", "floor", "ratio", "target", "result", "peak RSS" }
io.write(string.format("\nllamacloud-lua bench: %s, libcurl %s, median of %d runs\n\n", report.lua, report.libcurl, RUNS))
io.write("| " .. table.concat(header, " | ") .. " |\n")
io.write(string.rep("|---", #header) .. "|\n")
for _, r in ipairs(rows) do io.write("| " .. table.concat(r, " | ") .. " |\n") end

local scale_header = { "client CPU per id, concurrency " .. SCALE_CONC }
for _, n in ipairs(SCALE_SIZES) do scale_header[#scale_header + 1] = string.format("%d ids", n) end
for _, h in ipairs({ "50k/2k", "target", "result" }) do scale_header[#scale_header + 1] = h end
io.write("\n| " .. table.concat(scale_header, " | ") .. " |\n")
io.write(string.rep("|---", #scale_header) .. "|\n")
for _, r in ipairs(scale_rows) do io.write("| " .. table.concat(r, " | ") .. " |\n") end

local f = assert(io.open(results_path, "w"))
f:write(cjson.encode(report), "\n")
f:close()
io.write("\nwrote " .. results_path .. "\n")
