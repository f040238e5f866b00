-- JSON for the fake server: sorted keys, [] kept apart from {}, null kept, numbers written exactly.
local cjson = require("cjson").new()

local M = {}

local byte, find, format, gsub, sub = string.byte, string.find, string.format, string.gsub, string.sub
local concat, sort = table.concat, table.sort
local floor, huge = math.floor, math.huge

-- cjson's null is lightuserdata(NULL), equal across cjson instances.
local NULL = cjson.null
-- Tables decoded from JSON carry one of these so [] and {} survive a round trip.
local ARRAY_MT, OBJECT_MT = {}, {}
M.null, M.ARRAY_MT, M.OBJECT_MT = NULL, ARRAY_MT, OBJECT_MT

local function is_int(n)
  return type(n) == "number" and n == floor(n) and n > -1e15 and n < 1e15
end

local function num_str(n)
  if math.type and math.type(n) == "integer" then return tostring(n) end
  if n ~= n or n == huge or n == -huge then return "null" end
  if is_int(n) then return format("%.0f", n) end
  local s = format("%.14g", n)
  if tonumber(s) ~= n then s = format("%.17g", n) end
  return s
end

local ESCAPES = {
  ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f",
  ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t",
}
local function escape_char(c)
  return ESCAPES[c] or format("\\u%04x", byte(c))
end

local function encode_string(s)
  return '"' .. gsub(s, '[%c"\\]', escape_char) .. '"'
end

-- A table is an array when marked so, or when it has exactly keys 1..n;
-- an unmarked empty table is an array (scenarios list more than they map).
local function is_array(t)
  local mt = getmetatable(t)
  if mt == ARRAY_MT then return true end
  if mt == OBJECT_MT then return false end
  local n = #t
  if n == 0 then return next(t) == nil end
  local count = 0
  for _ in pairs(t) do count = count + 1 end
  return count == n
end

local function key_less(a, b) return tostring(a) < tostring(b) end

local encode_into
encode_into = function(v, out, depth)
  local tv = type(v)
  if tv == "string" then
    out[#out + 1] = encode_string(v)
  elseif tv == "number" then
    out[#out + 1] = num_str(v)
  elseif tv == "boolean" then
    out[#out + 1] = v and "true" or "false"
  elseif v == nil or v == NULL then
    out[#out + 1] = "null"
  elseif tv == "table" then
    if depth > 100 then error("cannot encode: nesting too deep (a cycle?)", 0) end
    if is_array(v) then
      out[#out + 1] = "["
      for i = 1, #v do
        if i > 1 then out[#out + 1] = "," end
        encode_into(v[i], out, depth + 1)
      end
      out[#out + 1] = "]"
    else
      local keys, plain = {}, true
      for k in pairs(v) do
        keys[#keys + 1] = k
        if type(k) ~= "string" then plain = false end
      end
      if plain then sort(keys) else sort(keys, key_less) end
      out[#out + 1] = "{"
      for i = 1, #keys do
        local k = keys[i]
        if i > 1 then out[#out + 1] = "," end
        out[#out + 1] = encode_string(type(k) == "number" and num_str(k) or tostring(k))
        out[#out + 1] = ":"
        encode_into(v[k], out, depth + 1)
      end
      out[#out + 1] = "}"
    end
  else
    error("cannot encode a " .. tv .. " as JSON", 0)
  end
end

local function encode(v)
  local out = {}
  encode_into(v, out, 0)
  return concat(out)
end



local EMPTY_ARRAY = "\0fake:empty-array"
local EMPTY_OBJECT = "\0fake:empty-object"

-- cjson decodes [] and {} alike; rewrite them (outside strings) into marked
-- one-element forms first so mark() can tell them apart afterwards.
local function protect_empties(text)
  local out, n, pos, last = {}, 0, 1, 1
  while true do
    local s = find(text, '[%["{]', pos)
    if not s then break end
    local c = byte(text, s)
    if c == 34 then
      local i = s + 1
      while true do
        local q = find(text, '["\\]', i)
        if not q then return text end -- unterminated string: cjson reports it
        if byte(text, q) == 92 then i = q + 2 else pos = q + 1; break end
      end
    else
      local _, e = find(text, c == 91 and "^[ \t\r\n]*%]" or "^[ \t\r\n]*}", s + 1)
      if e then
        out[n + 1] = sub(text, last, s - 1)
        out[n + 2] = c == 91 and '["\\u0000fake:empty-array"]'
                              or '{"\\u0000fake:empty-object":true}'
        n = n + 2
        last, pos = e + 1, e + 1
      else
        pos = s + 1
      end
    end
  end
  if n == 0 then return text end
  out[n + 1] = sub(text, last)
  return concat(out)
end

local mark
mark = function(v)
  if type(v) ~= "table" then return v end
  if v[1] == EMPTY_ARRAY and v[2] == nil then
    v[1] = nil
    return setmetatable(v, ARRAY_MT)
  end
  if v[EMPTY_OBJECT] ~= nil then
    v[EMPTY_OBJECT] = nil
    return setmetatable(v, OBJECT_MT)
  end
  if v[1] ~= nil then
    for i = 1, #v do v[i] = mark(v[i]) end
    return setmetatable(v, ARRAY_MT)
  end
  for k, x in pairs(v) do v[k] = mark(x) end
  return setmetatable(v, OBJECT_MT)
end

local function decode(text)
  local ok, v = pcall(cjson.decode, protect_empties(text))
  if not ok then return nil, tostring(v) end
  return mark(v)
end


-- An empty table fits both shapes: Lua callers cannot tell [] from {}.
local function is_object(v)
  if type(v) ~= "table" then return false end
  if next(v) == nil then return true end
  local mt = getmetatable(v)
  if mt == OBJECT_MT then return true end
  if mt == ARRAY_MT then return false end
  return v[1] == nil
end

local function is_list(v)
  if type(v) ~= "table" then return false end
  if next(v) == nil then return true end
  local mt = getmetatable(v)
  if mt == ARRAY_MT then return true end
  if mt == OBJECT_MT then return false end
  return is_array(v)
end

-- Marked constructors: an object that stays {} and an array that stays [] when empty.
function M.object(t) return setmetatable(t or {}, OBJECT_MT) end
function M.array(t) return setmetatable(t or {}, ARRAY_MT) end

M.is_int, M.num_str, M.encode_string, M.encode, M.decode = is_int, num_str, encode_string, encode, decode
M.is_object, M.is_list = is_object, is_list

return M
