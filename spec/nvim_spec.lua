-- The Neovim host in a real `nvim --headless -u NONE`: each script in spec/nvim/ runs against the fake server
-- and prints "key<TAB>value" lines. Needs nvim and build/jit (make LUA_VERSION=jit).
local fake = require("spec.support.fake")
local util = require("spec.support.util")

local DELAY = 1 -- seconds the fake server holds bat-slow

local ROOT = util.root()
local quote = util.quote

local SCENARIO = {
  directories = {
    ["dir-nvim"] = { files = {
      { id = "dfl-1", job = { steps = { "RUNNING", "COMPLETED" }, pages = { "# One", "Two" } } },
      { id = "dfl-2", job = { steps = { "FAILED" } } },
      { id = "dfl-3", mapping_error = "unsupported file type" },
    } },
  },
  created = { steps = { "PENDING", "RUNNING", "COMPLETED" } },
  batches = {
    ["bat-slow"] = { steps = { { batch_status = "COMPLETED", delay = DELAY } } },
    ["bat-done"] = { steps = { "COMPLETED" } },
    ["bat-run"] = { steps = { "PENDING", "RUNNING", "COMPLETED" } },
    -- polled by one call alone, so no other call's polls move it on
    ["bat-wait"] = { steps = { "PENDING", "RUNNING", "COMPLETED" } },
    ["bat-failed"] = { steps = { "FAILED" } },
    ["bat-demo"] = {
      steps = { "PENDING", "RUNNING", "COMPLETED" },
      results = { { source_directory_file_id = "dfl-1", job_reference = { type = "parse_v2", id = "pjb-1" } },
                  { source_directory_file_id = "dfl-2", error_message = "unsupported file type" } },
    },
  },
}

local function check_prerequisites()
  if not util.read_file(ROOT .. "/build/jit/llamacloud/core.so") then
    error("build/jit/llamacloud/core.so is missing: run `make LUA_VERSION=jit` first", 0)
  end
  local p = io.popen("command -v nvim")
  local path = p:read("*l")
  p:close()
  if not path then error("nvim is not installed (Debian: apt-get install neovim)", 0) end
end

-- Runs spec/nvim/<name>.lua (or the file at path); returns its key -> value table and everything it printed.
local function run(server, name, path)
  server:reset()
  local errfile = os.tmpname()
  local cmd = table.concat({
    "cd " .. quote(ROOT) .. " &&",
    "LLAMACLOUD_ROOT=" .. quote(ROOT),
    "LLAMACLOUD_TEST_URL=" .. quote(server.url),
    "LLAMACLOUD_TEST_DELAY=" .. DELAY,
    "LLAMA_CLOUD_API_KEY=test-key",
    "LLAMA_CLOUD_BASE_URL=" .. quote(server.url),
    -- a hang guard only: every script ends itself, or its watchdog ends it
    "timeout 60 nvim --headless -u NONE -i NONE -n",
    "-c " .. quote("luafile " .. (path or ("spec/nvim/" .. name .. ".lua"))),
    "</dev/null 2>" .. quote(errfile) .. "; echo \"exit\t$?\"",
  }, " ")
  local p = assert(io.popen(cmd))
  local out = p:read("*a")
  p:close()
  local err = util.read_file(errfile) or ""
  os.remove(errfile)
  local r = {}
  for key, value in out:gmatch("([%w_]+)\t([^\n]*)") do r[key] = value end
  r._output = out .. "\nstderr:\n" .. err
  return r
end

