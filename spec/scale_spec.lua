-- The cost of multi:add, and of a step, does not grow with the number of requests in the multi (issue 9,
-- defect 8; the step: a review finding).
local core = require("llamacloud.core")
local fake = require("spec.support.fake")

-- Seconds that 50,000 adds take, made as 50,000 / n multis of n requests each (the requests are built
-- first, outside the timing): the same work and about the same time at every n when an add is O(1), so
-- a scheduler hiccup weighs alike on both sides. The best of five rounds.
local TOTAL = 50000
local function add_time(ud, n)
  local best
  for _ = 1, 5 do
    local t = 0
    for _ = 1, TOTAL / n do
      local m = ud:multi(4)
      local reqs = {}
      for i = 1, n do reqs[i] = ud:request("bat-" .. i) end
      local t0 = core.now()
      for i = 1, n do m:add(reqs[i]) end
      t = t + (core.now() - t0)
      m:close()
    end
    if not best or t < best then best = t end
  end
  return best
end

describe("multi:add", function()
  it("costs about the same per request in a multi of 50,000 as in multis of 2,000", function()
    local ud = core.new({ api_key = "sk-scale", base_url = "http://127.0.0.1:9" })
    finally(function() ud:close() end)
    local small, large = add_time(ud, 2000), add_time(ud, TOTAL)
    local ratio = large / small
    -- A walk to the tail makes this about 25 (and the 50,000 adds take seconds); flat is about 1.
    assert.is_true(ratio < 5, string.format("per-add cost ratio %.2f (%.4f s vs %.4f s)", ratio, large, small))
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
    -- A walk of the queue on every step made this about 150; flat is about 1. The bound is loose: a
    -- step costs well under a microsecond, so a loaded machine moves the ratio a lot.
    assert.is_true(ratio < 10, string.format("per-step cost ratio %.2f (%.1f us vs %.1f us)", ratio, large * 1e6,
      small * 1e6))
  end)
end)
