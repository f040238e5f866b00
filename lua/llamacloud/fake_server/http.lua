-- The fake server's HTTP loop: one socket.select over threads (coroutines). A thread is an accepted
-- connection, an outgoing webhook delivery or a timer; each waits to read ("r"), to write ("w") or
-- for a time ("t"), and nothing ever blocks the loop.
local socket = require("socket")
local json = require("llamacloud.fake_server.json")

local M = {}

local find, format, gsub, lower, match, rep, sub =
  string.find, string.format, string.gsub, string.lower, string.match, string.rep, string.sub
local concat = table.concat
local floor, huge = math.floor, math.huge
local yield, cocreate, coresume, costatus =
  coroutine.yield, coroutine.create, coroutine.resume, coroutine.status
local gettime = socket.gettime
local num_str, encode_string, OBJECT_MT = json.num_str, json.encode_string, json.OBJECT_MT

local MAX_HEAD = 65536
local MAX_BODY = 64 * 1048576
local RECV_SIZE = 16384
-- socket.select raises on descriptors >= FD_SETSIZE (1024); stay under it.
local MAX_FD = 1000
local CHUNK = 16384
-- select's timeout breaks past about 2^31 s: sleeps longer than this never end, and no select
-- waits longer than MAX_WAIT (spec/fake_server_limits_spec.lua), idle or not: luasocket's select
-- restarts itself after a signal, and plain Lua delivers Ctrl-C only at the next Lua instruction
-- (spec/fake_server_signal_spec.lua).
local MAX_SLEEP = 1e9
local MAX_WAIT = 0.5
-- While a connection sleeps its socket is still read (a pipelined request is kept, a client that
-- leaves is seen), up to this much buffered input.
local MAX_BUFFERED = 1048576
M.MAX_SLEEP = MAX_SLEEP

local REASONS = {
  [100] = "Continue", [200] = "OK", [201] = "Created", [202] = "Accepted",
  [204] = "No Content", [301] = "Moved Permanently", [302] = "Found",
  [303] = "See Other", [304] = "Not Modified", [307] = "Temporary Redirect",
  [308] = "Permanent Redirect", [400] = "Bad Request", [401] = "Unauthorized",
  [403] = "Forbidden", [404] = "Not Found", [405] = "Method Not Allowed",
  [408] = "Request Timeout", [409] = "Conflict", [410] = "Gone",
  [413] = "Payload Too Large", [422] = "Unprocessable Entity",
  [429] = "Too Many Requests", [431] = "Request Header Fields Too Large",
  [500] = "Internal Server Error", [501] = "Not Implemented",
  [502] = "Bad Gateway", [503] = "Service Unavailable",
  [504] = "Gateway Timeout",
}

function M.reason(status)
  return REASONS[status] or "Unknown"
end
local reason = M.reason

function M.detail(msg)
  return json.encode(setmetatable({ detail = msg }, OBJECT_MT))
end
local detail = M.detail

-- The I/O helpers below run inside a thread's coroutine and yield to the loop. A thread with a
-- deadline gets "timeout" from them once it has passed.

local function recv(c)
  while true do
    local data, err, partial = c.sock:receive(RECV_SIZE)
    data = data or partial
    if data and data ~= "" then return data end
    if err ~= "timeout" then return nil, err or "closed" end
    if c.deadline and gettime() >= c.deadline then return nil, "timeout" end
    c.wait = "r"
    yield()
  end
end
M.recv = recv

local function send(c, data)
  local i, len = 1, #data
  while i <= len do
    local last, err, partial = c.sock:send(data, i)
    if last then
      i = last + 1
    elseif err == "timeout" then
      i = partial + 1
      if c.deadline and gettime() >= c.deadline then return nil, "timeout" end
      c.wait = "w"
      yield()
    else
      return nil, err
    end
  end
  return true
end
M.send = send

function M.sleep(c, seconds)
  -- A delay of 1e10 s means "never answer": it must not reach select (spec/fake_server_limits_spec.lua).
  c.wake = seconds < MAX_SLEEP and gettime() + seconds or huge
  c.wait = "t"
  yield()
end
local sleep = M.sleep

-- Lets the loop serve others between chunks of a long stream.
local function pause(c)
  c.wait = "w"
  yield()
end

