# Sourced by keyscan.sh, sanitize.sh and valgrind.sh, which run the spec suite on this checkout: moves to
# the repository root, makes busted's arguments default to spec, and sets LUA_VERSION (default 5.4),
# LUA (default lua$LUA_VERSION) and BUILD, the module's build directory (build/$LUA_VERSION).
set -u
cd "$(dirname "$0")/.." || exit 2
[ $# -gt 0 ] || set -- spec
LUA_VERSION=${LUA_VERSION:-5.4}
LUA=${LUA:-lua$LUA_VERSION}
BUILD=build/$LUA_VERSION

# Builds $BUILD/llamacloud/core.so (further make variables as arguments), or exits 2.
build_module() {
  make -s LUA_VERSION="$LUA_VERSION" BUILD="$BUILD" "$@" "$BUILD/llamacloud/core.so" || exit 2
}
