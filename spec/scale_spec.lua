-- The cost of multi:add does not grow with the number of requests already in the multi (issue 9, defect 8).
local core = require("llamacloud.core")

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
