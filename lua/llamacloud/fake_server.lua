-- The local fake LlamaCloud: scripted batches and wire faults over HTTP/1.1, one select loop.
local socket = require("socket")
local cjson = require("cjson").new()

local M = {}

local byte, char, find, format, gsub, lower, match, rep, sub =
  string.byte, string.char, string.find, string.format, string.gsub,
  string.lower, string.match, string.rep, string.sub
local concat, sort = table.concat, table.sort
local floor, huge = math.floor, math.huge
local yield, cocreate, coresume, costatus =
  coroutine.yield, coroutine.create, coroutine.resume, coroutine.status
local gettime = socket.gettime

-- cjson's null is lightuserdata(NULL), equal across cjson instances.
local NULL = cjson.null
-- Tables decoded from JSON carry one of these so [] and {} survive a round trip.
local ARRAY_MT, OBJECT_MT = {}, {}

local MAX_HEAD = 65536
local MAX_BODY = 64 * 1048576
local RECV_SIZE = 16384
-- socket.select raises on descriptors >= FD_SETSIZE (1024); stay under it.
local MAX_FD = 1000
local CHUNK = 16384
-- select's timeout breaks past about 2^31 s: sleeps longer than this never end, and no select
-- waits longer than MAX_WAIT (spec/fake_server_limits_spec.lua).
local MAX_SLEEP = 1e9
local MAX_WAIT = 60
-- While a connection sleeps its socket is still read (a pipelined request is kept, a client that
-- leaves is seen), up to this much buffered input.
local MAX_BUFFERED = 1048576
local DEFAULT_LOG_LIMIT = 10000
local CREATED_AT = "2026-01-01T00:00:00.000Z"
local UPDATED_AT = "2026-01-01T00:01:00.000Z"

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

local FAULTS = {
  drop = true, reset_headers = true, truncate = true, malformed = true,
  not_object = true, missing_fields = true, huge = true, endless = true,
  trickle = true, many_headers = true, length_short = true,
  length_long = true, binary = true, rst_headers = true, rst_body = true,
}

M.USAGE = [[
Usage: llamacloud fake-server [--port N] [--host H] [--scenario FILE] [--log-limit N]

Serve a scripted fake LlamaCloud batch API (GET /api/v2/batches/{id}) on a
loopback address, for offline tests and demos.

Options:
  --port N         TCP port (default 0: pick a free one)
  --host H         loopback address to bind (default 127.0.0.1)
  --scenario FILE  a JSON file, or a .lua file returning a table
                   (default: the built-in demo scenario)
  --log-limit N    keep the last N requests for GET /_fake/requests
                   (default 10000; the stats count every request)
  -h, --help       show this help

Once ready it prints one line, "fake-server listening on http://HOST:PORT",
then serves until killed or until POST /_fake/shutdown.

Built-in batches: bat-demo (PENDING, RUNNING, COMPLETED), bat-done,
bat-failed, bat-cancelled; any other id is a 404.
Control endpoints: GET /_fake/requests, GET /_fake/stats, POST /_fake/reset,
PUT /_fake/scenario, GET /_fake/scenario, POST /_fake/shutdown.
Scenario format and faults: docs/fake-server.md.
]]

local DEMO_RESULTS = {
  { source_directory_file_id = "dfl-demo-0001",
    job_reference = { type = "parse_v2", id = "pjb-demo-0001" },
    error_message = NULL },
  { source_directory_file_id = "dfl-demo-0002",
    job_reference = { type = "parse_v2", id = "pjb-demo-0002" },
    error_message = NULL },
  { source_directory_file_id = "dfl-demo-0003",
    job_reference = NULL, error_message = "unsupported file type" },
  { source_directory_file_id = "dfl-demo-0004",
    job_reference = NULL, error_message = NULL },
}

