-- Coroutine mode: three waits and a ticker share one thread. Each batches.* call yields the seconds
-- after which it wants to be resumed; this file's small scheduler does the resuming.
-- Run against the bundled fake server (from the repository root, after `make`):
--   lua5.4 bin/llamacloud fake-server --port 8080 &
--   LLAMA_CLOUD_API_KEY=demo LLAMA_CLOUD_BASE_URL=http://127.0.0.1:8080 \
--   LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH='build/5.4/?.so;;' lua5.4 examples/coroutines.lua
local core = require("llamacloud.core")
local cohost = require("llamacloud.host.coroutine")

-- No settings: a call does coroutine.yield(seconds), so any scheduler can drive it.
local client = cohost.new()

local tasks = {}
local function spawn(fn)
  tasks[#tasks + 1] = { co = coroutine.create(fn), at = 0 }
end

-- Resumes every task that is due, then sleeps until the next one is; ends when all are done.
local function run()
  while #tasks > 0 do
    local now, soonest = core.now(), math.huge
    for i = #tasks, 1, -1 do
      local t = tasks[i]
      if t.at <= now then
        local ok, wait_s = coroutine.resume(t.co)
        if not ok then error(wait_s, 0) end
        if coroutine.status(t.co) == "dead" then
          table.remove(tasks, i)
        else
          t.at = core.now() + (wait_s or 0)
        end
      end
      if tasks[i] == t and t.at < soonest then soonest = t.at end
    end
    if #tasks > 0 and soonest > core.now() then core.sleep(soonest - core.now()) end
  end
end

local done, ticks = 0, 0
for _, id in ipairs({ "bat-demo", "bat-done", "bat-failed" }) do
  spawn(function()
    local batch, err = client.batches.wait(id, { expand = "results", interval = 0.2 })
    if batch then
      print(id .. ": " .. batch.status .. " (files with a job: " .. #client.batches.outcomes(batch).jobs .. ")")
    else
      print(id .. ": " .. tostring(err))
    end
    done = done + 1
  end)
end

-- The ticker runs while the waits are in flight: nothing blocks.
spawn(function()
  while done < 3 do
    ticks = ticks + 1
    coroutine.yield(0.05)
  end
end)

run()
print("ticker ran " .. ticks .. " times while waiting")
