-- Errors raised after a call has started (an on_poll that raises, client.close() during a wait) reach its
-- callback as nil, err instead of being rethrown on the main loop.
local t = dofile(os.getenv("LLAMACLOUD_ROOT") .. "/spec/nvim/common.lua")

t.run(function()
  local llamacloud = require("llamacloud")
  local reported = {}
  local function report(key, batch, err)
    reported[key] = true
    t.report(key, tostring(batch) .. " " .. type(err) .. " " .. tostring(err):gsub("^.-:%d+: ", ""))
  end
  -- what a callback never called leaves unreported after 3 s (made before the mark: not counted as left)
  t.after(3000, function()
    for _, key in ipairs({ "on_poll", "on_poll_many", "closed" }) do
      if not reported[key] then t.report(key, "callback not called") end
    end
    t.quit()
  end)
  local before = t.handles()
  local client = llamacloud.new({ api_key = "test-key", base_url = t.url })
  local closing = llamacloud.new({ api_key = "test-key", base_url = t.url })
  local one_done = t.countdown(3, function() t.finish(before) end)
  local function raise_on_second(_, info)
    if info.attempt == 2 then error("on_poll failed") end
  end
  client.batches.wait("bat-run", { interval = 0.05, on_poll = raise_on_second }, function(batch, err)
    report("on_poll", batch, err)
    one_done()
  end)
  client.batches.wait_many({ "bat-demo" }, { interval = 0.05, on_poll = raise_on_second }, function(list, err)
    report("on_poll_many", list, err)
    one_done()
  end)
  -- closed while it sleeps between its first and second poll
  closing.batches.wait("bat-wait", { interval = 0.3 }, function(batch, err)
    report("closed", batch, err)
    one_done()
  end)
  t.after(100, function() closing.close() end)
end)
