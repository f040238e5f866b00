-- Prints the Lua inside an nginx.conf's *_by_lua_block directives as one chunk for luacheck: each block
-- becomes a function of its own (it may return, as set_by_lua does) on the same lines, every other line
-- blank, so warnings point into the .conf.
-- Usage: lua scripts/lint_nginx.lua FILE.conf | luacheck --filename FILE.conf -
local path = assert(arg[1], "usage: lint_nginx.lua FILE.conf")
local out, closing = {}, nil
for line in io.lines(path) do
  if closing then
    if line == closing then
      out[#out + 1], closing = "end", nil
    else
      out[#out + 1] = line
    end
  else
    local indent, body = line:match("^(%s*)[%w_]+_by_lua_block[^{]*{(.*)$")
    if indent then
      local one = body:match("^(.*)}%s*$")
      if one then
        out[#out + 1] = "local _ = function() " .. one .. " end"
      else
        out[#out + 1], closing = "local _ = function()" .. (body:match("%S") and " " .. body or ""), indent .. "}"
      end
    else
      out[#out + 1] = ""
    end
  end
end
assert(not closing, path .. ": a *_by_lua_block is not closed")
io.write(table.concat(out, "\n"), "\n")
