-- luacheck settings for `make lint`: the std per directory, so that `ngx` and `vim` are only known
-- where a host runs inside nginx or Neovim, and busted's globals only in specs.
std = "max"
max_line_length = false
-- `not (x > 0)` is how a check rejects NaN as well; `x <= 0` would let NaN through.
ignore = { "581" }
include_files = { "lua/**/*.lua", "spec/**/*.lua", "bench/**/*.lua", "examples/**/*.lua", "scripts/**/*.lua", "bin/llamacloud" }
exclude_files = { "build", "bench/out", "fuzz/out", "tmp" }

local ngx_globals = { "ngx" }
local vim_globals = { "vim" }

files["spec"] = { std = "+busted" }
files["spec/support/tally_output.lua"] = { std = "max" }

-- The hosts: only these name ngx or vim.
files["lua/llamacloud/host/ngx.lua"] = { read_globals = ngx_globals }
files["lua/llamacloud/host/nvim.lua"] = { read_globals = vim_globals }
-- Host detection asks whether the globals exist; it uses nothing in them.
files["lua/llamacloud/host/init.lua"] = { read_globals = { "ngx", "vim" } }
files["lua/llamacloud/health.lua"] = { read_globals = vim_globals }
files["spec/nvim"] = { read_globals = vim_globals }
files["spec/ngx"] = { read_globals = ngx_globals }
files["bench/hosts_ngx.lua"] = { read_globals = ngx_globals }
-- nginx.conf blocks: ngx as lua-nginx-module defines it (ngx.ctx, ngx.header are written there).
-- Globals there are set in init_by_lua and shared by the handlers, as nginx configurations do.
files["examples/nginx.conf"] = { std = "max+ngx_lua" }
files["examples/webhook_receiver/nginx.conf"] = { std = "max+ngx_lua" }
files["spec/ngx/nginx.conf"] = {
  std = "max+ngx_lua",
  globals = { "llamacloud", "CLIENT", ngx = { fields = { ctx = { other_fields = true, read_only = false } } } },
}
files["bench/nginx.conf"] = { std = "max+ngx_lua", globals = { "BENCH_SMALL", "BENCH_PAGES" } }
files["examples/nvim.lua"] = { read_globals = vim_globals }
files["examples/webhook_receiver/webhook_receiver.lua"] = { std = "max+ngx_lua" }
-- A spec swaps io.stdout and io.stderr for sinks to capture what the fake server prints.
files["spec/fake_server_spec.lua"] = { globals = { io = { fields = { "stdout", "stderr" } } } }
-- The nvim harness records every handle it makes by wrapping vim.loop's constructors.
files["spec/nvim/common.lua"] = { globals = vim_globals }
