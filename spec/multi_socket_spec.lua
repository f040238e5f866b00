-- The multi's event-loop interface (watch, sockets, socket_action) that the Neovim host drives.
local fake = require("spec.support.fake")
local core = require("llamacloud.core")

local DELAY = 0.5

describe("multi socket interface", function()
  local server, ud

  setup(function()
    server = fake.start({ scenario = { batches = {
      ["bat-done"] = { steps = { "COMPLETED" } },
      ["bat-slow"] = { steps = { { batch_status = "COMPLETED", delay = DELAY } } },
    } } })
  end)

  teardown(function()
    if server then server:stop() end
  end)

  before_each(function()
    ud = core.new({ api_key = "test-key", base_url = server.url })
  end)

  after_each(function()
    ud:close()
  end)

  -- A multi of ud, closed when the it ends.
  local function new_multi()
    local multi = ud:multi(4)
    finally(function() multi:close() end)
    return multi
  end

  -- A watched multi with a request for id added: both.
  local function watched(id)
    local multi = new_multi()
    multi:watch()
    local req = ud:request(id)
    multi:add(req)
    return multi, req
  end

  -- Acts on every socket libcurl wants (as if each were ready) and on its timers, until req ends.
  local function drive(multi, req)
    local seen, gone_all = {}, {}
    while not req:done() do
      local want, gone = multi:sockets()
      for i = 1, #gone do gone_all[#gone_all + 1] = gone[i] end
      for fd, ev in pairs(want) do
        seen[fd] = ev
        multi:socket_action(fd, ev)
      end
      multi:socket_action()
      core.sleep(0.002)
    end
    local _, gone = multi:sockets()
    for i = 1, #gone do gone_all[#gone_all + 1] = gone[i] end
    return seen, gone_all
  end

  it("lists the socket libcurl wants while a transfer runs and drops it when the multi is idle", function()
    local multi, req = watched("bat-done")
    local seen, gone = drive(multi, req)
    local fds = {}
    for fd, ev in pairs(seen) do
      fds[#fds + 1] = fd
      assert.truthy(ev == "r" or ev == "w" or ev == "rw", ev)
    end
    assert.are.equal(1, #fds)
    assert.are.same({ fds[1] }, gone)
    assert.are.same({}, (multi:sockets()))
    local batch, err = req:result()
    assert.are.same({ "bat-done", nil }, { batch.id, err })
  end)

  it("returns at once from socket_action while the server holds the response", function()
    local multi, req = watched("bat-slow")
    local started = core.now()
    local finished, next_wait = multi:socket_action()
    for _ = 1, 20 do
      local want = multi:sockets()
      for fd, ev in pairs(want) do finished, next_wait = multi:socket_action(fd, ev) end
    end
    assert.is_true(core.now() - started < 0.1 * DELAY)
    assert.are.same({ nil, "number" }, { finished, type(next_wait) })
    assert.is_false(req:done())
  end)

  it("reports nothing for a multi that was never watched", function()
    local multi = new_multi()
    local req = ud:request("bat-done")
    multi:add(req)
    while not req:done() do multi:step(0.01) end
    local want, gone = multi:sockets()
    assert.are.same({ {}, {} }, { want, gone })
  end)

  it("refuses watch once a transfer has started", function()
    local multi = new_multi()
    multi:add(ud:request("bat-slow"))
    multi:step(0)
    assert.has_error(function() multi:watch() end, "llamacloud: watch a multi before any transfer starts")
  end)

  it("raises on a socket_action fd that is not a file descriptor", function()
    local multi = new_multi()
    assert.has_error(function() multi:socket_action(-1) end)
    assert.has_error(function() multi:socket_action(1.5) end)
  end)
end)
