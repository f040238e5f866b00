-- Soak: 20,000 gets against the fake server with random faults mixed in, half one by one and half through
-- get_many; open descriptors and RSS must stay flat after warm-up, and every result must be the batch or
-- the contract's error for what the server did. Prints its figures; exits 1 on any failure.
-- Usage (from the repo root): make soak, or
--   LUA_PATH='lua/?.lua;lua/?/init.lua;./?.lua;;' LUA_CPATH='build/5.4/?.so;;' lua5.4 scripts/soak.lua [N] [seed]
local root = (arg and arg[0] or ""):match("^(.*)/scripts/[^/]+$") or "."
package.path = root .. "/lua/?.lua;" .. root .. "/lua/?/init.lua;" .. root .. "/?.lua;" .. package.path

local fake = require("spec.support.fake")
local util = require("spec.support.util")
local llamacloud = require("llamacloud")
local core = require("llamacloud.core")

local TOTAL = tonumber(arg and arg[1]) or 20000
local SEED = tonumber(arg and arg[2]) or os.time()
local WARMUP = math.floor(TOTAL / 10)
local RSS_SLACK_KB = 2048
local CAP = 65536
local KEY = "sk-soak-key"

-- id -> { step, expected result ("batch" or an error name), weight, get options }
local NO_RETRY = { max_retries = 0 }
local RETRY = { max_retries = 2 }
local R0 = { ["retry-after-ms"] = "0" }
local KINDS = {
  { "ok", "COMPLETED", "batch", 60, NO_RETRY },
  { "ok-expand", { batch_status = "RUNNING" }, "batch", 10, NO_RETRY },
  { "e404", { status = 404 }, "NotFoundError", 2, NO_RETRY },
  { "e500", { status = 500, headers = R0 }, "InternalServerError", 2, RETRY },
  { "e429", { status = 429, headers = R0 }, "RateLimitError", 2, RETRY },
  { "e418", { status = 418 }, "APIStatusError", 1, NO_RETRY },
  { "redirect", { status = 302, headers = { Location = "http://127.0.0.1:9/x" } }, "APIStatusError", 1, NO_RETRY },
  { "drop", { fault = "drop" }, "APIConnectionError", 2, NO_RETRY },
  { "reset-headers", { fault = "reset_headers" }, "APIConnectionError", 1, NO_RETRY },
  { "rst-headers", { fault = "rst_headers" }, "APIConnectionError", 1, NO_RETRY },
  { "rst-body", { fault = "rst_body" }, "APIConnectionError", 1, NO_RETRY },
  { "truncate", { fault = "truncate" }, "APIConnectionError", 1, NO_RETRY },
  { "length-long", { fault = "length_long" }, "APIConnectionError", 1, NO_RETRY },
  { "length-short", { fault = "length_short" }, "APIResponseValidationError", 1, NO_RETRY },
  { "malformed", { fault = "malformed" }, "APIResponseValidationError", 1, NO_RETRY },
  { "binary", { fault = "binary", size = 2048 }, "APIResponseValidationError", 1, NO_RETRY },
  { "not-object", { fault = "not_object" }, "APIResponseValidationError", 1, NO_RETRY },
  { "missing", { fault = "missing_fields" }, "APIResponseValidationError", 1, NO_RETRY },
  { "huge", { fault = "huge", size = 4 * CAP }, "APIResponseValidationError", 1, NO_RETRY },
  { "endless", { fault = "endless", size = 8 * CAP }, "APIResponseValidationError", 1, NO_RETRY },
  { "headers", { fault = "many_headers", count = 300, batch_status = "COMPLETED" }, "batch", 2, NO_RETRY },
  { "bad-utf8", { body = '{"id":"bad-utf8","status":"RUNNING","x":"\255\254"}' }, "batch", 1, NO_RETRY },
  { "nan", { body = '{"id":"nan","status":"RUNNING","x":NaN}' }, "APIResponseValidationError", 1, NO_RETRY },
  { "slow", { delay = 0.2 }, "APITimeoutError", 1, { max_retries = 0, timeout = 0.02 } },
}

local function snapshot()
  collectgarbage()
  collectgarbage()
  -- descriptors other than pipes: io.popen's own pipe comes and goes while ls runs
  return { rss = util.status_kb("VmRSS"), fds = (util.open_fds()), lua_kb = math.floor(collectgarbage("count")) }
end

