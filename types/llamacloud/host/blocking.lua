---@meta
-- require("llamacloud.host.blocking"): plain Lua; calls block in libcurl.

---@class llamacloud.host.blocking: llamacloud.Host
local blocking = {}

return blocking
