-- Reads LuaCATS annotation files (types/) with patterns, for the specs that hold them to the code and the docs.
local M = {}

function M.lines_of(cmd)
  local p = assert(io.popen(cmd))
  local out = {}
  for line in p:lines() do out[#out + 1] = line end
  p:close()
  return out
end

-- Reads every ---@class (its parents, ---@field lines and the functions and values set on the local
-- that follows it) and every ---@alias (its string literals) in types/.
function M.parse(dir)
  local classes, aliases = {}, {}
  local current, pending, alias
  local var_class
  local function class(name)
    classes[name] = classes[name] or { parents = {}, members = {}, optional = {} }
    return classes[name]
  end
  for _, path in ipairs(M.lines_of("find " .. dir .. " -name '*.lua' | sort")) do
    var_class = {}
    for line in io.lines(path) do
      local name, parents = line:match("^%-%-%-@class%s+([%w_.]+)%s*:?%s*(.*)$")
      if name then
        current, pending, alias = name, name, nil
        for p in parents:gmatch("[%w_.]+") do table.insert(class(name).parents, p) end
        class(name)
      end
      local field, opt = line:match("^%-%-%-@field%s+([%w_]+)(%??)")
      if field and current then
        class(current).members[field] = "field"
        if opt == "?" then class(current).optional[field] = true end
      end
      local aname, rest = line:match("^%-%-%-@alias%s+([%w_.]+)%s*(.*)$")
      if aname then
        alias = aname
        aliases[aname] = {}
        for lit in rest:gmatch('"([^"]*)"') do aliases[aname][#aliases[aname] + 1] = lit end
      elseif alias and line:match("^%-%-%-|") then
        local lit = line:match('^%-%-%-|%s*"([^"]*)"')
        if lit then aliases[alias][#aliases[alias] + 1] = lit end
      elseif not line:match("^%-%-%-") then
        alias = nil
      end
      local var = line:match("^local%s+([%w_]+)%s*=%s*{}")
      if var and pending then var_class[var], pending = pending, nil end
      local owner, fn = line:match("^function%s+([%w_]+)%.([%w_]+)%s*%(")
      if owner and var_class[owner] then class(var_class[owner]).members[fn] = "function" end
      local vowner, value = line:match("^([%w_]+)%.([%w_]+)%s*=")
      if vowner and var_class[vowner] then class(var_class[vowner]).members[value] = "value" end
    end
  end
  return classes, aliases
end

-- A class's members with its parents', and which of them may be absent.
function M.members_of(classes, name)
  local c = classes[name]
  assert(c, "types/ has no ---@class " .. name)
  local all, optional = {}, {}
  for _, p in ipairs(c.parents) do
    local pa, po = M.members_of(classes, p)
    for k, v in pairs(pa) do all[k] = v end
    for k in pairs(po) do optional[k] = true end
  end
  for k, v in pairs(c.members) do all[k] = v end
  for k in pairs(c.optional) do optional[k] = true end
  return all, optional
end

return M
