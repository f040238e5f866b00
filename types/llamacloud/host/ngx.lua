---@meta
-- require("llamacloud.host.ngx"): OpenResty; calls yield to nginx instead of blocking the worker.

---@class llamacloud.host.ngx: llamacloud.Host
---@field CHECK_EVERY? number how often (seconds) the poller looks for waiters that died
local ngx_host = {}

---The shortest pause (seconds) between looks at a transfer in flight: 0.001.
---@type number
ngx_host.POLL_MIN = 0.001

---The longest pause (seconds) between looks at a transfer in flight: 0.01.
---@type number
ngx_host.POLL_MAX = 0.01

---Transfers one worker runs at once: 256.
---@type integer
ngx_host.CONCURRENCY = 256

return ngx_host