local function bad_request(c, status, msg)
  local body = detail(msg)
  send(c, "HTTP/1.1 " .. num_str(status) .. " " .. reason(status)
    .. "\r\nContent-Type: application/json\r\nContent-Length: " .. num_str(#body)
    .. "\r\nConnection: close\r\n\r\n" .. body)
  return nil, "bad"
end

local function read_request(c)
  local buf, from = c.buf, 1
  local head_end, body_start
  while true do
    -- Stray line breaks before a request line are allowed (RFC 9112 2.2).
    if from == 1 and find(buf, "^[\r\n]") then buf = match(buf, "^[\r\n]*(.*)$") end
    local s, e = find(buf, "\r?\n\r?\n", from)
    if s then head_end, body_start = s - 1, e + 1; break end
    if #buf > MAX_HEAD then
      c.buf = ""
      return bad_request(c, 431, "request headers too large")
    end
    from = #buf > 3 and #buf - 3 or 1
    local data, err = recv(c)
    if not data then
      c.buf = ""
      return nil, buf == "" and err or ("closed mid-request: " .. tostring(err))
    end
    buf = buf .. data
  end
  local head = sub(buf, 1, head_end)
  local rest = sub(buf, body_start)
  local line_end = find(head, "\n", 1, true) or #head + 1
  local line = gsub(sub(head, 1, line_end - 1), "\r$", "")
  local method, target, version = match(line, "^(%u+) (%S+) HTTP/(%d%.%d)$")
  if not method then
    c.buf = ""
    return bad_request(c, 400, "malformed request line")
  end
  local headers = setmetatable({}, OBJECT_MT)
  for hline in string.gmatch(sub(head, line_end + 1), "[^\n]+") do
    local name, value = match(hline, "^([^:%s]+):[ \t]*(.-)[ \t\r]*$")
    if name then
      name = lower(name)
      local old = headers[name]
      headers[name] = old and (old .. ", " .. value) or value
    end
  end
  if headers["transfer-encoding"] then
    c.buf = ""
    return bad_request(c, 501, "request bodies must use Content-Length")
  end
  local cl = 0
  if headers["content-length"] then
    cl = tonumber(match(headers["content-length"], "^%d+$"))
    if not cl or cl > MAX_BODY then
      c.buf = ""
      return bad_request(c, cl and 413 or 400, "bad Content-Length")
    end
  end
  local body = ""
  if cl > 0 then
    if #rest < cl and lower(headers.expect or "") == "100-continue" then
      send(c, "HTTP/1.1 100 Continue\r\n\r\n")
    end
    local parts, have = { rest }, #rest
    while have < cl do
      local data, err = recv(c)
      if not data then c.buf = ""; return nil, "closed mid-body: " .. tostring(err) end
      parts[#parts + 1] = data
      have = have + #data
    end
    rest = concat(parts)
    body = sub(rest, 1, cl)
    rest = sub(rest, cl + 1)
  end
  c.buf = rest
  local conn_hdr = lower(headers.connection or "")
  local keep
  if version == "1.0" then
    keep = find(conn_hdr, "keep-alive", 1, true) ~= nil
  else
    keep = find(conn_hdr, "close", 1, true) == nil
  end
  local path, query = target, ""
  local q = find(target, "?", 1, true)
  if q then path, query = sub(target, 1, q - 1), sub(target, q + 1) end
  path = gsub(path, "#.*$", "")
  query = gsub(query, "#.*$", "")
  path = gsub(path, "^[hH][tT][tT][pP][sS]?://[^/]*", "")
  if path == "" then path = "/" end
  return { method = method, path = path, query = query, headers = headers,
           body = body, keep = keep, t = gettime() }
end

local function build_head(plan, length, close, chunked)
  local h = plan.headers or {}
  local override = {}
  for i = 1, #h do override[h[i][3]] = true end
  local out = { "HTTP/1.1 ", num_str(plan.status), " ", reason(plan.status), "\r\n" }
  local function add(name, value, lname)
    if not override[lname] then
      out[#out + 1] = name .. ": " .. value .. "\r\n"
    end
  end
  add("Content-Type", "application/json", "content-type")
  if chunked then
    add("Transfer-Encoding", "chunked", "transfer-encoding")
  else
    add("Content-Length", num_str(length), "content-length")
  end
  if plan.rid then add(plan.rid[1], plan.rid[2], plan.rid[3]) end
  add("Connection", close and "close" or "keep-alive", "connection")
  for i = 1, #h do out[#out + 1] = h[i][1] .. ": " .. h[i][2] .. "\r\n" end
  if plan.fault == "many_headers" then
    local count = floor(plan.count or 5000)
    for i = 1, count do out[#out + 1] = "x-fill-" .. i .. ": " .. i .. "\r\n" end
  end
  out[#out + 1] = "\r\n"
  return concat(out)
end

local X_CHUNK = rep("x", CHUNK)
local SP_CHUNK = rep(" ", CHUNK)
local X_CHUNK_FRAMED = format("%x\r\n", CHUNK) .. X_CHUNK .. "\r\n"

-- After these the connection cannot carry another response.
local BREAKS_FRAMING = {
  drop = true, reset_headers = true, truncate = true, endless = true,
  length_short = true, length_long = true, rst_headers = true, rst_body = true,
}

-- Performs a plan. Returns "keep" (serve the next request), "close" (the
-- server ends the connection) or "gone" (the client went away).
function M.execute(c, plan, keep)
  if plan.delay and plan.delay > 0 then sleep(c, plan.delay) end
  local fault, body = plan.fault, plan.body
  local close = not keep or plan.close or BREAKS_FRAMING[fault] or false
  local ok
  if fault == "drop" then
    return "close"
  elseif fault == "reset_headers" then
    ok = send(c, "HTTP/1.1 200 OK\r\nContent-Type: app")
  elseif fault == "truncate" then
    ok = send(c, build_head(plan, #body, true) .. sub(body, 1, floor(#body / 2)))
  elseif fault == "rst_headers" or fault == "rst_body" then
    -- SO_LINGER 0: closing sends a TCP reset instead of a clean end of stream.
    ok = send(c, fault == "rst_headers" and "HTTP/1.1 200 OK\r\nContent-Type: app"
      or build_head(plan, #body, true) .. sub(body, 1, floor(#body / 2)))
    c.sock:setoption("linger", { on = true, timeout = 0 })
  elseif fault == "length_short" then
    local n = #body - 10
    ok = send(c, build_head(plan, n > 0 and n or 0, true) .. body)
  elseif fault == "length_long" then
    ok = send(c, build_head(plan, #body + 10, true) .. body)
  elseif fault == "trickle" then
    ok = send(c, build_head(plan, #body, close))
    local interval = plan.interval or 1
    local i = 1
    while ok and i <= #body do
      if i > 1 and interval > 0 then sleep(c, interval) end
      ok = send(c, sub(body, i, i))
      i = i + 1
    end
  elseif fault == "huge" then
    -- Streamed: a size past the client's body cap must not live in our memory.
    local size = floor(plan.size or 1048576)
    local prefix, suffix, filler = body, "", SP_CHUNK
    if sub(body, -1) == "}" then
      prefix, suffix, filler = sub(body, 1, -2) .. ',"x_padding":"', '"}', X_CHUNK
    end
    local pad = size - #prefix - #suffix
    if pad < 0 then
      ok = send(c, build_head(plan, #body, close) .. body)
    else
      ok = send(c, build_head(plan, size, close) .. prefix)
      while ok and pad > 0 do
        pause(c)
        ok = send(c, pad >= CHUNK and filler or sub(filler, 1, pad))
        pad = pad - CHUNK
      end
      if ok then ok = send(c, suffix) end
    end
  elseif fault == "endless" then
    local size = plan.size or 1073741824
    local first = '{"id":' .. encode_string(plan.id) .. ',"status":"RUNNING","x_padding":"'
    ok = send(c, build_head(plan, nil, true, true) .. format("%x\r\n", #first) .. first .. "\r\n")
    local sent = #first
    while ok and sent < size do
      pause(c)
      ok = send(c, X_CHUNK_FRAMED)
      sent = sent + CHUNK
    end
  else
    ok = send(c, build_head(plan, #body, close) .. body)
  end
  if not ok then return "gone" end
  return close and "close" or "keep"
end


local execute = M.execute

-- Threads ---------------------------------------------------------------------------------------

local function close_thread(srv, c, by_client)
  if c.closed then return end
  c.closed = true
  srv.threads[c] = nil
  if c.sock then
    c.sock:close()
    srv.by_sock[c.sock] = nil
    srv.nopen = srv.nopen - 1
  end
  if c.on_close then c.on_close(c, by_client) end
end
M.close_thread = close_thread

local function resume(srv, c)
  c.wait = nil
  local ok, err = coresume(c.co)
  if not ok then
    io.stderr:write("fake-server: ", c.kind or "thread", " ", tostring(c.no), ": ", tostring(err), "\n")
    close_thread(srv, c, false)
  elseif costatus(c.co) == "dead" then
    close_thread(srv, c, false)
  end
end

local function add_sock(srv, c, sock)
  c.sock = sock
  srv.by_sock[sock] = c
  srv.nopen = srv.nopen + 1
end

-- Starts fn(c) as a thread of the loop (c: the thread's table, with `sock` when it has one) and
-- runs it to its first wait.
function M.spawn(srv, c, fn)
  srv.nthreads = srv.nthreads + 1
  c.no = c.no or srv.nthreads
  c.co = cocreate(function() fn(c) end)
  srv.threads[c] = true
  if c.sock then
    local sock = c.sock
    c.sock = nil
    add_sock(srv, c, sock)
  end
  resume(srv, c)
  return c
end

-- Whether the loop can take one more socket (select cannot watch descriptors past 1023).
function M.has_room(srv)
  return srv.nopen < MAX_FD - 10
end

-- Outgoing HTTP/1.1 request from inside a thread: status, body, headers | nil, err. The thread's
-- socket is its own; `timeout` bounds the whole exchange.
function M.request(srv, c, host, port, method, path, headers, body, timeout)
  c.deadline = gettime() + timeout
  local sock = find(host, ":", 1, true) and socket.tcp6() or socket.tcp()
  if not sock then return nil, "no socket" end
  if sock:getfd() >= MAX_FD then
    sock:close()
    return nil, "too many open sockets"
  end
  sock:settimeout(0)
  add_sock(srv, c, sock)
  local function done(...)
    srv.by_sock[sock] = nil
    srv.nopen = srv.nopen - 1
    sock:close()
    c.sock, c.deadline = nil, nil
    return ...
  end
  local ok, err = sock:connect(host, port)
  if not ok and err == "timeout" then
    c.wait = "w"
    yield()
    if gettime() >= c.deadline then return done(nil, "timeout") end
    ok, err = sock:connect(host, port)
    if not ok and err == "already connected" then ok = true end
  end
  if not ok then return done(nil, "connect: " .. tostring(err)) end
  local lines = { method .. " " .. path .. " HTTP/1.1", "Connection: close",
                  "Content-Length: " .. #body }
  for i = 1, #headers do lines[#lines + 1] = headers[i][1] .. ": " .. headers[i][2] end
  ok, err = send(c, concat(lines, "\r\n") .. "\r\n\r\n" .. body)
  if not ok then return done(nil, "send: " .. tostring(err)) end
  local parts = {}
  while true do
    local data, rerr = recv(c)
    if not data then
      if rerr ~= "closed" then return done(nil, "receive: " .. tostring(rerr)) end
      break
    end
    parts[#parts + 1] = data
    local got = concat(parts)
    local head, rest = match(got, "^(.-)\r\n\r\n(.*)$")
    local cl = head and tonumber(match(lower(head), "\ncontent%-length:%s*(%d+)"))
    if cl and #rest >= cl then break end
  end
  local got = concat(parts)
  local head, rest = match(got, "^(.-)\r\n\r\n(.*)$")
  local status = head and tonumber(match(head, "^HTTP/%d%.%d (%d%d%d)"))
  if not status then return done(nil, "bad response: " .. sub(got, 1, 80)) end
  local hdrs = {}
  for name, value in string.gmatch(head, "\n([^:\r\n]+):%s*([^\r\n]*)") do hdrs[lower(name)] = value end
  return done(status, rest, hdrs)
end

-- Waits `seconds` inside a thread.
M.wait = sleep

-- Connections --------------------------------------------------------------------------------------

function M.count_api_conn(srv, c)
  if c.counted then return end
  c.counted = true
  local st = srv.stats
  st.connections_total = st.connections_total + 1
  c.api_no = st.connections_total
  st.connections_open = st.connections_open + 1
  if st.connections_open > st.max_connections_open then
    st.max_connections_open = st.connections_open
  end
end

local function conn_closed(c, by_client)
  if c.counted then
    local st = c.srv.stats
    st.connections_open = st.connections_open - 1
    if by_client then st.connections_closed_by_client = st.connections_closed_by_client + 1 end
  end
end

-- Forgets which connections counted, after the stats were reset.
function M.uncount_conns(srv)
  for c in pairs(srv.threads) do
    if c.kind == "conn" then c.counted, c.api_no = false, nil end
  end
end

local function serve_conn(c)
  local srv = c.srv
  while srv.running do
    local req, err = read_request(c)
    if not req then
      close_thread(srv, c, err ~= "bad")
      return
    end
    -- the handler computes a plan without yielding, so pcall works on PUC 5.1
    local ok, plan = pcall(srv.handle, srv, req, c)
    if not ok then
      io.stderr:write("fake-server: ", tostring(plan), "\n")
      plan = { status = 500, body = detail("fake-server error: " .. tostring(plan)), headers = {} }
    end
    local outcome = execute(c, plan, req.keep)
    if plan.after then plan.after() end
    if plan.shutdown then srv.running = false end
    if outcome ~= "keep" then
      close_thread(srv, c, outcome == "gone")
      return
    end
  end
end

local function accept_all(srv)
  for _ = 1, 64 do
    local sock, err = srv.server:accept()
    if not sock then
      -- Out of descriptors: back off instead of spinning on a readable listener.
      if err ~= "timeout" then srv.accept_after = gettime() + 0.05 end
      return
    end
    if sock:getfd() >= MAX_FD then
      sock:close()
    else
      sock:settimeout(0)
      sock:setoption("tcp-nodelay", true)
      srv.nconn = srv.nconn + 1
      M.spawn(srv, { kind = "conn", srv = srv, sock = sock, buf = "", no = srv.nconn,
                     on_close = conn_closed }, serve_conn)
    end
  end
end

-- A sleeping connection's socket is read so that pipelined input is kept and a client that leaves
-- is seen (spec/fake_server_limits_spec.lua).
local function drain(srv, c)
  local data, err, partial = c.sock:receive(RECV_SIZE)
  data = data or partial
  if data and data ~= "" then c.buf = c.buf .. data end
  if err and err ~= "timeout" then close_thread(srv, c, true) end
end

-- Serves until srv.running turns false (POST /_fake/shutdown).
function M.run(srv)
  local server, select = srv.server, socket.select
  while srv.running do
    local recvt, sendt, nr, nw = {}, {}, 0, 0
    local timeout
    local now = gettime()
    if M.has_room(srv) then
      if srv.accept_after <= now then
        recvt[1], nr = server, 1
      else
        timeout = srv.accept_after - now
      end
    end
    for c in pairs(srv.threads) do
      local w, at = c.wait, nil
      if w == "r" then
        nr = nr + 1; recvt[nr] = c.sock
        at = c.deadline
      elseif w == "w" then
        nw = nw + 1; sendt[nw] = c.sock
        at = c.deadline
      elseif w == "t" then
        at = c.wake
        if c.buf and c.sock and #c.buf < MAX_BUFFERED then nr = nr + 1; recvt[nr] = c.sock end
      end
      if at then
        local d = at - now
        if d < 0 then d = 0 end
        if not timeout or d < timeout then timeout = d end
      end
    end
    if not timeout or timeout > MAX_WAIT then timeout = MAX_WAIT end
    local ok, r, w = pcall(select, recvt, sendt, timeout)
    if not ok then
      -- Ctrl-C in plain Lua arrives as this error: it ends the server, as it ends the CLI (exit 130).
      if tostring(r):find("interrupted!", 1, true) then error(r, 0) end
      io.stderr:write("fake-server: select: ", tostring(r), "\n")
      r, w = {}, {}
      socket.sleep(0.01)
    end
    r, w = r or {}, w or {}
    for i = 1, #r do
      local s = r[i]
      if s == server then
        accept_all(srv)
      else
        local c = srv.by_sock[s]
        if c and c.wait == "r" then
          resume(srv, c)
        elseif c and c.wait == "t" then
          drain(srv, c)
        end
      end
    end
    for i = 1, #w do
      local c = srv.by_sock[w[i]]
      if c and c.wait == "w" then resume(srv, c) end
    end
    -- collected first: a resumed thread may start others (no new keys while pairs runs)
    now = gettime()
    local due, nd = {}, 0
    for c in pairs(srv.threads) do
      local cw = c.wait
      if (cw == "t" and c.wake <= now) or ((cw == "r" or cw == "w") and c.deadline and c.deadline <= now) then
        nd = nd + 1; due[nd] = c
      end
    end
    for i = 1, nd do
      local c = due[i]
      if not c.closed then resume(srv, c) end
    end
  end
  for c in pairs(srv.threads) do close_thread(srv, c, false) end
  server:close()
end

-- The loop's state around a bound listening socket; srv.handle(srv, req, conn) makes each plan.
function M.new(server, handle)
  return {
    server = server, handle = handle, running = true, threads = {}, by_sock = {},
    nopen = 0, nconn = 0, nthreads = 0, accept_after = 0, started = gettime(),
    stats = { requests_total = 0, connections_total = 0, connections_open = 0,
              max_connections_open = 0, connections_closed_by_client = 0 },
  }
end

M.gettime = gettime

return M
