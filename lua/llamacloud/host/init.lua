-- Picks how calls wait in this process: plain Lua, Neovim or OpenResty.
local M = {}

local current

function M.detect()
  if type(ngx) == "table" and type(ngx.config) == "table" and ngx.config.ngx_lua_version then
    return "ngx"
  end
  if type(vim) == "table" and type(vim.loop) == "table" and type(vim.api) == "table" then
    return "nvim"
  end
  return "blocking"
end

function M.current()
  if not current then current = require("llamacloud.host." .. M.detect()) end
  return current
end

return M
