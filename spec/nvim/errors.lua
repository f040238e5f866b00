-- Wire errors arrive as callback(nil, err); misuse raises at the call.
local t = dofile(os.getenv("LLAMACLOUD_ROOT") .. "/spec/nvim/common.lua")

t.run(function()
  local llamacloud = require("llamacloud")
  local before = t.handles()
  local client = llamacloud.new({ api_key = "test-key", base_url = t.url })
  local refused = llamacloud.new({ api_key = "test-key", base_url = "http://127.0.0.1:1", max_retries = 0 })
  local pending = 3
  local function one_done()
    pending = pending - 1
    if pending == 0 then
      vim.schedule(function()
        t.report("left", t.new_handles(before))
        t.quit()
      end)
    end
  end
  client.batches.get("bat-missing", function(batch, err)
    t.report("missing", tostring(batch) .. " " .. (err and err.name or "-") .. " " .. tostring(err and err.status))
    one_done()
  end)
  refused.batches.get("bat-done", {}, function(batch, err)
    t.report("refused", tostring(batch) .. " " .. (err and err.name or "-"))
    one_done()
  end)
  client.batches.wait("bat-failed", { interval = 0.05 }, function(batch, err)
    t.report("failed", tostring(batch) .. " " .. (err and err.name or "-") .. " "
      .. tostring(err and err.batch and err.batch.status))
    one_done()
  end)
  local ok, msg = pcall(client.batches.get, "bat-done", { expnd = "results" }, function() end)
  t.report("bad_option", tostring(ok) .. " " .. tostring(msg))
  ok, msg = pcall(client.batches.wait, "bat-done", { interval = -1 }, function() end)
  t.report("bad_interval", tostring(ok) .. " " .. tostring(msg))
  ok, msg = pcall(client.batches.get, "bat-done", {}, "not a function")
  t.report("bad_callback", tostring(ok) .. " " .. tostring(msg))
end)
