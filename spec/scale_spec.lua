-- The cost of multi:add, and of a step, does not grow with the number of requests in the multi (issue 9,
-- defect 8; the step: a review finding).
local core = require("llamacloud.core")
local fake = require("spec.support.fake")

-- Seconds that n adds to a fresh multi take (the requests are built first, outside the timing), the best
-- of a few runs so a scheduler hiccup does not count.
local function add_time(ud, n)
  local best
  for _ = 1, 3 do
    local m = ud:multi(4)
    local reqs = {}
    for i = 1, n do reqs[i] = ud:request("bat-" .. i) end
    local t0 = core.now()
    for i = 1, n do m:add(reqs[i]) end
    local t = core.now() - t0
    m:close()
    if not best or t < best then best = t end
  end
  return best
end

describe("multi:add", function()
  it("costs about the same per request at 40,000 requests as at 4,000", function()
    local ud = core.new({ api_key = "sk-scale", base_url = "http://127.0.0.1:9" })
    finally(function() ud:close() end)
    local small, large = add_time(ud, 4000), add_time(ud, 40000)
    local ratio = (large / 40000) / (small / 4000)
    -- A walk to the tail makes this about 10 (and 40,000 adds take seconds); flat is about 1.
    assert.is_true(ratio < 4, string.format("per-add cost ratio %.2f (%.4f s vs %.4f s)", ratio, large, small))
    local m = ud:multi(4)
    for i = 1, 3 do m:add(ud:request("bat-" .. i)) end
    assert.are.same({ 0, 3 }, { m:counts() })
    m:close()
  end)
end)

-- Seconds per multi:step while a 429's pause holds back n queued requests (fewer than `concurrency` run,
-- so the step looks for the next request that can start), the best of a few runs.
local function paused_step_time(ud, n)
  local best
  for _ = 1, 3 do
    local m = ud:multi(2)
    for _ = 1, n do m:add(ud:request("bat-429")) end
    local running, wait
    for _ = 1, 2000 do
      _, wait = m:step(0.01)
      running = m:counts()
      if running == 0 and wait and wait > 30 then break end
    end
    assert.are.same({ 0, n }, { m:counts() })
    assert.is_true(wait > 30, "the 429's retry-after holds every start back")
    local t0 = core.now()
    for _ = 1, 2000 do m:step(0) end
    local t = (core.now() - t0) / 2000
    m:close()
    if not best or t < best then best = t end
  end
  return best
end

describe("a step", function()
  local server
  setup(function()
    server = fake.start({ scenario = { api_key = "sk-scale", batches = {
      ["bat-429"] = { steps = { { status = 429, headers = { ["retry-after"] = "60" } } } } } } })
  end)
  teardown(function() if server then server:stop() end end)

  it("costs about the same with 50,000 requests queued as with 2,000, during a 429's pause", function()
    local ud = core.new({ api_key = "sk-scale", base_url = server.url, max_retries = 1 })
    finally(function() ud:close() end)
    local small, large = paused_step_time(ud, 2000), paused_step_time(ud, 50000)
    local ratio = large / small
    -- A walk of the queue on every step makes this about 20 or more; flat is about 1.
    assert.is_true(ratio < 4, string.format("per-step cost ratio %.2f (%.1f us vs %.1f us)", ratio, large * 1e6,
      small * 1e6))
  end)
end)
