-- The multi's queue: added requests start in order, retries wait for their time apart from them, and a
-- queued retry whose deadline passes during a 429's pause ends without being sent (src/multi.c).
local fake = require("spec.support.fake")
local core = require("llamacloud.core")

local KEY = "sk-queue-spec-key"

-- Steps m until every request in reqs is done (a bound on steps, not on time).
local function drive(m, reqs)
  for _ = 1, 100000 do
    local all = true
    for _, r in ipairs(reqs) do all = all and r:done() end
    if all then return end
    local _, wait = m:step(0)
    m:step(wait and math.min(wait, 0.05) or 0.01)
  end
  error("requests did not finish")
end

describe("the multi's queue", function()
  local server
  setup(function() server = fake.start({ scenario = { api_key = KEY, batches = {} } }) end)
  teardown(function() if server then server:stop() end end)

  it("retries every request once it is due, among requests still waiting for a first attempt", function()
    local batches = {}
    for i = 1, 60 do batches["bat-" .. i] = { steps = { { status = 503 }, "COMPLETED" } } end
    server:scenario({ api_key = KEY, batches = batches })
    local ud = core.new({ api_key = KEY, base_url = server.url, max_retries = 2 })
    finally(function() ud:close() end)
    local m = ud:multi(4)
    local reqs = {}
    for i = 1, 60 do
      reqs[i] = ud:request("bat-" .. i)
      m:add(reqs[i])
    end
    drive(m, reqs)
    for i = 1, 60 do
      local b, err = reqs[i]:result()
      assert.are.same({ "bat-" .. i, "COMPLETED", 2 }, { b and b.id, b and b.status or tostring(err),
        reqs[i]:attempts() })
    end
    assert.are.same({ 0, 0 }, { m:counts() })
    m:close()
  end)

  it("cancels a request waiting to retry, and the others still retry", function()
    local batches = {}
    for i = 1, 6 do batches["bat-" .. i] = { steps = { { status = 503 }, "COMPLETED" } } end
    server:scenario({ api_key = KEY, batches = batches })
    local ud = core.new({ api_key = KEY, base_url = server.url, max_retries = 1 })
    finally(function() ud:close() end)
    local m = ud:multi(6)
    local reqs = {}
    for i = 1, 6 do
      reqs[i] = ud:request("bat-" .. i)
      m:add(reqs[i])
    end
    for _ = 1, 2000 do -- until every first attempt has ended: all six wait to retry
      m:step(0.01)
      local running, queued = m:counts()
      if running == 0 and queued == 6 then break end
    end
    assert.are.same({ 0, 6 }, { m:counts() })
    reqs[1]:cancel()
    reqs[6]:close()
    reqs[3]:cancel()
    assert.are.same({ 0, 3 }, { m:counts() })
    drive(m, { reqs[2], reqs[4], reqs[5] })
    for _, i in ipairs({ 1, 3, 6 }) do
      local _, err = reqs[i]:result()
      assert.are.same({ "APIConnectionError", "request cancelled" }, { err.name, err.message })
    end
    for _, i in ipairs({ 2, 4, 5 }) do
      local b = reqs[i]:result()
      assert.are.same({ "COMPLETED", 2 }, { b and b.status, reqs[i]:attempts() })
    end
    m:close()
  end)

  it("ends queued retries whose deadline passes during a 429's pause, and keeps the rest", function()
    local batches = { ["bat-429"] = { steps = { { status = 429, headers = { ["retry-after"] = "2" } } } } }
    for i = 1, 10 do batches["bat-" .. i] = { steps = { { status = 503 }, "COMPLETED" } } end
    server:scenario({ api_key = KEY, batches = batches })
    local ud = core.new({ api_key = KEY, base_url = server.url, max_retries = 1 })
    finally(function() ud:close() end)
    local m = ud:multi(11)
    local slow = ud:request("bat-429")
    m:add(slow)
    local reqs = { slow }
    local deadline = core.now() + 1.0
    for i = 1, 10 do
      -- odd ones have a deadline inside the pause, even ones none
      reqs[i + 1] = ud:request("bat-" .. i, i % 2 == 1 and { deadline = deadline } or nil)
      m:add(reqs[i + 1])
    end
    drive(m, reqs)
    local _, err = slow:result()
    assert.are.same({ "RateLimitError", 2 }, { err and err.name, slow:attempts() })
    for i = 1, 10 do
      local b, e = reqs[i + 1]:result()
      if i % 2 == 1 then
        assert.are.same({ "APITimeoutError", "the request's deadline passed before it was sent", 1 },
          { e and e.name, e and e.message, reqs[i + 1]:attempts() })
      else
        assert.are.same({ "COMPLETED", 2 }, { b and b.status or tostring(e), reqs[i + 1]:attempts() })
      end
    end
    assert.are.same({ 0, 0 }, { m:counts() })
    m:close()
  end)
end)
