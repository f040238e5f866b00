-- wait, get_many and wait_many with callbacks (on_poll may use vim.api); the default client; blocking calls.
local t = dofile(os.getenv("LLAMACLOUD_ROOT") .. "/spec/nvim/common.lua")

t.run(function()
  local llamacloud = require("llamacloud")
  local before = t.handles()
  local client = llamacloud.new({ api_key = "test-key", base_url = t.url })
  local one_done = t.countdown(4, function()
    vim.schedule(function()
      t.report("left", t.new_handles(before))
      -- Without a callback a call blocks, outside fast events.
      local batch, err = client.batches.get("bat-done")
      t.report("blocking", batch and batch.status or tostring(err))
      local list = client.batches.get_many({ "bat-done", "bat-missing" })
      t.report("blocking_many", list[1].batch.status .. " " .. list[2].err.name)
      t.quit()
    end)
  end)
  local polls = {}
  client.batches.wait("bat-run", {
    interval = 0.05,
    on_poll = function(batch, info)
      polls[#polls + 1] = batch.status .. "@" .. info.attempt
      vim.api.nvim_buf_set_lines(0, 0, -1, false, { batch.status })
    end,
  }, function(batch, err)
    t.report("wait", (batch and batch.status or tostring(err)) .. " " .. table.concat(polls, ","))
    t.report("buffer", vim.api.nvim_buf_get_lines(0, 0, -1, false)[1])
    one_done()
  end)
  client.batches.get_many({ "bat-done", "bat-missing", "bat-slow" }, { concurrency = 2 }, function(list, err)
    t.report("get_many", #list .. " " .. list[1].batch.status .. " " .. list[2].err.name .. " "
      .. list[3].batch.status .. " " .. tostring(err))
    one_done()
  end)
  client.batches.wait_many({ "bat-done", "bat-failed" }, { interval = 0.05 }, function(list)
    t.report("wait_many", list[1].batch.status .. " " .. list[2].err.name)
    one_done()
  end)
  -- The module-level default client (built from the environment) takes a callback too.
  llamacloud.batches.get("bat-done", function(batch, err)
    t.report("default", batch and batch.status or tostring(err))
    one_done()
  end)
end)
