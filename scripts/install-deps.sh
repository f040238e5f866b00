#!/bin/sh
# Installs, from Debian packages only, everything the build, the demo and every test need.
set -eu

PACKAGES="make gcc pkg-config libcurl4-openssl-dev libssl-dev ca-certificates openssl
  lua5.1 liblua5.1-0-dev lua5.2 liblua5.2-dev lua5.3 liblua5.3-dev lua5.4 liblua5.4-dev
  luajit2 libluajit2-5.1-dev
  lua-cjson lua-socket lua-busted luarocks
  neovim lua-luv nginx libnginx-mod-http-lua lua-resty-core
  valgrind clang libclang-rt-14-dev util-linux procps"

if [ "${1:-}" = "--list" ]; then
  echo $PACKAGES
  exit 0
fi

if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi

missing=""
for p in $PACKAGES; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -z "$missing" ]; then
  echo "install-deps: every package is installed"
  exit 0
fi
echo "install-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# shellcheck disable=SC2086
$SUDO apt-get install -y -q $missing
