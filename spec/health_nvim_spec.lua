-- What a Neovim plugin author meets, in a real `nvim --headless --clean -u NONE`: :checkhealth llamacloud,
-- :help for every function, and a clone built with `make nvim` working from 'runtimepath' alone.
-- Needs nvim, git and build/jit (make LUA_VERSION=jit); run by make test-hosts.
local fake = require("spec.support.fake")
local luacats = require("spec.support.luacats")
local util = require("spec.support.util")

local ROOT = util.root()
local quote = util.quote
local KEY = "sk-health-spec-0123456789"

-- The classes whose functions doc/llamacloud.txt documents, and the tag prefix of each.
local DOC_TAGS = {
  { "llamacloud", "llamacloud." },
  { "llamacloud.Batches", "llamacloud.batches." },
  { "llamacloud.Jobs", "llamacloud.jobs." },
  { "llamacloud.Client", "llamacloud.client." },
  { "llamacloud.Handle", "llamacloud.handle." },
  { "llamacloud.Webhooks", "llamacloud.webhooks." },
  { "llamacloud.host", "llamacloud.host." },
  { "llamacloud.host.coroutine", "llamacloud.host.coroutine." },
}

local function tmpdir()
  local p = io.popen("mktemp -d")
  local dir = p:read("*l")
  p:close()
  return dir
end

-- Runs nvim with rtp+=rtp and the Lua in script; env is a list of VAR=value (LUA_PATH and LUA_CPATH
-- are always removed, so nothing comes from package.path or package.cpath). Returns the
-- "key<TAB>value" lines it printed as a table, and everything it printed.
local function nvim(rtp, script, env)
  local file = os.tmpname()
  util.write_file(file, script)
  local cmd = table.concat({
    "cd /tmp && env -u LUA_PATH -u LUA_CPATH -u LLAMA_CLOUD_API_KEY -u LLAMA_PARSE_API_KEY",
    "-u LLAMA_CLOUD_BASE_URL", table.concat(env or {}, " "),
    -- a hang guard only
    "timeout 60 nvim --headless --clean -u NONE -i NONE -n --cmd " .. quote("set rtp+=" .. rtp),
    "-c " .. quote("luafile " .. file), "-c 'qa!' </dev/null 2>&1; echo \"exit\t$?\"",
  }, " ")
  local p = assert(io.popen(cmd))
  local out = p:read("*a")
  p:close()
  os.remove(file)
  local r = {}
  for key, value in out:gmatch("([%w_]+)\t([^\n]*)") do r[key] = value end
  return r, out
end

-- The buffer :checkhealth llamacloud writes, printed as lines "health<TAB>..." .
local CHECKHEALTH = [[
vim.cmd("checkhealth llamacloud")
for _, line in ipairs(vim.api.nvim_buf_get_lines(0, 0, -1, false)) do io.stdout:write("health\t", line, "\n") end
]]

