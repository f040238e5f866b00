-- The fake server's state: poll counters, the batches it created, their files' jobs, cancellations,
-- listing. Everything here runs without yielding; the routes turn it into answers.
local json = require("llamacloud.fake_server.json")
local scenario = require("llamacloud.fake_server.scenario")

local M = {}

local format, match = string.format, string.match
local floor = math.floor
local NULL, ARRAY_MT, OBJECT_MT = json.null, json.ARRAY_MT, json.OBJECT_MT
local is_object = json.is_object

local CREATED_AT = "2026-01-01T00:00:00.000Z"
local UPDATED_AT = "2026-01-01T00:01:00.000Z"
M.CREATED_AT, M.UPDATED_AT = CREATED_AT, UPDATED_AT

M.TERMINAL = { COMPLETED = true, FAILED = true, CANCELLED = true }
local TERMINAL = M.TERMINAL
M.STATUSES = { PENDING = true, THROTTLED = true, RUNNING = true, COMPLETED = true, FAILED = true,
               CANCELLED = true }
-- The webhook event a batch sends when it reaches a status.
local EVENT_OF = { PENDING = "batch.pending", RUNNING = "batch.running", COMPLETED = "batch.success",
                   FAILED = "batch.error", CANCELLED = "batch.cancelled" }

-- A fresh state for a compiled scenario. on_event(batch, event, status) is called on every
-- status change of a created batch.
function M.new(sc, on_event)
  return {
    sc = sc, on_event = on_event or function() end,
    counters = {},          -- batch id -> GET polls so far
    created = {},           -- batch id -> created batch
    created_list = {},      -- created batches in creation order
    jobs = {},              -- job id -> job
    cancelled = {},         -- batch id -> true once cancelled
    cancel_counters = {},   -- batch id -> cancel calls so far
    ncreate = 0, nlist = 0, nbatch = 0, njob = 0,
  }
end

