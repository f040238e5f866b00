-- The fake server's routes: the LlamaCloud API under /api (batches get, create, list, cancel; the
-- parse and extract jobs) and the control endpoints under /_fake. Each request becomes a plan (status,
-- headers, body, delay, fault) computed without yielding, so it can run under pcall on PUC 5.1; the
-- HTTP loop then performs it.
local json = require("llamacloud.fake_server.json")
local http = require("llamacloud.fake_server.http")
local model = require("llamacloud.fake_server.model")
local scenario = require("llamacloud.fake_server.scenario")

local M = {}

local char, format, gsub, match, sub = string.char, string.format, string.gsub, string.match, string.sub
local concat = table.concat
local floor = math.floor
local NULL, ARRAY_MT, OBJECT_MT = json.null, json.ARRAY_MT, json.OBJECT_MT
local encode, decode, num_str, encode_string = json.encode, json.decode, json.num_str, json.encode_string
local is_object, is_list = json.is_object, json.is_list
local detail, reason = http.detail, http.reason
local obj = json.object
local fast_encode = require("cjson").new().encode

-- A recorded request body is cut to this size (body_truncated = true).
local MAX_RECORDED_BODY = 1048576

local function pct_decode(s)
  return (gsub(s, "%%(%x%x)", function(h) return char(tonumber(h, 16)) end))
end

local function form_decode(s)
  return pct_decode((gsub(s, "%+", " ")))
end

