-- Neovim: :LlamaCloudWait {batch_id} waits for a batch without freezing the editor, showing each
-- poll and then the outcome. A plugin would ship lua/llamacloud/ (with core.so built for LuaJIT).
-- Try it from the repository root, after `make LUA_VERSION=jit`, against the bundled fake server:
--   lua5.4 bin/llamacloud fake-server --port 8080 &
--   LLAMA_CLOUD_API_KEY=demo LLAMA_CLOUD_BASE_URL=http://127.0.0.1:8080 nvim -c 'luafile examples/nvim.lua'
--   :LlamaCloudWait bat-demo
-- Headless (`nvim --headless -u NONE -c 'luafile examples/nvim.lua'`) it waits for bat-demo and quits.
local root = vim.fn.fnamemodify(debug.getinfo(1, "S").source:sub(2), ":p:h:h")
-- Where require finds the library: lua/ of every runtimepath entry, and package.cpath for core.so
-- (a plugin may instead put core.so at lua/llamacloud/core.so, which Neovim also searches).
vim.opt.runtimepath:append(root)
package.cpath = root .. "/build/jit/?.so;" .. package.cpath

local llamacloud = require("llamacloud")

local function show(msg)
  if #vim.api.nvim_list_uis() == 0 then
    io.stdout:write(msg, "\n")
  else
    vim.api.nvim_echo({ { msg } }, true, {})
  end
end

-- Returns the handle: handle:cancel() stops the wait, and then on_done is never called.
local function wait_for(id, on_done)
  return llamacloud.batches.wait(id, {
    expand = "results",
    interval = 0.5,
    on_poll = function(batch, info)
      show(("%s: %s (poll %d)"):format(id, batch and batch.status or tostring(info.err), info.attempt))
    end,
  }, function(batch, err)
    if batch then
      local o = llamacloud.batches.outcomes(batch)
      show(("%s: COMPLETED, %d jobs, %d failed, %d unmapped"):format(id, #o.jobs, #o.failed, #o.unmapped))
    else
      show(id .. ": " .. tostring(err))
    end
    if on_done then on_done(batch, err) end
  end)
end

vim.api.nvim_create_user_command("LlamaCloudWait", function(cmd)
  wait_for(cmd.args)
end, { nargs = 1 })

if #vim.api.nvim_list_uis() == 0 then
  wait_for("bat-demo", function() vim.cmd("qall!") end)
end
