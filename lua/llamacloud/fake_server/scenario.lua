-- The scenario format of the fake server: validation and compilation of a scenario table (from JSON
-- or a .lua file), and the built-in demo scenario. docs/fake-server.md describes every field.
local json = require("llamacloud.fake_server.json")

local M = {}

local find, format, lower, match, sub = string.find, string.format, string.lower, string.match, string.sub
local sort = table.sort
local huge = math.huge
local NULL, ARRAY_MT = json.null, json.ARRAY_MT
local is_int, num_str, encode, decode = json.is_int, json.num_str, json.encode, json.decode
local is_object, is_list = json.is_object, json.is_list

M.FAULTS = {
  drop = true, reset_headers = true, truncate = true, malformed = true,
  not_object = true, missing_fields = true, huge = true, endless = true,
  trickle = true, many_headers = true, length_short = true,
  length_long = true, binary = true, rst_headers = true, rst_body = true,
}
local FAULTS = M.FAULTS

M.JOB_TYPES = { parse_v2 = true, extract_v2 = true }
M.WEBHOOK_EVENTS = { ["batch.pending"] = true, ["batch.running"] = true, ["batch.success"] = true,
                     ["batch.error"] = true, ["batch.cancelled"] = true }
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
  jobs = {
    ["pjb-demo-0001"] = { steps = { "COMPLETED" }, name = "report.pdf",
                          pages = { "# Report\n\nPage one.", "Page two." } },
    ["pjb-demo-0002"] = { steps = { "RUNNING", "COMPLETED" }, name = "slides.pdf",
                          pages = { "# Slides" } },
  },
  -- POST /api/v2/batches with source_directory_id dir-demo: four files, one job that fails, one
  -- page that fails, one file that cannot be mapped.
  directories = {
    ["dir-demo"] = { files = {
      { id = "dfl-demo-0001", name = "report.pdf",
        job = { pages = { "# Report\n\nPage one.", "Page two." } } },
      { id = "dfl-demo-0002", name = "slides.pdf",
        job = { steps = { "PENDING", "RUNNING", "RUNNING", "COMPLETED" },
                pages = { "# Slides", { error = "could not read page" } } } },
      { id = "dfl-demo-0003", name = "scan.tiff",
        job = { steps = { "RUNNING", "FAILED" }, error_message = "document is password protected" } },
      { id = "dfl-demo-0004", name = "tool.exe", mapping_error = "unsupported file type" },
    } },
  },
}

-- The most files a created batch may have, as the service documents.
M.MAX_FILES = 1000

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


local function check_string(v, where)
  if v ~= nil and type(v) ~= "string" then error(where .. " must be a string", 0) end
end

local STEP_KEYS = {
  batch_status = true, job_status = true, status = true, headers = true, body = true,
  delay = true, fault = true, size = true, count = true, interval = true,
}

