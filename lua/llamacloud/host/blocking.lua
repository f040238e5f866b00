-- Plain Lua: every call blocks inside libcurl until it is done.
local core = require("llamacloud.core")

local M = {}

M.now = core.now
M.sleep = core.sleep

function M.bind(ud)
  local wait = require("llamacloud.wait")
  -- get is the C closure itself: no Lua frame to pay for, and errors point at the caller.
  local batches = { get = ud:getter() }
  function batches.wait(id, opts)
    return wait.wait(M, ud, id, opts)
  end
  function batches.get_many(ids, opts)
    return wait.get_many(M, ud, ids, opts)
  end
  function batches.wait_many(ids, opts)
    return wait.wait_many(M, ud, ids, opts)
  end
  batches.outcomes = wait.outcomes
  return batches
end

function M.get(ud, id, opts, want_raw)
  return ud:get(id, opts, want_raw)
end

-- One step of a multi, blocking in libcurl's poll for up to max_wait seconds.
function M.step(multi, max_wait)
  return multi:step(max_wait)
end

return M
