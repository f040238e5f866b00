---@meta
-- require("llamacloud.host.nvim"): Neovim; with a callback a call runs on the editor's loop.

---@class llamacloud.host.nvim: llamacloud.Host
local nvim = {}

---Transfers one client runs at once on the editor's loop: 64.
---@type integer
nvim.CONCURRENCY = 64

return nvim
