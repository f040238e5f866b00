-- The batch workflow with callbacks: create, list (page by page), cancel, jobs.get and wait_files (on_file
-- may use vim.api), each refused with a callback and blocking without one, a wait_files cancelled in flight.
local t = dofile(os.getenv("LLAMACLOUD_ROOT") .. "/spec/nvim/common.lua")

t.run(function()
  local llamacloud = require("llamacloud")
  local before = t.handles()
  local client = llamacloud.new({ api_key = "test-key", base_url = t.url })
  local PARAMS = { source_directory_id = "dir-nvim", config = { job = { type = "parse_v2", configuration_id = "c" } } }

  local ok, msg = pcall(client.batches.each, {}, function() end)
  t.report("each_callback", tostring(ok) .. " " .. tostring(msg))
  ok, msg = pcall(client.batches.create, { config = {} }, function() end)
  t.report("bad_create", tostring(ok) .. " " .. tostring(msg))

  local finish = t.countdown(3, function()
    vim.schedule(function()
      -- without a callback every call blocks, each included
      local n = 0
      for b in client.batches.each({ page_size = 1 }) do
        if b then n = n + 1 end
      end
      t.report("each_blocking", n)
      t.report("left", t.new_handles(before))
      t.quit()
    end)
  end)

  -- A wait_files cancelled while its batch is polled: never called back.
  local called = false
  local handle = client.batches.wait_files("bat-slow", { interval = 0.05 }, function() called = true end)
  t.after(100, function()
    t.report("cancel_files", handle:cancel())
    t.after(50, function()
      t.report("cancel_called", called)
      finish()
    end)
  end)

  local first = client.batches.list({ page_size = 1 }, function(page, err)
    if not page then
      t.report("list", tostring(err))
      return finish()
    end
    client.batches.list({ page_size = 1, page_token = page.next_page_token }, function(page2, err2)
      t.report("list", #page.items .. " " .. tostring(page2 and #page2.items) .. " " .. tostring(err2))
      finish()
    end)
  end)
  t.report("list_handle", type(first.cancel))

  client.batches.create(PARAMS, function(batch, err)
    if not batch then
      t.report("create", tostring(err))
      return finish()
    end
    t.report("create", batch.id .. " " .. batch.status)
    local settled = {}
    client.batches.wait_files(batch.id, { interval = 0.05, job_expand = "markdown",
      on_file = function(file)
        settled[#settled + 1] = file.status
        vim.api.nvim_buf_set_lines(0, 0, -1, false, { file.status })
      end }, function(report, ferr)
      if not report then
        t.report("files", tostring(ferr))
        return finish()
      end
      t.report("files", report.counts.COMPLETED .. " " .. report.counts.FAILED .. " " .. report.counts.MAPPING_FAILED
        .. " " .. #settled .. " " .. tostring(ferr))
      t.report("buffer", vim.api.nvim_buf_get_lines(0, 0, -1, false)[1] ~= "" and "set" or "empty")
      client.jobs.get(report.files[1].job_reference, { expand = "markdown" }, function(job, jerr)
        t.report("job", job and (llamacloud.jobs.status(job) .. " " .. #job.markdown.pages) or tostring(jerr))
        client.batches.cancel("bat-run", function(cb, cerr)
          t.report("cancel", cb and cb.id or tostring(cerr))
          finish()
        end)
      end)
    end)
  end)
end)
