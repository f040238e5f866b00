#!/bin/sh
# Proves the rockspecs offline, one tally line per check:
# - luarocks-make: `luarocks make` of the scm-1 rockspec from a copy of the checkout (Lua 5.4);
# - luarocks-test: `luarocks test` in that copy runs busted with the rockspec's flags;
# - luarocks-rock-5.1, luarocks-rock-5.4: the source rock a release would publish (git archive of the working
#   tree's tracked files, `luarocks pack` of the versioned rockspec pointed at that tarball) installed with
#   --deps-mode=none into an empty tree.
# In each tree require("llamacloud") loads the tree's modules, the installed `llamacloud --version` prints
# VERSION and `llamacloud batches get` talks to the fake server.
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
version=$(cat "$here/VERSION")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM
status=0
tally() { if [ -n "${LLAMACLOUD_TALLY:-}" ]; then echo "$1 $2" >> "$LLAMACLOUD_TALLY"; fi; }
failed() { echo "luarocks-check: $1: FAILED: $2" >&2; tally "0 1 0" "$1"; status=1; }

# try NAME LUA TREE: the checks on one installed tree, run from an empty folder with the tree's paths (as
# `luarocks path --lr-path` gives them) before Lua's defaults (where Debian's lua-cjson and luasocket are), so
# nothing comes from the checkout.
try() (
  name=$1 lv=$2 tree=$3 server=""
  trap '[ -n "$server" ] && kill "$server" 2>/dev/null' EXIT
  run="$work/run-$name" && mkdir -p "$run" && cd "$run" || { failed "$name" "cd"; exit 1; }
  LUA_PATH="$(luarocks --lua-version "$lv" --tree "$tree" path --lr-path);;"
  LUA_CPATH="$(luarocks --lua-version "$lv" --tree "$tree" path --lr-cpath);;"
  export LUA_PATH LUA_CPATH
  unset LUA_PATH_5_4 LUA_CPATH_5_4
  got=$("lua$lv" -e '
    local llamacloud = require("llamacloud")
    local function where(name, path)
      for t in path:gmatch("[^;]+") do
        local f = t:gsub("%?", (name:gsub("%.", "/")))
        local h = io.open(f) if h then h:close() return f end
      end
    end
    io.write(llamacloud.VERSION, " ", where("llamacloud", package.path), " ",
             where("llamacloud.core", package.cpath))') || { failed "$name" "require"; exit 1; }
  case "$got" in
    "$version $tree/share/lua/$lv/llamacloud/init.lua $tree/lib/lua/$lv/llamacloud/core.so") ;;
    *) failed "$name" "require gave '$got'"; exit 1 ;;
  esac
  [ -f "$tree/lib/luarocks/rocks-$lv/llamacloud/"*/types/llamacloud.lua ] || { failed "$name" "types/ not installed"; exit 1; }
  out=$("$tree/bin/llamacloud" --version) || { failed "$name" "llamacloud --version"; exit 1; }
  [ "$out" = "llamacloud $version" ] || { failed "$name" "llamacloud --version printed '$out'"; exit 1; }
  "$tree/bin/llamacloud" fake-server --port 0 > "$run/server.out" 2>&1 &
  server=$!
  i=0
  while ! grep -q listening "$run/server.out" 2>/dev/null; do
    i=$((i + 1)); [ $i -gt 100 ] && { failed "$name" "fake server did not start"; exit 1; }; sleep 0.1
  done
  port=$(sed -n 's/.*127\.0\.0\.1:\([0-9]*\).*/\1/p' "$run/server.out" | head -n 1)
  out=$(LLAMA_CLOUD_API_KEY=sk-luarocks-check LLAMA_CLOUD_BASE_URL="http://127.0.0.1:$port" \
    "$tree/bin/llamacloud" batches get bat-done --expand results) || out="exit $?: $out"
  kill "$server" 2>/dev/null; wait "$server" 2>/dev/null; server=""
  case "$out" in *'"status":"COMPLETED"'*) ;; *) failed "$name" "batches get printed: $out"; exit 1 ;; esac
  echo "luarocks-check: $name: $version installed; require, --version and batches get work from the tree alone"
  tally "1 0 0" "$name"
)

