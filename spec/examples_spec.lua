-- The plain Lua and coroutine examples run as shipped against the fake server (the Neovim and nginx
-- ones run in spec/nvim_spec.lua and spec/ngx_spec.lua); the README's walk-through "From a directory
-- to parsed markdown" is examples/markdown.lua and runs as written against `llamacloud fake-server`.
local fake = require("spec.support.fake")
local child = require("spec.support.child")
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

describe("the README's walk-through", function()
  local EXPECTED = table.concat({
    "  dfl%-demo%-0001: COMPLETED\n", "  dfl%-demo%-0002: COMPLETED\n",
    "2 completed, 1 failed, 0 cancelled, 1 not mapped\n",
    "## dfl%-demo%-0001 %(report%.pdf%)\n# Report\n\nPage one%.\nPage two%.\n",
    "## dfl%-demo%-0002 %(slides%.pdf%)\n# Slides\n%(page 2 could not be parsed: could not read page%)\n",
    "## dfl%-demo%-0003: FAILED %(document is password protected%)\n",
    "## dfl%-demo%-0004: MAPPING_FAILED %(unsupported file type%)\n$",
  })

  local function run_markdown(url)
    local _, out = util.sh(string.format(
      "LLAMA_CLOUD_API_KEY=demo LLAMA_CLOUD_BASE_URL=%s LUA_PATH=%q LUA_CPATH=%q %s examples/markdown.lua 2>&1",
      url, package.path, package.cpath, fake.interpreter()))
    return out
  end

  it("shows the Lua of examples/markdown.lua, from its require to its end", function()
    local readme = util.read_file("README.md")
    local section = assert(readme:match("\n### From a directory to parsed markdown\n(.-)\n## "), "no walk-through")
    local shown = assert(section:match("```lua\n(.-)```"), "no Lua block")
    local file = util.read_file("examples/markdown.lua")
    assert.are.equal(file:sub((file:find('local llamacloud = require("llamacloud")', 1, true))), shown)
    -- and the commands it gives are the ones the example's header gives
    assert.truthy(section:find("lua5.4 bin/llamacloud fake-server --port 8080 &", 1, true))
    assert.truthy(section:find("lua5.4 examples/markdown.lua", 1, true))
  end)

  it("runs as written against `llamacloud fake-server` and its built-in scenario", function()
    local line, stop = child.cli_fake_server()
    finally(stop)
    local url = assert(line:match("^fake%-server listening on (http://127%.0%.0%.1:%d+)$"), line)
    local out = run_markdown(url)
    assert.matches("^created bat%-new%-000001 %(PENDING%)\n", out)
    assert.matches(EXPECTED, out)
  end)

  it("finds the batch with each when the create's answer was lost, creating no second one", function()
    local scenario = {}
    for k, v in pairs(require("llamacloud.fake_server").DEFAULT_SCENARIO) do scenario[k] = v end
    scenario.create = { steps = { { fault = "drop" }, {} } }
    local server = fake.start({ scenario = scenario })
    finally(function() server:stop() end)
    local out = run_markdown(server.url)
    assert.matches("^create: APIConnectionError[^\n]*; looking for the batch before creating again\n"
      .. "created bat%-new%-000001 %(PENDING%)\n", out)
    assert.matches(EXPECTED, out)
    local posts = 0
    for _, r in ipairs(server:requests()) do
      if r.method == "POST" and r.path == "/api/v2/batches" then posts = posts + 1 end
    end
    assert.are.equal(1, posts)
  end)
end)
