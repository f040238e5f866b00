-- The plain Lua and coroutine examples run as shipped against the fake server (the Neovim and nginx
-- ones run in spec/nvim_spec.lua and spec/ngx_spec.lua).
local fake = require("spec.support.fake")
local util = require("spec.support.util")

local SCENARIO = {
  batches = {
    ["bat-done"] = { steps = { "COMPLETED" } },
    ["bat-demo"] = { steps = { "PENDING", "RUNNING", "COMPLETED" } },
    ["bat-failed"] = { steps = { "FAILED" } },
  },
}

describe("examples", function()
  local server

  setup(function() server = fake.start({ scenario = SCENARIO }) end)
  teardown(function() if server then server:stop() end end)

  local function run_example(name)
    server:reset()
    local _, out = util.sh(string.format(
      "LLAMA_CLOUD_API_KEY=demo LLAMA_CLOUD_BASE_URL=%s LUA_PATH=%q LUA_CPATH=%q %s %s",
      server.url, package.path, package.cpath, fake.interpreter(), "examples/" .. name))
    return out
  end

  it("examples/plain.lua gets, waits and gets several", function()
    local out = run_example("plain.lua")
    assert.truthy(out:match("get: bat%-done is COMPLETED\n"), out)
    assert.truthy(out:match("  poll 3 after [%d.]+ s: COMPLETED\nwait: COMPLETED, 0 jobs, 0 failed, 0 unmapped\n"), out)
    assert.truthy(out:match("get_many%[1%]: COMPLETED\nget_many%[2%]: FAILED\nget_many%[3%]: NotFoundError"), out)
  end)

  it("examples/coroutines.lua waits for three batches while its ticker runs", function()
    local out = run_example("coroutines.lua")
    assert.truthy(out:match("bat%-demo: COMPLETED"), out)
    assert.truthy(out:match("bat%-done: COMPLETED"), out)
    assert.truthy(out:match("bat%-failed: PollingError"), out)
    assert.truthy(tonumber(out:match("ticker ran (%d+) times")) > 1, out)
  end)

  it("examples/luv.lua runs on a luv loop", function()
    local has_luv = pcall(require, "luv")
    if not has_luv then return pending("lua-luv is not installed for " .. _VERSION) end
    local out = run_example("luv.lua")
    assert.truthy(out:match("wait bat%-demo: COMPLETED"), out)
    assert.truthy(out:match("get_many: COMPLETED\nget_many: NotFoundError"), out)
    assert.truthy(tonumber(out:match("ticked (%d+) times")) > 1, out)
  end)
end)
