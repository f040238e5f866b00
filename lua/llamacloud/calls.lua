-- Every call, declared once: its resource and name, the engine requests it makes (method, path, options,
-- retry policy, response shape: compiled by core.call), how its arguments are checked and turned into a
-- request, and its kind (one request, a poll loop of wait.lua, an iterator, a pure function). The binder
-- (bind.lua) reads this list; no host file names a call.
local core = require("llamacloud.core")

local M = {}

local STATUSES = { PENDING = true, THROTTLED = true, RUNNING = true, COMPLETED = true, FAILED = true,
                   CANCELLED = true }
local JOB_TYPES = { parse_v2 = true, extract_v2 = true }

-- The per-call options every request takes (API.md, "The batch lifecycle").
local COMMON = { "organization_id", "project_id", "timeout", "max_retries", "headers", "extra_query", "deadline" }

local function options(...)
  local out = { ... }
  for i = 1, #COMMON do out[#out + 1] = COMMON[i] end
  return out
end

-- Raises msg at the first caller outside this library (hosts add frames of their own, a different
-- number each), so an argument error names the user's line as get's do (spec/wait_spec.lua, "names
-- the caller's line").
local function raise(msg)
  local level = 2
  while true do
    local info = debug.getinfo(level, "S")
    if not info then break end
    -- 5.1 shows a tail call as a frame of its own
    if info.what ~= "tail" and not info.source:find("[@/\\]llamacloud[/\\][%w_/\\]*%.lua$") then break end
    level = level + 1
  end
  error(msg, level)
end
M.raise = raise

-- ---- argument checks: each raises naming the call and the field ----

local function is_list(t)
  local n = #t
  for k in pairs(t) do
    if type(k) ~= "number" or k < 1 or k > n or k ~= math.floor(k) then return false end
  end
  return true
end
M.is_list = is_list

local function check_known(t, known, fn, where)
  for k in pairs(t) do
    if not known[k] then raise("llamacloud: " .. fn .. ": unknown field '" .. where .. tostring(k) .. "'") end
  end
end

local function check_string(v, fn, name, required)
  if v == nil and not required then return end
  if type(v) ~= "string" then
    raise("llamacloud: " .. fn .. ": '" .. name .. "' must be a string (got " .. type(v) .. ")")
  end
end

local function check_table(v, fn, name, required)
  if v == nil and not required then return false end
  if type(v) ~= "table" then
    raise("llamacloud: " .. fn .. ": '" .. name .. "' must be a table (got " .. type(v) .. ")")
  end
  return true
end

local function check_string_list(v, fn, name)
  if not check_table(v, fn, name) then return end
  if not is_list(v) then raise("llamacloud: " .. fn .. ": '" .. name .. "' must be a list of strings") end
  for i = 1, #v do check_string(v[i], fn, name .. "[" .. i .. "]", true) end
end

local WEBHOOK_FIELDS = { webhook_url = true, webhook_events = true, webhook_headers = true,
                         webhook_output_format = true, webhook_signing_secret = true }

local function check_webhook(c, fn, name)
  check_table(c, fn, name, true)
  check_known(c, WEBHOOK_FIELDS, fn, name .. ".")
  check_string(c.webhook_url, fn, name .. ".webhook_url", true)
  check_string_list(c.webhook_events, fn, name .. ".webhook_events")
  if check_table(c.webhook_headers, fn, name .. ".webhook_headers") then
    for k, v in pairs(c.webhook_headers) do
      if type(k) ~= "string" or type(v) ~= "string" then
        raise("llamacloud: " .. fn .. ": '" .. name .. ".webhook_headers' must map strings to strings")
      end
    end
  end
  local f = c.webhook_output_format
  if f ~= nil and f ~= "string" and f ~= "json" then
    raise("llamacloud: " .. fn .. ": '" .. name .. ".webhook_output_format' must be \"string\" or \"json\"")
  end
  check_string(c.webhook_signing_secret, fn, name .. ".webhook_signing_secret")
end

local CREATE_FIELDS = { source_directory_id = true, config = true, webhook_configuration_ids = true,
                        webhook_configurations = true }

local function check_create(p)
  local fn = "create"
  if type(p) ~= "table" then raise("llamacloud: create: params must be a table (got " .. type(p) .. ")") end
  check_known(p, CREATE_FIELDS, fn, "")
  check_string(p.source_directory_id, fn, "source_directory_id", true)
  check_table(p.config, fn, "config", true)
  check_known(p.config, { job = true }, fn, "config.")
  local job = p.config.job
  check_table(job, fn, "config.job", true)
  check_known(job, { type = true, configuration_id = true }, fn, "config.job.")
  if not JOB_TYPES[job.type] then
    raise("llamacloud: create: 'config.job.type' must be \"parse_v2\" or \"extract_v2\" (got "
      .. (type(job.type) == "string" and ("\"" .. job.type .. "\"") or type(job.type)) .. ")")
  end
  check_string(job.configuration_id, fn, "config.job.configuration_id", true)
  check_string_list(p.webhook_configuration_ids, fn, "webhook_configuration_ids")
  local hooks = p.webhook_configurations
  if check_table(hooks, fn, "webhook_configurations") then
    if not is_list(hooks) then raise("llamacloud: create: 'webhook_configurations' must be a list") end
    for i = 1, #hooks do check_webhook(hooks[i], fn, "webhook_configurations[" .. i .. "]") end
  end
end

-- ---- the create body: written from the checked params by their schema, so an empty list is [],
-- an empty map {}, and nothing of cjson's table guessing (sparse arrays, numbers) can leak ----

local sort, concat, byte, format, gsub = table.sort, table.concat, string.byte, string.format, string.gsub

-- A JSON string for when lua-cjson is not installed (Neovim ships none): RFC 8259's escapes, the
-- bytes otherwise as they are, as cjson writes them but for its "\/".
local ESCAPES = { ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f", ["\n"] = "\\n",
                  ["\r"] = "\\r", ["\t"] = "\\t" }
local function plain_encode_string(s)
  return '"' .. gsub(s, '[%c"\\]', function(c)
    return ESCAPES[c] or format("\\u%04x", byte(c))
  end) .. '"'
end

-- lua-cjson's encoder, a private instance (no setting of the user's cjson is touched), loaded at the
-- first create, so that require("llamacloud") needs no cjson (spec/create_spec.lua, "without lua-cjson").
local encode_string
local function string_encoder()
  if not encode_string then
    local ok, cjson = pcall(require, "cjson")
    encode_string = ok and type(cjson) == "table" and cjson.new and cjson.new().encode or plain_encode_string
  end
  return encode_string
