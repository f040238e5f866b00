-- Live progress of `llamacloud batches wait` on stderr: lines redrawn in place on a terminal, appended otherwise.
local M = {}

-- More batches than this (or than the terminal has rows) are shown on a terminal as one line of
-- counts, so a redraw never scrolls past the screen (cursor-up cannot reach lines that scrolled away).
M.MAX_ROWS = 15
-- Ids wider than this are cut on a terminal.
local MAX_ID_WIDTH = 40
-- The shortest id column kept on a narrow terminal before the row itself is cut.
local MIN_ID_WIDTH = 12
-- A terminal redraw with nothing new but the time waits this long after the last one (seconds).
M.TICK = 0.2

local TERMINAL = { COMPLETED = true, FAILED = true, CANCELLED = true }

-- Width in characters of UTF-8 text: every byte but the continuation bytes (0x80-0xBF) starts one.
function M.width(s)
  local _, continuation = s:gsub("[\128-\191]", "")
  return #s - continuation
end

-- s cut to at most n characters, never inside a UTF-8 sequence, ending in "..." when cut.
-- progress_spec: "fit".
function M.fit(s, n)
  if M.width(s) <= n then return s end
  if n <= 0 then return "" end
  local keep = n >= 6 and n - 3 or n
  local chars, i = 0, 1
  while i <= #s do
    local b = s:byte(i)
    if b < 128 or b >= 192 then
      if chars == keep then break end
      chars = chars + 1
    end
    i = i + 1
  end
  return s:sub(1, i - 1) .. (keep < n and "..." or "")
end

local function pad(s, n)
  local w = M.width(s)
  if w >= n then return s end
  return s .. string.rep(" ", n - w)
end

local function note_for(err)
  if not err then return nil end
  return (err.name or "error") .. (err.status and (" " .. err.status) or "") .. ", polling on"
end

-- One row; with columns (a terminal) it fits in columns - 1 characters: the id column narrows first,
-- then the note is cut or dropped, then (a very narrow terminal) the end of the row. Writing the last column would leave some terminals
-- wrapping, which breaks the cursor-up count.
local function line_for(row, id_width, columns)
  local tail = string.format("  %-10s %7.1f s  poll %d", row.status or "...", row.elapsed or 0, row.polls or 0)
  local note = row.note and ("  " .. row.note) or ""
  if columns then
    local room = columns - 1 - M.width(tail)
    if id_width > room then id_width = room > MIN_ID_WIDTH and room or MIN_ID_WIDTH end
    local line = pad(M.fit(row.id, id_width), id_width) .. tail
    local note_room = columns - 1 - M.width(line)
    -- a note cut shorter than "  RateLim..." says nothing: dropped
    if note_room >= 12 then line = line .. M.fit(note, note_room) end
    return M.fit(line, columns - 1)
  end
  return pad(row.id, id_width) .. tail .. note
end
M.line_for = line_for

