-- From a directory to parsed markdown: create a batch over a source directory, wait for the batch and
-- for every file's job, then fetch the markdown of each file that was parsed.
-- Run against the bundled fake server (from the repository root, after `make`):
--   lua5.4 bin/llamacloud fake-server --port 8080 &
--   LLAMA_CLOUD_API_KEY=demo LLAMA_CLOUD_BASE_URL=http://127.0.0.1:8080 \
--   LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH='build/5.4/?.so;;' lua5.4 examples/markdown.lua
-- Its demo directory dir-demo holds four files: two parse, one fails, one cannot be mapped to a job.
-- SOURCE_DIRECTORY_ID and CONFIGURATION_ID pick others (on the real service, your own).
local llamacloud = require("llamacloud")

local client = llamacloud.new() -- the key and base URL from LLAMA_CLOUD_API_KEY, LLAMA_CLOUD_BASE_URL

local params = {
  source_directory_id = os.getenv("SOURCE_DIRECTORY_ID") or "dir-demo",
  config = { job = { type = "parse_v2", configuration_id = os.getenv("CONFIGURATION_ID") or "cfg-PARSE_AGENTIC" } },
}

-- 1. Create the batch. A create is sent once: if the answer was lost (a timeout, a reset, a 5xx),
-- err.may_have_created is true and the batch may exist, so look for it before creating again.
local started = os.date("!%Y-%m-%dT%H:%M:%SZ", os.time() - 60) -- a minute of slack for clock skew
local batch, err = client.batches.create(params)
if not batch and err.may_have_created then
  print("create: " .. tostring(err) .. "; looking for the batch before creating again")
  for b, lerr in client.batches.each({ source_directory_id = params.source_directory_id,
                                       created_at_on_or_after = started }) do
    if not b then error(tostring(lerr)) end
    if b.config and b.config.job.configuration_id == params.config.job.configuration_id then
      batch = b
      break
    end
  end
end
if not batch then error(tostring(err)) end
print("created " .. batch.id .. " (" .. batch.status .. ")")

-- 2. Wait for the batch, then for every file's job. COMPLETED on a batch only means each file got a
-- job: the report says how each job ended.
local report, werr = client.batches.wait_files(batch.id, {
  interval = 0.2,
  timeout = 600,
  on_file = function(file) print("  " .. file.source_directory_file_id .. ": " .. file.status) end,
})
if not report then error(tostring(werr)) end -- the batch FAILED: no per-file results
if werr then print("stopped early: " .. tostring(werr)) end -- timed out: the report so far
local c = report.counts
print(("%d completed, %d failed, %d cancelled, %d not mapped"):format(c.COMPLETED, c.FAILED, c.CANCELLED,
  c.MAPPING_FAILED + c.UNMAPPED))

-- 3. The markdown of every file that was parsed, page by page.
for _, file in ipairs(report.files) do
  if file.status == "COMPLETED" then
    local job, jerr = client.jobs.get(file.job_reference, { expand = "markdown" })
    if not job then error(tostring(jerr)) end
    print("## " .. file.source_directory_file_id .. " (" .. (job.job.name or file.job_reference.id) .. ")")
    for _, page in ipairs(job.markdown.pages) do
      if page.success then
        print(page.markdown)
      else
        print(("(page %d could not be parsed: %s)"):format(page.page_number, tostring(page.error)))
      end
    end
  else
    print(("## %s: %s (%s)"):format(file.source_directory_file_id, file.status, file.error_message or "no reason given"))
  end
end
