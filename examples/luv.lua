-- Coroutine mode on a luv (libuv) loop: batches.* calls suspend their coroutine on a luv timer instead
-- of blocking, so the loop keeps serving its other handles. Needs lua-luv (Debian: lua-luv).
-- Run against the bundled fake server (from the repository root, after `make`):
--   lua5.4 bin/llamacloud fake-server --port 8080 &
--   LLAMA_CLOUD_API_KEY=demo LLAMA_CLOUD_BASE_URL=http://127.0.0.1:8080 \
--   LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH='build/5.4/?.so;;' lua5.4 examples/luv.lua
local uv = require("luv")
local cohost = require("llamacloud.host.coroutine")

-- How a call waits: park the running coroutine on a one-shot luv timer.
local function sleep(s)
  local co = coroutine.running()
  local timer = uv.new_timer()
  timer:start(math.floor(s * 1000 + 0.5), 0, function()
    timer:close()
    local ok, err = coroutine.resume(co)
    if not ok then error(err, 0) end
  end)
  coroutine.yield()
end

local client = cohost.new(nil, { sleep = sleep })

local function go(fn)
  local ok, err = coroutine.resume(coroutine.create(fn))
  if not ok then error(err, 0) end
end

local ticks, pending = 0, 2
local ticker = uv.new_timer()
ticker:start(10, 10, function() ticks = ticks + 1 end)

local function finished()
  pending = pending - 1
  if pending == 0 then ticker:close() end
end

go(function()
  local batch, err = client.batches.wait("bat-demo", { interval = 0.2, expand = "results" })
  print("wait bat-demo: " .. (batch and batch.status or tostring(err)))
  finished()
end)

go(function()
  local list = client.batches.get_many({ "bat-done", "bat-missing" })
  for _, entry in ipairs(list) do
    print("get_many: " .. (entry.batch and entry.batch.status or tostring(entry.err)))
  end
  finished()
end)

uv.run()
print("the luv loop ticked " .. ticks .. " times meanwhile")
