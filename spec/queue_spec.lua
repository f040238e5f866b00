-- The multi's queue: added requests start in order, retries wait for their time apart from them, and a
-- queued retry whose deadline passes during a 429's pause ends without being sent (src/multi.c).
local child = require("spec.support.child")
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

  it("never sends a request whose deadline passed, even one added while the queue is walked", function()
    -- 300 retries wait out a 429's pause; their deadline passes inside it, so one step walks them all
    -- and builds 300 errors. A finalizer the collector runs in that step adds b, whose deadline is
    -- long gone. Before, when that happened during the walk of the retries, b was sent later.
    local batches = { ["bat-429"] = { steps = { { status = 429, headers = { ["retry-after-ms"] = "1000" } } } },
      ["bat-b"] = { steps = { "COMPLETED" } } }
    for i = 1, 300 do batches["bat-" .. i] = { steps = { { status = 503 }, "COMPLETED" } } end
    local ud = core.new({ api_key = KEY, base_url = server.url, max_retries = 1 })
    finally(function() ud:close() end)
    -- a collector that never rests, so the finalizer runs within the step on every interpreter
    local pause, stepmul = collectgarbage("setpause", 0), collectgarbage("setstepmul", 400)
    finally(function()
      collectgarbage("setpause", pause)
      collectgarbage("setstepmul", stepmul)
    end)
    local fired = 0
    for _ = 1, 4 do
      server:scenario({ api_key = KEY, batches = batches })
      local m = ud:multi(301)
      local reqs = { ud:request("bat-429") }
      local deadline = core.now() + 0.7
      for i = 1, 300 do reqs[i + 1] = ud:request("bat-" .. i, { deadline = deadline }) end
      for i = 1, 301 do m:add(reqs[i]) end
      local b = ud:request("bat-b", { deadline = -math.huge })
      local armed, added = false, false
      local garbage = child.garbage
      local function fin()
        if added then return end
        if armed then
          added = true
          m:add(b)
          return
        end
        garbage(fin)
      end
      garbage(fin)
      for _ = 1, 100000 do
        armed = core.now() >= deadline
        m:step(0.01)
        armed = false
        local running, queued = m:counts()
        if running + queued == 0 then break end
      end
      if added then
        fired = fired + 1
        local batch, err = b:result()
        assert.are.same({ "APITimeoutError", "the request's deadline passed before it was sent", 0 },
          { err and err.name or (batch and batch.status), err and err.message, b:attempts() })
      end
      m:close()
      if fired > 0 then break end
    end
    -- Whether the collector ran the finalizer inside that step depends on the heap the suite left; when
    -- it did not (fired == 0), b was never added, and nothing went out either.
    assert.are.equal(0, #server:requests("id=bat-b"))
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
