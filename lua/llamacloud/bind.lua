-- The binder: every call of calls.lua bound to one client on one host, written once for every host.
-- A host gives only its way to wait (see wait.lua's header) and, optionally:
--   enter(label, kind): the primitives a call uses right now (OpenResty picks by phase), or nil and why;
--   run(ud, req): runs one request to its end (else it is stepped on a multi of its own);
--   direct: calls may block in C, so a "direct" call is the C closure itself (plain Lua);
--   async(fn, callback): runs fn(primitives) later and calls back (Neovim), returning a handle.
local calls = require("llamacloud.calls")
local wait = require("llamacloud.wait")
local pages = require("llamacloud.pages")

local M = {}

local raise = calls.raise

-- A request built from its checked arguments; a misuse the C core finds raises at the user's line.
-- want_raw (the command line) keeps the body's text.
local function prepare(ud, decl, first, opts, want_raw)
  local engine, id, o, query, body
  if decl.prepare then
    engine, id, o, query, body = decl.prepare(first, opts)
  else
    engine, id, o = decl.engine, first, opts
  end
  local ok, req = pcall(ud.prepare, ud, engine, id, o, query, body, want_raw)
  if not ok then raise(req) end
  return req
end
M.prepare = prepare

local run = wait.run

-- What each kind of call does, given the primitives h it waits with.
local function implementation(decl, ud)
  if decl.kind == "request" then
    return function(h, first, opts)
      local result, err = run(h, ud, prepare(ud, decl, first, opts))
      return result, err
    end
  elseif decl.kind == "poll" then
    local loop = wait[decl.name]
    return function(h, first, opts)
      local a, b = loop(h, ud, first, opts)
      return a, b
    end
  elseif decl.kind == "iterator" then
    return function(h, params, opts)
      -- checked now, at the call, though the first page is only fetched when the loop starts
      calls.check_list(params, "each")
      prepare(ud, calls.list_decl, params, opts)
      return pages.each(function(p) return run(h, ud, prepare(ud, calls.list_decl, p, opts)) end, params)
    end
  end
  error("llamacloud: internal: unknown kind of call " .. tostring(decl.kind))
end

local function bind_call(decl, ud, host)
  if decl.kind == "pure" then return decl.fn or wait[decl.name] end
  local label = decl.resource .. "." .. decl.name
  if host.direct and decl.direct then
    return decl.engine == calls.engine.batch_get and ud:getter() or ud:caller(decl.engine)
  end
  local impl = implementation(decl, ud)
  local function primitives()
    if not host.enter then return host end
    local h, why = host.enter(label, decl.kind)
    if not h then raise(why) end
    return h
  end
  if not host.async then
    return function(first, opts) return impl(primitives(), first, opts) end
  end
  -- A callback as the last argument, with or without opts before it.
  return function(first, opts, callback)
    if callback == nil and type(opts) == "function" then opts, callback = nil, opts end
    if callback == nil then return impl(primitives(), first, opts) end
    if type(callback) ~= "function" then
      raise("llamacloud: " .. label .. ": the callback must be a function (got " .. type(callback) .. ")")
    end
    if decl.kind == "iterator" then
      raise("llamacloud: " .. label .. " is an iterator and cannot take a callback: page with "
        .. decl.resource .. ".list and its next_page_token instead")
    end
    return host.async(function(h) return impl(h, first, opts) end, callback)
  end
end

-- The client's resource tables ({ batches = {...}, jobs = {...} }) for ud on host.
function M.bind(ud, host)
  local out = {}
  for _, decl in ipairs(calls.list) do
    out[decl.resource] = out[decl.resource] or {}
    out[decl.resource][decl.name] = bind_call(decl, ud, host)
  end
  return out
end

return M
