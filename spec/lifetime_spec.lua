-- C handle lifetimes: what is collected, closed or left in flight is freed, and its connections closed;
-- a raising on_poll leaves the client working. make asan / make valgrind prove nothing leaks meanwhile.
local fake = require("spec.support.fake")
local util = require("spec.support.util")
local core = require("llamacloud.core")

local KEY = "sk-lifetime-spec-key"
-- A response that takes about 15 s, writing a byte every 50 ms.
local SLOW = { fault = "trickle", interval = 0.05 }

-- The sockets open in this process (connections, and libcurl's wakeup pairs), and a listing for a
-- failure message.
local function open_fds()
  return util.open_fds("socket:")
end

-- A multi holds its requests and a request its client, so each is finalized a cycle after the one
-- holding it: a few full cycles free the whole chain.
local function collect()
  for _ = 1, 6 do collectgarbage() end
end

describe("handle lifetime", function()
  local server

  local function scenario(batches)
    server:scenario({ api_key = KEY, batches = batches })
  end
  local DEFAULTS = { api_key = KEY, max_retries = 0, timeout = 30 }
  local function new_ud(opts)
    return core.new(server:options(DEFAULTS, opts))
  end
  local function client(opts)
    return server:client_closed_by(finally, DEFAULTS, opts)
  end
  -- Waits (asserting no time) until the server sees no connection open, and returns its stats. The slow
-- batch trickles its body, so the server notices a client's close within one interval.
  local function until_closed()
    return server:stats_when(function(st) return st.connections_open == 0 end, 500)
  end
  -- Starts n slow requests on a new multi of ud; returns the multi and the requests, all in flight.
  local function in_flight(ud, n)
    local m = ud:multi(n)
    local reqs = {}
    for i = 1, n do
      reqs[i] = ud:request("bat-slow")
      m:add(reqs[i])
    end
    m:step(0)
    for _ = 1, 500 do
      if server:stats().connections_open == n then break end
      m:step(0.01)
    end
    assert.are.equal(n, (m:counts()))
    return m, reqs
  end

  setup(function() server = fake.start({ scenario = { api_key = KEY, batches = {} } }) end)
  teardown(function() if server then server:stop() end end)
  before_each(function()
    scenario({ ["bat-slow"] = { steps = { SLOW } }, ["bat-ok"] = { steps = { "COMPLETED" } },
               ["bat-run"] = { steps = { "RUNNING", "RUNNING", "COMPLETED" } } })
  end)

  describe("collection with transfers in flight", function()
    it("frees a client, its multi and their requests, closing every connection", function()
      collect()
      local fds0, list0 = open_fds()
      local weak = setmetatable({}, { __mode = "v" })
      do
        local ud = new_ud()
        local m, reqs = in_flight(ud, 4)
        weak.ud, weak.m, weak.r1, weak.r4 = ud, m, reqs[1], reqs[4]
        assert.is_true(open_fds() >= fds0 + 4, "the four connections are not counted")
      end
      collect()
      assert.is_nil(weak.ud)
      assert.is_nil(weak.m)
      assert.is_nil(weak.r1)
      assert.is_nil(weak.r4)
      local st = until_closed()
      assert.are.equal(0, st.connections_open)
      assert.are.equal(4, st.connections_closed_by_client)
      local fds1, list1 = open_fds()
      assert.are.equal(fds0, fds1, "before:\n" .. list0 .. "after:\n" .. list1)
    end)

    it("frees a multi dropped in flight while its client lives on and still works", function()
      local ud = new_ud()
      local weak = setmetatable({}, { __mode = "v" })
      do
        local m, reqs = in_flight(ud, 3)
        weak.m, weak.r = m, reqs[2]
      end
      collect()
      assert.is_nil(weak.m)
      assert.is_nil(weak.r)
      assert.are.equal(0, until_closed().connections_open)
      local batch, err = ud:get("bat-ok")
      assert.is_nil(err)
      assert.are.equal("COMPLETED", batch.status)
      ud:close()
    end)

    it("ends a request kept after its multi was closed: done, and cancelled", function()
      local ud = new_ud()
      local m, reqs = in_flight(ud, 2)
      m:close()
      for _, r in ipairs(reqs) do
        assert.is_true(r:done())
        local batch, err = r:result()
        assert.is_nil(batch)
        assert.are.equal("APIConnectionError", err.name)
      end
      assert.are.equal(0, until_closed().connections_open)
      ud:close()
    end)

    it("frees requests queued behind concurrency and never started", function()
      local weak = setmetatable({}, { __mode = "v" })
      do
        local ud = new_ud()
        local m = ud:multi(1)
        for i = 1, 5 do
          local r = ud:request("bat-slow")
          m:add(r)
          weak[i] = r
        end
        m:step(0)
        local running, queued = m:counts()
        assert.are.same({ 1, 4 }, { running, queued })
      end
      collect()
      for i = 1, 5 do assert.is_nil(weak[i]) end
      assert.are.equal(0, until_closed().connections_open)
    end)
  end)

  describe("a client closed while a multi of it has transfers in flight", function()
    it("lets the multi end them as errors, never touching what the client freed", function()
      local ud = new_ud({ timeout = 0.5 })
      scenario({ ["bat-slow"] = { steps = { { delay = 0.2 } } } })
      local m = ud:multi(2)
      local reqs = {}
      for i = 1, 4 do
        reqs[i] = ud:request("bat-slow")
        m:add(reqs[i])
      end
      m:step(0)
      ud:close()
      local done, guard = 0, 0
      while done < 4 and guard < 2000 do
        local finished = m:step(0.01)
        done = done + (finished and #finished or 0)
        guard = guard + 1
      end
      assert.are.equal(4, done)
      for i = 1, 4 do
        local batch, err = reqs[i]:result()
        assert.is_true(batch ~= nil or type(err) == "table", "request " .. i .. " has no outcome")
      end
      m:close()
    end)
  end)

  describe("on_poll", function()
    it("an error raised in wait's on_poll propagates unchanged, and the client still works", function()
      local c = client()
      local boom = setmetatable({}, { __tostring = function() return "boom" end })
      local ok, e = pcall(c.batches.wait, "bat-run", { interval = 0.01, on_poll = function() error(boom) end })
      assert.is_false(ok)
      assert.are.equal(boom, e)
      local batch, err = c.batches.get("bat-ok")
      assert.is_nil(err)
      assert.are.equal("COMPLETED", batch.status)
    end)

    it("an error raised in wait_many's on_poll propagates, and the transfers it left are freed", function()
      local c = client()
      scenario({ ["bat-slow"] = { steps = { SLOW } }, ["bat-ok"] = { steps = { "COMPLETED" } },
                 ["bat-run"] = { steps = { "RUNNING", "COMPLETED" } } })
      -- in a frame of its own, gone before the collection: no slot of this one can still hold the multi
      local function run()
        return pcall(c.batches.wait_many, { "bat-slow", "bat-slow", "bat-run" },
          { interval = 0.01, on_poll = function() error("stop here", 0) end })
      end
      local ok, e = run()
      assert.is_false(ok)
      assert.are.equal("stop here", e)
      collect()
      assert.are.equal(0, until_closed().connections_open)
      local batch, err = c.batches.get("bat-ok")
      assert.is_nil(err)
      assert.are.equal("COMPLETED", batch.status)
    end)

    it("can call get from inside wait's on_poll, and the wait goes on", function()
      local c = client()
      local inner = {}
      local batch, err = c.batches.wait("bat-run", { interval = 0.01, on_poll = function()
        local b, e = c.batches.get("bat-ok")
        inner[#inner + 1] = b and b.status or e.name
      end })
      assert.is_nil(err)
      assert.are.equal("COMPLETED", batch.status)
      assert.are.same({ "COMPLETED", "COMPLETED", "COMPLETED" }, inner)
    end)

    it("can call get from inside wait_many's on_poll while its own transfers are in flight", function()
      local c = client()
      local inner = {}
      local out = c.batches.wait_many({ "bat-run", "bat-ok" }, { interval = 0.01, on_poll = function()
        local b, e = c.batches.get("bat-ok")
        inner[#inner + 1] = b and b.status or e.name
      end })
      assert.are.equal("COMPLETED", out[1].batch.status)
      assert.are.equal("COMPLETED", out[2].batch.status)
      assert.is_true(#inner >= 2)
      for _, s in ipairs(inner) do assert.are.equal("COMPLETED", s) end
    end)
  end)

  describe("close", function()
    it("can be called twice on a client, a multi and a request", function()
      local ud = new_ud()
      local m = ud:multi()
      local r = ud:request("bat-ok")
      m:close()
      m:close()
      r:close()
      r:close()
      ud:close()
      ud:close()
      local c = client()
      c.close()
      c.close()
    end)

    local CLIENT_METHODS = {
      { "get", function(ud) return ud:get("bat-ok") end },
      { "request", function(ud) return ud:request("bat-ok") end },
      { "multi", function(ud) return ud:multi() end },
      { "config", function(ud) return ud:config() end },
    }
    for _, row in ipairs(CLIENT_METHODS) do
      it("makes client:" .. row[1] .. " raise once closed", function()
        local ud = new_ud()
        ud:close()
        local ok, e = pcall(row[2], ud)
        assert.is_false(ok)
        assert.truthy(tostring(e):find("llamacloud: the client is closed", 1, true), tostring(e))
      end)
    end

    it("makes batches.get on a closed llamacloud client raise, sending nothing", function()
      server:reset()
      local c = client()
      c.close()
      local ok, e = pcall(c.batches.get, "bat-ok")
      assert.is_false(ok)
      assert.truthy(tostring(e):find("closed", 1, true), tostring(e))
      assert.are.equal(0, #server:requests())
    end)

    local MULTI_METHODS = {
      { "add", function(m, ud) return m:add(ud:request("bat-ok")) end },
      { "step", function(m) return m:step(0) end },
      { "counts", function(m) return m:counts() end },
    }
    for _, row in ipairs(MULTI_METHODS) do
      it("makes multi:" .. row[1] .. " raise once closed", function()
        local ud = new_ud()
        local m = ud:multi()
        m:close()
        local ok, e = pcall(row[2], m, ud)
        ud:close()
        assert.is_false(ok)
        assert.truthy(tostring(e):find("llamacloud: the multi is closed", 1, true), tostring(e))
      end)
    end
  end)

  describe("the Lua state closing with transfers in flight", function()
    -- The child starts transfers (running, queued, on the client's own multi and on others) and exits
    -- through lua_close. Under make asan it inherits the sanitizer with leaks made fatal; under make
    -- valgrind it runs in valgrind itself. Plainly run, it shows lua_close neither crashes nor hangs.
    local CHILD = [[
package.path = %q
package.cpath = %q
local core = require("llamacloud.core")
local ud = core.new({ api_key = %q, base_url = %q, timeout = 30, max_retries = 0 })
local m = ud:multi(2)
for i = 1, 5 do m:add(ud:request("bat-slow", { headers = { ["X-N"] = tostring(i) } })) end
local m2 = ud:multi(4)
m2:add(ud:request("bat-slow"))
local spare = ud:request("bat-ok")
for _ = 1, 200 do
  m:step(0.01)
  m2:step(0)
  if (m:counts()) == 2 and (m2:counts()) == 1 then break end
end
local running, queued = m:counts()
io.write("running ", running, " queued ", queued, " second ", (m2:counts()), "\n")
io.stdout:flush()
-- os.exit closes the state on 5.2+ and LuaJIT; PUC 5.1 has no such flag, but its lua.c closes the
-- state when the chunk ends.
if _VERSION ~= "Lua 5.1" or jit then os.exit(0, true) end
]]

    it("frees everything and exits cleanly", function()
      local code = string.format(CHILD, package.path, package.cpath, KEY, server.url)
      local prefix = ""
      local asan = os.getenv("ASAN_OPTIONS")
      if asan and asan ~= "" then
        prefix = "ASAN_OPTIONS=" .. util.quote(asan .. ":exitcode=23") .. " "
      end
      local vg = os.getenv("LLAMACLOUD_SPEC_VALGRIND")
      if vg and vg ~= "" then prefix = prefix .. vg .. " --log-fd=1 " end
      local exit, out = util.sh(prefix .. util.quote(fake.interpreter()) .. " -e " .. util.quote(code))
      assert.truthy(out:find("running 2 queued 3 second 1", 1, true), out)
      assert.are.equal(0, exit, out)
      assert.are.equal(0, until_closed().connections_open)
    end)
  end)
end)