M.DEFAULT_SCENARIO = {
  batches = {
    ["bat-demo"] = { steps = { "PENDING", "RUNNING", "COMPLETED" },
                     results = DEMO_RESULTS, results_from = 2 },
    ["bat-done"] = { steps = { "COMPLETED" }, results = DEMO_RESULTS },
    ["bat-failed"] = { steps = { "FAILED" } },
    ["bat-cancelled"] = { steps = { "CANCELLED" } },
  },
}


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
-- Scenarios and bodies as the server writes them: sorted keys, [] kept apart from {}, null kept.
M.encode = encode

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

local function check_keys(t, allowed, where)
  for k in pairs(t) do
    if type(k) ~= "string" or (not allowed[k] and sub(k, 1, 1) ~= "_") then
      error(format("%s: unknown field '%s'", where, tostring(k)), 0)
    end
  end
end

local function check_number(v, where, min)
  if v == nil then return end
  if type(v) ~= "number" or v ~= v or v < min or v == huge then
    error(format("%s must be a number >= %s", where, num_str(min)), 0)
  end
end

local function header_value(v, where)
  if type(v) == "string" then return v end
  if type(v) == "number" then return num_str(v) end
  if type(v) == "boolean" then return tostring(v) end
  error(where .. " must be a string or a number", 0)
end

local STEP_KEYS = {
  batch_status = true, status = true, headers = true, body = true,
  delay = true, fault = true, size = true, count = true, interval = true,
}

