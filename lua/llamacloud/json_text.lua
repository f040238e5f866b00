-- Re-indents JSON text without decoding it, so the server's bytes, key order, arrays and nulls stay as they are;
-- and encodes what the library returns (a decoded batch, page, job or a files report) as JSON.
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

-- Fields the service sends as lists: an empty Lua table under one of these names is `[]`, any other
-- empty table `{}` (a decoded `[]` and `{}` are the same empty table). json_text_spec: "empty".
M.LIST_FIELDS = {
  items = true, results = true, files = true, pages = true, expand = true, webhook_configurations = true,
  webhook_configuration_ids = true, webhook_events = true, extract_result = false,
}

local ESCAPES = { ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f", ["\n"] = "\\n",
                  ["\r"] = "\\r", ["\t"] = "\\t" }
local function escape(c) return ESCAPES[c] or string.format("\\u%04x", byte(c)) end

local function number_text(v)
  if v ~= v or v == math.huge or v == -math.huge then return "null" end
  if math.type and math.type(v) == "integer" then return tostring(v) end
  if v == math.floor(v) and v > -2^53 and v < 2^53 then return string.format("%d", v) end
  -- the shortest text that reads back as the same number
  for digits = 15, 16 do
    local text = string.format("%." .. digits .. "g", v)
    if tonumber(text) == v then return text end
  end
  return string.format("%.17g", v)
end

-- A table with keys 1..n and nothing else (n > 0) is an array.
local function array_length(t)
  local n = #t
  if n == 0 then return next(t) == nil and 0 or nil end
  local count = 0
  for _ in pairs(t) do count = count + 1 end
  return count == n and n or nil
end

local function encode(v, out, n, key)
  local t = type(v)
  if t == "string" then
    n = n + 1; out[n] = '"' .. v:gsub('[%c"\\]', escape) .. '"'
  elseif t == "number" then
    n = n + 1; out[n] = number_text(v)
  elseif t == "boolean" then
    n = n + 1; out[n] = v and "true" or "false"
  elseif t == "table" then
    local len = array_length(v)
    if len == 0 then
      n = n + 1; out[n] = M.LIST_FIELDS[key] and "[]" or "{}"
    elseif len then
      n = n + 1; out[n] = "["
      for i = 1, len do
        if i > 1 then n = n + 1; out[n] = "," end
        n = encode(v[i], out, n, key)
      end
      n = n + 1; out[n] = "]"
    else
      local keys = {}
      for k in pairs(v) do
        if type(k) == "string" then keys[#keys + 1] = k
        elseif type(k) == "number" then keys[#keys + 1] = k end
      end
      table.sort(keys, function(a, b)
        if type(a) == type(b) then return a < b end
        return type(a) == "number"
      end)
      n = n + 1; out[n] = "{"
      for i, k in ipairs(keys) do
        if i > 1 then n = n + 1; out[n] = "," end
        local name = tostring(k)
        n = n + 1; out[n] = '"' .. name:gsub('[%c"\\]', escape) .. '":'
        n = encode(v[k], out, n, name)
      end
      n = n + 1; out[n] = "}"
    end
  else
    -- nil, llamacloud.null (a light userdata) and anything else JSON cannot hold
    n = n + 1; out[n] = "null"
  end
  return n
end

-- JSON text of v on one line, object keys sorted (the same value always gives the same bytes).
function M.encode(v)
  local out = {}
  encode(v, out, 0, nil)
  return concat(out)
end

return M