# luarocks make from a copy, so that its objects never land in the checkout.
mkdir -p "$work/copy"
(cd "$here" && tar cf - src lua bin rockspec doc types spec VERSION) | (cd "$work/copy" && tar xf -)
if (cd "$work/copy" && luarocks --lua-version 5.4 --tree "$work/tree-make" make --deps-mode=none \
    rockspec/llamacloud-scm-1.rockspec) > "$work/make.log" 2>&1; then
  try luarocks-make 5.4 "$work/tree-make" || status=1
  # "luarocks-test": `luarocks test` runs the rockspec's busted with its flags. Debian's busted is no rock,
  # so a stand-in rock whose command is Debian's runner goes into the tree, and a config names the tree
  # (--tree alone does not make LuaRocks look there for test dependencies). One spec file is enough here.
  mkdir -p "$work/busted/bin"
  printf '#!/usr/bin/env lua\nrequire("busted.runner")({ standalone = false })\n' > "$work/busted/bin/busted"
  printf 'rockspec_format = "3.0"\npackage = "busted"\nversion = "2.1.1-1"\nsource = { url = "file:///dev/null" }\nbuild = { type = "none", install = { bin = { busted = "bin/busted" } } }\n' \
    > "$work/busted/busted-2.1.1-1.rockspec"
  printf 'rocks_trees = { "%s" }\nrocks_servers = {}\n' "$work/tree-make" > "$work/luarocks-config.lua"
  if (cd "$work/busted" && luarocks --lua-version 5.4 --tree "$work/tree-make" make --deps-mode=none \
        busted-2.1.1-1.rockspec) > "$work/test.log" 2>&1 &&
     (cd "$work/copy" && LUAROCKS_CONFIG="$work/luarocks-config.lua" \
        LUA_CPATH="$(luarocks --lua-version 5.4 --tree "$work/tree-make" path --lr-cpath);;" \
        luarocks --lua-version 5.4 --tree "$work/tree-make" test rockspec/llamacloud-scm-1.rockspec -- \
        -o TAP spec/smoke_spec.lua) >> "$work/test.log" 2>&1 &&
     grep -q '^ok 1 ' "$work/test.log" && ! grep -q '^not ok' "$work/test.log"; then
    echo "luarocks-check: luarocks-test: luarocks test ran the suite with busted"
    tally "1 0 0" luarocks-test
  else
    cat "$work/test.log" >&2; failed luarocks-test "luarocks test"
  fi
else
  cat "$work/make.log" >&2; failed luarocks-make "luarocks make"; failed luarocks-test "luarocks make"
fi

# The release's source rock. `git stash create` makes a commit of the working tree's tracked files without
# touching the checkout (nothing when it is clean), so uncommitted edits are checked too; untracked files
# are not in it, as they would not be in a release.
rock="$work/llamacloud-$version-1.src.rock"
if tree_ish=$(cd "$here" && c=$(git stash create) && echo "${c:-HEAD}") &&
   (cd "$here" && git archive --format=tar.gz --prefix="llamacloud-$version/" -o "$work/llamacloud-$version.tar.gz" "$tree_ish") &&
   mkdir -p "$work/pack" &&
   sed -e "s|^  url = .*|  url = \"file://$work/llamacloud-$version.tar.gz\",\n  dir = \"llamacloud-$version\",|" \
       -e '/^  tag = /d' "$here/rockspec/llamacloud-$version-1.rockspec" > "$work/pack/llamacloud-$version-1.rockspec" &&
   (cd "$work" && luarocks pack "$work/pack/llamacloud-$version-1.rockspec") > "$work/pack.log" 2>&1 &&
   [ -f "$rock" ]; then
  for lv in 5.1 5.4; do
    if (cd "$work" && luarocks --lua-version "$lv" --tree "$work/tree-$lv" install "$rock" --deps-mode=none) \
        > "$work/install-$lv.log" 2>&1; then
      try "luarocks-rock-$lv" "$lv" "$work/tree-$lv" || status=1
    else
      cat "$work/install-$lv.log" >&2; failed "luarocks-rock-$lv" "luarocks install $(basename "$rock")"
    fi
  done
else
  cat "$work/pack.log" >&2 2>/dev/null
  failed luarocks-rock-5.1 "packing the source rock"; failed luarocks-rock-5.4 "packing the source rock"
fi
exit $status