local function compile_step(raw, where, default_status)
  if type(raw) == "string" then
    return { batch_status = raw, status = 200, headers = {} }
  end
  if not is_object(raw) then
    error(where .. " must be a status string or an object", 0)
  end
  check_keys(raw, STEP_KEYS, where)
  local step = { status = raw.status or 200, headers = {},
                 batch_status = raw.batch_status or default_status,
                 delay = raw.delay, fault = raw.fault, size = raw.size,
                 count = raw.count, interval = raw.interval }
  if type(step.batch_status) ~= "string" then
    error(where .. ".batch_status must be a string", 0)
  end
  if not is_int(step.status) or step.status < 100 or step.status > 999 then
    error(where .. ".status must be an HTTP status code (100-999)", 0)
  end
  check_number(raw.delay, where .. ".delay", 0)
  check_number(raw.size, where .. ".size", 0)
  check_number(raw.count, where .. ".count", 0)
  check_number(raw.interval, where .. ".interval", 0)
  if raw.fault ~= nil and not FAULTS[raw.fault] then
    error(format("%s.fault: unknown fault '%s'", where, tostring(raw.fault)), 0)
  end
  if raw.body ~= nil then
    if type(raw.body) == "string" then
      step.body = raw.body
    elseif type(raw.body) == "table" then
      step.body = encode(raw.body)
    else
      error(where .. ".body must be a string (or a table, sent as JSON)", 0)
    end
  end
  if raw.headers ~= nil then
    if not is_object(raw.headers) then error(where .. ".headers must be an object", 0) end
    local names = {}
    for name in pairs(raw.headers) do
      if type(name) ~= "string" or not match(name, "^[!#$%%&'*+%-.^_`|~%w]+$") then
        error(format("%s.headers: bad header name '%s'", where, tostring(name)), 0)
      end
      names[#names + 1] = name
    end
    sort(names)
    for _, name in ipairs(names) do
      local v = raw.headers[name]
      local values = is_list(v) and v or { v }
      for i = 1, #values do
        local s = header_value(values[i], where .. ".headers." .. name)
        if find(s, "[\r\n]") then
          error(where .. ".headers." .. name .. " holds a line break", 0)
        end
        step.headers[#step.headers + 1] = { name, s, lower(name) }
      end
    end
  end
  return step
end

local ENTRY_KEYS = { batch = true, results = true, results_from = true, steps = true, omit = true }

local function compile_entry(raw, where)
  if not is_object(raw) then error(where .. " must be an object", 0) end
  check_keys(raw, ENTRY_KEYS, where)
  local entry = { batch = raw.batch, results = raw.results,
                  results_from = raw.results_from or 1, omit = raw.omit or {} }
  if entry.batch ~= nil and not is_object(entry.batch) then
    error(where .. ".batch must be an object", 0)
  end
  if entry.results ~= nil and entry.results ~= NULL and not is_list(entry.results) then
    error(where .. ".results must be an array or null", 0)
  end
  if type(entry.results) == "table" and next(entry.results) == nil then
    entry.results = setmetatable({}, ARRAY_MT)
  end
  check_number(raw.results_from, where .. ".results_from", 0)
  if not is_list(entry.omit) then error(where .. ".omit must be an array of field names", 0) end
  for i = 1, #entry.omit do
    if type(entry.omit[i]) ~= "string" then error(where .. ".omit must hold strings", 0) end
  end
  local steps = {}
  if raw.steps ~= nil then
    if not is_list(raw.steps) then error(where .. ".steps must be an array", 0) end
    local current = "PENDING"
    for i = 1, #raw.steps do
      local step = compile_step(raw.steps[i], format("%s.steps[%d]", where, i), current)
      if type(raw.steps[i]) == "string" then current = raw.steps[i] end
      steps[i] = step
    end
  end
  if #steps == 0 then
    local status = entry.batch and entry.batch.status
    steps[1] = { batch_status = type(status) == "string" and status or "COMPLETED",
                 status = 200, headers = {} }
  end
  entry.steps = steps
  return entry
end

local function compile_scenario(raw)
  -- A whole scenario of [] is a mistake, not an empty scenario (spec/fake_server_limits_spec.lua);
  -- inside one, an empty list stands for an empty object (the encoder writes {} as []).
  if not is_object(raw) or getmetatable(raw) == ARRAY_MT then
    error("scenario must be a JSON object", 0)
  end
  check_keys(raw, { api_key = true, batches = true, any = true, log_limit = true }, "scenario")
  local sc = { api_key = raw.api_key, batches = {}, log_limit = raw.log_limit }
  if sc.log_limit ~= nil and (not is_int(sc.log_limit) or sc.log_limit < 1) then
    error("scenario.log_limit must be an integer >= 1", 0)
  end
  if sc.api_key ~= nil and (type(sc.api_key) ~= "string" or sc.api_key == "") then
    error("scenario.api_key must be a non-empty string", 0)
  end
  if raw.batches ~= nil then
    if not is_object(raw.batches) then error("scenario.batches must be an object", 0) end
    for id, entry in pairs(raw.batches) do
      if type(id) ~= "string" then error("scenario.batches keys must be strings", 0) end
      sc.batches[id] = compile_entry(entry, format("batches[%q]", id))
    end
  end
  if raw.any ~= nil then sc.any = compile_entry(raw.any, "any") end
  return sc
end

local function load_scenario_file(path)
  local raw
  if match(path, "%.lua$") then
    local chunk, err = loadfile(path)
    if not chunk then return nil, err end
    local ok, t = pcall(chunk)
    if not ok then return nil, path .. ": " .. tostring(t) end
    if type(t) ~= "table" then return nil, path .. ": must return a table" end
    raw = t
  else
    local f, err = io.open(path, "rb")
    if not f then return nil, err end
    local text = f:read("*a")
    f:close()
    local v, derr = decode(text)
    if v == nil then return nil, path .. ": invalid JSON: " .. derr end
    raw = v
  end
  local ok, sc = pcall(compile_scenario, raw)
  if not ok then return nil, path .. ": " .. tostring(sc) end
  return sc, raw
end


local function reason(status)
  return REASONS[status] or "Unknown"
end

local function pct_decode(s)
  return (gsub(s, "%%(%x%x)", function(h) return char(tonumber(h, 16)) end))
end

local function form_decode(s)
  return pct_decode((gsub(s, "%+", " ")))
end

local function wants_results(query)
  for pair in string.gmatch(query, "[^&]+") do
    local k, v = match(pair, "^([^=]*)=?(.*)$")
    if form_decode(k) == "expand" and form_decode(v) == "results" then return true end
  end
  return false
end

-- Deep-merge objects from `over` into `base` (a fresh table owned by the caller).
local function merge(base, over)
  for k, v in pairs(over) do
    local b = base[k]
    if is_object(v) and type(b) == "table" and is_object(b) then
      local copy = setmetatable({}, OBJECT_MT)
      for bk, bv in pairs(b) do copy[bk] = bv end
      base[k] = merge(copy, v)
    else
      base[k] = v
    end
  end
  return base
end

local function batch_body(entry, id, batch_status, n, expand)
  local b = setmetatable({
    id = id, project_id = "prj-fake", source_directory_id = "dir-fake",
    config = setmetatable({ job = setmetatable({ type = "parse_v2",
      configuration_id = "cfg-fake" }, OBJECT_MT) }, OBJECT_MT),
    created_at = CREATED_AT, updated_at = UPDATED_AT,
  }, OBJECT_MT)
  if entry.batch then merge(b, entry.batch) end
  b.status = batch_status
  if expand and n >= entry.results_from then
    local r = entry.results
    if r == nil then r = setmetatable({}, ARRAY_MT) end
    b.results = r
  else
    b.results = NULL
  end
  for i = 1, #entry.omit do b[entry.omit[i]] = nil end
  return encode(b)
end

local function detail(msg)
  return encode(setmetatable({ detail = msg }, OBJECT_MT))
end

-- A plan is everything a response needs, computed without yielding (so it can
-- run under pcall on PUC 5.1); the executor then performs it on the socket.
local function simple_plan(status, body, extra)
  local plan = { status = status, body = body, headers = {} }
  if extra then for k, v in pairs(extra) do plan[k] = v end end
  return plan
end

local function binary_body(size)
  local out = { "\0\255\254\195\40{\"id\":\0" }
  local x = 7
  for i = 2, size do
    x = (x * 75 + 74) % 65537
    out[i] = char(x % 256)
  end
  return sub(concat(out), 1, size)
end

-- The log keeps the last log_limit records, by sequence number; stats count them all
-- (spec/fake_server_limits_spec.lua).
local function log_record(srv, rec)
  local recs = srv.records
  recs[rec.seq] = rec
  local limit = srv.scenario.log_limit or srv.log_limit
  while rec.seq - srv.log_first + 1 > limit do
    recs[srv.log_first] = nil
    srv.log_first = srv.log_first + 1
  end
end

local function query_params(query)
  local out = {}
  for pair in string.gmatch(query, "[^&]+") do
    local k, v = match(pair, "^([^=]*)=?(.*)$")
    out[#out + 1] = { form_decode(k), form_decode(v) }
  end
  return out
end

-- GET /_fake/requests?id=&since=&limit=: records after `since`, of one id, at most `limit`.
local function requests_plan(srv, req)
  local id, since, limit
  for _, kv in ipairs(query_params(req.query)) do
    local k, v = kv[1], kv[2]
    if k == "id" then
      id = v
    elseif k == "since" or k == "limit" then
      local n = match(v, "^%d+$") and tonumber(v)
      if not n or (k == "limit" and n < 1) then
        return simple_plan(400, detail(k .. " must be " .. (k == "since" and "an integer >= 0"
          or "an integer >= 1") .. ", got '" .. v .. "'"))
      end
      if k == "since" then since = n else limit = n end
    else
      return simple_plan(400, detail("unknown parameter '" .. k .. "' (id, since, limit)"))
    end
  end
  local out, recs, next_since = setmetatable({}, ARRAY_MT), srv.records, nil
  local from = srv.log_first
  if since and since + 1 > from then from = since + 1 end
  for seq = from, srv.nrec do
    local rec = recs[seq]
    if rec and (id == nil or rec.batch_id == id or rec.job_id == id) then
      if limit and #out >= limit then next_since = out[#out].seq; break end
      out[#out + 1] = rec
    end
  end
  local headers = { { "x-fake-log-first", num_str(srv.log_first), "x-fake-log-first" } }
  if next_since then
    headers[2] = { "x-fake-next-since", num_str(next_since), "x-fake-next-since" }
  end
  return simple_plan(200, encode(out), { headers = headers })
end

local function api_plan(srv, req, c)
  local rec_n = srv.nrec + 1
  srv.nrec = rec_n
  srv.stats.requests_total = srv.stats.requests_total + 1
  local rec = setmetatable({
    method = req.method, path = req.path, query = req.query,
    batch_id = NULL, n = NULL, headers = req.headers,
    t = floor((req.t - srv.started) * 1e6 + 0.5) / 1e6,
    conn = c.api_no, request_id = "req-" .. rec_n, seq = rec_n,
  }, OBJECT_MT)
  log_record(srv, rec)
  local rid = { "x-request-id", "req-" .. rec_n, "x-request-id" }
  local sc = srv.scenario

  local raw_id = match(req.path, "^/api/v2/batches/([^/]+)$")
  local id = raw_id and pct_decode(raw_id)
  if id then rec.batch_id = id end

  if sc.api_key and req.headers.authorization ~= "Bearer " .. sc.api_key then
    return simple_plan(401, detail("Invalid API key"), { rid = rid })
  end
  if not id or req.method ~= "GET" then
    return simple_plan(404, detail("Not Found"), { rid = rid })
  end
  local entry = sc.batches[id] or sc.any
  if not entry then
    return simple_plan(404, detail("Batch not found"), { rid = rid })
  end

  local n = (srv.counters[id] or 0) + 1
  srv.counters[id] = n
  rec.n = n
  local steps = entry.steps
  local step = steps[n < #steps and n or #steps]
  local status, fault = step.status, step.fault
  local body = step.body
  if fault == "malformed" then
    body = '{"id": ' .. encode_string(id) .. ', "status": '
  elseif fault == "not_object" then
    body = "[1, 2, 3]"
  elseif fault == "missing_fields" then
    body = '{"detail": "ok"}'
  elseif fault == "binary" then
    body = binary_body(floor(step.size or 512))
  elseif body == nil then
    if status >= 200 and status < 300 then
      body = batch_body(entry, id, step.batch_status, n, wants_results(req.query))
    else
      body = detail(reason(status))
    end
  end
  return { status = status, body = body, headers = step.headers, rid = rid,
           fault = fault, delay = step.delay, size = step.size,
           count = step.count, interval = step.interval, id = id }
end

local function reset(srv)
  srv.records, srv.nrec, srv.log_first, srv.counters = {}, 0, 1, {}
  local st = srv.stats
  st.requests_total, st.connections_total, st.connections_open = 0, 0, 0
  st.max_connections_open, st.connections_closed_by_client = 0, 0
  for c in pairs(srv.conns) do c.counted, c.api_no = false, nil end
end

local function ok_body() return encode(setmetatable({ ok = true }, OBJECT_MT)) end

local function control_plan(srv, req)
  local p, m = req.path, req.method
  local function only(method)
    if m ~= method then
      return simple_plan(405, detail("Method Not Allowed"),
        { headers = { { "Allow", method, "allow" } } })
    end
  end
  if p == "/_fake/requests" then
    return only("GET") or requests_plan(srv, req)
  elseif p == "/_fake/stats" then
    return only("GET") or simple_plan(200, encode(setmetatable(srv.stats, OBJECT_MT)))
  elseif p == "/_fake/reset" then
    local bad = only("POST")
    if bad then return bad end
    reset(srv)
    return simple_plan(200, ok_body())
  elseif p == "/_fake/scenario" then
    if m == "GET" then
      return simple_plan(200, encode(srv.scenario_src))
    end
    local bad = only("PUT")
    if bad then return bad end
    local raw, err = decode(req.body)
    if raw == nil then return simple_plan(400, detail("invalid JSON: " .. err)) end
    local ok, sc = pcall(compile_scenario, raw)
    if not ok then return simple_plan(400, detail(tostring(sc))) end
    srv.scenario, srv.scenario_src = sc, raw
    reset(srv)
    return simple_plan(200, ok_body())
  elseif p == "/_fake/shutdown" then
    return only("POST") or simple_plan(200, ok_body(), { close = true, shutdown = true })
  end
  return simple_plan(404, detail("Not Found"))
end

-- The I/O helpers below run inside a connection's coroutine and yield to the loop.

local function recv(c)
  while true do
    local data, err, partial = c.sock:receive(RECV_SIZE)
    data = data or partial
    if data and data ~= "" then return data end
    if err ~= "timeout" then return nil, err or "closed" end
    c.wait = "r"
    yield()
  end
end

local function send(c, data)
  local i, len = 1, #data
  while i <= len do
    local last, err, partial = c.sock:send(data, i)
    if last then
      i = last + 1
    elseif err == "timeout" then
      i = partial + 1
      c.wait = "w"
      yield()
    else
      return nil, err
    end
  end
  return true
end

local function sleep(c, seconds)
  -- A delay of 1e10 s means "never answer": it must not reach select (spec/fake_server_limits_spec.lua).
  c.wake = seconds < MAX_SLEEP and gettime() + seconds or huge
  c.wait = "t"
  yield()
end

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
local function execute(c, plan, keep)
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


local function close_conn(srv, c, by_client)
  if c.closed then return end
  c.closed = true
  c.sock:close()
  srv.conns[c] = nil
  srv.by_sock[c.sock] = nil
  srv.nopen = srv.nopen - 1
  if c.counted then
    local st = srv.stats
    st.connections_open = st.connections_open - 1
    if by_client then st.connections_closed_by_client = st.connections_closed_by_client + 1 end
  end
end

local function count_api_conn(srv, c)
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

local function serve_conn(srv, c)
  while srv.running do
    local req, err = read_request(c)
    if not req then
      close_conn(srv, c, err ~= "bad")
      return
    end
    local is_api = sub(req.path, 1, 5) == "/api/" or req.path == "/api"
    local ok, plan
    if is_api then
      count_api_conn(srv, c)
      ok, plan = pcall(api_plan, srv, req, c)
    elseif sub(req.path, 1, 7) == "/_fake/" then
      ok, plan = pcall(control_plan, srv, req)
    else
      ok, plan = true, simple_plan(404, detail("Not Found"))
    end
    if not ok then
      io.stderr:write("fake-server: ", tostring(plan), "\n")
      plan = simple_plan(500, detail("fake-server error: " .. tostring(plan)))
    end
    local outcome = execute(c, plan, req.keep)
    if plan.shutdown then srv.running = false end
    if outcome ~= "keep" then
      close_conn(srv, c, outcome == "gone")
      return
    end
  end
end

local function resume(srv, c)
  c.wait = nil
  local ok, err = coresume(c.co)
  if not ok then
    io.stderr:write("fake-server: connection ", tostring(c.no), ": ", tostring(err), "\n")
    close_conn(srv, c, false)
  elseif costatus(c.co) == "dead" then
    close_conn(srv, c, false)
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
      local c = { sock = sock, buf = "", no = srv.nconn }
      c.co = cocreate(function() serve_conn(srv, c) end)
      srv.conns[c] = true
      srv.by_sock[sock] = c
      srv.nopen = srv.nopen + 1
      resume(srv, c)
    end
  end
end

local function run(srv)
  local server, select = srv.server, socket.select
  while srv.running do
    local recvt, sendt, nr, nw = {}, {}, 0, 0
    local timeout
    local now = gettime()
    if srv.nopen < MAX_FD - 10 then
      if srv.accept_after <= now then
        recvt[1], nr = server, 1
      else
        timeout = srv.accept_after - now
      end
    end
    for c in pairs(srv.conns) do
      local w = c.wait
      if w == "r" then
        nr = nr + 1; recvt[nr] = c.sock
      elseif w == "w" then
        nw = nw + 1; sendt[nw] = c.sock
      elseif w == "t" then
        local d = c.wake - now
        if d < 0 then d = 0 end
        if not timeout or d < timeout then timeout = d end
        if #c.buf < MAX_BUFFERED then nr = nr + 1; recvt[nr] = c.sock end
      end
    end
    if timeout and timeout > MAX_WAIT then timeout = MAX_WAIT end
    local ok, r, w = pcall(select, recvt, sendt, timeout)
    if not ok then
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
          local data, err, partial = s:receive(RECV_SIZE)
          data = data or partial
          if data and data ~= "" then c.buf = c.buf .. data end
          if err and err ~= "timeout" then close_conn(srv, c, true) end
        end
      end
    end
    for i = 1, #w do
      local c = srv.by_sock[w[i]]
      if c and c.wait == "w" then resume(srv, c) end
    end
    if timeout then
      now = gettime()
      for c in pairs(srv.conns) do
        if c.wait == "t" and c.wake <= now then resume(srv, c) end
      end
    end
  end
  for c in pairs(srv.conns) do close_conn(srv, c, false) end
  server:close()
end

local function is_loopback(host)
  return host == "localhost" or host == "::1" or host == "[::1]"
    or match(host, "^127%.%d+%.%d+%.%d+$") ~= nil
end

local function usage_error(msg)
  io.stderr:write("fake-server: ", msg, "\nTry 'llamacloud fake-server --help'.\n")
  return 2
end

function M.main(argv)
  argv = argv or {}
  local port, host, scenario_path, log_limit = 0, "127.0.0.1", nil, DEFAULT_LOG_LIMIT
  local i = 1
  while argv[i] ~= nil do
    local a = tostring(argv[i])
    local name, inline = match(a, "^(%-%-[%w-]+)=(.*)$")
    name = name or a
    local function value()
      if inline then return inline end
      i = i + 1
      return argv[i]
    end
    if a == "-h" or a == "--help" then
      io.stdout:write(M.USAGE)
      io.stdout:flush()
      return 0
    elseif name == "--port" then
      local v = value()
      local n = type(v) == "string" and match(v, "^%d+$") and tonumber(v)
      if not n or n > 65535 then
        return usage_error("--port wants a number from 0 to 65535, got " .. tostring(v))
      end
      port = n
    elseif name == "--host" then
      local v = value()
      if type(v) ~= "string" or not is_loopback(v) then
        return usage_error("--host must be a loopback address (127.0.0.1, localhost, ::1), got "
          .. tostring(v))
      end
      host = v
    elseif name == "--log-limit" then
      local v = value()
      local n = type(v) == "string" and match(v, "^%d+$") and tonumber(v)
      if not n or n < 1 then
        return usage_error("--log-limit wants a whole number >= 1, got " .. tostring(v))
      end
      log_limit = n
    elseif name == "--scenario" then
      local v = value()
      if type(v) ~= "string" or v == "" then return usage_error("--scenario wants a file") end
      scenario_path = v
    else
      return usage_error("unknown argument '" .. a .. "'")
    end
    i = i + 1
  end

  local sc, src
  if scenario_path then
    sc, src = load_scenario_file(scenario_path)
    if not sc then return usage_error("bad scenario: " .. tostring(src)) end
  else
    src = M.DEFAULT_SCENARIO
    sc = compile_scenario(src)
  end

  local bind_host = host
  if host == "localhost" then bind_host = "127.0.0.1" end
  if host == "[::1]" then bind_host = "::1" end
  local server, err = socket.bind(bind_host, port, 1024)
  if not server then
    io.stderr:write("fake-server: cannot listen on ", host, ":", num_str(port), ": ",
      tostring(err), "\n")
    return 1
  end
  server:settimeout(0)
  local ip, bound = server:getsockname()
  if find(ip, ":", 1, true) then ip = "[" .. ip .. "]" end

  local srv = {
    server = server, scenario = sc, scenario_src = src, running = true,
    conns = {}, by_sock = {}, nopen = 0, nconn = 0, started = gettime(), accept_after = 0,
    stats = {}, log_limit = log_limit,
  }
  reset(srv)
  io.stdout:write("fake-server listening on http://", ip, ":", num_str(tonumber(bound)), "\n")
  io.stdout:flush()
  run(srv)
  return 0
end

return M