-- The query as a list of { key, value }, decoded, in order.
local function query_params(query)
  local out = {}
  for pair in string.gmatch(query, "[^&]+") do
    local k, v = match(pair, "^([^=]*)=?(.*)$")
    out[#out + 1] = { form_decode(k), form_decode(v) }
  end
  return out
end

local function expands(query)
  local set = {}
  for _, kv in ipairs(query_params(query)) do
    if kv[1] == "expand" then set[kv[2]] = true end
  end
  return set
end

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

-- The plan for one scripted step: its status, headers, delay and fault over the normal body, which
-- body_fn() builds only when a 2xx answer needs it.
local function step_plan(step, id, rid, body_fn)
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
      body = body_fn()
    else
      body = detail(reason(status))
    end
  end
  return { status = status, body = body, headers = step.headers, rid = rid,
           fault = fault, delay = step.delay, size = step.size,
           count = step.count, interval = step.interval, id = id }
end

local NORMAL_STEP = { status = 200, headers = {}, batch_status = "PENDING" }

-- The step of the n-th call of an endpoint scripted by `script` (the normal answer past its end, or
-- when it has none).
local function script_step(script, n)
  local steps = script.steps
  if #steps == 0 then return NORMAL_STEP end
  return model.step_at(steps, n)
end

-- Request log ------------------------------------------------------------------------------------

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

-- GET /_fake/requests and /_fake/deliveries: ?id=&since=&limit=, records after `since`, of one id
-- (a batch's or a job's), at most `limit`; x-fake-next-since when more follow.
local function log_plan(req, recs, first, last)
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
  local out, next_since = setmetatable({}, ARRAY_MT), nil
  local from = first
  if since and since + 1 > from then from = since + 1 end
  for seq = from, last do
    local rec = recs[seq]
    if rec and (id == nil or rec.batch_id == id or rec.job_id == id) then
      if limit and #out >= limit then next_since = out[#out].seq; break end
      out[#out + 1] = rec
    end
  end
  local headers = { { "x-fake-log-first", num_str(first), "x-fake-log-first" } }
  if next_since then
    headers[2] = { "x-fake-next-since", num_str(next_since), "x-fake-next-since" }
  end
  -- cjson, not the sorted encoder: a full log of 10,000 records must not hold up the loop for long
  -- (issue 13, defect 7). Records hold no empty list that cjson would write as {}.
  return simple_plan(200, #out == 0 and "[]" or fast_encode(out), { headers = headers })
end

-- Batches ----------------------------------------------------------------------------------------

local function get_batch(srv, req, rec, rid, id)
  local state = srv.state
  local entry = model.entry(state, id)
  if not entry then return simple_plan(404, detail("Batch not found"), { rid = rid }) end
  local n, step = model.poll(state, id, entry)
  rec.n = n
  local status = state.cancelled[id] and "CANCELLED" or step.batch_status
  return step_plan(step, id, rid, function()
    return encode(model.batch_table(state, id, entry, status, n, expands(req.query).results))
  end)
end

local CREATE_KEYS = { source_directory_id = true, config = true, webhook_configuration_ids = true,
                      webhook_configurations = true }
local WEBHOOK_KEYS = { webhook_url = true, webhook_events = true, webhook_headers = true,
                       webhook_output_format = true, webhook_signing_secret = true }

local function absent(v) return v == nil or v == NULL end

local function is_loopback(host)
  return host == "localhost" or host == "::1" or host == "[::1]"
    or match(host, "^127%.%d+%.%d+%.%d+$") ~= nil
end
M.is_loopback = is_loopback

-- http://HOST[:PORT]/PATH on loopback: host, port, path | nil.
local function parse_url(url)
  local host, port, path = match(url, "^[hH][tT][tT][pP]://(%[[^%]]+%])(:?%d*)(.*)$")
  if not host then host, port, path = match(url, "^[hH][tT][tT][pP]://([^/:?#]+)(:?%d*)(.*)$") end
  if not host or not is_loopback(host) then return nil end
  port = port ~= "" and tonumber(sub(port, 2)) or 80
  if not port or port < 1 or port > 65535 then return nil end
  if path == "" then path = "/" end
  if sub(path, 1, 1) ~= "/" or match(path, "[%s#]") then return nil end
  if host == "localhost" then host = "127.0.0.1" end
  if host == "[::1]" then host = "::1" end
  return host, port, path
end
M.parse_url = parse_url

-- The webhook configurations of a create body, checked: a list | nil, message.
local function check_webhooks(list)
  if absent(list) then return {} end
  if not is_list(list) then return nil, "webhook_configurations must be a list or null" end
  local out = {}
  for i = 1, #list do
    local w, where = list[i], format("webhook_configurations[%d]", i - 1)
    if not is_object(w) then return nil, where .. " must be an object" end
    for k in pairs(w) do
      if not WEBHOOK_KEYS[k] then return nil, where .. ": unknown field '" .. tostring(k) .. "'" end
    end
    if type(w.webhook_url) ~= "string" then return nil, where .. ".webhook_url must be a string" end
    local host, port, path = parse_url(w.webhook_url)
    if not host then
      return nil, where .. ".webhook_url must be an http:// URL on a loopback address"
        .. " (the fake server delivers nowhere else), got '" .. w.webhook_url .. "'"
    end
    local c = { url = w.webhook_url, host = host, port = port, path = path, headers = {},
                format = "string" }
    if not absent(w.webhook_events) then
      if not is_list(w.webhook_events) then return nil, where .. ".webhook_events must be a list or null" end
      c.events = {}
      for _, e in ipairs(w.webhook_events) do
        if not scenario.WEBHOOK_EVENTS[e] then
          return nil, where .. ".webhook_events: unknown event '" .. tostring(e) .. "'"
        end
        c.events[e] = true
      end
    end
    if not absent(w.webhook_headers) then
      if not is_object(w.webhook_headers) then return nil, where .. ".webhook_headers must be an object" end
      local names = {}
      for name, value in pairs(w.webhook_headers) do
        if type(name) ~= "string" or not match(name, "^[!#$%%&'*+%-.^_`|~%w]+$")
          or type(value) ~= "string" or match(value, "[\r\n]") then
          return nil, where .. ".webhook_headers must map header names to one-line strings"
        end
        names[#names + 1] = name
      end
      table.sort(names)
      for _, name in ipairs(names) do c.headers[#c.headers + 1] = { name, w.webhook_headers[name] } end
    end
    if not absent(w.webhook_output_format) then
      if w.webhook_output_format ~= "string" and w.webhook_output_format ~= "json" then
        return nil, where .. ".webhook_output_format must be \"string\" or \"json\""
      end
      c.format = w.webhook_output_format
    end
    if not absent(w.webhook_signing_secret) then
      if type(w.webhook_signing_secret) ~= "string" then
        return nil, where .. ".webhook_signing_secret must be a string"
      end
      c.secret = w.webhook_signing_secret
    end
    out[i] = c
  end
  return out
end

-- The create body, checked: body, webhooks | nil, message.
local function check_create(text)
  local body = decode(text)
  if not is_object(body) or getmetatable(body) == ARRAY_MT then
    return nil, "the body must be a JSON object"
  end
  for k in pairs(body) do
    if not CREATE_KEYS[k] then return nil, "unknown field '" .. tostring(k) .. "'" end
  end
  if type(body.source_directory_id) ~= "string" or body.source_directory_id == "" then
    return nil, "source_directory_id must be a non-empty string"
  end
  local job = is_object(body.config) and body.config.job
  if not is_object(job) then return nil, "config.job must be an object" end
  if not scenario.JOB_TYPES[job.type] then return nil, "config.job.type must be parse_v2 or extract_v2" end
  if type(job.configuration_id) ~= "string" or job.configuration_id == "" then
    return nil, "config.job.configuration_id must be a non-empty string"
  end
  local ids = body.webhook_configuration_ids
  if not absent(ids) then
    if not is_list(ids) then return nil, "webhook_configuration_ids must be a list or null" end
    for _, v in ipairs(ids) do
      if type(v) ~= "string" then return nil, "webhook_configuration_ids must hold strings" end
    end
  end
  local hooks, err = check_webhooks(body.webhook_configurations)
  if not hooks then return nil, err end
  return body, hooks
end

local function project_of(query)
  for _, kv in ipairs(query_params(query)) do
    if kv[1] == "project_id" and kv[2] ~= "" then return kv[2] end
  end
end

local function create_batch(srv, req, rec, rid)
  local state = srv.state
  state.ncreate = state.ncreate + 1
  rec.n = state.ncreate
  local step = script_step(srv.scenario.create, state.ncreate)
  if step.status < 200 or step.status >= 300 then
    return step_plan(step, "", rid, nil)
  end
  local body, hooks = check_create(req.body)
  if not body then return simple_plan(422, detail(hooks), { rid = rid }) end
  body.webhook_configurations = hooks
  local b, code, msg = model.create(state, body, project_of(req.query), http.gettime())
  if not b then return simple_plan(code, detail(msg), { rid = rid }) end
  rec.batch_id = b.id
  local plan = step_plan(step, b.id, rid, function()
    return encode(model.batch_table(state, b.id, b.entry, model.status(state, b.id, b.entry), 0, false))
  end)
  -- deliveries and the advance timer start once the answer is on its way
  plan.after = function() srv.created(b) end
  return plan
end

local LIST_KEYS = { page_size = true, page_token = true, status = true, source_directory_id = true,
                    created_at_on_or_after = true, created_at_on_or_before = true,
                    organization_id = true, project_id = true }
local DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE = 100, 1000

local function list_filters(query)
  local f = { page_size = DEFAULT_PAGE_SIZE, offset = 0 }
  for _, kv in ipairs(query_params(query)) do
    local k, v = kv[1], kv[2]
    if not LIST_KEYS[k] then return nil, 422, "unknown query parameter '" .. k .. "'" end
    if k == "page_size" then
      local n = match(v, "^%d+$") and tonumber(v)
      if not n or n < 1 or n > MAX_PAGE_SIZE then
        return nil, 422, "page_size must be an integer from 1 to " .. MAX_PAGE_SIZE .. ", got '" .. v .. "'"
      end
      f.page_size = n
    elseif k == "page_token" then
      if v ~= "" then
        local n = match(v, "^pt%-(%d+)$")
        if not n then return nil, 400, "Invalid page_token '" .. v .. "'" end
        f.offset = tonumber(n)
      end
    elseif k == "status" then
      if not model.STATUSES[v] then return nil, 422, "status must be one of PENDING, THROTTLED, "
        .. "RUNNING, COMPLETED, FAILED, CANCELLED, got '" .. v .. "'" end
      f.status = v
    elseif k == "source_directory_id" then
      f.source_directory_id = v
    elseif k == "created_at_on_or_after" or k == "created_at_on_or_before" then
      local t = model.parse_time(v)
      if not t then return nil, 422, k .. " must be an RFC 3339 date-time, got '" .. v .. "'" end
      if k == "created_at_on_or_after" then f.after = t else f.before = t end
    end
  end
  return f
end

local function list_batches(srv, req, rec, rid)
  local state = srv.state
  state.nlist = state.nlist + 1
  rec.n = state.nlist
  local step = script_step(srv.scenario.list, state.nlist)
  if step.status < 200 or step.status >= 300 then return step_plan(step, "", rid, nil) end
  local f, code, msg = list_filters(req.query)
  if not f then return simple_plan(code, detail(msg), { rid = rid }) end
  return step_plan(step, "", rid, function()
    local items, next_offset = model.list(state, f)
    return encode(obj({ items = items, next_page_token = next_offset and ("pt-" .. next_offset) or NULL }))
  end)
end

local function cancel_batch(srv, rec, rid, id)
  local state = srv.state
  local entry = model.entry(state, id)
  if not entry then return simple_plan(404, detail("Batch not found"), { rid = rid }) end
  local n = (state.cancel_counters[id] or 0) + 1
  state.cancel_counters[id] = n
  rec.n = n
  local step = script_step(srv.scenario.cancel, n)
  if step.status < 200 or step.status >= 300 then return step_plan(step, id, rid, nil) end
  local before = model.status(state, id, entry)
  local ok, code, msg = model.cancel(state, id, entry)
  if not ok then return simple_plan(code, detail(msg), { rid = rid }) end
  return step_plan(step, id, rid, function()
    return encode(model.batch_table(state, id, entry, before, state.counters[id] or 0, false))
  end)
end

-- Jobs -------------------------------------------------------------------------------------------

local function job_pages(job)
  return job.entry.pages or { { markdown = "# " .. job.name .. "\n\nParsed by the fake LlamaCloud.",
                                text = job.name .. "\n\nParsed by the fake LlamaCloud." } }
end

local function error_of(job, status)
  if status == "FAILED" then return job.entry.error_message or "job failed" end
  if status == "CANCELLED" then return "job cancelled" end
  return NULL
end

local function parse_table(job, status, ex)
  local pages = job_pages(job)
  local t = obj({
    job = obj({ id = job.id, project_id = "prj-fake", status = status,
                error_message = error_of(job, status), name = job.name, tier = "fast",
                created_at = job.created_at, updated_at = job.created_at,
                usage = obj({ credits = #pages }), user_metadata = NULL }),
  })
  if job.entry.fields then model.merge(t.job, job.entry.fields) end
  local done = status == "COMPLETED"
  for name in pairs(ex) do t[name] = NULL end
  if done and ex.markdown then
    local list = setmetatable({}, ARRAY_MT)
    for i, p in ipairs(pages) do
      if p.error then
        list[i] = obj({ page_number = i, error = p.error, success = false })
      else
        list[i] = obj({ page_number = i, markdown = p.markdown, success = true,
                        header = p.header, footer = p.footer })
      end
    end
    t.markdown = obj({ pages = list })
  end
  if done and ex.text then
    local list = setmetatable({}, ARRAY_MT)
    for i, p in ipairs(pages) do list[i] = obj({ page_number = i, text = p.error and "" or p.text }) end
    t.text = obj({ pages = list })
  end
  local function full(field)
    local parts = {}
    for _, p in ipairs(pages) do if not p.error then parts[#parts + 1] = p[field] end end
    return concat(parts, "\n\n")
  end
  if done and ex.markdown_full then t.markdown_full = full("markdown") end
  if done and ex.text_full then t.text_full = full("text") end
  return t
end

local function extract_table(job, status, ex)
  local pages = job_pages(job)
  local t = obj({
    id = job.id, project_id = "prj-fake", status = status, file_input = job.name,
    created_at = job.created_at, updated_at = job.created_at, configuration = NULL,
    configuration_id = "cfg-fake", error_message = error_of(job, status), extract_metadata = NULL,
    extract_result = NULL, metadata = NULL, usage = NULL,
  })
  if status == "COMPLETED" then
    t.extract_result = job.entry.extract_result or obj({ file = job.name, pages = #pages })
  end
  if ex.configuration then t.configuration = obj({ tier = "fast" }) end
  if ex.extract_metadata then t.extract_metadata = obj({ pages = #pages }) end
  if ex.usage then t.usage = obj({ credits = #pages }) end
  if job.entry.fields then model.merge(t, job.entry.fields) end
  return t
end

local function get_job(srv, req, rec, rid, id, job_type)
  local job = model.job(srv.state, id, job_type)
  if not job then return simple_plan(404, detail("Job not found"), { rid = rid }) end
  local n, step = model.poll_job(job)
  rec.n = n
  local status = job.cancelled and "CANCELLED" or step.batch_status
  return step_plan(step, id, rid, function()
    local ex = expands(req.query)
    return encode(job_type == "parse_v2" and parse_table(job, status, ex) or extract_table(job, status, ex))
  end)
end

-- /api -------------------------------------------------------------------------------------------

local function api_plan(srv, req, c)
  http.count_api_conn(srv, c)
  local seq = srv.nrec + 1
  srv.nrec = seq
  srv.stats.requests_total = srv.stats.requests_total + 1
  local body = req.body
  local rec = obj({
    method = req.method, path = req.path, query = req.query,
    batch_id = NULL, job_id = NULL, n = NULL, headers = req.headers,
    t = floor((req.t - srv.started) * 1e6 + 0.5) / 1e6,
    conn = c.api_no, request_id = "req-" .. seq, seq = seq,
    body = #body > MAX_RECORDED_BODY and sub(body, 1, MAX_RECORDED_BODY) or body,
  })
  if #body > MAX_RECORDED_BODY then rec.body_truncated = true end
  log_record(srv, rec)
  local rid = { "x-request-id", "req-" .. seq, "x-request-id" }
  local sc, p, m = srv.scenario, req.path, req.method

  local raw_id, action = match(p, "^/api/v2/batches/([^/]+)(.*)$")
  local id = raw_id and pct_decode(raw_id)
  if id and (action == "" or action == "/cancel") then rec.batch_id = id end
  local kind, raw_job = match(p, "^/api/v2/(%l+)/([^/]+)$")
  local job_type = (kind == "parse" and "parse_v2") or (kind == "extract" and "extract_v2") or nil
  local job_id = job_type and pct_decode(raw_job)
  if job_id then rec.job_id = job_id end

  if sc.api_key and req.headers.authorization ~= "Bearer " .. sc.api_key then
    return simple_plan(401, detail("Invalid API key"), { rid = rid })
  end
  if id and action == "" and m == "GET" then return get_batch(srv, req, rec, rid, id) end
  if id and action == "/cancel" and m == "POST" then return cancel_batch(srv, rec, rid, id) end
  if p == "/api/v2/batches" and m == "POST" then return create_batch(srv, req, rec, rid) end
  if p == "/api/v2/batches" and m == "GET" then return list_batches(srv, req, rec, rid) end
  if job_id and m == "GET" then return get_job(srv, req, rec, rid, job_id, job_type) end
  return simple_plan(404, detail("Not Found"), { rid = rid })
end

-- /_fake -----------------------------------------------------------------------------------------

local function ok_body() return encode(obj({ ok = true })) end

local function control_plan(srv, req)
  local p, m = req.path, req.method
  local function only(method)
    if m ~= method then
      return simple_plan(405, detail("Method Not Allowed"),
        { headers = { { "Allow", method, "allow" } } })
    end
  end
  if p == "/_fake/requests" then
    return only("GET") or log_plan(req, srv.records, srv.log_first, srv.nrec)
  elseif p == "/_fake/deliveries" then
    local limit = srv.scenario.log_limit or srv.log_limit
    local first = srv.ndeliveries - limit + 1
    return only("GET") or log_plan(req, srv.deliveries, first > 1 and first or 1, srv.ndeliveries)
  elseif p == "/_fake/stats" then
    return only("GET") or simple_plan(200, encode(setmetatable(srv.stats, OBJECT_MT)))
  elseif p == "/_fake/reset" then
    local bad = only("POST")
    if bad then return bad end
    srv.reset(srv)
    return simple_plan(200, ok_body())
  elseif p == "/_fake/scenario" then
    if m == "GET" then
      return simple_plan(200, encode(srv.scenario_src))
    end
    local bad = only("PUT")
    if bad then return bad end
    local raw, err = decode(req.body)
    if raw == nil then return simple_plan(400, detail("invalid JSON: " .. err)) end
    local ok, sc = pcall(scenario.compile, raw)
    if not ok then return simple_plan(400, detail(tostring(sc))) end
    srv.scenario, srv.scenario_src = sc, raw
    srv.reset(srv)
    return simple_plan(200, ok_body())
  elseif p == "/_fake/shutdown" then
    return only("POST") or simple_plan(200, ok_body(), { close = true, shutdown = true })
  end
  return simple_plan(404, detail("Not Found"))
end

-- The loop's handler: the plan for one request.
function M.handle(srv, req, c)
  local p = req.path
  if sub(p, 1, 5) == "/api/" or p == "/api" then return api_plan(srv, req, c) end
  if sub(p, 1, 7) == "/_fake/" then return control_plan(srv, req) end
  return simple_plan(404, detail("Not Found"))
end

return M
