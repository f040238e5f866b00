-- Cancelling wait (asleep between polls), get_many and wait_many (transfers in flight) leaves no handle and no callback.
local t = dofile(os.getenv("LLAMACLOUD_ROOT") .. "/spec/nvim/common.lua")

t.run(function()
  local llamacloud = require("llamacloud")
  local before = t.handles()
  local client = llamacloud.new({ api_key = "test-key", base_url = t.url })
  local called = {}
  local handles = {
    wait = client.batches.wait("bat-wait", { interval = 5 }, function() called[#called + 1] = "wait" end),
    get_many = client.batches.get_many({ "bat-slow", "bat-slow" }, function() called[#called + 1] = "get_many" end),
    wait_many = client.batches.wait_many({ "bat-slow", "bat-run" }, { interval = 5 },
      function() called[#called + 1] = "wait_many" end),
  }
  -- cancelled from its own on_poll, while wait_many is running
  local own
  own = client.batches.wait_many({ "bat-run", "bat-slow" }, { interval = 0.05, on_poll = function()
    called[#called + 1] = "on_poll"
    t.report("cancel_own", own:cancel())
  end }, function() called[#called + 1] = "own" end)
  t.after(math.floor(t.delay * 300), function()
    for _, name in ipairs({ "wait", "get_many", "wait_many" }) do
      t.report("cancel_" .. name, handles[name]:cancel())
    end
    t.report("left_at_cancel", t.new_handles(before))
    t.finish_with_stats(math.floor(t.delay * 1500), before, function()
      t.report("called", table.concat(called, ","))
    end)
  end)
end)
