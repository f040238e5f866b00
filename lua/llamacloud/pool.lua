-- The polls of wait_many and wait_files: many states, each polled when it is due, at most concurrency
-- requests in flight at once on one multi, the multi stepped on the host (see wait.lua's header).
local M = {}

-- The longest a step blocks at once (the deadline may be math.huge).
local MAX_STEP_WAIT = 60

-- The schedule: a binary heap of the states waiting for their next poll, soonest
-- first (ties in the order they were pushed), so a step costs O(log n) whatever the number of
-- ids (bench/scale.lua measures it flat from 2,000 to 50,000 ids).
local function earlier(a, b)
  return a.at < b.at or (a.at == b.at and a.seq < b.seq)
end

local function heap_push(h, s)
  local k = #h + 1
  h[k] = s
  while k > 1 do
    local parent = math.floor(k / 2)
    if not earlier(h[k], h[parent]) then break end
    h[k], h[parent] = h[parent], h[k]
    k = parent
  end
end

local function heap_pop(h)
  local top, n = h[1], #h
  h[1] = h[n]
  h[n] = nil
  n = n - 1
  local k = 1
  while true do
    local l = 2 * k
    local m = k
    if l <= n and earlier(h[l], h[m]) then m = l end
    if l + 1 <= n and earlier(h[l + 1], h[m]) then m = l + 1 end
    if m == k then break end
    h[k], h[m] = h[m], h[k]
    k = m
  end
  return top
end

-- A pool over multi. due: the states (each with at, seq and attempt) as a heap; a step never
-- blocks past deadline.
function M.new(multi, due, concurrency, deadline)
  return { multi = multi, due = due, seq = #due, by_req = {}, in_flight = 0, concurrency = concurrency,
           deadline = deadline }
end

-- Puts s back in the heap for its next poll, after pause (the backoff's) or a longer hint.
function M.again(pool, s, now, pause, hint)
  if hint and hint > pause then pause = hint end
  s.at = now + pause
  pool.seq = pool.seq + 1
  s.seq = pool.seq
  heap_push(pool.due, s)
end

-- One turn of the pool: the polls that are due (and not held before hold) go out with
-- request_for(s), the multi is stepped until one ends or the next is due, and on_result(s, ...)
-- gets what each that ended returned.
function M.turn(host, pool, now, hold, request_for, on_result)
  local due, multi = pool.due, pool.multi
  -- Polls that are due go out, at most concurrency at once; the rest wait their turn here.
  while pool.in_flight < pool.concurrency and due[1] and due[1].at <= now and hold <= now do
    local s = heap_pop(due)
    s.attempt = s.attempt + 1
    local req = request_for(s)
    pool.by_req[req] = s
    pool.in_flight = pool.in_flight + 1
    multi:add(req)
  end
  local finished, next_wait = host.step(multi, 0)
  if not finished then
    now = host.now()
    local pause = pool.deadline - now
    if due[1] and pool.in_flight < pool.concurrency then
      local at = due[1].at > hold and due[1].at or hold
      if at - now < pause then pause = at - now end
    end
    if next_wait and next_wait < pause then pause = next_wait end
    if pause > MAX_STEP_WAIT then pause = MAX_STEP_WAIT end
    if pause > 0 then finished = host.step(multi, pause) end
  end
  if finished then
    for k = 1, #finished do
      local req = finished[k]
      local s = pool.by_req[req]
      pool.by_req[req] = nil
      pool.in_flight = pool.in_flight - 1
      on_result(s, req:result())
    end
  end
end

return M
