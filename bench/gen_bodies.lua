-- Writes the benchmark's batch bodies (small.json, r1k.json, r100k.json) into a directory, byte for byte the same on every Lua.
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

write("small.json", body(nil))
write("r1k.json", body(1000))
write("r100k.json", body(100000))
