-- The README's first command, `make demo`, as a fresh machine runs it: no API key in the environment.
local util = require("spec.support.util")
local fake = require("spec.support.fake")

describe("make demo", function()
  -- The module this suite runs on (build/<version>, or the sanitizers' build): busted's own paths.
  local function demo(env)
    return util.sh(string.format(
      "cd %s && env -u LLAMA_CLOUD_API_KEY -u LLAMA_PARSE_API_KEY -u LLAMA_CLOUD_BASE_URL %s"
        .. "LUA_PATH=%s LUA_CPATH=%s LUA=%s sh examples/demo.sh </dev/null",
      util.quote(util.root()), env or "", util.quote(package.path), util.quote(package.cpath),
      util.quote(fake.interpreter())))
  end

  it("waits for the fake server's demo batch, then runs the workflow to the files' markdown", function()
    local code, out = demo()
    assert.are.equal(0, code, out)
    assert.truthy(out:find('"status": "COMPLETED"', 1, true), out)
    assert.truthy(out:find("## dfl-demo-0001 (report.pdf)", 1, true), out)
    assert.truthy(out:find("dfl-demo-0004: MAPPING_FAILED", 1, true), out)
  end)

  it("reaches the fake server on 127.0.0.1 when the environment names a proxy (no proxy can reach it)", function()
    local dead = "http://127.0.0.1:1"
    local code, out = demo(string.format("http_proxy=%s HTTP_PROXY=%s all_proxy=%s ALL_PROXY=%s ", dead, dead, dead, dead))
    assert.are.equal(0, code, out)
    assert.truthy(out:find('"status": "COMPLETED"', 1, true), out)
  end)
end)
