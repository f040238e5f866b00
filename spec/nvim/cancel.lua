-- Cancelling a get in flight closes its connection; the callback is never called.
local t = dofile(os.getenv("LLAMACLOUD_ROOT") .. "/spec/nvim/common.lua")

t.run(function()
  local llamacloud = require("llamacloud")
  local before = t.handles()
  local client = llamacloud.new({ api_key = "test-key", base_url = t.url })
  local called = false
  local handle = client.batches.get("bat-slow", function() called = true end)
  t.after(math.floor(t.delay * 200), function()
    t.report("cancel", handle:cancel())
    t.report("cancel_again", handle:cancel())
    t.report("left_at_cancel", t.new_handles(before))
    -- The server notices the closed connection once its delay is over.
    t.finish_with_stats(math.floor(t.delay * 1500), before, function(stats, err)
      t.report("called", called)
      t.report("stats_err", err)
      t.report("requests", t.stat(stats, "requests_total"))
    end)
  end)
end)