describe("nvim host", function()
  local server
  local results = {}

  -- Each script runs once; the its below assert on parts of its output.
  local function script(name)
    if not results[name] then
      results[name] = run(server, name)
      assert(results[name].error == nil, "script failed: " .. results[name]._output)
      assert(results[name].exit == "0", "nvim exited badly: " .. results[name]._output)
    end
    return results[name]
  end

  setup(function()
    check_prerequisites()
    server = fake.start({ scenario = SCENARIO })
  end)

  teardown(function()
    if server then server:stop() end
  end)

  it("returns a handle at once from get with a callback", function()
    local r = script("ticks")
    assert.are.equal("true", r.handle)
    assert.is_true(tonumber(r.returned_in) < 0.1 * DELAY, r._output)
  end)

  it("keeps the editor's loop running while a delayed get is in flight", function()
    local r = script("ticks")
    assert.is_true(tonumber(r.ticks) >= 50, r._output)
    assert.is_true(tonumber(r.elapsed) >= DELAY, r._output)
  end)

  it("calls the callback with the batch on the main loop, where vim.api works", function()
    local r = script("ticks")
    assert.are.same({ "bat-slow", "COMPLETED", "nil", "false", "true" },
      { r.id, r.status, r.err, r.fast, r.api })
  end)

  it("leaves no vim.loop handle open once a call has finished", function()
    assert.are.equal("", script("ticks").left)
    assert.are.equal("", script("errors").left)
    assert.are.equal("", script("calls").left)
    assert.are.equal("", script("raising").left)
  end)

  it("passes a wire error to the callback as nil, err", function()
    local r = script("errors")
    assert.are.equal("nil NotFoundError 404", r.missing)
    assert.are.equal("nil APIConnectionError", r.refused)
    assert.are.equal("nil PollingError FAILED", r.failed)
  end)

  it("raises a misuse at the call, before returning a handle", function()
    local r = script("errors")
    assert.truthy(r.bad_option:match("^false .*unknown option 'expnd'$"), r._output)
    assert.truthy(r.bad_interval:match("^false .*option 'interval' must be a positive number"), r._output)
    assert.are.equal("false llamacloud: batches.get: the callback must be a function (got string)", r.bad_callback)
  end)

  it("passes an error raised after the call started to the callback as nil, err", function()
    local r = script("raising")
    -- the raised value itself (here a string), as error() made it
    assert.are.equal("nil string on_poll failed", r.on_poll)
    assert.are.equal("nil string on_poll failed", r.on_poll_many)
    assert.truthy(r.closed:match("^nil string llamacloud: .*closed"), r._output)
    assert.are.equal("", r.left)
  end)

  it("cancel closes the connection of a get in flight and the callback is never called", function()
    local r = script("cancel")
    assert.are.same({ "true", "false", "false" }, { r.cancel, r.cancel_again, r.called })
    assert.are.same({ "1", "1", "0" }, { r.requests, r.closed_by_client, r.connections_open })
    assert.are.same({ "", "" }, { r.left_at_cancel, r.left })
  end)

  it("cancel stops wait, get_many and wait_many, with no callback and no handle left", function()
    local r = script("cancel_many")
    assert.are.same({ "true", "true", "true" }, { r.cancel_wait, r.cancel_get_many, r.cancel_wait_many })
    -- the wait_many cancelled from its on_poll polled once, and nothing else was called
    assert.are.same({ "true", "on_poll" }, { r.cancel_own, r.called })
    -- get_many's and both wait_manys' multis closed their two connections each (in flight or
    -- idle); the idle connection of wait's first poll stays in the client's pool
    assert.are.same({ "6", "1" }, { r.closed_by_client, r.connections_open })
    assert.are.same({ "", "" }, { r.left_at_cancel, r.left })
  end)

  it("runs wait, get_many and wait_many with callbacks; on_poll may use vim.api", function()
    local r = script("calls")
    assert.are.equal("COMPLETED PENDING@1,RUNNING@2,COMPLETED@3", r.wait)
    assert.are.equal("COMPLETED", r.buffer)
    assert.are.equal("3 COMPLETED NotFoundError COMPLETED nil", r.get_many)
    assert.are.equal("COMPLETED PollingError", r.wait_many)
  end)

  it("takes a callback in the module-level calls of the default client", function()
    assert.are.equal("COMPLETED", script("calls").default)
  end)

  it("blocks without a callback outside fast events", function()
    local r = script("calls")
    assert.are.same({ "COMPLETED", "COMPLETED NotFoundError" }, { r.blocking, r.blocking_many })
  end)

  it("runs examples/nvim.lua, which waits for bat-demo and reports its outcomes", function()
    local r = run(server, "example", "examples/nvim.lua")
    assert.are.equal("0", r.exit, r._output)
    assert.truthy(r._output:match("bat%-demo: PENDING %(poll 1%)\nbat%-demo: RUNNING %(poll 2%)\n"
      .. "bat%-demo: COMPLETED %(poll 3%)\nbat%-demo: COMPLETED, 1 jobs, 1 failed, 0 unmapped\n"), r._output)
  end)

  it("runs the batch workflow with callbacks: create, list by pages, wait_files, jobs.get, cancel", function()
    local r = script("workflow")
    assert.are.equal("bat-new-000001 PENDING", r.create)
    assert.are.equal("1 1 nil", r.list)
    assert.are.equal("function", r.list_handle)
    assert.are.equal("1 1 1 3 nil", r.files)
    assert.are.equal("set", r.buffer)
    assert.are.equal("COMPLETED 2", r.job)
    assert.are.equal("bat-run", r.cancel)
  end)

  it("refuses each with a callback (page with list) and runs it blocking without one", function()
    local r = script("workflow")
    assert.truthy(r.each_callback:match("^false .*batches%.each is an iterator and cannot take a callback"), r._output)
    assert.truthy(r.bad_create:match("^false .*llamacloud: create: 'source_directory_id' must be a string"), r._output)
    assert.is_true(tonumber(r.each_blocking) >= 6, r._output)
  end)

  it("cancels a wait_files in flight: no callback, no handle left", function()
    local r = script("workflow")
    assert.are.same({ "true", "false", "" }, { r.cancel_files, r.cancel_called, r.left })
  end)

  it("raises a clear error for a blocking call in a fast event, where a callback works", function()
    local r = script("fast")
    local msg = "llamacloud: batches.%s cannot block in a fast event (a vim.loop callback): pass a callback "
      .. "as its last argument, or call it from vim.schedule"
    assert.are.same({ "true", "false " .. msg:format("get"), "false " .. msg:format("wait"), "COMPLETED" },
      { r.fast, r.blocking_get, r.blocking_wait, r.callback_get })
  end)
end)
