-- wait, get_many, wait_many, wait_files and outcomes: the poll loops, their backoff and on_poll, written
-- once for every host. A host gives now(), sleep(s) and step(multi, max_wait), and may give run(ud, req)
-- (one request to its end; else it is stepped on a multi of its own); blocking hosts block in them,
-- event-loop hosts yield inside them. A host may also give stopping(): a reason once its calls must
-- let go (an exiting nginx worker), on which the loops end at their next turn.
local core = require("llamacloud.core")
local calls = require("llamacloud.calls")
local pool_of = require("llamacloud.pool")

local M = {}

local DEFAULT_INTERVAL = 1.0
local DEFAULT_MAX_INTERVAL = 5.0
local DEFAULT_TIMEOUT = 7200
local DEFAULT_BACKOFF = "linear"
local DEFAULT_CONCURRENCY = 16

M.DEFAULTS = {
  interval = DEFAULT_INTERVAL, max_interval = DEFAULT_MAX_INTERVAL, timeout = DEFAULT_TIMEOUT,
  backoff = DEFAULT_BACKOFF, concurrency = DEFAULT_CONCURRENCY,
}

local TERMINAL = { COMPLETED = true, FAILED = true, CANCELLED = true }
M.TERMINAL = TERMINAL

local GET_KEYS = { expand = true, organization_id = true, project_id = true, max_retries = true,
                   headers = true, extra_query = true }
local WAIT_KEYS = { interval = true, max_interval = true, backoff = true, timeout = true,
                    request_timeout = true, on_poll = true }
local FILES_KEYS = { on_file = true, job_expand = true }
local BACKOFFS = { linear = true, exponential = true, constant = true }

-- An argument error names the user's line (spec/wait_spec.lua, "names the caller's line").
local raise = calls.raise

-- Errors that get has already retried and that may clear up: the wait goes on past them.
local function transient(err)
  local name = err.name
  if name == "APIConnectionError" or name == "APITimeoutError" or name == "RateLimitError"
      or name == "InternalServerError" or name == "ConflictError" then
    return true
  end
  return err.status == 408
end
M.transient = transient

-- unbounded: math.huge is allowed (a wait with no time limit, a backoff with no cap).
local function positive(v, name, fn, unbounded)
  if type(v) ~= "number" or not (v > 0) or (v == math.huge and not unbounded) then
    raise("llamacloud: " .. fn .. ": option '" .. name .. "' must be a positive number of seconds")
  end
  return v
end

local function concurrency_of(v, fn)
  if v == nil then return DEFAULT_CONCURRENCY end
  if type(v) ~= "number" or v < 1 or v ~= math.floor(v) or v > 10000 then
    raise("llamacloud: " .. fn .. ": option 'concurrency' must be a whole number from 1 to 10000")
  end
  return v
end

-- Splits opts into get's own options and the wait settings, raising on anything unknown or wrong.
local function parse(opts, fn, waiting, many, files)
  if opts ~= nil and type(opts) ~= "table" then
    raise("llamacloud: " .. fn .. ": opts must be a table (got " .. type(opts) .. ")")
  end
  opts = opts or {}
  local get_opts, w = {}, {}
  for k, v in pairs(opts) do
    if GET_KEYS[k] then
      get_opts[k] = v
    elseif waiting and WAIT_KEYS[k] then
      w[k] = v
    elseif many and k == "concurrency" then
      w[k] = v
    elseif files and FILES_KEYS[k] then
      w[k] = v
    elseif not waiting and k == "timeout" then
      get_opts[k] = v
    else
      raise("llamacloud: " .. fn .. ": unknown option '" .. tostring(k) .. "'")
    end
  end
  if waiting then
    w.interval = w.interval == nil and DEFAULT_INTERVAL or positive(w.interval, "interval", fn)
    if w.max_interval == nil then
      w.max_interval = math.max(DEFAULT_MAX_INTERVAL, w.interval)
    elseif positive(w.max_interval, "max_interval", fn, true) < w.interval then
      raise("llamacloud: " .. fn .. ": option 'max_interval' (" .. w.max_interval
        .. ") must not be below option 'interval' (" .. w.interval .. ")")
    end
    w.timeout = w.timeout == nil and DEFAULT_TIMEOUT or positive(w.timeout, "timeout", fn, true)
    if w.request_timeout ~= nil then get_opts.timeout = positive(w.request_timeout, "request_timeout", fn) end
    w.backoff = w.backoff == nil and DEFAULT_BACKOFF or w.backoff
    if not BACKOFFS[w.backoff] then
      raise("llamacloud: " .. fn .. ": option 'backoff' must be \"linear\", \"exponential\" or \"constant\"")
    end
    if w.on_poll ~= nil and type(w.on_poll) ~= "function" then
      raise("llamacloud: " .. fn .. ": option 'on_poll' must be a function")
    end
  end
  if many then w.concurrency = concurrency_of(w.concurrency, fn) end
  if files then
    if w.on_file ~= nil and type(w.on_file) ~= "function" then
      raise("llamacloud: " .. fn .. ": option 'on_file' must be a function")
    end
    local je = w.job_expand
    local ok = je == nil or type(je) == "string"
    if type(je) == "table" then
      ok = calls.is_list(je)
      for _, v in pairs(je) do
        if type(v) ~= "string" then ok = false end
      end
    end
    if not ok then raise("llamacloud: " .. fn .. ": option 'job_expand' must be a string or a list of strings") end
  end
  return get_opts, w
