-- The workflow calls in every Lua host but Neovim and OpenResty (spec/nvim_spec.lua, spec/ngx_spec.lua):
-- coroutines, a host that only steps (no run of its own), and the module-level default client.
local fake = require("spec.support.fake")
local child = require("spec.support.child")
local cohost = require("llamacloud.host.coroutine")
local core = require("llamacloud.core")

local KEY = "sk-hosts-spec-key"

local SCENARIO = {
  api_key = KEY,
  created = { steps = { "PENDING", "COMPLETED" } },
  directories = { ["dir-h"] = { files = {
    { id = "dfl-1", job = { steps = { "RUNNING", "COMPLETED" } } },
    { id = "dfl-2", mapping_error = "bad" },
  } } },
  batches = { ["bat-run"] = { steps = { "RUNNING" } }, ["bat-run2"] = { steps = { "RUNNING" } } },
}

local PARAMS = { source_directory_id = "dir-h", config = { job = { type = "parse_v2", configuration_id = "c" } } }

-- The whole workflow with one client; returns a line summing it up.
-- PUC 5.1 cannot yield inside a generic for: there coroutine mode refuses each.
local FOR_YIELDS = not (_VERSION == "Lua 5.1" and not jit)

local function workflow(client, cancel_id, no_each)
  local out = {}
  local batch, err = client.batches.create(PARAMS)
  out[#out + 1] = batch and batch.id or tostring(err)
  local page = assert(client.batches.list({ page_size = 1 }))
  out[#out + 1] = #page.items
  local n = 0
  if not no_each then
    for b in client.batches.each({ page_size = 1 }) do if b then n = n + 1 end end
  end
  out[#out + 1] = n
  local report, ferr = client.batches.wait_files(batch.id, { interval = 0.02 })
  out[#out + 1] = report and (report.counts.COMPLETED .. "/" .. report.counts.MAPPING_FAILED) or tostring(ferr)
  local job = assert(client.jobs.get(report.files[1].job_reference))
  out[#out + 1] = client.jobs.status(job)
  local c = assert(client.batches.cancel(cancel_id or "bat-run"))
  out[#out + 1] = c.id
  return table.concat(out, " ")
end

describe("the workflow calls in each host", function()
  local server

  setup(function() server = fake.start({ scenario = SCENARIO }) end)
  teardown(function() if server then server:stop() end end)
  before_each(function() server:reset() end)

  it("run in plain Lua", function()
    local client = server:client_closed_by(finally, { api_key = KEY })
    assert.are.equal("bat-new-000001 1 3 1/1 COMPLETED bat-run", workflow(client))
  end)

  it("run in coroutines: two workflows on one scheduler, each yielding while it waits", function()
    local client = cohost.new(server:options({ api_key = KEY }))
    finally(function() client.close() end)
    local results, yields = {}, 0
    local cos = {}
    for i = 1, 2 do
      cos[i] = coroutine.create(function() results[i] = workflow(client, i == 1 and "bat-run" or "bat-run2", not FOR_YIELDS) end)
    end
    local live = 2
    while live > 0 do
      live = 0
      for i = 1, 2 do
        if coroutine.status(cos[i]) ~= "dead" then
          local ok, s = coroutine.resume(cos[i])
          assert(ok, s)
          if coroutine.status(cos[i]) ~= "dead" then
            live = live + 1
            yields = yields + 1
            if type(s) == "number" and s > 0 then core.sleep(math.min(s, 0.005)) end
          end
        end
      end
    end
    -- which coroutine creates first, and so how many batches each lists, varies
    local ids = {}
    for i = 1, 2 do
      local id, rest = results[i]:match("^(%S+) %d+ %d+ (.*)$")
      ids[#ids + 1] = id
      assert.are.equal("1/1 COMPLETED " .. (i == 1 and "bat-run" or "bat-run2"), rest)
    end
    table.sort(ids)
    assert.are.same({ "bat-new-000001", "bat-new-000002" }, ids)
    assert.is_true(yields > 2)
  end)

  it("PUC 5.1: each refuses coroutine mode at the call, naming list as the way", function()
    if FOR_YIELDS then return end
    local client = cohost.new(server:options({ api_key = KEY }))
    finally(function() client.close() end)
    local co = coroutine.create(function() return client.batches.each({}) end)
    local ok, msg = coroutine.resume(co)
    assert.is_false(ok)
    assert.matches("batches%.each cannot yield inside a generic for on PUC Lua 5%.1", msg)
    assert.are.equal(0, #server:requests())
  end)

  it("refuse to run outside a coroutine in coroutine mode, before sending", function()
    local client = cohost.new(server:options({ api_key = KEY }))
    finally(function() client.close() end)
    for _, call in ipairs({
      function() return client.batches.create(PARAMS) end,
      function() return client.batches.list({}) end,
      function() return client.batches.each({}) end,
      function() return client.batches.cancel("bat-run") end,
      function() return client.jobs.get({ type = "parse_v2", id = "x" }) end,
      function() return client.batches.wait_files("bat-run") end,
    }) do
      local ok, msg = pcall(call)
      assert.is_false(ok)
      assert.matches("coroutine mode", msg)
    end
    assert.are.equal(0, #server:requests())
  end)

  it("run on a host that gives only now, sleep and step, reusing one connection", function()
    local host = {
      now = core.now,
      sleep = core.sleep,
      step = function(multi, max_wait) return multi:step(max_wait) end,
    }
    local client = require("llamacloud").new(server:options({ api_key = KEY }), host)
    finally(function() client.close() end)
    assert.are.equal("bat-new-000001 1 3 1/1 COMPLETED bat-run", workflow(client))
    -- the single requests (all but wait_files' job polls) shared a connection
    local conns = {}
    for _, r in ipairs(server:requests()) do
      if r.job_id == fake.null then conns[r.conn] = true end
    end
    local n = 0
    for _ in pairs(conns) do n = n + 1 end
    assert.are.equal(1, n)
  end)

  it("run at module level on the default client, built from the environment", function()
    local res = child.run({ LLAMA_CLOUD_API_KEY = KEY, LLAMA_CLOUD_BASE_URL = server.url }, [[
      local llamacloud = require("llamacloud")
      local b = assert(llamacloud.batches.create({ source_directory_id = "dir-h",
        config = { job = { type = "parse_v2", configuration_id = "c" } } }))
      local page = assert(llamacloud.batches.list({ page_size = 5 }))
      local n = 0
      for x in llamacloud.batches.each({}) do if x then n = n + 1 end end
      local report = assert(llamacloud.batches.wait_files(b.id, { interval = 0.02 }))
      local job = assert(llamacloud.jobs.get(report.files[1].job_reference))
      local c = assert(llamacloud.batches.cancel("bat-run"))
      return table.concat({ b.id, #page.items, n, report.counts.COMPLETED, llamacloud.jobs.status(job), c.id }, " ")
    ]])
    assert.are.same({ ok = true, value = "bat-new-000001 3 3 1 COMPLETED bat-run" }, res)
  end)
end)
