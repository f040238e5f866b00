#!/bin/sh
# The README's first command (`make demo`): wait for a batch with live progress, then print it.
# Without an API key it runs against the bundled fake LlamaCloud, where bat-demo moves
# PENDING -> RUNNING -> COMPLETED, then runs the whole workflow (examples/markdown.lua); with one
# it waits for $LLAMA_CLOUD_BATCH_ID on the real API (spec/demo_spec.lua).
# LUA names the interpreter (default lua5.4).
set -u

LUA=${LUA:-lua5.4}
cd "$(dirname "$0")/.." || exit 2

trim() { printf '%s' "$1" | tr -d ' \t\r\n'; }

key=$(trim "${LLAMA_CLOUD_API_KEY:-}")
[ -n "$key" ] || key=$(trim "${LLAMA_PARSE_API_KEY:-}")

if [ -n "$key" ]; then
  batch=$(trim "${LLAMA_CLOUD_BATCH_ID:-}")
  if [ -z "$batch" ]; then
    echo "demo: an API key is set, so the demo waits for one of your batches on the real API:" >&2
    echo "demo: set LLAMA_CLOUD_BATCH_ID=bat-... (or unset the key to use the bundled fake server)" >&2
    exit 2
  fi
  echo "demo: waiting for $batch on ${LLAMA_CLOUD_BASE_URL:-the LlamaCloud API}" >&2
  exec "$LUA" bin/llamacloud batches wait "$batch" --expand results --progress --pretty
fi

# The fake server listens on 127.0.0.1: a proxy named by the environment could not reach it.
unset http_proxy HTTP_PROXY https_proxy HTTPS_PROXY all_proxy ALL_PROXY

log=$(mktemp) || exit 2
server=
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null
  rm -f "$log"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$LUA" bin/llamacloud fake-server --port 0 >"$log" 2>&1 </dev/null &
server=$!

# The server's first line is "fake-server listening on http://127.0.0.1:PORT".
url=
tries=0
while [ -z "$url" ]; do
  url=$(sed -n '1s/^fake-server listening on \(http:\/\/127\.0\.0\.1:[0-9][0-9]*\)$/\1/p' "$log")
  [ -n "$url" ] && break
  tries=$((tries + 1))
  if [ "$tries" -gt 200 ] || ! kill -0 "$server" 2>/dev/null; then
    echo "demo: the fake server did not start:" >&2
    cat "$log" >&2
    exit 3
  fi
  sleep 0.05
done

echo "demo: no LLAMA_CLOUD_API_KEY, so this runs against the bundled fake server at $url" >&2
echo "demo: \$ llamacloud batches wait bat-demo --expand results --interval 0.5 --progress --pretty" >&2
LLAMA_CLOUD_API_KEY=demo-key LLAMA_CLOUD_BASE_URL=$url LLAMA_CLOUD_CUSTOM_HEADERS= \
  "$LUA" bin/llamacloud batches wait bat-demo --expand results --interval 0.5 --progress --pretty || exit $?

# Then the whole workflow: create a batch over dir-demo, follow every file's job to its end, print
# the markdown of the parsed ones (README, "From a directory to parsed markdown").
echo "demo: \$ $LUA examples/markdown.lua" >&2
LLAMA_CLOUD_API_KEY=demo-key LLAMA_CLOUD_BASE_URL=$url LLAMA_CLOUD_CUSTOM_HEADERS= \
  "$LUA" examples/markdown.lua
