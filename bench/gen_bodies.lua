-- Writes the benchmark's batch bodies (small.json, r1k.json, r100k.json, files1k.json) and the list pages
-- (pages/list-000.json ... list-099.json) into a directory, byte for byte the same on every Lua.
-- The shape is fuzz/decode_bench.c's: the API's example batch, results repeated with distinct ids.
-- Usage: lua bench/gen_bodies.lua OUTDIR

local dir = assert(arg[1], "usage: gen_bodies.lua OUTDIR")

local HEAD = '{"id": "bat-6f1c2a0e-8d4b-4c47-9a51-3e2f7b9d0c11", '
  .. '"project_id": "prj-2b7e1516-28ae-4d2a-a6ab-f7158809cf4f", '
  .. '"source_directory_id": "dir-3243f6a8-885a-408d-8131-98a2e0370734", '
  .. '"config": {"job": {"type": "parse_v2", '
  .. '"configuration_id": "cfg-13198a2e-0370-4473-8a2e-0370734a4093"}}, '
  .. '"status": "COMPLETED", "created_at": "2019-12-27T18:11:19.117Z", '
  .. '"updated_at": "2019-12-27T18:42:07.503Z", "results": '

-- Integer arithmetic that stays below 2^53, so doubles (5.1, LuaJIT) and integers (5.3+) agree.
local function bits(a, shift, width)
  return math.floor(a / 2 ^ shift) % 2 ^ width
end

local function result(i, n)
  local a = (2654435761 * (i + 1)) % 2 ^ 32
  local b = (a * 31) % 2 ^ 32
  return string.format(
    '{"source_directory_file_id": "dfl-%08x-%04x-4%03x-a%03x-%012x", '
      .. '"job_reference": {"type": "%s", "id": "pjb-%08x-%04x-4%03x-b%03x-%012x"}, '
      .. '"error_message": null}',
    a, bits(a, 7, 16), bits(a, 3, 12), bits(a, 11, 12), i,
    i % 7 ~= 0 and "parse_v2" or "extract_v2",
    b, bits(a, 5, 16), bits(a, 9, 12), bits(a, 13, 12), n - i)
end

local function body(n)
  if n == nil then return HEAD .. "null}" end
  local parts = {}
  for i = 0, n - 1 do parts[#parts + 1] = result(i, n) end
  return HEAD .. "[" .. table.concat(parts, ", ") .. "]}"
end

local function write(name, s)
  local f = assert(io.open(dir .. "/" .. name, "wb"))
  assert(f:write(s))
  assert(f:close())
  io.write(string.format("%s: %d bytes\n", name, #s))
end

-- The wait_files workload's batch: 1,000 results, each a parse job pjb-000000 ... pjb-000999 (the ids
-- multi_floor fetches for its floor).
local function files_body(n)
  local parts = {}
  for i = 0, n - 1 do
    parts[#parts + 1] = string.format('{"source_directory_file_id": "dfl-%06d", '
      .. '"job_reference": {"type": "parse_v2", "id": "pjb-%06d"}, "error_message": null}', i, i)
  end
  return HEAD .. "[" .. table.concat(parts, ", ") .. "]}"
end

-- The each workload's pages: PAGES pages of SIZE batches (as the list endpoint sends them, without
-- results), page k's next_page_token "pt-<k+1>", the last one's null. Fixed-width ids: every page
-- but the last is the same size.
local PAGES, SIZE = 100, 100
local function page_body(k)
  local items = {}
  for i = 1, SIZE do
    local n = k * SIZE + i - 1
    items[i] = string.format('{"id": "bat-%08d", "project_id": "prj-2b7e1516-28ae-4d2a-a6ab-f7158809cf4f", '
      .. '"source_directory_id": "dir-%08d", "config": {"job": {"type": "parse_v2", '
      .. '"configuration_id": "cfg-13198a2e-0370-4473-8a2e-0370734a4093"}}, "status": "COMPLETED", '
      .. '"created_at": "2019-12-27T18:11:19.117Z", "updated_at": "2019-12-27T18:42:07.503Z", '
      .. '"results": null}', n, n % 97)
  end
  local token = k + 1 < PAGES and string.format('"pt-%03d"', k + 1) or "null"
  return '{"items": [' .. table.concat(items, ", ") .. '], "next_page_token": ' .. token .. "}"
end

write("small.json", body(nil))
write("files1k.json", files_body(1000))
os.execute("mkdir -p '" .. dir .. "/pages'")
for k = 0, PAGES - 1 do write(string.format("pages/list-%03d.json", k), page_body(k)) end
write("r1k.json", body(1000))
write("r100k.json", body(100000))
