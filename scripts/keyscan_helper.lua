-- busted --helper for scripts/keyscan.sh: notes the API key of every client the specs build and scans every
-- error the core hands back (from get and from a request's result) for the key of the client it came from.
-- Keys go to $LLAMACLOUD_KEYSCAN_OUT as "key<TAB>..." lines (the script then greps the run's whole output
-- for them); a key found in an error is written as a "leak<TAB>..." line.
local core = require("llamacloud.core")
local util = require("spec.support.util")

local OUT = assert(os.getenv("LLAMACLOUD_KEYSCAN_OUT"), "LLAMACLOUD_KEYSCAN_OUT is not set")
local MIN_KEY = 8 -- a shorter key ("k") is a letter of every message: it cannot be told from a leak

local function append(line)
  local f = assert(io.open(OUT, "a"))
  f:write(line, "\n")
  f:close()
end

local function trimmed_env(name)
  local v = os.getenv(name)
  v = v and v:match("^%s*(.-)%s*$")
  if v == "" then return nil end
  return v
end

local key_of = setmetatable({}, { __mode = "k" }) -- client or request userdata -> its key
local noted = {}
local scanned = { errors = 0 }

local function note(key)
  if type(key) == "string" and #key >= MIN_KEY and not noted[key] then
    noted[key] = true
    append("key\t" .. key)
  end
end

local function scan(err, key, where)
  if type(err) ~= "table" then return end
  scanned.errors = scanned.errors + 1
  if type(key) ~= "string" or #key < MIN_KEY then return end
  local texts = util.strings(err, { tostring(err) }, 0)
  for _, s in ipairs(texts) do
    if s:find(key, 1, true) then
      append(string.format("leak\t%s\t%s: %q", where, tostring(err.name), s:sub(1, 300)))
    end
  end
end

local unpack_ = unpack or table.unpack
local function pack(...) return { n = select("#", ...), ... } end

local new = core.new
core.new = function(opts)
  local ud = new(opts)
  local key = type(opts) == "table" and opts.api_key or nil
  if key == nil or key == "" then
    key = trimmed_env("LLAMA_CLOUD_API_KEY") or trimmed_env("LLAMA_PARSE_API_KEY")
  end
  key_of[ud] = key
  note(key)
  return ud
end

local registry = debug.getregistry()
local client_methods = registry["llamacloud.client"].__index
local request_methods = registry["llamacloud.request"].__index

local get, request = client_methods.get, client_methods.request
client_methods.get = function(ud, ...)
  local res = pack(get(ud, ...))
  scan(res[2], key_of[ud], "client:get")
  return unpack_(res, 1, res.n)
end
-- getter returns get bound to its client as a C closure (what batches.get is): wrapped the same way.
local getter = client_methods.getter
if getter then
  client_methods.getter = function(ud, ...)
    local bound = getter(ud, ...)
    return function(...)
      local res = pack(bound(...))
      scan(res[2], key_of[ud], "batches.get")
      return unpack_(res, 1, res.n)
    end
  end
end
client_methods.request = function(ud, ...)
  local r = request(ud, ...)
  key_of[r] = key_of[ud]
  return r
end

local result = request_methods.result
request_methods.result = function(r, ...)
  local res = pack(result(r, ...))
  scan(res[2], key_of[r], "request:result")
  return unpack_(res, 1, res.n)
end

-- Written when the state closes (busted ends with os.exit(code, true)).
registry["llamacloud.keyscan"] = setmetatable({}, { __gc = function()
  append("errors\t" .. scanned.errors)
end })
