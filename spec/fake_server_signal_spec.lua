-- The fake server as a command: Ctrl-C ends it at once, idle or busy, like every other command.
local util = require("spec.support.util")
local child = require("spec.support.child")

describe("llamacloud fake-server", function()
  it("exits 130 on the first Ctrl-C while idle", function()
    local dir = os.tmpname()
    os.remove(dir)
    assert.are.equal(0, (util.sh("mkdir " .. dir)))
    finally(function() os.execute("rm -rf " .. dir) end)
    local script = child.cli_command({ "fake-server", "--port", "0" }, {}) .. " >" .. dir .. "/out 2>"
      .. dir .. "/err & echo $! >" .. dir .. "/pid; wait $!; echo $? >" .. dir .. "/rc"
    util.spawn("sh -c " .. util.quote(script), dir .. "/log")
    local pid = util.wait_for(dir .. "/pid", "^(%d+)\n", nil, 10)
    assert.is_string(pid)
    assert.is_string(util.wait_for(dir .. "/out", "(%d+)", nil, 10))
    os.execute("kill -INT " .. pid)
    -- Before the fix the server slept in select with no timeout and the first Ctrl-C was lost: the
    -- generous bound only decides when to give up and kill it.
    local rc = util.wait_for(dir .. "/rc", "^(%d+)\n", nil, 20)
    if not rc then os.execute("kill -9 " .. pid) end
    assert.are.equal("130", rc)
    local err = util.read_file(dir .. "/err") or ""
    assert.is_nil(err:find("traceback", 1, true), err)
  end)
end)
