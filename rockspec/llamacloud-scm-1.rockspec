-- LuaRocks package for llamacloud-lua. Build offline with: luarocks make --deps-mode=none rockspec/llamacloud-scm-1.rockspec
rockspec_format = "3.0"
package = "llamacloud"
version = "scm-1"
source = {
  url = "git+https://github.com/llamacloud-lua/llamacloud-lua.git",
}
description = {
  summary = "LlamaCloud batch API for Lua: a libcurl getter in C, with waiting helpers for Lua, Neovim and OpenResty",
  detailed = [[
    llamacloud.batches.get(id, { expand = "results" }) fetches a LlamaCloud batch through libcurl
    (kept-alive connections, typed errors, retries like the official SDKs) and returns plain Lua
    tables. batches.wait polls until the batch is done; get_many and wait_many run many at once.
  ]],
  homepage = "https://github.com/llamacloud-lua/llamacloud-lua",
  license = "MIT",
}
-- lua-cjson and luasocket serve the fake server (llamacloud fake-server, the specs) and encode
-- request bodies. Offline, install them from the distribution (Debian: lua-cjson, lua-socket) and
-- pass --deps-mode=none.
dependencies = {
  "lua >= 5.1, < 5.5",
  "lua-cjson",
  "luasocket",
}
external_dependencies = {
  -- Only the library is looked up: Debian keeps curl/curl.h under the multiarch include
  -- folder (/usr/include/<triplet>/curl), where LuaRocks' header search does not look but
  -- the C compiler does. Set CURL_INCDIR to point elsewhere (luarocks make CURL_INCDIR=...).
  CURL = {
    library = "curl",
  },
  -- libcrypto (Debian: libssl-dev) computes webhooks.verify's HMAC-SHA256; the Makefile builds without it
  -- (verify then raises), the rock does not.
  CRYPTO = {
    library = "crypto",
  },
}
build = {
  type = "builtin",
  modules = {
    ["llamacloud.core"] = {
      sources = { "src/core.c" },
      libraries = { "curl", "crypto" },
      defines = { 'LC_VERSION="0.1.0"' },
      incdirs = { "$(CURL_INCDIR)", "$(CRYPTO_INCDIR)" },
      libdirs = { "$(CURL_LIBDIR)", "$(CRYPTO_LIBDIR)" },
    },
    ["llamacloud"] = "lua/llamacloud/init.lua",
    ["llamacloud.wait"] = "lua/llamacloud/wait.lua",
    ["llamacloud.pool"] = "lua/llamacloud/pool.lua",
    ["llamacloud.calls"] = "lua/llamacloud/calls.lua",
    ["llamacloud.bind"] = "lua/llamacloud/bind.lua",
    ["llamacloud.pages"] = "lua/llamacloud/pages.lua",
    ["llamacloud.cli"] = "lua/llamacloud/cli/init.lua",
    ["llamacloud.cli.flags"] = "lua/llamacloud/cli/flags.lua",
    ["llamacloud.cli.help"] = "lua/llamacloud/cli/help.lua",
    ["llamacloud.cli.completion"] = "lua/llamacloud/cli/completion.lua",
    ["llamacloud.cli.output"] = "lua/llamacloud/cli/output.lua",
    ["llamacloud.cli.client"] = "lua/llamacloud/cli/client.lua",
    ["llamacloud.cli.commands"] = "lua/llamacloud/cli/commands.lua",
    ["llamacloud.progress"] = "lua/llamacloud/progress.lua",
    ["llamacloud.json_text"] = "lua/llamacloud/json_text.lua",
    ["llamacloud.fake_server"] = "lua/llamacloud/fake_server/init.lua",
    ["llamacloud.fake_server.json"] = "lua/llamacloud/fake_server/json.lua",
    ["llamacloud.fake_server.scenario"] = "lua/llamacloud/fake_server/scenario.lua",
    ["llamacloud.fake_server.model"] = "lua/llamacloud/fake_server/model.lua",
    ["llamacloud.fake_server.routes"] = "lua/llamacloud/fake_server/routes.lua",
    ["llamacloud.fake_server.http"] = "lua/llamacloud/fake_server/http.lua",
    ["llamacloud.fake_server.webhooks"] = "lua/llamacloud/fake_server/webhooks.lua",
    ["llamacloud.health"] = "lua/llamacloud/health.lua",
    ["llamacloud.host"] = "lua/llamacloud/host/init.lua",
    ["llamacloud.host.blocking"] = "lua/llamacloud/host/blocking.lua",
    ["llamacloud.host.coroutine"] = "lua/llamacloud/host/coroutine.lua",
    ["llamacloud.host.nvim"] = "lua/llamacloud/host/nvim.lua",
    ["llamacloud.host.ngx"] = "lua/llamacloud/host/ngx.lua",
  },
  install = {
    bin = { llamacloud = "bin/llamacloud" },
  },
  -- types/ (LuaCATS definitions for lua-language-server's workspace.library) and doc/ (vimdoc) land
  -- in the rock's own folder: `luarocks show --rock-dir llamacloud`.
  copy_directories = { "doc", "types" },
}
-- `luarocks test` runs the spec suite with busted; the nvim and nginx specs need `make test-hosts`.
test = {
  type = "busted",
  flags = { "--lpath=lua/?.lua;lua/?/init.lua", "--exclude-pattern=nvim_spec", "--exclude-pattern=ngx_spec" },
}