end
M.plain_encode_string = plain_encode_string

local function string_list(t)
  local out = {}
  for i = 1, #t do out[i] = encode_string(t[i]) end
  return "[" .. concat(out, ",") .. "]"
end

-- An object from an ordered list of { key, json_text_or_nil }.
local function object(members)
  local out = {}
  for i = 1, #members do
    local m = members[i]
    if m[2] ~= nil then out[#out + 1] = encode_string(m[1]) .. ":" .. m[2] end
  end
  return "{" .. concat(out, ",") .. "}"
end

local function string_map(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  sort(keys)
  local members = {}
  for i = 1, #keys do members[i] = { keys[i], encode_string(t[keys[i]]) } end
  return object(members)
end

local function opt(v, f) if v ~= nil then return f(v) end end

local function webhook_json(c)
  return object({
    { "webhook_url", encode_string(c.webhook_url) },
    { "webhook_events", opt(c.webhook_events, string_list) },
    { "webhook_headers", opt(c.webhook_headers, string_map) },
    { "webhook_output_format", opt(c.webhook_output_format, encode_string) },
    { "webhook_signing_secret", opt(c.webhook_signing_secret, encode_string) },
  })
end

function M.create_body(p)
  string_encoder()
  local hooks
  if p.webhook_configurations then
    local out = {}
    for i = 1, #p.webhook_configurations do out[i] = webhook_json(p.webhook_configurations[i]) end
    hooks = "[" .. concat(out, ",") .. "]"
  end
  return object({
    { "source_directory_id", encode_string(p.source_directory_id) },
    { "config", object({ { "job", object({
      { "type", encode_string(p.config.job.type) },
      { "configuration_id", encode_string(p.config.job.configuration_id) },
    }) } }) },
    { "webhook_configuration_ids", opt(p.webhook_configuration_ids, string_list) },
    { "webhook_configurations", hooks },
  })
end

-- ---- list's query ----

local LIST_FIELDS = { status = true, source_directory_id = true, created_at_on_or_after = true,
                      created_at_on_or_before = true, page_size = true, page_token = true }

local function check_list(p, fn)
  if p == nil then return {} end
  if type(p) ~= "table" then raise("llamacloud: " .. fn .. ": params must be a table (got " .. type(p) .. ")") end
  check_known(p, LIST_FIELDS, fn, "")
  if p.status ~= nil and not STATUSES[p.status] then
    raise("llamacloud: " .. fn .. ": 'status' must be one of PENDING, THROTTLED, RUNNING, COMPLETED, FAILED, "
      .. "CANCELLED (got " .. tostring(p.status) .. ")")
  end
  local size = p.page_size
  if size ~= nil and (type(size) ~= "number" or size < 1 or size ~= math.floor(size) or size >= 2 ^ 31) then
    raise("llamacloud: " .. fn .. ": 'page_size' must be a positive whole number (got " .. tostring(size) .. ")")
  end
  check_string(p.source_directory_id, fn, "source_directory_id")
  check_string(p.created_at_on_or_after, fn, "created_at_on_or_after")
  check_string(p.created_at_on_or_before, fn, "created_at_on_or_before")
  check_string(p.page_token, fn, "page_token")
  local q = {}
  for k, v in pairs(p) do q[k] = v end
  -- a whole number goes out without a fraction on every Lua (5.3's 50.0 would print "50.0")
  if size then q.page_size = string.format("%d", size) end
  return q
end
M.check_list = check_list

-- ---- jobs ----

local function check_job_reference(ref, fn)
  if type(ref) ~= "table" then
    raise("llamacloud: " .. fn .. ": job_reference must be a table { type = ..., id = ... } (got " .. type(ref) .. ")")
  end
  if not JOB_TYPES[ref.type] then
    raise("llamacloud: " .. fn .. ": job_reference.type must be \"parse_v2\" or \"extract_v2\" (got "
      .. tostring(ref.type) .. ")")
  end
  if type(ref.id) ~= "string" then
    raise("llamacloud: " .. fn .. ": job_reference.id must be a string (got " .. type(ref.id) .. ")")
  end
end
M.check_job_reference = check_job_reference

-- The status of a job of either shape: a parse job's job.status, an extract job's status.
function M.job_status(job)
  if type(job) ~= "table" then raise("llamacloud: jobs.status: job must be a table (got " .. type(job) .. ")") end
  if type(job.job) == "table" and job.job.status ~= nil then return job.job.status end
  return job.status
end

-- ---- the engine requests, compiled once ----

local ENGINE = {
  batch_get = { name = "get", method = "GET", path = "/api/v2/batches/", id_name = "batch_id",
                options = options("expand"), repeated = "expand", policy = "idempotent", shape = "batch" },
  create = { name = "create", method = "POST", path = "/api/v2/batches", options = options(),
             policy = "create", shape = "batch" },
  list = { name = "list", method = "GET", path = "/api/v2/batches", options = options(),
           policy = "idempotent", shape = "page" },
  cancel = { name = "cancel", method = "POST", path = "/api/v2/batches/", suffix = "/cancel", id_name = "batch_id",
             options = options(), policy = "idempotent", shape = "batch" },
  parse_v2 = { name = "jobs.get", method = "GET", path = "/api/v2/parse/", id_name = "job_reference.id",
               options = options("expand"), repeated = "expand", policy = "idempotent", shape = "job" },
  extract_v2 = { name = "jobs.get", method = "GET", path = "/api/v2/extract/", id_name = "job_reference.id",
                 options = options("expand"), repeated = "expand", policy = "idempotent", shape = "job" },
}
M.engine = {}
for k, decl in pairs(ENGINE) do M.engine[k] = core.call(decl) end

-- ---- the calls ----
M.list_decl = { resource = "batches", name = "list", kind = "request",
  prepare = function(params, opts)
    return M.engine.list, nil, opts, check_list(params, "list"), nil
  end }

-- kind "request": prepare(first, opts) returns engine, id, opts, query, body; "direct" ones take
-- (id [, opts]) as the engine does, so a blocking host may use the C closure itself.
-- kind "poll": wait.lua's function of that name, (host, ud, first, opts).
-- kind "iterator": a generic-for iterator over list's pages. kind "pure": a plain function.
M.list = {
  { resource = "batches", name = "get", kind = "request", direct = true, engine = M.engine.batch_get },
  { resource = "batches", name = "wait", kind = "poll" },
  { resource = "batches", name = "get_many", kind = "poll" },
  { resource = "batches", name = "wait_many", kind = "poll" },
  { resource = "batches", name = "wait_files", kind = "poll" },
  { resource = "batches", name = "create", kind = "request",
    prepare = function(params, opts)
      check_create(params)
      return M.engine.create, nil, opts, nil, M.create_body(params)
    end },
  M.list_decl,
  { resource = "batches", name = "each", kind = "iterator" },
  { resource = "batches", name = "cancel", kind = "request", direct = true, engine = M.engine.cancel },
  { resource = "batches", name = "outcomes", kind = "pure" },
  { resource = "jobs", name = "get", kind = "request",
    prepare = function(ref, opts)
      check_job_reference(ref, "jobs.get")
      return M.engine[ref.type], ref.id, opts, nil, nil
    end },
  { resource = "jobs", name = "status", kind = "pure", fn = M.job_status },
}

return M
