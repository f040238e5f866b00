local util = require("spec.support.util")

local ROCKSPEC = "rockspec/llamacloud-scm-1.rockspec"
local VERSION = util.read_file("VERSION"):gsub("%s+$", "")
local RELEASE_ROCKSPEC = "rockspec/llamacloud-" .. VERSION .. "-1.rockspec"

-- Loads a rockspec the way LuaRocks does: a chunk that sets globals.
local function load_rockspec(path)
  path = path or ROCKSPEC
  local text = assert(util.read_file(path), path .. " is missing")
  local env = {}
  local chunk
  if setfenv then
    chunk = assert(loadstring(text))
    setfenv(chunk, env)
  else
    chunk = assert(load(text, path, "t", env))
  end
  chunk()
  return env
end

local function lua_files(dir, out)
  local p = io.popen("find " .. dir .. " -name '*.lua' | sort")
  for path in p:lines() do out[#out + 1] = path end
  p:close()
  return out
end

describe("packaging", function()
  local version = util.read_file("VERSION"):gsub("%s+$", "")

  it("has one version: the VERSION file, the C module and the rockspec's define agree", function()
    local spec = load_rockspec()
    local defines = spec.build.modules["llamacloud.core"].defines
    assert.are.same({ 'LC_VERSION="' .. version .. '"' }, defines)
    assert.are.equal(version, require("llamacloud").VERSION)
  end)

  it("installs every Lua module of lua/llamacloud under its module name", function()
    local modules = load_rockspec().build.modules
    for _, path in ipairs(lua_files("lua/llamacloud", {})) do
      local name = path:gsub("^lua/", ""):gsub("/init%.lua$", ""):gsub("%.lua$", ""):gsub("/", ".")
      assert.are.equal(path, modules[name], "module " .. name .. " is not in the rockspec")
    end
  end)

  it("installs the command line", function()
    assert.are.same({ llamacloud = "bin/llamacloud" }, load_rockspec().build.install.bin)
  end)

  it("declares the rocks it needs besides Lua: lua-cjson and luasocket", function()
    assert.are.same({ "lua >= 5.1, < 5.5", "lua-cjson", "luasocket" }, load_rockspec().dependencies)
  end)

  it("installs the editor types and the vimdoc into the rock's folder", function()
    assert.are.same({ "doc", "types" }, load_rockspec().build.copy_directories)
    assert.is_truthy(util.read_file("types/llamacloud.lua"))
    assert.is_truthy(util.read_file("doc/llamacloud.txt"))
  end)

  it("runs the suite under `luarocks test` with busted, the checkout's Lua first", function()
    local test = load_rockspec().test
    assert.are.equal("busted", test.type)
    assert.are.equal("--lpath=lua/?.lua;lua/?/init.lua", test.flags[1])
  end)

  it("has a rockspec for VERSION that differs from scm-1 only in version and source", function()
    assert.is_truthy(util.read_file(RELEASE_ROCKSPEC), RELEASE_ROCKSPEC .. " is missing: run `make release-rockspec`")
    local scm, release = load_rockspec(), load_rockspec(RELEASE_ROCKSPEC)
    assert.are.equal(VERSION .. "-1", release.version)
    assert.are.same({ url = scm.source.url, tag = "v" .. VERSION }, release.source)
    scm.version, scm.source, release.version, release.source = nil, nil, nil, nil
    assert.are.same(scm, release, RELEASE_ROCKSPEC .. " differs from scm-1: run `make release-rockspec`")
  end)

  it("keeps one rockspec per version: scm-1 and VERSION's", function()
    local p = io.popen("ls rockspec")
    local names = {}
    for name in p:lines() do names[#names + 1] = name end
    p:close()
    table.sort(names)
    local want = { "llamacloud-" .. VERSION .. "-1.rockspec", "llamacloud-scm-1.rockspec" }
    table.sort(want)
    assert.are.same(want, names)
  end)
end)
