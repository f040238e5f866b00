-- llamacloud: VERSION, new, the lazy module-level default client and the batches table bound to a client.
local core = require("llamacloud.core")
local hosts = require("llamacloud.host")

local M = {}

M.VERSION = core.VERSION
M.null = core.null

local function bind(ud, host)
  local batches = host.bind(ud)
  local client = { batches = batches }
  function client.config() return ud:config() end
  function client.close() ud:close() end
  return client
end

-- host (optional): how the client's calls wait, e.g. from llamacloud.host.coroutine; the
-- default is picked for this process (plain Lua, Neovim or OpenResty).
function M.new(opts, host)
  if opts ~= nil and type(opts) ~= "table" then
    error("llamacloud: new: opts must be a table (got " .. type(opts) .. ")", 2)
  end
  if host ~= nil and (type(host) ~= "table" or type(host.bind) ~= "function") then
    error("llamacloud: new: host must be a host table (got " .. type(host) .. ")", 2)
  end
  return bind(core.new(opts), host or hosts.current())
end

-- The default client is built on first use, so require never raises for a missing key.
local default_client

local function default()
  if not default_client then default_client = M.new() end
  return default_client
end

M.batches = {}
for _, name in ipairs(hosts.BATCH_CALLS) do
  M.batches[name] = function(...) return default().batches[name](...) end
end
M.batches.outcomes = hosts.outcomes

M.webhooks = { verify = core.webhook_verify }

return M
