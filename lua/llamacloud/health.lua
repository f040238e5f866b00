-- :checkhealth llamacloud: the C module and its build, libcurl and its TLS backend, the API key (set or not,
-- never shown), the base URL and region in effect, the host detected. spec/health_nvim_spec.lua pins it.
local M = {}

local EU_BASE_URL = "https://api.cloud.eu.llamaindex.ai"
local DEFAULT_BASE_URL = "https://api.cloud.llamaindex.ai"
local KEY_VARS = { "LLAMA_CLOUD_API_KEY", "LLAMA_PARSE_API_KEY" }

-- vim.health.start/ok/... (Neovim 0.9 and later), vim.health.report_* (0.8) or require("health").report_* (0.7).
local function reporter()
  local h = vim.health
  if h and h.start then return h end
  local old = (h and h.report_start) and h or require("health")
  return { start = old.report_start, ok = old.report_ok, warn = old.report_warn, error = old.report_error,
           info = old.report_info }
end

local function env(name)
  local v = os.getenv(name)
  if v then v = v:match("^%s*(.-)%s*$") end
  if v == "" then return nil end
  return v
end

-- libcurl's TLS backend, from the core when it says, else through LuaJIT's FFI from the libcurl the
-- core is linked to (dlopen hands back the library already loaded).
local function tls_backend(core)
  if type(core.ssl_version) == "string" then return core.ssl_version end
  local ok, ffi = pcall(require, "ffi")
  if not ok then return nil end
  pcall(ffi.cdef, [[
    typedef struct { int age; const char *version; unsigned int version_num; const char *host;
                     int features; const char *ssl_version; } llamacloud_health_curl_version;
    llamacloud_health_curl_version *curl_version_info(int);
  ]])
  for _, name in ipairs({ "libcurl.so.4", "curl" }) do
    local loaded, lib = pcall(ffi.load, name)
    if loaded then
      local got, info = pcall(lib.curl_version_info, 0)
      if got and info ~= nil and info.ssl_version ~= nil then return ffi.string(info.ssl_version) end
      return nil
    end
  end
  return nil
end

local function region_of(base_url)
  local url = base_url:gsub("/+$", "")
  if url == EU_BASE_URL then return "eu" end
  if url == DEFAULT_BASE_URL then return "default (North America)" end
  return "none (a custom base URL)"
end

function M.check()
  local report = reporter()
  report.start("llamacloud: C module")
  local ok, core = pcall(require, "llamacloud.core")
  if not ok then
    report.error("require('llamacloud.core') failed: " .. tostring(core):match("^[^\n]*"),
      { "Run `make nvim` in the plugin's folder (lazy.nvim: build = \"make nvim\")",
        "It needs libcurl, libcrypto (webhooks.verify) and LuaJIT headers: "
          .. "apt-get install libcurl4-openssl-dev libssl-dev libluajit-5.1-dev" })
    return
  end
  local llamacloud = require("llamacloud")
  local where = package.searchpath and package.searchpath("llamacloud.core", package.cpath)
  if not where and vim.api.nvim_get_runtime_file then
    where = vim.api.nvim_get_runtime_file("lua/llamacloud/core.so", false)[1]
  end
  report.ok("llamacloud " .. llamacloud.VERSION .. " loaded" .. (where and (" from " .. where) or ""))
  if tostring(core.lua_version):match("^LuaJIT") then
    report.ok("built for " .. core.lua_version)
  else
    report.warn("built for " .. tostring(core.lua_version) .. ", not LuaJIT, which Neovim embeds",
      { "Rebuild with `make nvim` (it builds against LuaJIT's headers)" })
  end

  report.start("llamacloud: libcurl")
  report.ok("libcurl " .. tostring(core.curl_version))
  local tls = tls_backend(core)
  if tls then
    report.ok("TLS backend: " .. tls)
  else
    report.warn("TLS backend unknown: libcurl did not name one (https:// calls may fail)")
  end

  report.start("llamacloud: configuration")
  local key_var
  for _, name in ipairs(KEY_VARS) do
    if env(name) then key_var = key_var or name end
  end
  if key_var then
    report.ok("API key set (from " .. key_var .. ")")
  else
    report.warn("no API key in the environment: module-level calls will raise",
      { "Set LLAMA_CLOUD_API_KEY (or LLAMA_PARSE_API_KEY), or pass api_key to llamacloud.new()" })
  end
  -- A client with a stand-in key resolves the base URL as the default client would; it sends nothing.
  local built, client = pcall(llamacloud.new, { api_key = "checkhealth" })
  if built then
    local config = client.config()
    client.close()
    local from = env("LLAMA_CLOUD_BASE_URL") and "LLAMA_CLOUD_BASE_URL" or "the default"
    report.ok("base URL " .. config.base_url .. " (from " .. from .. "); region: " .. region_of(config.base_url))
    local ua = config.headers and config.headers["User-Agent"]
    if ua then report.info("User-Agent: " .. ua) end
    if env("LLAMA_CLOUD_CUSTOM_HEADERS") then report.info("LLAMA_CLOUD_CUSTOM_HEADERS adds headers to every request") end
  else
    report.error("the default client cannot be built: " .. tostring(client))
  end

  report.start("llamacloud: host")
  local host = require("llamacloud.host").detect()
  if host == "nvim" then
    report.ok("host: nvim (a function as a call's last argument runs it on the editor's loop)")
  else
    report.warn("host: " .. host .. " (expected nvim inside Neovim)")
  end
end

return M