-- A step: a status string (the batch's or job's), or an object with an HTTP status, headers, a body,
-- a delay, a fault. `batch_status` and `job_status` are one field under two names.
local function compile_step(raw, where, default_status)
  if type(raw) == "string" then
    return { batch_status = raw, status = 200, headers = {} }
  end
  if not is_object(raw) then
    error(where .. " must be a status string or an object", 0)
  end
  check_keys(raw, STEP_KEYS, where)
  local step = { status = raw.status or 200, headers = {},
                 batch_status = raw.batch_status or raw.job_status or default_status,
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

local function compile_steps(raw, where, first_status)
  local steps = {}
  if raw ~= nil then
    if not is_list(raw) then error(where .. " must be an array", 0) end
    local current = first_status
    for i = 1, #raw do
      local step = compile_step(raw[i], format("%s[%d]", where, i), current)
      if type(raw[i]) == "string" then current = raw[i] end
      steps[i] = step
    end
  end
  return steps
end

local ENTRY_KEYS = { batch = true, results = true, results_from = true, steps = true, omit = true,
                     advance_every = true }

local function compile_entry(raw, where)
  if not is_object(raw) then error(where .. " must be an object", 0) end
  check_keys(raw, ENTRY_KEYS, where)
  local entry = { batch = raw.batch, results = raw.results, results_from = raw.results_from or 1,
                  results_from_given = raw.results_from ~= nil, omit = raw.omit or {},
                  advance_every = raw.advance_every }
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
  check_number(raw.advance_every, where .. ".advance_every", 0.001)
  if not is_list(entry.omit) then error(where .. ".omit must be an array of field names", 0) end
  for i = 1, #entry.omit do
    if type(entry.omit[i]) ~= "string" then error(where .. ".omit must hold strings", 0) end
  end
  local steps = compile_steps(raw.steps, where .. ".steps", "PENDING")
  if #steps == 0 then
    local status = entry.batch and entry.batch.status
    steps[1] = { batch_status = type(status) == "string" and status or "COMPLETED",
                 status = 200, headers = {} }
  end
  entry.steps = steps
  return entry
end

local CREATED_DEFAULT = { steps = { "PENDING", "RUNNING", "COMPLETED" } }

-- The entry of a created batch: without results_from, results show from the first step that is
-- neither PENDING nor THROTTLED.
local function compile_created(raw, where)
  local entry = compile_entry(raw, where)
  if not entry.results_from_given then
    local from = #entry.steps + 1
    for i, step in ipairs(entry.steps) do
      if step.batch_status ~= "PENDING" and step.batch_status ~= "THROTTLED" then from = i; break end
    end
    entry.results_from = from
  end
  return entry
end

local PAGE_KEYS = { markdown = true, text = true, error = true, header = true, footer = true }

local function compile_pages(raw, where)
  if not is_list(raw) then error(where .. " must be an array", 0) end
  local pages = {}
  for i = 1, #raw do
    local p, w = raw[i], format("%s[%d]", where, i)
    if type(p) == "string" then
      pages[i] = { markdown = p, text = p }
    else
      if not is_object(p) then error(w .. " must be a string or an object", 0) end
      check_keys(p, PAGE_KEYS, w)
      for k in pairs(PAGE_KEYS) do check_string(p[k], w .. "." .. k) end
      pages[i] = { markdown = p.markdown or p.text or "", text = p.text or p.markdown or "",
                   error = p.error, header = p.header, footer = p.footer }
    end
  end
  return pages
end

local JOB_KEYS = { type = true, steps = true, pages = true, error_message = true, job = true,
                   extract_result = true, name = true }

-- A job a file (or a batch's result) points to: its statuses per GET, its pages, its failure.
local function compile_job(raw, where)
  if raw == nil then raw = {} end
  if is_list(raw) and next(raw) ~= nil then raw = { steps = raw } end
  if not is_object(raw) then error(where .. " must be an object (or an array of steps)", 0) end
  check_keys(raw, JOB_KEYS, where)
  if raw.type ~= nil and not M.JOB_TYPES[raw.type] then
    error(where .. ".type must be parse_v2 or extract_v2", 0)
  end
  check_string(raw.error_message, where .. ".error_message")
  check_string(raw.name, where .. ".name")
  if raw.job ~= nil and not is_object(raw.job) then error(where .. ".job must be an object", 0) end
  local job = { type = raw.type, error_message = raw.error_message, name = raw.name,
                fields = raw.job, extract_result = raw.extract_result }
  job.steps = compile_steps(raw.steps, where .. ".steps", "PENDING")
  if #job.steps == 0 then job.steps = compile_steps({ "PENDING", "RUNNING", "COMPLETED" }, where, "PENDING") end
  if raw.pages ~= nil then
    job.pages = compile_pages(raw.pages, where .. ".pages")
  end
  return job
end

local FILE_KEYS = { id = true, name = true, mapping_error = true, unmapped = true, job = true }

local function compile_file(raw, where)
  if not is_object(raw) then error(where .. " must be an object", 0) end
  check_keys(raw, FILE_KEYS, where)
  check_string(raw.id, where .. ".id")
  check_string(raw.name, where .. ".name")
  check_string(raw.mapping_error, where .. ".mapping_error")
  if raw.unmapped ~= nil and type(raw.unmapped) ~= "boolean" then
    error(where .. ".unmapped must be a boolean", 0)
  end
  return { id = raw.id, name = raw.name, mapping_error = raw.mapping_error,
           unmapped = raw.unmapped or false, job = compile_job(raw.job, where .. ".job") }
end

local DIR_KEYS = { files = true, count = true, file = true, batch = true }

local function compile_directory(raw, where)
  if not is_object(raw) then error(where .. " must be an object", 0) end
  check_keys(raw, DIR_KEYS, where)
  local dir = { files = {}, count = raw.count or 0 }
  if raw.files ~= nil then
    if not is_list(raw.files) then error(where .. ".files must be an array", 0) end
    for i = 1, #raw.files do dir.files[i] = compile_file(raw.files[i], format("%s.files[%d]", where, i)) end
  end
  if raw.count ~= nil and (not is_int(raw.count) or raw.count < 0) then
    error(where .. ".count must be a whole number >= 0", 0)
  end
  dir.file = compile_file(raw.file or {}, where .. ".file")
  if raw.batch ~= nil then dir.batch = compile_created(raw.batch, where .. ".batch") end
  return dir
end

-- create, list, cancel: the steps of an endpoint that is not a batch's GET.
local function compile_script(raw, where)
  if not is_object(raw) then error(where .. " must be an object", 0) end
  check_keys(raw, { steps = true }, where)
  return { steps = compile_steps(raw.steps, where .. ".steps", "PENDING") }
end

local WEBHOOK_KEYS = { retries = true, backoff = true, timeout = true, advance_every = true }

local function compile_webhooks(raw)
  raw = raw or {}
  if not is_object(raw) then error("scenario.webhooks must be an object", 0) end
  check_keys(raw, WEBHOOK_KEYS, "scenario.webhooks")
  if raw.retries ~= nil and (not is_int(raw.retries) or raw.retries < 0 or raw.retries > 10) then
    error("scenario.webhooks.retries must be a whole number from 0 to 10", 0)
  end
  check_number(raw.backoff, "scenario.webhooks.backoff", 0)
  check_number(raw.timeout, "scenario.webhooks.timeout", 0.001)
  check_number(raw.advance_every, "scenario.webhooks.advance_every", 0.001)
  return { retries = raw.retries or 3, backoff = raw.backoff or 0.2, timeout = raw.timeout or 5,
           advance_every = raw.advance_every or 0.1 }
end

local TOP_KEYS = {
  api_key = true, batches = true, any = true, log_limit = true, directories = true, created = true,
  create = true, list = true, cancel = true, jobs = true, webhooks = true,
}

local function map_of(raw, where, fn)
  local out = {}
  if raw == nil then return out end
  if not is_object(raw) then error(where .. " must be an object", 0) end
  for id, v in pairs(raw) do
    if type(id) ~= "string" then error(where .. " keys must be strings", 0) end
    out[id] = fn(v, format("%s[%q]", sub(where, 10), id))
  end
  return out
end

function M.compile(raw)
  -- A whole scenario of [] is a mistake, not an empty scenario (spec/fake_server_limits_spec.lua);
  -- inside one, an empty list stands for an empty object (the encoder writes {} as []).
  if not is_object(raw) or getmetatable(raw) == ARRAY_MT then
    error("scenario must be a JSON object", 0)
  end
  check_keys(raw, TOP_KEYS, "scenario")
  local sc = { api_key = raw.api_key, log_limit = raw.log_limit }
  if sc.log_limit ~= nil and (not is_int(sc.log_limit) or sc.log_limit < 1) then
    error("scenario.log_limit must be an integer >= 1", 0)
  end
  if sc.api_key ~= nil and (type(sc.api_key) ~= "string" or sc.api_key == "") then
    error("scenario.api_key must be a non-empty string", 0)
  end
  sc.batches = map_of(raw.batches, "scenario.batches", compile_entry)
  sc.batch_ids = {}
  for id in pairs(sc.batches) do sc.batch_ids[#sc.batch_ids + 1] = id end
  sort(sc.batch_ids)
  if raw.any ~= nil then sc.any = compile_entry(raw.any, "any") end
  sc.directories = map_of(raw.directories, "scenario.directories", compile_directory)
  sc.jobs = map_of(raw.jobs, "scenario.jobs", compile_job)
  sc.created = compile_created(raw.created or CREATED_DEFAULT, "created")
  sc.create = compile_script(raw.create or {}, "create")
  sc.list = compile_script(raw.list or {}, "list")
  sc.cancel = compile_script(raw.cancel or {}, "cancel")
  sc.webhooks = compile_webhooks(raw.webhooks)
  return sc
end

-- A scenario file: compiled, raw | nil, message.
function M.load_file(path)
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
    -- a directory opens but does not read (issue 13, defect 5: spec/fake_server_spec.lua)
    local text, rerr = f:read("*a")
    f:close()
    if type(text) ~= "string" then return nil, path .. ": " .. tostring(rerr or "cannot read") end
    local v, derr = decode(text)
    if v == nil then return nil, path .. ": invalid JSON: " .. derr end
    raw = v
  end
  local ok, sc = pcall(M.compile, raw)
  if not ok then return nil, path .. ": " .. tostring(sc) end
  return sc, raw
end


return M
