#!/bin/sh
# Proves the rockspec: `luarocks make --deps-mode=none` into a fresh tree gives a working
# require("llamacloud") and llamacloud command. Appends one line to $LLAMACLOUD_TALLY.
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'kill "$server" 2>/dev/null; rm -rf "$work"' EXIT INT TERM
server=""
tally() { [ -n "${LLAMACLOUD_TALLY:-}" ] && echo "$1 luarocks" >> "$LLAMACLOUD_TALLY"; }
fail() { echo "luarocks-check: FAILED: $*" >&2; tally "0 1 0"; exit 1; }

# Build from a copy so that luarocks' objects never land in the checkout.
mkdir -p "$work/src"
(cd "$here" && tar cf - src lua bin rockspec VERSION) | (cd "$work/src" && tar xf -)
(cd "$work/src" && luarocks --lua-version 5.4 --tree "$work/tree" make --deps-mode=none \
  rockspec/llamacloud-scm-1.rockspec) > "$work/build.log" 2>&1 || { cat "$work/build.log" >&2; fail "luarocks make"; }

eval "$(luarocks --lua-version 5.4 --tree "$work/tree" path)"
cd "$work" || fail "cd"
version=$(lua5.4 -e 'io.write(require("llamacloud").VERSION)') || fail "require"
[ "$version" = "$(cat "$here/VERSION")" ] || fail "VERSION is '$version'"
"$work/tree/bin/llamacloud" fake-server --port 0 > "$work/server.out" 2>&1 &
server=$!
i=0
while ! grep -q listening "$work/server.out" 2>/dev/null; do
  i=$((i + 1)); [ $i -gt 100 ] && fail "fake server did not start"; sleep 0.1
done
port=$(sed -n 's/.*127\.0\.0\.1:\([0-9]*\).*/\1/p' "$work/server.out" | head -n 1)
out=$(LLAMA_CLOUD_API_KEY=sk-luarocks-check LLAMA_CLOUD_BASE_URL="http://127.0.0.1:$port" \
  "$work/tree/bin/llamacloud" batches get bat-done --expand results) || fail "llamacloud batches get"
case "$out" in *'"status":"COMPLETED"'*) ;; *) fail "unexpected output: $out" ;; esac
echo "luarocks-check: installed module $version and CLI work"
tally "1 0 0"
