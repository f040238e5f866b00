#!/bin/sh
# Writes rockspec/llamacloud-<VERSION>-1.rockspec from the scm-1 rockspec (the one to edit): the same but for
# version and source (the tag vVERSION), and removes the rockspec of any earlier version.
# spec/packaging_spec.lua fails until this has run after an edit of scm-1 or of VERSION.
set -eu
cd "$(dirname "$0")/.."
v=$(cat VERSION)
out="rockspec/llamacloud-$v-1.rockspec"
for f in rockspec/llamacloud-*-1.rockspec; do
  [ "$f" = "$out" ] || [ "$f" = rockspec/llamacloud-scm-1.rockspec ] || rm -f "$f"
done
sed -e "1s|.*|-- LuaRocks package for llamacloud-lua $v, the release tagged v$v. Written by scripts/release-rockspec.sh from llamacloud-scm-1.rockspec: edit that one.|" \
    -e "s|^version = \"scm-1\"|version = \"$v-1\"|" \
    -e "s|^\(  url = \"git+[^\"]*\",\)\$|\1\n  tag = \"v$v\",|" \
    rockspec/llamacloud-scm-1.rockspec > "$out"
echo "wrote $out"
