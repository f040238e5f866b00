---@meta
-- require("llamacloud.host"): picks how calls wait in this process.

---@class llamacloud.host
local host = {}

---The host this process runs in.
---@return "ngx"|"nvim"|"blocking"
function host.detect() end

---The host module for this process (picked once).
---@return llamacloud.Host
function host.current() end

return host
