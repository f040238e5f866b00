local util = require("spec.support.util")

local ROCKSPEC = "rockspec/llamacloud-scm-1.rockspec"

-- Loads the rockspec the way LuaRocks does: a chunk that sets globals.
local function load_rockspec()
  local env = {}
  local chunk
  if setfenv then
    chunk = assert(loadstring(util.read_file(ROCKSPEC)))
    setfenv(chunk, env)
  else
    chunk = assert(load(util.read_file(ROCKSPEC), ROCKSPEC, "t", env))
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
end)