local function step_at(steps, n)
  if n < 1 then n = 1 end
  return steps[n < #steps and n or #steps]
end
M.step_at = step_at

-- RFC 3339 date-time (or a date) to seconds since the epoch, UTC; nil when it is not one.
function M.parse_time(s)
  if type(s) ~= "string" then return nil end
  local y, mo, d, rest = match(s, "^(%d%d%d%d)%-(%d%d)%-(%d%d)(.*)$")
  if not y then return nil end
  local h, mi, sec, frac, zone = 0, 0, 0, "", "Z"
  if rest ~= "" then
    h, mi, sec, frac, zone = match(rest, "^[Tt ](%d%d):(%d%d):(%d%d)(%.?%d*)(.*)$")
    if not h then return nil end
  end
  y, mo, d, h, mi, sec = tonumber(y), tonumber(mo), tonumber(d), tonumber(h), tonumber(mi), tonumber(sec)
  if mo < 1 or mo > 12 or d < 1 or d > 31 or h > 23 or mi > 59 or sec > 60 then return nil end
  if frac == "." then return nil end
  local offset = 0
  if zone ~= "Z" and zone ~= "z" then
    local sign, oh, om = match(zone, "^([+-])(%d%d):?(%d%d)$")
    if not sign then return nil end
    offset = (tonumber(oh) * 60 + tonumber(om)) * 60
    if sign == "-" then offset = -offset end
  end
  -- days from civil (Howard Hinnant's algorithm), no os.time and no local time zone
  if mo <= 2 then y = y - 1 end
  local era = floor(y / 400)
  local yoe = y - era * 400
  local mp = (mo + 9) % 12
  local doy = floor((153 * mp + 2) / 5) + d - 1
  local doe = yoe * 365 + floor(yoe / 4) - floor(yoe / 100) + doy
  local days = era * 146097 + doe - 719468
  return days * 86400 + h * 3600 + mi * 60 + sec + (tonumber("0" .. frac) or 0) - offset
end

local function iso_time(t)
  local ms = floor((t - floor(t)) * 1000)
  return os.date("!%Y-%m-%dT%H:%M:%S", floor(t)) .. format(".%03dZ", ms)
end
M.iso_time = iso_time

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
M.merge = merge

-- Batches -----------------------------------------------------------------------------------------

-- The entry that scripts a batch id and, for a batch the server created, that batch.
function M.entry(state, id)
  local sc = state.sc
  local entry = sc.batches[id]
  if entry then return entry end
  local b = state.created[id]
  if b then return b.entry, b end
  return sc.any
end

-- The status a batch has now (its last poll's step; PENDING for a created batch not yet polled).
function M.status(state, id, entry)
  if state.cancelled[id] then return "CANCELLED" end
  return step_at(entry.steps, state.counters[id] or 0).batch_status
end

local function check_transition(state, b)
  local status = M.status(state, b.id, b.entry)
  if status == b.last_status then return end
  b.last_status = status
  local event = EVENT_OF[status]
  if event and not b.sent[event] then
    b.sent[event] = true
    state.on_event(b, event, status)
  end
end

-- A GET of the batch: its poll number and the step it gets.
function M.poll(state, id, entry)
  local n = (state.counters[id] or 0) + 1
  state.counters[id] = n
  local b = state.created[id]
  if b then check_transition(state, b) end
  return n, step_at(entry.steps, n)
end

-- Moves a created batch one step on without a GET (its advance_every timer): false once there is
-- nothing left to move.
function M.advance(state, b)
  if state.cancelled[b.id] then return false end
  local n = state.counters[b.id] or 0
  if n >= #b.entry.steps or TERMINAL[M.status(state, b.id, b.entry)] then return false end
  state.counters[b.id] = n + 1
  check_transition(state, b)
  return not TERMINAL[M.status(state, b.id, b.entry)]
end

local function created_results(b)
  local out = setmetatable({}, ARRAY_MT)
  for i, f in ipairs(b.files) do
    local ref = NULL
    if f.job_id then
      ref = setmetatable({ type = b.job_type, id = f.job_id }, OBJECT_MT)
    end
    out[i] = setmetatable({ source_directory_file_id = f.id, job_reference = ref,
                            error_message = f.mapping_error or NULL }, OBJECT_MT)
  end
  return out
end

-- The batch as the service shows it (a table for the encoder). n: the poll number it answers;
-- expand: whether results were asked for.
function M.batch_table(state, id, entry, status, n, expand)
  local t = setmetatable({
    id = id, project_id = "prj-fake", source_directory_id = "dir-fake",
    config = setmetatable({ job = setmetatable({ type = "parse_v2",
      configuration_id = "cfg-fake" }, OBJECT_MT) }, OBJECT_MT),
    created_at = CREATED_AT, updated_at = UPDATED_AT,
  }, OBJECT_MT)
  if entry.batch then merge(t, entry.batch) end
  local b = state.created[id]
  if b then
    t.project_id, t.source_directory_id, t.config = b.project_id, b.source_directory_id, b.config
    t.created_at, t.updated_at = b.created_at, b.created_at
  end
  t.status = status
  if expand and (n >= entry.results_from or (b and status == "CANCELLED")) then
    local r = b and created_results(b) or entry.results
    if r == nil then r = setmetatable({}, ARRAY_MT) end
    t.results = r
  else
    t.results = NULL
  end
  for i = 1, #entry.omit do t[entry.omit[i]] = nil end
  return t
end

local function new_id(state, prefix, field, taken)
  while true do
    state[field] = state[field] + 1
    local id = format("%s-new-%06d", prefix, state[field])
    if not taken[id] then return id end
  end
end

-- A job of a created batch, or one the scenario lists, by id; nil when there is none of that type.
function M.job(state, id, job_type)
  local job = state.jobs[id]
  if not job then
    local entry = state.sc.jobs[id]
    if not entry then return nil end
    job = { id = id, type = entry.type or job_type, entry = entry, counter = 0, name = entry.name or id,
            created_at = CREATED_AT }
    state.jobs[id] = job
  end
  if job.type ~= job_type then return nil end
  return job
end

function M.job_status(job)
  if job.cancelled then return "CANCELLED" end
  return step_at(job.entry.steps, job.counter).batch_status
end

-- A GET of the job: its poll number and step.
function M.poll_job(job)
  job.counter = job.counter + 1
  return job.counter, step_at(job.entry.steps, job.counter)
end

-- POST /api/v2/batches with a checked body: the new batch | nil, HTTP status, message.
function M.create(state, body, project_id, now)
  local sc = state.sc
  local dir = sc.directories[body.source_directory_id]
  if not dir then
    return nil, 404, "Source directory not found: " .. body.source_directory_id
  end
  local total = #dir.files + dir.count
  if total > scenario.MAX_FILES then
    return nil, 422, format("a batch is limited to %d files; %s has %d",
      scenario.MAX_FILES, body.source_directory_id, total)
  end
  local job_type = body.config.job.type
  local id = new_id(state, "bat", "nbatch", sc.batches)
  local b = {
    id = id, entry = dir.batch or sc.created, source_directory_id = body.source_directory_id,
    config = body.config, project_id = project_id or "prj-fake", created_at = iso_time(now),
    created_epoch = floor(now * 1000) / 1000, job_type = job_type, files = {}, sent = {},
    webhooks = body.webhook_configurations, last_status = nil, deferred = true,
  }
  local prefix = job_type == "parse_v2" and "pjb" or "ejb"
  local stem = match(body.source_directory_id, "^dir%-(.+)$") or body.source_directory_id
  for i = 1, total do
    local f = dir.files[i] or dir.file
    local file = { id = (dir.files[i] and f.id) or format("dfl-%s-%04d", stem, i),
                   mapping_error = f.mapping_error }
    if not f.mapping_error and not f.unmapped then
      file.job_id = new_id(state, prefix, "njob", sc.jobs)
      state.jobs[file.job_id] = { id = file.job_id, type = job_type, entry = f.job, counter = 0,
                                  name = f.name or file.id, batch_id = id, created_at = b.created_at }
    end
    b.files[i] = file
  end
  state.created[id] = b
  state.created_list[#state.created_list + 1] = b
  check_transition(state, b)
  return b
end

-- POST /api/v2/batches/{id}/cancel: true | nil, HTTP status, message. A terminal batch cannot be
-- cancelled (the fake answers 400); a cancelled one's unfinished jobs end CANCELLED.
function M.cancel(state, id, entry)
  local status = M.status(state, id, entry)
  -- Cancelling again is harmless (API.md): a retry whose first try acted gets the batch back.
  if state.cancelled[id] then return true end
  if TERMINAL[status] then
    return nil, 400, format("Batch %s is %s and cannot be cancelled", id, status)
  end
  state.cancelled[id] = true
  local b = state.created[id]
  if b then
    for _, f in ipairs(b.files) do
      local job = f.job_id and state.jobs[f.job_id]
      if job and not TERMINAL[M.job_status(job)] then job.cancelled = true end
    end
    check_transition(state, b)
  end
  return true
end

-- One page of GET /api/v2/batches. f: status, source_directory_id, after, before (seconds),
-- page_size, offset (from the page token). Returns the batch tables and the next offset (nil on
-- the last page). Batches the scenario lists come first (by id), then created ones, oldest first.
function M.list(state, f)
  local sc = state.sc
  local ids, created = sc.batch_ids, state.created_list
  local total = #ids + #created
  local items, i = setmetatable({}, ARRAY_MT), f.offset + 1
  while i <= total do
    local id, entry
    if i <= #ids then
      id = ids[i]
      entry = sc.batches[id]
    else
      local b = created[i - #ids]
      id, entry = b.id, b.entry
    end
    local status = M.status(state, id, entry)
    local ok = f.status == nil or f.status == status
    local t
    if ok then
      t = M.batch_table(state, id, entry, status, 0, false)
      if f.source_directory_id and t.source_directory_id ~= f.source_directory_id then ok = false end
      if ok and (f.after or f.before) then
        local at = M.parse_time(t.created_at)
        ok = at ~= nil and (not f.after or at >= f.after) and (not f.before or at <= f.before)
      end
    end
    if ok then
      if #items >= f.page_size then return items, i - 1 end
      items[#items + 1] = t
    end
    i = i + 1
  end
  return items, nil
end

return M
