-- llamacloud: VERSION, new, the lazy module-level default client and the resource tables bound to a client.
local core = require("llamacloud.core")
local hosts = require("llamacloud.host")
local calls = require("llamacloud.calls")
local binder = require("llamacloud.bind")

local M = {}

M.VERSION = core.VERSION
M.null = core.null
-- The monotonic clock (seconds) that a call's `deadline` option is measured on.
M.now = core.now

local function bind(ud, host)
  local client = binder.bind(ud, host)
  function client.config() return ud:config() end
  -- A host that keeps a multi per client lets go of it first, so close ends the transfers of
  -- calls whose coroutines were dropped (spec/coroutine_spec.lua, "abandoned call").
  function client.close()
    if host.close then host.close(ud) end
    ud:close()
  end
  return client
end

-- A client; level is where the caller's caller is, so that every error, core.new's too, names
-- the user's line as argument errors do (spec/options_spec.lua, "names the caller's line").
local function make(opts, host, level)
  if opts ~= nil and type(opts) ~= "table" then
    error("llamacloud: new: opts must be a table (got " .. type(opts) .. ")", level + 1)
  end
  if host ~= nil and (type(host) ~= "table" or type(host.step) ~= "function" or type(host.now) ~= "function") then
    error("llamacloud: new: host must be a host table (got " .. type(host) .. ")", level + 1)
  end
  -- core.new never yields; called from pcall its message carries no position of its own
  local ok, ud = pcall(core.new, opts)
  if not ok then error(ud, level + 1) end
  host = host or hosts.current()
  return bind(ud, host)
end

-- host (optional): how the client's calls wait, e.g. from llamacloud.host.coroutine; the
-- default is picked for this process (plain Lua, Neovim or OpenResty).
function M.new(opts, host)
  local client = make(opts, host, 2)
  return client
end

-- The default client is built on first use, so require never raises for a missing key.
local default_client

-- Called by the module-level calls below: the user is three frames up.
local function default()
  if not default_client then default_client = make(nil, nil, 3) end
  return default_client
end

-- Every call at module level, on the default client; pure functions need no client.
for _, decl in ipairs(calls.list) do
  local resource, name = decl.resource, decl.name
  M[resource] = M[resource] or {}
  if decl.kind == "pure" then
    M[resource][name] = decl.fn or require("llamacloud.wait")[name]
  else
    M[resource][name] = function(...) return default()[resource][name](...) end
  end
end

M.webhooks = { verify = core.webhook_verify }

return M
