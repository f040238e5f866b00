-- Instruction counts per call under valgrind --tool=callgrind: repeatable where wall time is not.
-- Usage (from bench/run.sh callgrind): lua bench/callgrind.lua BASE_URL BIN_DIR WWW_DIR OUT_DIR
-- Each program runs twice, with N1 and N2 calls; (count(N2) - count(N1)) / (N2 - N1) is the
-- cost of one call without start-up. The library's count is split by where it is spent.
local base, bin, www, out_dir = arg[1], arg[2], arg[3], arg[4]
local LUA = os.getenv("LUA") or "lua5.4"
local API = base .. "/api/v2/batches/"

local function sh_quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function run(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local text = p:read("*a")
  p:close()
  return text
end

-- Runs argv under callgrind; returns the total and the inclusive count of each function
-- whose name appears in parts (the largest line naming it, as an inlined copy is listed apart).
local function counted(tag, argv, parts)
  local file = out_dir .. "/callgrind." .. tag
  local words = {}
  for i, w in ipairs(argv) do words[i] = sh_quote(w) end
  local text = run("valgrind --tool=callgrind --callgrind-out-file=" .. sh_quote(file) .. " " .. table.concat(words, " "))
  local total = tonumber((text:match("Collected : (%d+)")))
  if not total then error("bench: callgrind failed for " .. tag .. ":\n" .. text) end
  local got = { total = total }
  if parts then
    local annotated = run("callgrind_annotate --inclusive=yes " .. sh_quote(file))
    for line in annotated:gmatch("[^\n]+") do
      local n, name = line:match("^%s*([%d,]+) %(%s*[%d.]+%%%)%s+%S-:([%w_]+)")
      if n then
        n = tonumber((n:gsub(",", "")))
        for _, want in ipairs(parts) do
          if name == want and n > (got[want] or 0) then got[want] = n end
        end
      end
    end
  end
  os.remove(file)
  return got
end

local function per_call(tag, make_argv, n1, n2, parts)
  local a = counted(tag .. ".1", make_argv(n1), parts)
  local b = counted(tag .. ".2", make_argv(n2), parts)
  local out = {}
  for k, v in pairs(b) do out[k] = (v - (a[k] or 0)) / (n2 - n1) end
  return out
end

local PARTS = { "curl_multi_perform", "lc_json_decode", "lc_json_decode_hinted", "lc_client_get" }
local rows = {}
local function k(n) return string.format("%.1fk", n / 1000) end

for _, w in ipairs({ { "small", "small-000001", nil, 200, 600 }, { "r1k", "r1k-000001", "results", 30, 90 } }) do
  local name, id, expand, n1, n2 = w[1], w[2], w[3], w[4], w[5]
  local url = API .. id .. (expand and "?expand=results" or "")
  local fetch = per_call(name .. ".fetch", function(n) return { bin .. "/fetch_floor", url, n, 1 } end, n1, n2)
  local decode = per_call(name .. ".decode", function(n)
    return { LUA, "bench/decode_floor.lua", www .. "/" .. name .. ".json", n, 1 }
  end, n1, n2)
  local lib = per_call(name .. ".lib", function(n)
    return { LUA, "bench/lib_workload.lua", "get", base, id, n, 1, expand }
  end, n1, n2, PARTS)
  local floor = fetch.total + decode.total
  local curl = lib.curl_multi_perform or 0
  local dec = math.max(lib.lc_json_decode or 0, lib.lc_json_decode_hinted or 0)
  rows[#rows + 1] = string.format("| %s | %s | %s | %s | %s (%.2fx) | %s | %s | %s |", name, k(fetch.total),
    k(decode.total), k(floor), k(lib.total), lib.total / floor, k(curl), k(dec), k(lib.total - curl - dec))
end

io.write("\nInstructions per call (callgrind, client process only; nginx not counted)\n\n")
io.write("| body | fetch floor | cjson.decode | floor | library get | in curl_multi_perform | in decode | rest |\n")
io.write("|---|---|---|---|---|---|---|---|\n")
io.write(table.concat(rows, "\n"), "\n")
