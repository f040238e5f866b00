---@meta
-- require("llamacloud.host"): picks how calls wait in this process.

---@class llamacloud.host
local host = {}

---The calls every host binds on a client's batches table.
---@type string[]
host.BATCH_CALLS = {}

---The host this process runs in.
---@return "ngx"|"nvim"|"blocking"
function host.detect() end

---The host module for this process (picked once).
---@return llamacloud.Host
function host.current() end

---@param batch llamacloud.Batch
---@return llamacloud.Outcomes
function host.outcomes(batch) end

return host
