-- The LuaCATS definitions in types/ against the code: every export and every accepted option key is
-- annotated, and no annotation names something the code does not have. lua-language-server is not
-- packaged for Debian, so the annotation files are read with patterns. Adding a call only means adding
-- rows to SURFACE or OPTIONS below (and its annotations).
local util = require("spec.support.util")
local luacats = require("spec.support.luacats")

local lines_of = luacats.lines_of
local CLASSES, ALIASES = luacats.parse("types")
local members_of = function(name) return luacats.members_of(CLASSES, name) end

local function sorted_keys(t)
  local out = {}
  for k in pairs(t) do out[#out + 1] = tostring(k) end
  table.sort(out)
  return out
end

-- Holds a class to the names a value (or a source file) has: each name annotated, each required
-- annotation present.
local function assert_matches(class, names)
  local annotated, optional = members_of(class)
  local missing, extra = {}, {}
  for k in pairs(names) do if not annotated[k] then missing[k] = true end end
  for k in pairs(annotated) do if not names[k] and not optional[k] then extra[k] = true end end
  assert.are.same({}, sorted_keys(missing), class .. ": exported but not annotated")
  assert.are.same({}, sorted_keys(extra), class .. ": annotated but not in the code")
end

local function keys_of(t)
  local out = {}
  for k in pairs(t) do out[k] = true end
  return out
end

-- A module's exports read from its source, for modules that only load inside nvim or nginx.
local function exports_in(path)
  local out = {}
  for line in io.lines(path) do
    local name = line:match("^function M%.([%w_]+)%s*%(") or line:match("^M%.([%w_]+)%s*=")
    if name then out[name] = true end
  end
  return out
end

-- A client of a closed port: nothing it sends can succeed, and quickly.
local function client()
  return require("llamacloud").new({ api_key = "sk-types-spec", base_url = "http://127.0.0.1:1",
                                     max_retries = 0, timeout = 1, organization_id = "org-1",
                                     project_id = "prj-1" })
end

-- What the code exports, one row per annotated class.
local SURFACE = {
  { "llamacloud", function() return keys_of(require("llamacloud")) end },
  { "llamacloud.Batches", function() return keys_of(require("llamacloud").batches) end },
  { "llamacloud.Batches", function() return keys_of(client().batches) end },
  { "llamacloud.Client", function() return keys_of(client()) end },
  { "llamacloud.Config", function() return keys_of(client().config()) end },
  { "llamacloud.Jobs", function() return keys_of(require("llamacloud").jobs) end },
  { "llamacloud.Jobs", function() return keys_of(client().jobs) end },
  { "llamacloud.Webhooks", function() return keys_of(require("llamacloud").webhooks) end },
  { "llamacloud.host", function() return keys_of(require("llamacloud.host")) end },
  { "llamacloud.host.blocking", function() return keys_of(require("llamacloud.host.blocking")) end },
  { "llamacloud.host.coroutine", function() return keys_of(require("llamacloud.host.coroutine")) end },
  { "llamacloud.Host", function() return keys_of(require("llamacloud.host.coroutine").host()) end },
  { "llamacloud.host.nvim", function() return exports_in("lua/llamacloud/host/nvim.lua") end },
  { "llamacloud.host.ngx", function() return exports_in("lua/llamacloud/host/ngx.lua") end },
}

-- Every word in the library's sources: the candidates for an option key.
local function candidate_words()
  local words = {}
  for _, path in ipairs(lines_of("find lua/llamacloud src -name '*.lua' -o -name '*.c' | sort")) do
    for word in util.read_file(path):gmatch("[%a_][%w_]*") do words[word] = true end
  end
  return words
end

local PROBE = {}

-- A row's probe: fn(c, key) on a fresh client, closed before the probe returns or raises (see
-- "closes every client it probes with").
local function probing(fn)
  return function(key)
    local c = client()
    local ok, err = pcall(fn, c, key)
    c.close()
    if not ok then error(err, 0) end
    return err
  end
end

-- Whether a call rejects opts = { [key] = PROBE } as an unknown key (any other error, or none, means the
-- key is accepted). Every row's call fails fast: a closed port, no retries, a tiny wait timeout.
local probes, peak_fds = 0, 0
local function rejects(call, key)
  probes = probes + 1
  if probes % 256 == 0 then peak_fds = math.max(peak_fds, (util.open_fds())) end
  local ok, err = pcall(call, key)
  return not ok and tostring(err):find("unknown option '" .. key .. "'", 1, true) ~= nil
      or not ok and tostring(err):find("unknown setting '" .. key .. "'", 1, true) ~= nil
      or not ok and tostring(err):find("unknown field '" .. key .. "'", 1, true) ~= nil
end

local function with(key, more)
  local opts = { [key] = PROBE }
  for k, v in pairs(more or {}) do if k ~= key then opts[k] = v end end
  return opts
end

-- A create body the library accepts, for the rows that probe create's options and fields.
local CREATE = { source_directory_id = "dir-1", config = { job = { type = "parse_v2", configuration_id = "cfg-1" } } }

