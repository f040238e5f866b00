-- Live progress of `llamacloud batches wait` on stderr: lines redrawn in place on a terminal, appended otherwise.
local M = {}

local function line_for(row)
  return string.format("%-40s %-10s %7.1f s  poll %d%s", row.id, row.status or "...", row.elapsed or 0,
    row.polls or 0, row.note and ("  " .. row.note) or "")
end

-- mode is "tty" (redraw in place), "lines" (one line per poll) or "off".
function M.new(ids, mode, out)
  out = out or io.stderr
  local rows, drawn = {}, 0
  for i = 1, #ids do rows[i] = { id = ids[i] } end
  local self = {}

  local function redraw()
    local parts = {}
    if drawn > 0 then parts[1] = string.format("\27[%dA", drawn) end
    for i = 1, #rows do parts[#parts + 1] = "\r\27[K" .. line_for(rows[i]) .. "\n" end
    out:write(table.concat(parts))
    out:flush()
    drawn = #rows
  end

  function self.update(i, batch, info)
    local row = rows[i]
    row.polls = info.attempt
    row.elapsed = info.elapsed
    if batch then row.status = batch.status end
    row.note = info.err and tostring(info.err) or nil
    if mode == "tty" then
      redraw()
    elseif mode == "lines" then
      out:write(line_for(row), "\n")
      out:flush()
    end
  end

  function self.finish(results, with_files)
    if mode == "off" then return end
    local counts, order = {}, {}
    local files = { jobs = 0, failed = 0, unmapped = 0 }
    local outcomes = require("llamacloud.wait").outcomes
    for i = 1, #results do
      local r = results[i]
      local key = r.batch and r.batch.status or (r.err and r.err.name) or "unknown"
      if r.err and r.err.name == "PollingTimeoutError" then key = "TIMED OUT" end
      if not counts[key] then order[#order + 1] = key end
      counts[key] = (counts[key] or 0) + 1
      if r.batch then
        local o = outcomes(r.batch)
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