local function health_lines(out)
  local lines = {}
  for line in out:gmatch("health\t([^\n]*)") do lines[#lines + 1] = line end
  return table.concat(lines, "\n")
end

-- A plugin folder laid out as `make nvim` leaves a clone: lua/ with core.so in it (from build/jit).
local function plugin_dir(with_core)
  local dir = tmpdir()
  assert(os.execute("mkdir -p " .. quote(dir .. "/lua") .. " && cp -r " .. quote(ROOT .. "/lua/llamacloud") .. " "
    .. quote(dir .. "/lua/") .. " && rm -f " .. quote(dir .. "/lua/llamacloud/core.so")))
  if with_core then
    assert(os.execute("cp " .. quote(ROOT .. "/build/jit/llamacloud/core.so") .. " " .. quote(dir .. "/lua/llamacloud/")))
  end
  return dir
end

describe("nvim :checkhealth llamacloud", function()
  local dir

  setup(function()
    if not util.read_file(ROOT .. "/build/jit/llamacloud/core.so") then
      error("build/jit/llamacloud/core.so is missing: run `make LUA_VERSION=jit` first", 0)
    end
    dir = plugin_dir(true)
  end)

  teardown(function()
    if dir then os.execute("rm -rf " .. quote(dir)) end
  end)

  it("reports the module, its LuaJIT build, libcurl, TLS, the key set, the EU base URL and the nvim host", function()
    local core = require("llamacloud.core")
    local _, out = nvim(dir, CHECKHEALTH, { "LLAMA_CLOUD_API_KEY=" .. KEY,
                                           "LLAMA_CLOUD_BASE_URL=https://api.cloud.eu.llamaindex.ai/" })
    local text = health_lines(out)
    assert.truthy(text:find("OK: llamacloud " .. core.VERSION .. " loaded from " .. dir .. "/lua/llamacloud/core.so", 1, true), out)
    assert.truthy(text:find("OK: built for LuaJIT", 1, true), out)
    assert.truthy(text:find("OK: libcurl " .. core.curl_version, 1, true), out)
    assert.truthy(text:find("OK: TLS backend: %S+"), out)
    assert.truthy(text:find("OK: API key set (from LLAMA_CLOUD_API_KEY)", 1, true), out)
    assert.truthy(text:find("OK: base URL https://api.cloud.eu.llamaindex.ai (from LLAMA_CLOUD_BASE_URL); region: eu", 1, true), out)
    assert.truthy(text:find("OK: host: nvim", 1, true), out)
    assert.falsy(text:find("ERROR", 1, true), out)
    assert.falsy(out:find(KEY, 1, true), "the key was shown")
  end)

  it("warns when no key is set, naming the variables, and shows the default base URL", function()
    local _, out = nvim(dir, CHECKHEALTH)
    local text = health_lines(out)
    assert.truthy(text:find("WARNING: no API key in the environment", 1, true), out)
    assert.truthy(text:find("LLAMA_CLOUD_API_KEY", 1, true), out)
    assert.truthy(text:find("OK: base URL https://api.cloud.llamaindex.ai (from the default); region: default", 1, true), out)
  end)

  -- Only Neovim 0.7 may be installed: the newer APIs are stood in for by recording tables, and the old
  -- require("health") raises if used.
  for _, api in ipairs({ { "vim.health.start (0.9 and later)", "start" }, { "vim.health.report_start (0.8)", "report_" } }) do
    it("reports through " .. api[1] .. " where Neovim has it", function()
      local _, out = nvim(dir, string.format([[
        local prefix = %q
        local function rec(kind) return function(msg) io.stdout:write("call\t", kind, " ", msg, "\n") end end
        local h = {}
        for _, kind in ipairs({ "start", "ok", "warn", "error", "info" }) do
          h[(prefix == "start" and "" or "report_") .. kind] = rec(kind)
        end
        vim.health = h
        package.loaded["health"] = setmetatable({}, { __index = function() error("require('health') was used") end })
        require("llamacloud.health").check()
      ]], api[2]), { "LLAMA_CLOUD_API_KEY=" .. KEY })
      local calls = {}
      for line in out:gmatch("call\t([^\n]*)") do calls[#calls + 1] = line end
      assert.are.equal("start llamacloud: C module", calls[1], out)
      assert.truthy(table.concat(calls, "\n"):find("ok API key set (from LLAMA_CLOUD_API_KEY)", 1, true), out)
      assert.truthy(table.concat(calls, "\n"):find("start llamacloud: host", 1, true), out)
      assert.falsy(out:find("was used", 1, true), out)
    end)
  end

  it("names `make nvim` when the C module is missing", function()
    local bare = plugin_dir(false)
    local _, out = nvim(bare, CHECKHEALTH)
    os.execute("rm -rf " .. quote(bare))
    local text = health_lines(out)
    assert.truthy(text:find("ERROR: require('llamacloud.core') failed: module 'llamacloud.core' not found", 1, true), out)
    assert.truthy(text:find("make nvim", 1, true), out)
    -- the packages the README's Neovim section names, libssl-dev for webhooks.verify included
    assert.truthy(text:find("libcurl4-openssl-dev libssl-dev libluajit-5.1-dev", 1, true), out)
  end)
end)

describe("nvim :help llamacloud", function()
  it("names the Debian packages `make nvim` needs as the README does", function()
    local want = "libcurl4-openssl-dev libssl-dev libluajit-5.1-dev"
    assert.truthy(util.read_file(ROOT .. "/README.md"):find("`" .. want .. "`", 1, true))
    local doc = util.read_file(ROOT .. "/doc/llamacloud.txt"):gsub("%s+", " ")
    assert.truthy(doc:find(want, 1, true), "doc/llamacloud.txt's install section")
  end)

  it("has a tag for every function in types/, and :help finds each after :helptags", function()
    local classes = luacats.parse(ROOT .. "/types")
    local tags = {}
    for _, row in ipairs(DOC_TAGS) do
      local members = luacats.members_of(classes, row[1])
      for name, kind in pairs(members) do
        if kind == "function" then tags[#tags + 1] = row[2] .. name .. "()" end
      end
    end
    table.sort(tags)
    assert.is_true(#tags >= 15, "too few functions found in types/: " .. #tags)
    local dir = tmpdir()
    assert(os.execute("cp -r " .. quote(ROOT .. "/doc") .. " " .. quote(dir .. "/")))
    local script = { "vim.cmd('helptags " .. dir .. "/doc')" }
    for i, tag in ipairs(tags) do
      script[#script + 1] = string.format([[
        do
          local ok = pcall(vim.cmd, %q)
          local line = ok and vim.api.nvim_get_current_line() or ""
          io.stdout:write(%q, vim.fn.expand("%%:t"), " ", tostring(line:find(%q, 1, true) ~= nil), "\n")
          if ok then vim.cmd("helpclose") end
        end]], "help " .. tag, "tag" .. i .. "\t", "*" .. tag .. "*")
    end
    local r, out = nvim(dir, table.concat(script, "\n"))
    os.execute("rm -rf " .. quote(dir))
    for i, tag in ipairs(tags) do
      assert.are.equal("llamacloud.txt true", r["tag" .. i], ":help " .. tag .. "\n" .. out)
    end
  end)
end)

describe("nvim plugin from a clone", function()
  local server, clone

  teardown(function()
    if server then server:stop() end
    if clone then os.execute("rm -rf " .. quote(clone)) end
  end)

  -- git clone takes the checkout's last commit, as a user's clone would: uncommitted edits are not in it.
  it("works after `make nvim` with nothing on package.cpath: require and a get against the fake server", function()
    server = fake.start()
    clone = tmpdir() .. "/llamacloud-lua"
    local code, log = util.sh("git clone -q " .. quote(ROOT) .. " " .. quote(clone) .. " && make -C " .. quote(clone) .. " nvim")
    assert.are.equal(0, code, log)
    local r, out = nvim(clone, [[
      local ok, found = pcall(package.searchpath, "llamacloud.core", package.cpath)
      io.stdout:write("on_cpath\t", tostring(ok and found), "\n")
      io.stdout:write("core\t", vim.api.nvim_get_runtime_file("lua/llamacloud/core.so", false)[1] or "none", "\n")
      local llamacloud = require("llamacloud")
      local batch, err = llamacloud.batches.get("bat-done")
      io.stdout:write("get\t", tostring(batch and batch.id), " ", tostring(batch and batch.status), " ", tostring(err), "\n")
    ]], { "LLAMA_CLOUD_API_KEY=" .. KEY, "LLAMA_CLOUD_BASE_URL=" .. quote(server.url) })
    assert.are.same({ "nil", clone .. "/lua/llamacloud/core.so", "bat-done COMPLETED nil", "0" },
                    { r.on_cpath, r.core, r.get, r.exit }, out)
  end)
end)