-- The option tables the code takes, one row per annotated class.
local OPTIONS = {
  { "llamacloud.ClientOptions", function(key)
      require("llamacloud").new(with(key, { api_key = "sk-types-spec", base_url = "http://127.0.0.1:1" })).close()
    end },
  { "llamacloud.GetOptions", probing(function(c, key) return c.batches.get("bat-1", with(key)) end) },
  { "llamacloud.WaitOptions", probing(function(c, key)
      return c.batches.wait("bat-1", with(key, { timeout = 0.001 }))
    end) },
  { "llamacloud.ManyOptions", probing(function(c, key) return c.batches.get_many({}, with(key)) end) },
  { "llamacloud.WaitManyOptions", probing(function(c, key)
      return c.batches.wait_many({}, with(key, { timeout = 0.001 }))
    end) },
  { "llamacloud.CallOptions", probing(function(c, key) return c.batches.create(CREATE, with(key)) end) },
  { "llamacloud.CallOptions", probing(function(c, key) return c.batches.list({}, with(key)) end) },
  { "llamacloud.CallOptions", probing(function(c, key) return c.batches.each({}, with(key))() end) },
  { "llamacloud.CallOptions", probing(function(c, key) return c.batches.cancel("bat-1", with(key)) end) },
  { "llamacloud.JobOptions", probing(function(c, key)
      return c.jobs.get({ type = "parse_v2", id = "pjb-1" }, with(key))
    end) },
  { "llamacloud.WaitFilesOptions", probing(function(c, key)
      return c.batches.wait_files("bat-1", with(key, { timeout = 0.001 }))
    end) },
  { "llamacloud.CreateParams", probing(function(c, key) return c.batches.create(with(key, CREATE)) end) },
  { "llamacloud.ListParams", probing(function(c, key) return c.batches.list(with(key)) end) },
  { "llamacloud.CoroutineSettings", function(key) return require("llamacloud.host.coroutine").host(with(key)) end },
}

describe("types/", function()
  local words = candidate_words()
  local fds_before = (util.open_fds())

  it("are Lua files that load, each returning its module's table", function()
    for _, path in ipairs(lines_of("find types -name '*.lua' | sort")) do
      local chunk, err = loadfile(path)
      assert.is_truthy(chunk, err)
      assert.are.equal("table", type(chunk()), path)
    end
  end)

  for _, row in ipairs(SURFACE) do
    it("annotates every export of " .. row[1] .. " and nothing else", function()
      assert_matches(row[1], row[2]())
    end)
  end

  for _, row in ipairs(OPTIONS) do
    it("annotates every option key " .. row[1] .. " stands for, and only those", function()
      local annotated = members_of(row[1])
      for key in pairs(annotated) do
        assert.is_false(rejects(row[2], key), row[1] .. "." .. key .. " is annotated but the code rejects it")
      end
      local accepted = {}
      for key in pairs(words) do
        if not rejects(row[2], key) then accepted[key] = true end
      end
      local unannotated = {}
      for key in pairs(accepted) do if not annotated[key] then unannotated[key] = true end end
      assert.are.same({}, sorted_keys(unannotated), row[1] .. ": accepted by the code but not annotated")
    end)
  end

  -- The probes above make a client per key and row (some 30,000): left to the collector, each held
  -- its multi's descriptors until a cycle came, and a full suite run in one process went past
  -- select()'s 1,024 and broke the next spec's fake server calls.
  it("closes every client it probes with", function()
    assert.is_true(probes > 10000)
    assert.is_true(peak_fds - fds_before < 32, (peak_fds - fds_before) .. " descriptors more at the peak than before")
  end)

  it("gives each option its default in its description", function()
    for _, row in ipairs(OPTIONS) do
      for _, path in ipairs(lines_of("find types -name '*.lua'")) do
        local in_class = false
        for line in io.lines(path) do
          local name = line:match("^%-%-%-@class%s+([%w_.]+)")
          if name then in_class = name == row[1] end
          local field = in_class and line:match("^%-%-%-@field%s+([%w_]+)")
          if field then
            assert.is_truthy(line:find("default: ", 1, true), row[1] .. "." .. field .. " gives no default")
          end
        end
      end
    end
  end)

  it("names every error the code makes and the README lists, as llamacloud.ErrorName", function()
    local in_code = {}
    for _, path in ipairs(lines_of("find lua/llamacloud src -name '*.lua' -o -name '*.c'")) do
      for name in util.read_file(path):gmatch('"([A-Z]%w*Error)"') do in_code[name] = true end
      for name in util.read_file(path):gmatch('"(Polling%w+)"') do in_code[name] = true end
    end
    local in_readme = {}
    for name in util.read_file("README.md"):gmatch("\n| `(%u%w+)` |") do
      if name:find("Error$") or name:find("^Polling") then in_readme[name] = true end
    end
    local annotated = {}
    for _, lit in ipairs(assert(ALIASES["llamacloud.ErrorName"])) do annotated[lit] = true end
    assert.are.same(sorted_keys(in_readme), sorted_keys(annotated))
    assert.are.same(sorted_keys(in_code), sorted_keys(annotated))
  end)

  -- STYLE: the README gives each public function a signature line (a heading naming the call).
  it("has a README signature line for every function of the library, a client and its tables", function()
    local headings = {}
    for line in util.read_file("README.md"):gmatch("[^\n]+") do
      if line:match("^#+ ") then headings[#headings + 1] = line end
    end
    local text = table.concat(headings, "\n")
    local missing = {}
    for _, row in ipairs({ { "llamacloud", "llamacloud." }, { "llamacloud.Client", "client." },
                           { "llamacloud.Batches", "client.batches." }, { "llamacloud.Jobs", "client.jobs." },
                           { "llamacloud.Webhooks", "llamacloud.webhooks." } }) do
      for name, kind in pairs(members_of(row[1])) do
        local call = row[2] .. name .. "("
        if kind == "function" and not text:find(call, 1, true) then missing[#missing + 1] = call end
      end
    end
    table.sort(missing)
    assert.are.same({}, missing, "README headings lack these calls")
  end)

  it("types err.name with llamacloud.ErrorName", function()
    local block = util.read_file("types/llamacloud.lua"):match("\n%-%-%-@class llamacloud%.Error\n(.-)\n\n")
    assert.are.equal("---@field name llamacloud.ErrorName", block:match("%-%-%-@field name [^\n]*"))
  end)
end)