-- "3 RUNNING, 2 COMPLETED" in the order the statuses were first seen.
local function counts_text(rows)
  local counts, order = {}, {}
  for i = 1, #rows do
    local key = rows[i].status or "..."
    if not counts[key] then order[#order + 1] = key end
    counts[key] = (counts[key] or 0) + 1
  end
  local parts = {}
  for _, k in ipairs(order) do parts[#parts + 1] = counts[k] .. " " .. k end
  return table.concat(parts, ", ")
end

-- mode is "tty" (redraw in place), "lines" (one line per poll) or "off".
-- opts.now(): the clock (seconds) that moves the rows' time between polls (tick); opts.size():
-- the terminal's columns and rows (default 80 x 24).
function M.new(ids, mode, out, opts)
  out = out or io.stderr
  opts = opts or {}
  local now = opts.now
  local size = opts.size or function() return 80, 24 end
  local start = now and now()
  local rows, drawn, width, polls, elapsed, drawn_at = {}, 0, 1, 0, 0, nil
  for i = 1, #ids do
    rows[i] = { id = ids[i] }
    local w = M.width(ids[i])
    if w > width then width = w end
  end
  if mode == "tty" and width > MAX_ID_WIDTH then width = MAX_ID_WIDTH end
  local self = {}

  local function redraw()
    local columns, lines = size()
    local parts = {}
    if drawn > 0 then parts[1] = string.format("\27[%dA", drawn) end
    local max_rows = M.MAX_ROWS
    if lines - 1 < max_rows then max_rows = lines - 1 end
    if #rows > max_rows then
      parts[#parts + 1] = "\r\27[K" .. M.fit(string.format("%d batches: %s  %.1f s, %d polls", #rows,
        counts_text(rows), elapsed, polls), columns - 1) .. "\n"
      -- the rows drawn before (the terminal shrank) are cleared
      for _ = 2, drawn do parts[#parts + 1] = "\r\27[K\n" end
      if drawn > 1 then parts[#parts + 1] = string.format("\27[%dA", drawn - 1) end
      drawn = 1
    else
      for i = 1, #rows do parts[#parts + 1] = "\r\27[K" .. line_for(rows[i], width, columns) .. "\n" end
      drawn = #rows
    end
    out:write(table.concat(parts))
    out:flush()
    if now then drawn_at = now() end
  end

  function self.update(i, batch, info)
    local row = rows[i]
    row.polls = info.attempt
    row.elapsed = info.elapsed
    if batch then
      row.status = batch.status
      row.done = TERMINAL[batch.status]
    end
    row.note = note_for(info.err)
    polls = polls + 1
    if info.elapsed > elapsed then elapsed = info.elapsed end
    if mode == "tty" then
      redraw()
    elseif mode == "lines" then
      out:write(line_for(row, width), "\n")
      out:flush()
    end
  end

  -- Called while the command waits (a request in flight, a pause between polls): on a terminal the
  -- time of every unfinished row moves, redrawn at most every M.TICK seconds.
  function self.tick()
    if mode ~= "tty" or not now then return end
    local t = now()
    if drawn_at and t - drawn_at < M.TICK then return end
    if not drawn_at and t - start < M.TICK then return end
    elapsed = t - start
    for i = 1, #rows do
      if not rows[i].done then rows[i].elapsed = elapsed end
    end
    redraw()
  end

  -- results: wait_many's entries; with_files adds the files' outcomes (for --expand results).
  function self.finish(results, with_files)
    if mode == "off" then return end
    local counts, order = {}, {}
    local files = { jobs = 0, failed = 0, unmapped = 0 }
    local outcomes = require("llamacloud.wait").outcomes
    for i = 1, #results do
      local r = results[i]
      local batch = r.batch or (r.err and r.err.batch)
      local key
      if r.err and r.err.name == "PollingTimeoutError" then
        key = "TIMED OUT"
      elseif r.err and r.err.name == "PollingCancelled" then
        key = "STOPPED"
      elseif r.err and r.err.name ~= "PollingError" then
        key = r.err.name
      else
        key = batch and batch.status or "unknown"
      end
      if not counts[key] then order[#order + 1] = key end
      counts[key] = (counts[key] or 0) + 1
      if batch then
        local o = outcomes(batch)
        files.jobs = files.jobs + #o.jobs
        files.failed = files.failed + #o.failed
        files.unmapped = files.unmapped + #o.unmapped
      end
    end
    local parts = {}
    for _, k in ipairs(order) do parts[#parts + 1] = counts[k] .. " " .. k end
    local text = string.format("%d batch%s: %s", #results, #results == 1 and "" or "es", table.concat(parts, ", "))
    if with_files then
      text = text .. string.format("; files: %d with jobs, %d failed, %d unmapped", files.jobs, files.failed,
        files.unmapped)
    end
    out:write(text, "\n")
    out:flush()
  end

  return self
end

-- The settled statuses of a files report, in the order the progress line and summary name them.
local FILE_ORDER = { "COMPLETED", "FAILED", "CANCELLED", "MAPPING_FAILED", "UNMAPPED" }

-- "7 COMPLETED, 1 FAILED": the statuses with a count, in FILE_ORDER, then any other in the order seen.
local function file_counts_text(counts, seen)
  local parts, named = {}, {}
  for _, k in ipairs(FILE_ORDER) do
    named[k] = true
    if (counts[k] or 0) > 0 then parts[#parts + 1] = counts[k] .. " " .. k end
  end
  for _, k in ipairs(seen) do
    if not named[k] and (counts[k] or 0) > 0 then parts[#parts + 1] = counts[k] .. " " .. k end
  end
  return table.concat(parts, ", ")
end
M.file_counts_text = file_counts_text

-- Progress of `llamacloud batches files ID` on stderr: one line, redrawn in place on a terminal
-- ("tty": the time moves while requests are in flight, through tick), or one line per event
-- ("lines"). batch(batch, info) is wait_files' on_poll, file(file) its on_file, finish(report, err)
-- prints the summary. opts as for new. cli_files_spec pins what reaches the terminal.
function M.files(id, mode, out, opts)
  out = out or io.stderr
  opts = opts or {}
  local now = opts.now or os.time
  local size = opts.size or function() return 80, 24 end
  local start = now()
  local status, polls, total, settled = nil, 0, nil, 0
  local counts, seen = {}, {}
  local drawn_at
  local self = {}

  local function text()
    local t = now() - start
    local head = M.fit(id, MAX_ID_WIDTH) .. " " .. (status or "...")
    if not total then
      return string.format("%s  poll %d  %.1f s", head, polls, t)
    end
    local c = file_counts_text(counts, seen)
    return string.format("%s  files %d/%d settled%s  %.1f s", head, settled, total, c ~= "" and (": " .. c) or "", t)
  end

  local function draw()
    if mode == "tty" then
      local columns = size()
      out:write("\r\27[K", M.fit(text(), columns - 1))
      drawn_at = now()
    elseif mode == "lines" then
      out:write(text(), "\n")
    else
      return
    end
    out:flush()
  end

  function self.batch(batch, info)
    polls = info and info.attempt or polls + 1
    if batch then
      status = batch.status
      if TERMINAL[status] and not total and type(batch.results) == "table" then total = #batch.results end
    end
    draw()
  end

  function self.file(file)
    settled = settled + 1
    local k = file.status or "?"
    if not counts[k] then seen[#seen + 1] = k end
    counts[k] = (counts[k] or 0) + 1
    if total and settled > total then total = settled end
    draw()
  end

  function self.tick()
    if mode ~= "tty" then return end
    local t = now()
    if (drawn_at and t - drawn_at < M.TICK) or (not drawn_at and t - start < M.TICK) then return end
    draw()
  end

  function self.finish(report, err)
    if mode == "off" then return end
    if mode == "tty" and drawn_at then out:write("\r\27[K") end
    local t = now() - start
    local line
    if report then
      local n = #(report.files or {})
      local c = file_counts_text(report.counts or {}, {})
      line = string.format("%s %s: %d file%s%s in %.1f s", id, report.batch and report.batch.status or "?", n,
        n == 1 and "" or "s", c ~= "" and (": " .. c) or "", t)
      if err and err.name == "PollingTimeoutError" then line = line .. " (timed out)" end
    else
      line = string.format("%s: %s after %.1f s", id, err and (err.name or tostring(err)) or "?", t)
    end
    out:write(line, "\n")
    out:flush()
  end

  return self
end

return M
