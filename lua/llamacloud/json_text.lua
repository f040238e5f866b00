-- Re-indents JSON text without decoding it, so the server's bytes, key order, arrays and nulls stay as they are.
local M = {}

local byte, sub, rep, concat = string.byte, string.sub, string.rep, table.concat

local QUOTE, BACKSLASH = 34, 92
local OPEN = { [123] = true, [91] = true }   -- { [
local CLOSE = { [125] = true, [93] = true }  -- } ]
local SPACE = { [32] = true, [9] = true, [10] = true, [13] = true }

function M.pretty(text, indent)
  indent = indent or "  "
  local out, n, depth, i, len = {}, 0, 0, 1, #text
  local function push(s) n = n + 1; out[n] = s end
  local function newline() push("\n" .. rep(indent, depth)) end
  while i <= len do
    local c = byte(text, i)
    if c == QUOTE then
      local j = i + 1
      while j <= len do
        local d = byte(text, j)
        if d == BACKSLASH then j = j + 2
        elseif d == QUOTE then break
        else j = j + 1 end
      end
      push(sub(text, i, j))
      i = j + 1
    elseif OPEN[c] then
      -- an empty object or array stays on one line
      local j = i + 1
      while j <= len and SPACE[byte(text, j)] do j = j + 1 end
      if CLOSE[byte(text, j) or 0] then
        push(sub(text, i, i) .. sub(text, j, j))
        i = j + 1
      else
        push(sub(text, i, i))
        depth = depth + 1
        newline()
        i = i + 1
      end
    elseif CLOSE[c] then
      depth = depth - 1
      newline()
      push(sub(text, i, i))
      i = i + 1
    elseif c == 44 then -- ,
      push(",")
      newline()
      i = i + 1
    elseif c == 58 then -- :
      push(": ")
      i = i + 1
    elseif SPACE[c] then
      i = i + 1
    else
      local j = i
      while j <= len do
        local d = byte(text, j)
        if d == QUOTE or OPEN[d] or CLOSE[d] or d == 44 or d == 58 or SPACE[d] then break end
        j = j + 1
      end
      push(sub(text, i, j - 1))
      i = j
    end
  end
  return concat(out)
end

return M