local batches, pick = {}, {}
for i, k in ipairs(KINDS) do
  batches[k[1]] = { steps = { k[2] } }
  for _ = 1, k[4] do pick[#pick + 1] = i end
end

local server = fake.start({ scenario = { api_key = KEY, batches = batches } })
local ok_run, failure = pcall(function()
  math.randomseed(SEED)
  local client = llamacloud.new({ api_key = KEY, base_url = server.url, timeout = 5, max_body_bytes = CAP })
  local counts, failures = {}, {}
  local done, warm, t0 = 0, nil, core.now()

  local function check(kind, batch, err)
    local want = kind[3]
    local got = batch and "batch" or (type(err) == "table" and err.name) or ("junk:" .. tostring(err))
    counts[got] = (counts[got] or 0) + 1
    if got ~= want or (batch and batch.id ~= kind[1]) then
      if #failures < 20 then
        failures[#failures + 1] = kind[1] .. ": wanted " .. want .. ", got " .. got
          .. (err and (" (" .. tostring(err) .. ")") or "")
      end
      return false
    end
    return true
  end

  -- A known good get, so the blocking client's pool holds one live connection at each snapshot.
  local function settle()
    local b, e = client.batches.get("ok")
    assert(b, "settling get failed: " .. tostring(e))
  end

  -- Chunks of 100 alternate between one-by-one gets and one get_many, so warm-up covers both.
  local function sequential(n)
    for _ = 1, n do
      local kind = KINDS[pick[math.random(#pick)]]
      local batch, err = client.batches.get(kind[1], kind[5])
      check(kind, batch, err)
    end
  end

  local calls = 0
  local function many(n)
    local kinds, by_opts = {}, {}
    -- get_many takes one opts for all its ids: group them by the options their kind needs.
    for i = 1, n do
      kinds[i] = KINDS[pick[math.random(#pick)]]
      local o = kinds[i][5]
      by_opts[o] = by_opts[o] or {}
      local g = by_opts[o]
      g[#g + 1] = i
    end
    for o, group in pairs(by_opts) do
      local ids = {}
      for j, i in ipairs(group) do ids[j] = kinds[i][1] end
      local opts = { concurrency = 16 }
      for k, v in pairs(o) do opts[k] = v end
      local out = client.batches.get_many(ids, opts)
      calls = calls + 1
      if #out ~= #group then error("get_many returned " .. #out .. " entries for " .. #group .. " ids") end
      for j, i in ipairs(group) do
        if out[j].batch == nil and out[j].err == nil then
          failures[#failures + 1] = kinds[i][1] .. ": get_many entry with neither batch nor err (stuck?)"
        end
        check(kinds[i], out[j].batch, out[j].err)
      end
    end
  end

  local t_seq, t_many, n_seq, chunk = 0, 0, 0, 0
  while done < TOTAL do
    local n = math.min(100, TOTAL - done)
    local t = core.now()
    chunk = chunk + 1
    if chunk % 2 == 1 then
      sequential(n)
      t_seq = t_seq + core.now() - t
      n_seq = n_seq + n
    else
      many(n)
      t_many = t_many + core.now() - t
    end
    done = done + n
    if not warm and done >= WARMUP then
      settle()
      warm = snapshot()
    end
  end
  local half = n_seq

  settle()
  local final = snapshot()
  local elapsed = core.now() - t0
  client.close()
  -- Nothing left in flight: once the client is closed the server sees every connection closed.
  local open
  for _ = 1, 300 do
    open = server:stats().connections_open
    if open == 0 then break end
    require("socket").sleep(0.01)
  end
  if open ~= 0 then failures[#failures + 1] = open .. " connection(s) still open after close" end

  local names = {}
  for name in pairs(counts) do names[#names + 1] = name end
  table.sort(names)
  print(string.format("soak: %d requests (seed %d) in %.1f s: %d one by one in %.1f s, %d through %d get_many calls in %.1f s",
    done, SEED, elapsed, half, t_seq, TOTAL - half, calls, t_many))
  for _, name in ipairs(names) do print(string.format("soak:   %-28s %6d", name, counts[name])) end
  print(string.format("soak: after warm-up (%d requests): RSS %d kB, %d descriptors, Lua heap %d kB",
    WARMUP, warm.rss, warm.fds, warm.lua_kb))
  print(string.format("soak: at the end: RSS %d kB (%+d kB), %d descriptors (%+d), Lua heap %d kB (%+d kB)",
    final.rss, final.rss - warm.rss, final.fds, final.fds - warm.fds, final.lua_kb, final.lua_kb - warm.lua_kb))

  if final.rss - warm.rss > RSS_SLACK_KB then
    failures[#failures + 1] = string.format("RSS grew by %d kB after warm-up (limit %d kB)", final.rss - warm.rss,
      RSS_SLACK_KB)
  end
  if final.fds ~= warm.fds then
    failures[#failures + 1] = string.format("descriptors went from %d to %d", warm.fds, final.fds)
  end
  return failures
end)

server:stop()
if not ok_run then
  io.stderr:write("soak: raised: ", tostring(failure), "\n")
  os.exit(1)
end
if #failure > 0 then
  for _, f in ipairs(failure) do io.stderr:write("soak: FAIL ", f, "\n") end
  os.exit(1)
end
print("soak: ok")
os.exit(0)
