/* Lua 5.1-5.4 and LuaJIT differences: the only file that tests LUA_VERSION_NUM. */
#ifndef LC_COMPAT_H
#define LC_COMPAT_H

#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>
#if defined(__has_include)
#if __has_include(<luajit.h>)
#include <luajit.h>
#endif
#endif

/* Shims are lc_-prefixed so nothing clashes with what LuaJIT exports. */
#if LUA_VERSION_NUM >= 503
#define LC_HAS_INTEGERS 1
#else
#define LC_HAS_INTEGERS 0
#endif

#if LUA_VERSION_NUM >= 502
#define lc_rawlen(L, i) lua_rawlen((L), (i))
#define lc_absindex(L, i) lua_absindex((L), (i))
#define lc_setfuncs(L, l, n) luaL_setfuncs((L), (l), (n))
#else
#define lc_rawlen(L, i) lua_objlen((L), (i))
#define lc_absindex(L, i) \
  (((i) > 0 || (i) <= LUA_REGISTRYINDEX) ? (i) : lua_gettop(L) + (i) + 1)

static inline void lc_setfuncs(lua_State *L, const luaL_Reg *l, int nup) {
  for (; l->name != NULL; l++) {
    int i;
    for (i = 0; i < nup; i++) lua_pushvalue(L, -nup);
    lua_pushcclosure(L, l->func, nup);
    lua_setfield(L, -(nup + 2), l->name);
  }
  lua_pop(L, nup);
}
#endif

/* A JSON integer that fits becomes a Lua integer where the language has them. */
static inline void lc_pushint(lua_State *L, long long v) {
#if LC_HAS_INTEGERS
  lua_pushinteger(L, (lua_Integer)v);
#else
  lua_pushnumber(L, (lua_Number)v);
#endif
}

/* Whether v is a whole number a long long holds; NaN and huge values are refused before any
   cast, which would be undefined for them. */
static inline int lc_num_is_ll(double v) {
  return v >= -9223372036854775808.0 && v < 9223372036854775808.0 && v == (double)(long long)v;
}

static inline int lc_isinteger(lua_State *L, int i) {
#if LC_HAS_INTEGERS
  if (lua_isinteger(L, i)) return 1;
#endif
  return lua_type(L, i) == LUA_TNUMBER && lc_num_is_ll((double)lua_tonumber(L, i));
}

static inline void lc_newmetatable(lua_State *L, const char *tname) {
  luaL_newmetatable(L, tname);
}

static inline void lc_setmetatable(lua_State *L, const char *tname) {
  luaL_getmetatable(L, tname);
  lua_setmetatable(L, -2);
}

static inline const char *lc_lua_version(void) {
#if defined(LUAJIT_VERSION)
  return LUAJIT_VERSION;
#else
  return LUA_RELEASE;
#endif
}

#endif
