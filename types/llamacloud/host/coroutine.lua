---@meta
-- require("llamacloud.host.coroutine"): calls yield to the caller's scheduler instead of blocking.

---@class llamacloud.host.coroutine
local coroutine_host = {}

---How often (seconds) a waiting coroutine looks at its transfer: 0.01.
---@type number
coroutine_host.POLL_INTERVAL = 0.01

---Transfers one client runs at once for its single gets: 64.
---@type integer
coroutine_host.CONCURRENCY = 64

---@class llamacloud.CoroutineSettings
---@field sleep? fun(seconds: number) default: coroutine.yield(seconds); how to wait in your scheduler (copas.pause, a luv timer)
---@field poll_interval? number default: 0.01 (POLL_INTERVAL; seconds in (0, 1])

---A host whose waits go through settings.sleep.
---@param settings? llamacloud.CoroutineSettings
---@return llamacloud.Host
function coroutine_host.host(settings) end

---A client (as llamacloud.new builds) whose batches.* calls yield instead of blocking.
---@param opts? llamacloud.ClientOptions
---@param settings? llamacloud.CoroutineSettings
---@return llamacloud.Client
function coroutine_host.new(opts, settings) end

return coroutine_host
