-- The response bodies the out-of-memory and finalizer hosts run on, and the fake server's scenario for them.
-- One module so the server sends and core.decode reads the same bytes.
local M = {}

-- A small expanded batch: every JSON shape the decoder builds (objects, arrays, a null in each, escapes,
-- integers and floats, unicode).
M.SMALL = '{"id":"bat-small","status":"COMPLETED","project_id":"prj-oom","source_directory_id":"dir-oom",'
  .. '"config":{"job":{"type":"parse_v2","configuration_id":"cfg-oom"}},"created_at":null,'
  .. '"updated_at":"2026-01-01T00:01:00.000Z","counts":[1,2.5,-3e2,null,true,false],'
  .. '"note":"tab\\t quote\\" \\u00e9\\ud83d\\ude00","results":['
  .. '{"source_directory_file_id":"dfl-1","job_reference":{"type":"parse_v2","id":"pjb-1"},"error_message":null},'
  .. '{"source_directory_file_id":"dfl-2","job_reference":null,"error_message":"unsupported file type"},'
  .. '{"source_directory_file_id":"dfl-3"}]}'

-- An expanded batch of about `bytes` bytes (3 MB by default): one result per ~110 bytes, a third of
-- them failed, the rest mapped to a job, every tenth with a null.
function M.big(bytes)
  bytes = bytes or 3 * 1024 * 1024
  local parts, n, size = {}, 0, 0
  while size < bytes do
    n = n + 1
    local r
    if n % 3 == 0 then
      r = string.format('{"source_directory_file_id":"dfl-%07d","job_reference":null,'
        .. '"error_message":"unsupported file type %d"}', n, n)
    else
      r = string.format('{"source_directory_file_id":"dfl-%07d","job_reference":{"type":"parse_v2",'
        .. '"id":"pjb-%07d"},"error_message":%s}', n, n, n % 10 == 0 and "null" or '""')
    end
    parts[n] = r
    size = size + #r + 1
  end
  return '{"id":"bat-big","status":"COMPLETED","project_id":"prj-oom","source_directory_id":"dir-oom",'
    .. '"config":{"job":{"type":"parse_v2","configuration_id":"cfg-oom"}},"results":['
    .. table.concat(parts, ",") .. "]}", n
end

-- big()'s text, read from the file OOM_BIG_FILE names when it is set (scripts/oom.sh writes it once:
-- building it costs more than a run of the decoder under ASan).
function M.big_text()
  local path = os.getenv("OOM_BIG_FILE")
  local f = path and io.open(path, "rb")
  if not f then return (M.big()) end
  local text = f:read("*a")
  f:close()
  return text
end

-- The fake server's scenario: bat-small and bat-big complete at once with the bodies above; every other
-- id answers 503 (retried after 1 ms), then RUNNING, then COMPLETED, each id with its own counter.
function M.scenario()
  return {
    batches = {
      ["bat-small"] = { steps = { { body = M.SMALL } } },
      ["bat-big"] = { steps = { { body = (M.big()) } } },
    },
    any = { steps = { { status = 503, headers = { ["retry-after-ms"] = "1" } }, "RUNNING", "COMPLETED" } },
    directories = { ["dir-oom"] = { count = 2 } }, -- the driver's create
  }
end

return M
