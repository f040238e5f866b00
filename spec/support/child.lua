-- Runs a Lua chunk in a child interpreter with a chosen environment, since Lua has no os.setenv.
local cjson = require("cjson").new()
local fake = require("spec.support.fake")

local M = {}

-- Cleared in every child so the developer's own settings never leak into a spec.
M.CLEARED = {
  "LLAMA_CLOUD_API_KEY", "LLAMA_PARSE_API_KEY", "LLAMA_CLOUD_BASE_URL",
  "LLAMA_CLOUD_CUSTOM_HEADERS", "LLAMA_CLOUD_LOG",
}

local function shell_quote(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

-- The child runs `code` (a chunk that returns one value) under the same
-- interpreter, package.path and package.cpath as busted, and prints
-- { ok = ..., value = ... } or { ok = false, err = tostring(error) } as JSON.
local WRAPPER = [[
package.path = %q
package.cpath = %q
local chunk = assert((loadstring or load)(%q, "=child"))
local ok, v = pcall(chunk)
local out = { ok = ok }
if ok then out.value = v else out.err = tostring(v) end
io.write(require("spec.support.fake").encode(out))
]]

-- env: name -> value set in the child (on top of a cleared M.CLEARED).
-- Returns the decoded { ok, value, err }; raises if the child printed no JSON.
function M.run(env, code)
  local parts = { "env" }
  for _, name in ipairs(M.CLEARED) do parts[#parts + 1] = "-u " .. name end
  local names = {}
  for name in pairs(env or {}) do names[#names + 1] = name end
  table.sort(names)
  for _, name in ipairs(names) do parts[#parts + 1] = shell_quote(name .. "=" .. env[name]) end
  parts[#parts + 1] = shell_quote(fake.interpreter())
  parts[#parts + 1] = "-e"
  parts[#parts + 1] = shell_quote(string.format(WRAPPER, package.path, package.cpath, code))
  parts[#parts + 1] = "2>&1"
  local p = assert(io.popen(table.concat(parts, " ")))
  local out = p:read("*a")
  p:close()
  local ok, res = pcall(cjson.decode, out)
  if not ok or type(res) ~= "table" then error("child printed no result:\n" .. out, 2) end
  return res
end

return M
