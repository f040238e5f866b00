-- Plain Lua: every call blocks inside libcurl until it is done.
local core = require("llamacloud.core")

local M = {}

-- Calls that take (id [, opts]) are the C closure itself: no Lua frame to pay for, and errors
-- point at the caller.
M.direct = true

M.now = core.now
M.sleep = core.sleep

-- One request, run to its end on the client's own multi.
function M.run(ud, req)
  return ud:run(req)
end

-- One step of a multi, blocking in libcurl's poll for up to max_wait seconds.
function M.step(multi, max_wait)
  return multi:step(max_wait)
end

return M
