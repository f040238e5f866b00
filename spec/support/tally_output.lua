-- A busted output handler: the usual terminal output, plus one "passed failed pending" line appended
-- to $LLAMACLOUD_TALLY when the suite ends, so make test and CI can add up every run. The name of
-- each failed or errored spec goes to $LLAMACLOUD_TALLY.failures, which scripts/tally.sh prints
-- just above its last line (CI logs are often read from the tail).
return function(options)
  local busted = require("busted")
  local handler = require("busted.outputHandlers.utfTerminal")(options)
  local path = os.getenv("LLAMACLOUD_TALLY")
  local runtime = jit and jit.version or _VERSION

  local function note_failure(element)
    if not (path and path ~= "") then return end
    local f = io.open(path .. ".failures", "a")
    if f then
      local where = element.trace and element.trace.short_src or "?"
      local line = element.trace and element.trace.currentline or 0
      f:write(string.format("%s: %s (%s:%d)\n", runtime, handler.getFullName(element), where, line))
      f:close()
    end
  end

  busted.subscribe({ "test", "end" }, function(element, _, status)
    if status == "failure" or status == "error" then note_failure(element) end
    return nil, true
  end)
  busted.subscribe({ "error" }, function(element)
    -- errors outside a test (a describe body or a hook) count as failures too
    if element and element.descriptor ~= "it" then note_failure(element) end
    return nil, true
  end)

  busted.subscribe({ "suite", "end" }, function()
    if path and path ~= "" then
      local f = assert(io.open(path, "a"))
      f:write(string.format("%d %d %d busted %s\n", handler.successesCount,
        handler.failuresCount + handler.errorsCount, handler.pendingsCount, runtime))
      f:close()
    end
    return nil, true
  end)

  return handler
end
