-- Shared by the scripts spec/nvim_spec.lua runs in `nvim --headless -u NONE`: paths from the
-- environment, results on stdout as "key<TAB>value" lines, a watchdog, and handle counting.
local uv = vim.loop

local M = {}

local root = assert(os.getenv("LLAMACLOUD_ROOT"), "LLAMACLOUD_ROOT not set")
-- As a plugin would: the repository on the runtimepath (its lua/ directory is searched by
-- require) and the LuaJIT build of the C module on package.cpath.
vim.opt.runtimepath:prepend(root)
package.cpath = root .. "/build/jit/?.so;" .. package.cpath

M.url = assert(os.getenv("LLAMACLOUD_TEST_URL"), "LLAMACLOUD_TEST_URL not set")
M.port = tonumber(M.url:match(":(%d+)$"))
M.delay = tonumber(os.getenv("LLAMACLOUD_TEST_DELAY")) -- seconds the fake server holds bat-slow

function M.report(key, value)
  io.stdout:write(key, "\t", tostring(value), "\n")
  io.stdout:flush()
end

-- vim.loop.walk aborts in Neovim 0.7 (luv asserts on the editor's own handles), so every
-- handle made through vim.loop's constructors from here on is recorded as it is made.
local made = {}
for name, fn in pairs(uv) do
  if type(fn) == "function" and name:match("^new_") then
    uv[name] = function(...)
      local h = fn(...)
      if h then made[#made + 1] = { h = h, kind = name:sub(5) } end
      return h
    end
  end
end

-- A mark: handles made after it are checked by new_handles.
function M.handles()
  return #made
end

-- Handles made since the mark that are neither closed nor closing, as "kind,kind" ("" when none).
function M.new_handles(mark, ignore)
  local out = {}
  for i = mark + 1, #made do
    local h = made[i].h
    if h ~= ignore and not h:is_closing() then out[#out + 1] = made[i].kind end
  end
  table.sort(out)
  return table.concat(out, ",")
end

local watchdog = uv.new_timer()
M.watchdog = watchdog

function M.quit()
  watchdog:close()
  vim.schedule(function() vim.cmd("qall!") end)
end

watchdog:start(30000, 0, function()
  M.report("error", "watchdog: the script did not finish")
  os.exit(1)
end)

-- Reports the handles left since mark on the loop's next turn, and quits.
function M.finish(mark)
  vim.schedule(function()
    M.report("left", M.new_handles(mark))
    M.quit()
  end)
end

-- A function that runs fn on its n-th call (n callbacks all done).
function M.countdown(n, fn)
  return function()
    n = n - 1
    if n == 0 then fn() end
  end
end

-- Runs fn on the main loop once a vim.loop timer of ms has fired.
function M.after(ms, fn)
  local timer = uv.new_timer()
  timer:start(ms, 0, function()
    timer:close()
    vim.schedule(fn)
  end)
end

-- Runs fn in protected mode; an error is reported and ends the script.
function M.run(fn)
  local ok, err = xpcall(fn, debug.traceback)
  if not ok then
    M.report("error", (tostring(err):gsub("\n", " | ")))
    M.quit()
  end
end

-- Reads the fake server's /_fake/stats with a vim.loop TCP client; calls done(stats_text).
function M.stats(done)
  local tcp = uv.new_tcp()
  local chunks = {}
  tcp:connect("127.0.0.1", M.port, function(err)
    if err then
      tcp:close()
      return vim.schedule(function() done(nil, err) end)
    end
    tcp:write("GET /_fake/stats HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    tcp:read_start(function(rerr, data)
      if data then
        chunks[#chunks + 1] = data
        return
      end
      tcp:close()
      local text = table.concat(chunks)
      vim.schedule(function() done(text:match("\r\n\r\n(.*)$"), rerr) end)
    end)
  end)
end

function M.stat(text, name)
  return tonumber(text:match('"' .. name .. '":(%d+)'))
end

-- After ms, reads the server's stats and reports its connections closed by the client and still open,
-- and what more report(stats, err) reports; then finishes as M.finish(mark).
function M.finish_with_stats(ms, mark, report)
  vim.defer_fn(function()
    M.stats(function(stats, err)
      report(stats, err)
      M.report("closed_by_client", M.stat(stats, "connections_closed_by_client"))
      M.report("connections_open", M.stat(stats, "connections_open"))
      M.finish(mark)
    end)
  end, ms)
end

return M
