-- What a client holds before its first call: no file descriptor. A libcurl multi holds two (its wakeup
-- pair), so the blocking calls' multi is made at the first call; a program (or a spec such as
-- types_spec) that builds thousands of clients and leaves them to the collector no longer runs a
-- process past 1024 descriptors, where select-based servers it then starts fail.
local core = require("llamacloud.core")

-- The busted process's own count: `ls /proc/$PPID/fd` from the shell io.popen starts.
local function fds()
  local p = io.popen("ls /proc/$PPID/fd 2>/dev/null | wc -l")
  local n = tonumber(p:read("*a"))
  p:close()
  return n
end

describe("a client", function()
  it("holds no file descriptor until its first call", function()
    if not io.open("/proc/self/fd") then return end -- Linux only
    local before = fds()
    local keep = {}
    for i = 1, 300 do keep[i] = core.new({ api_key = "sk-cost", base_url = "http://127.0.0.1:1" }) end
    local after = fds()
    assert.is_true(after - before < 20, ("300 clients opened %d descriptors"):format(after - before))
    for i = 1, 300 do keep[i]:close() end
  end)

  it("still runs its calls, and closing it frees what the first one made", function()
    local ud = core.new({ api_key = "sk-cost", base_url = "http://127.0.0.1:1", max_retries = 0, timeout = 1 })
    local batch, err = ud:get("bat-1")
    assert.is_nil(batch)
    assert.are.equal("APIConnectionError", err.name)
    ud:close()
  end)
end)
