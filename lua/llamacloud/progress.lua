-- Live progress of `llamacloud batches wait` on stderr: lines redrawn in place on a terminal, appended otherwise.
local M = {}

-- More batches than this are shown on a terminal as one line of counts, so a redraw never
-- scrolls past the screen (cursor-up cannot reach lines that scrolled away).
M.MAX_ROWS = 15
-- Ids wider than this are cut on a terminal, so that no line wraps.
local MAX_ID_WIDTH = 40

local function note_for(err)
  if not err then return nil end
  return (err.name or "error") .. (err.status and (" " .. err.status) or "") .. ", polling on"
end

local function line_for(row, width)
  local id = row.id
  if #id > width then id = id:sub(1, width - 3) .. "..." end
  return string.format("%-" .. width .. "s  %-10s %7.1f s  poll %d%s", id, row.status or "...",
    row.elapsed or 0, row.polls or 0, row.note and ("  " .. row.note) or "")
end

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
function M.new(ids, mode, out)
  out = out or io.stderr
  local rows, drawn, width, polls, elapsed = {}, 0, 1, 0, 0
  for i = 1, #ids do
    rows[i] = { id = ids[i] }
    if #ids[i] > width then width = #ids[i] end
  end
  if mode == "tty" and width > MAX_ID_WIDTH then width = MAX_ID_WIDTH end
  local self = {}

  local function redraw()
    local parts = {}
    if drawn > 0 then parts[1] = string.format("\27[%dA", drawn) end
    if #rows > M.MAX_ROWS then
      parts[#parts + 1] = string.format("\r\27[K%d batches: %s  %.1f s, %d polls\n", #rows, counts_text(rows),
        elapsed, polls)
      drawn = 1
    else
      for i = 1, #rows do parts[#parts + 1] = "\r\27[K" .. line_for(rows[i], width) .. "\n" end
      drawn = #rows
    end
    out:write(table.concat(parts))
    out:flush()
  end

  function self.update(i, batch, info)
    local row = rows[i]
    row.polls = info.attempt
    row.elapsed = info.elapsed
    if batch then row.status = batch.status end
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

return M
