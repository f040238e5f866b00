-- Plain Lua: calls block until they are done. get one batch, wait for one, then get several at once.
-- Run against the bundled fake server (from the repository root, after `make`):
--   lua5.4 bin/llamacloud fake-server --port 8080 &
--   LLAMA_CLOUD_API_KEY=demo LLAMA_CLOUD_BASE_URL=http://127.0.0.1:8080 \
--   LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH='build/5.4/?.so;;' lua5.4 examples/plain.lua
local llamacloud = require("llamacloud")

-- The module-level calls use a default client built from LLAMA_CLOUD_API_KEY / LLAMA_CLOUD_BASE_URL;
-- llamacloud.new({ api_key = ..., base_url = ... }) builds one of your own.
local batch, err = llamacloud.batches.get("bat-done", { expand = "results" })
if not batch then
  -- tostring, not assert(batch, err): PUC Lua 5.1/5.2's assert wants a string
  io.stderr:write(tostring(err), "\n")
  os.exit(1)
end
print("get: " .. batch.id .. " is " .. batch.status)

local final, werr = llamacloud.batches.wait("bat-demo", {
  expand = "results",
  interval = 0.2,
  on_poll = function(b, info)
    print(("  poll %d after %.1f s: %s"):format(info.attempt, info.elapsed, b and b.status or tostring(info.err)))
  end,
})
if final then
  local o = llamacloud.batches.outcomes(final)
  print(("wait: %s, %d jobs, %d failed, %d unmapped"):format(final.status, #o.jobs, #o.failed, #o.unmapped))
else
  print("wait: " .. tostring(werr))
end

-- Several at once over one connection pool; the list keeps the order of the ids.
for i, entry in ipairs(llamacloud.batches.get_many({ "bat-done", "bat-failed", "bat-missing" })) do
  print(("get_many[%d]: %s"):format(i, entry.batch and entry.batch.status or tostring(entry.err)))
end