end

local function check_ids(ids, fn)
  if type(ids) ~= "table" then
    raise("llamacloud: " .. fn .. ": ids must be a list of batch ids (got " .. type(ids) .. ")")
  end
  if not calls.is_list(ids) then raise("llamacloud: " .. fn .. ": ids must be a list of batch ids") end
  return #ids
end

-- The rule the C core applies to a batch_id, with its messages (spec/many_spec.lua, "bad input"), so
-- wait_many can check every id before the first request without building a request per id.
local function check_id(id, i, fn)
  if type(id) ~= "string" then
    raise("llamacloud: " .. fn .. ": ids[" .. i .. "] must be a string (got " .. type(id) .. ")")
  end
  if id == "" then raise("llamacloud: get: batch_id must not be empty") end
  if id == "." or id == ".." then raise("llamacloud: get: batch_id must not be '.' or '..'") end
end

-- A request whose misuse errors (get's options, checked by the C core) name the user's line too.
local function checked_request(ud, id, get_opts, want_raw)
  local ok, req = pcall(ud.request, ud, id, get_opts, want_raw)
  if not ok then raise(req) end
  return req
end

-- Runs one request with the host's primitives h: h.run, or else stepped by h.step on a multi kept
-- per client, so a host without run still reuses connections from one poll to the next. Each
-- caller looks only at its own request, so calls that overlap (a host whose step yields) share it.
local step_multis = setmetatable({}, { __mode = "k" }) -- client userdata -> multi
local function run(h, ud, req)
  if h.run then return h.run(ud, req) end
  local multi = step_multis[ud]
  if not multi then
    multi = ud:multi(4)
    step_multis[ud] = multi
  end
  multi:add(req)
  local _, next_wait = h.step(multi, 0)
  while not req:done() do
    _, next_wait = h.step(multi, next_wait or 0.001)
  end
  return req:result()
end
M.run = run

-- Builds every request first, so that a bad id or option raises before anything is sent.
local function requests_for(ud, ids, get_opts, fn, want_raw)
  local reqs = {}
  for i = 1, check_ids(ids, fn) do
    check_id(ids[i], i, fn)
    reqs[i] = checked_request(ud, ids[i], get_opts, want_raw)
  end
  return reqs
end

-- Seconds to sleep after poll number n (1-based).
local function interval_after(w, n)
  local d
  if w.backoff == "constant" then
    d = w.interval
  elseif w.backoff == "linear" then
    d = w.interval * n
  else
    d = w.interval * 2 ^ (n - 1)
  end
  return math.min(d, w.max_interval)
end
M.interval_after = interval_after

local function polling_error(id, batch)
  return core.error("PollingError", "batch " .. id .. " ended " .. tostring(batch.status), { batch = batch })
end

local function timeout_error(id, batch, timeout)
  local where = batch and (" (last status " .. tostring(batch.status) .. ")") or ""
  return core.error("PollingTimeoutError",
    "batch " .. id .. " did not finish within " .. timeout .. " s" .. where, { batch = batch })
end

-- why: what stopped it when not on_poll (the host letting go).
local function cancelled_error(id, batch, why)
  return core.error("PollingCancelled", "waiting for batch " .. id .. " was stopped by " .. (why or "on_poll"),
    { batch = batch })
end

local function stopping(host)
  return host.stopping and host.stopping()
end

-- The verdict on one poll: "done", "error" (both final) or "again".
local function judge(batch, err)
  if batch then
    if TERMINAL[batch.status] then return "done" end
    return "again"
  end
  if transient(err) then return "again" end
  return "error"
end

local function final_result(id, batch)
  if batch.status == "COMPLETED" then return batch end
  return nil, polling_error(id, batch)
end

-- The poll loop of wait (and of wait_files' first part), from start until deadline.
local function wait_loop(host, ud, id, get_opts, w, start, deadline, want_raw)
  local last, attempt = nil, 0
  while true do
    attempt = attempt + 1
    local batch, err, hint, raw = run(host, ud, checked_request(ud, id, get_opts, want_raw))
    local verdict = judge(batch, err)
    if verdict == "error" then return nil, err end
    last = batch or last
    local why = verdict ~= "done" and stopping(host)
    if why then return nil, cancelled_error(id, last, why) end
    local now = host.now()
    if w.on_poll then
      local go_on = w.on_poll(batch, { attempt = attempt, elapsed = now - start, err = err })
      if go_on == false and verdict ~= "done" then return nil, cancelled_error(id, last) end
    end
    if verdict == "done" then
      local b, e = final_result(id, batch)
      return b, e, raw
    end
    now = host.now()
    local pause = interval_after(w, attempt)
    if hint and hint > pause then pause = hint end
    -- A poll due at or past the deadline is not sent: wait sleeps out its time and gives up.
    if now + pause >= deadline then
      if deadline > now then host.sleep(deadline - now) end
      return nil, timeout_error(id, last, w.timeout)
    end
    host.sleep(pause)
    why = stopping(host)
    if why then return nil, cancelled_error(id, last, why) end
  end
end

-- want_raw (for the command line) also returns the body's text after the result.
function M.wait(host, ud, id, opts, want_raw)
  local get_opts, w = parse(opts, "wait", true, false)
  local start = host.now()
  -- The whole-wait deadline bounds every attempt of every poll and every retry pause between
  -- them, so a hung server cannot hold the wait past it (spec/wait_spec.lua, "never answers").
  get_opts.deadline = start + w.timeout
  return wait_loop(host, ud, id, get_opts, w, start, get_opts.deadline, want_raw)
end

-- Runs each request of reqs on one multi; calls on_done(i, batch, err, hint) as each ends.
local function run_all(host, multi, reqs, on_done)
  local index = {}
  for i = 1, #reqs do
    index[reqs[i]] = i
    multi:add(reqs[i])
  end
  local left = #reqs
  local finished, next_wait = host.step(multi, 0)
  while true do
    if finished then
      for k = 1, #finished do
        local req = finished[k]
        local batch, err, hint, raw = req:result()
        left = left - 1
        on_done(index[req], batch, err, hint, raw)
        index[req] = nil
      end
    end
    if left == 0 then return end
    if not next_wait then
      -- The host let go of the multi (an exiting worker closed it): those requests ended cancelled.
      for req, i in pairs(index) do
        if req:done() then on_done(i, req:result()) end
      end
      return
    end
    finished, next_wait = host.step(multi, next_wait)
  end
end

function M.get_many(host, ud, ids, opts, want_raw)
  local get_opts, w = parse(opts, "get_many", false, true)
  local reqs = requests_for(ud, ids, get_opts, "get_many", want_raw)
  local out = {}
  for i = 1, #reqs do out[i] = {} end
  local multi = ud:multi(w.concurrency)
  run_all(host, multi, reqs, function(i, batch, err, _, raw)
    out[i].batch, out[i].err, out[i].raw = batch, err, raw
  end)
  multi:close()
  return out
end

function M.wait_many(host, ud, ids, opts, want_raw)
  local get_opts, w = parse(opts, "wait_many", true, true)
  local n = check_ids(ids, "wait_many")
  -- every id and get's options checked before the first request; one request checks the options
  for i = 1, n do check_id(ids[i], i, "wait_many") end
  if n > 0 then checked_request(ud, ids[1], get_opts) end
  local start = host.now()
  local deadline = start + w.timeout
  -- The whole-wait deadline bounds every attempt of every poll and every retry pause between
  -- them, so a hung server cannot hold the wait past it (spec/wait_spec.lua, "never answers").
  get_opts.deadline = deadline
  local out, state, due = {}, {}, {}
  local pending, stopped = n, nil
  for i = 1, n do
    out[i] = {}
    state[i] = { i = i, at = start, seq = i, attempt = 0 }
    due[i] = state[i] -- in seq order, so already a heap
  end
  local pool = pool_of.new(ud:multi(w.concurrency), due, w.concurrency, deadline)

  local function finish(i, batch, err)
    out[i].batch, out[i].err = batch, err
    state[i].done = true
    pending = pending - 1
  end

  local function on_result(s, batch, err, hint, raw)
    local i = s.i
    local verdict = judge(batch, err)
    if batch then s.last, s.raw = batch, raw end
    if verdict == "error" then return finish(i, nil, err) end
    local now = host.now()
    if w.on_poll and not stopped then
      local go_on = w.on_poll(batch, { attempt = s.attempt, elapsed = now - start, err = err,
                                       id = ids[i], index = i })
      if go_on == false then stopped = "on_poll" end
    end
    if verdict == "done" then
      -- each entry is what wait would return: a batch, or nil and an error carrying it
      out[i].raw = raw
      return finish(i, final_result(ids[i], batch))
    end
    pool_of.again(pool, s, now, interval_after(w, s.attempt), hint)
  end
  local function request_for(s) return ud:request(ids[s.i], get_opts, want_raw) end

  while pending > 0 do
    local now = host.now()
    local why = stopped or stopping(host)
    if why or now >= deadline then
      for i = 1, n do
        local s = state[i]
        if not s.done then
          out[i].raw = s.raw
          finish(i, nil, why and cancelled_error(ids[i], s.last, why)
            or timeout_error(ids[i], s.last, w.timeout))
        end
      end
      break
    end
    pool_of.turn(host, pool, now, -math.huge, request_for, on_result)
  end
  pool.multi:close()
  return out
end

-- ---- wait_files: the batch, then every file's job ----

local FILE_END = { COMPLETED = true, FAILED = true, CANCELLED = true }
local ALWAYS_COUNTED = { "COMPLETED", "FAILED", "CANCELLED", "MAPPING_FAILED", "UNMAPPED" }

local function job_error_message(job)
  if type(job) ~= "table" then return nil end
  if type(job.job) == "table" and job.job.error_message ~= nil then return job.job.error_message end
  return job.error_message
end

-- The report's files from an expanded batch: one entry per result, in order, and the states of
-- those whose job is still to be polled.
local function files_of(batch)
  local files, polled = {}, {}
  local results = batch and batch.results
  if type(results) ~= "table" then return files, polled end
  for i = 1, #results do
    local r = results[i]
    local f = {}
    if type(r) == "table" then
      f.source_directory_file_id = r.source_directory_file_id
      f.job_reference = r.job_reference
      f.error_message = r.error_message
    end
    local ref = f.job_reference
    if f.error_message ~= nil then
      f.status = "MAPPING_FAILED"
    elseif type(ref) == "table" and type(ref.id) == "string" and calls.engine[ref.type] then
      -- a job not yet seen is PENDING: the batch mapped it, nothing says it has started
      f.status = "PENDING"
      polled[#polled + 1] = { i = i, file = f, attempt = 0 }
    else
      f.status = "UNMAPPED"
    end
    files[i] = f
  end
  return files, polled
end

local function count(files)
  local counts = {}
  for i = 1, #ALWAYS_COUNTED do counts[ALWAYS_COUNTED[i]] = 0 end
  for i = 1, #files do
    local st = files[i].status
    counts[st] = (counts[st] or 0) + 1
  end
  return counts
end

local function job_options(get_opts, w)
  local o = {}
  for k, v in pairs(get_opts) do
    if k ~= "expand" then o[k] = v end
  end
  o.expand = w.job_expand
  return o
end

-- Waits for the batch (expand=results added), then polls the job of every mapped file until it
-- ends, at most concurrency at once over one multi. One deadline bounds it all. A 429 holds every
-- new poll until its retry-after has passed (the multi does so for retries; this loop for a 429
-- that outlasted them). Each step costs O(log n) in the number of files, as wait_many's.
function M.wait_files(host, ud, id, opts)
  local get_opts, w = parse(opts, "wait_files", true, true, true)
  local start = host.now()
  local deadline = start + w.timeout
  get_opts.deadline = deadline
  local batch_opts = {}
  for k, v in pairs(get_opts) do batch_opts[k] = v end
  local expand = get_opts.expand
  if expand == nil then
    batch_opts.expand = "results"
  else
    local list, has = {}, false
    if type(expand) == "string" then expand = { expand } end
    for i = 1, #expand do
      list[i] = expand[i]
      if expand[i] == "results" then has = true end
    end
    if not has then list[#list + 1] = "results" end
    batch_opts.expand = list
  end
  local job_opts = job_options(get_opts, w)
  -- the job options are checked now, before the first request (one request checks them)
  checked_request(ud, id, batch_opts)
  do
    local ok, e = pcall(ud.prepare, ud, calls.engine.parse_v2, "x", job_opts)
    if not ok then raise(e) end
  end

  local batch, err = wait_loop(host, ud, id, batch_opts, w, start, deadline)
  if not batch then
    local b = type(err) == "table" and err.batch
    if err.name == "PollingError" and b and b.status == "CANCELLED" then
      batch = b
    elseif err.name == "PollingTimeoutError" then
      local files = files_of(b)
      return { batch = b, files = files, counts = count(files) }, err
    else
      return nil, err
    end
  end

  local files, polled = files_of(batch)
  local report = { batch = batch, files = files }
  local function settle(f, i)
    if w.on_file then w.on_file(f, { index = i, elapsed = host.now() - start }) end
  end
  for i = 1, #files do
    if files[i].status ~= "PENDING" then settle(files[i], i) end
  end

  local n = #polled
  local due = {}
  for k = 1, n do
    local s = polled[k]
    s.at, s.seq = start, k
    due[k] = s -- in seq order, so already a heap
  end
  local pool = pool_of.new(ud:multi(w.concurrency), due, w.concurrency, deadline)
  local pending, hold, final_err = n, 0, nil

  local function on_result(s, job, e, hint)
    local f = s.file
    local now = host.now()
    if job then
      f.job = job
      local st = calls.job_status(job)
      f.status = st
      if FILE_END[st] then
        f.error_message = job_error_message(job)
        pending = pending - 1
        return settle(f, s.i)
      end
    elseif not transient(e) then
      final_err = e
      return
    elseif e.status == 429 and hint then
      if now + hint > hold then hold = now + hint end
    end
    pool_of.again(pool, s, now, interval_after(w, s.attempt), hint)
  end
  local function request_for(s)
    local ref = s.file.job_reference
    return ud:prepare(calls.engine[ref.type], ref.id, job_opts)
  end

  while pending > 0 and not final_err do
    local now = host.now()
    local why = stopping(host)
    if why then
      final_err = cancelled_error(id, batch, why)
      break
    end
    if now >= deadline then
      final_err = core.error("PollingTimeoutError", "the files of batch " .. id .. " did not all finish within "
        .. w.timeout .. " s (" .. pending .. " left)", { batch = batch })
      break
    end
    pool_of.turn(host, pool, now, hold, request_for, on_result)
  end
  pool.multi:close()
  report.counts = count(files)
  return report, final_err
end

-- Sorts an expanded batch's results into files that got a job, files whose mapping failed
-- and files with neither yet.
function M.outcomes(batch)
  if type(batch) ~= "table" then
    raise("llamacloud: outcomes: batch must be a table (got " .. type(batch) .. ")")
  end
  local jobs, failed, unmapped = {}, {}, {}
  local results = batch.results
  if type(results) == "table" then
    for i = 1, #results do
      local r = results[i]
      if type(r) == "table" then
        if r.error_message then
          failed[#failed + 1] = r
        elseif type(r.job_reference) == "table" then
          jobs[#jobs + 1] = r
        else
          unmapped[#unmapped + 1] = r
        end
      end
    end
  end
  return { jobs = jobs, failed = failed, unmapped = unmapped }
end

return M
