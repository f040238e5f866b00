/* luaopen_llamacloud_core and the Lua bindings of the client, request and multi classes.
   The module is one translation unit: the files included below are its parts, each owning one concern. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <errno.h>
#include <math.h>
#include <curl/curl.h>

#include "compat.h"

#ifndef LC_VERSION
#define LC_VERSION "0.0.0-dev"
#endif

#define LC_MAX_HEADER_BYTES (256 * 1024)

#include "buf.c"
#include "url.c"
#include "retry.c"
#include "transfer.c"
#include "errors.c"
#include "decode.c"
#include "settings.c"
#include "request.c"
#include "multi.c"
#include "call.c"
#include "webhook.c"

#define LC_CLIENT_MT "llamacloud.client"
#define LC_BLOCKING_CONNECTIONS 4

typedef struct lc_client {
  lc_config cfg;    /* strings and header list freed in lc_client_close */
  lc_multi *multi;  /* the multi blocking get runs on; its userdata is held by multi_ref */
  int multi_ref;    /* unref in lc_client_close */
  int closed;
} lc_client;

static int lc_request_gc(lua_State *L) {
  lc_request_release(L, (lc_request *)luaL_checkudata(L, 1, LC_REQUEST_MT));
  return 0;
}

static lc_request *lc_check_request(lua_State *L, int idx) {
  return (lc_request *)luaL_checkudata(L, idx, LC_REQUEST_MT);
}

/* ---- the client ---- */

static lc_client *lc_check_client(lua_State *L, int idx) {
  lc_client *c = (lc_client *)luaL_checkudata(L, idx, LC_CLIENT_MT);
  if (c->closed) luaL_error(L, "llamacloud: the client is closed");
  return c;
}

static void lc_client_close(lua_State *L, lc_client *c) {
  lc_config *cfg = &c->cfg;
  if (c->closed) return;
  if (c->multi) lc_multi_check_idle(L, c->multi); /* refused before anything changes (spec/reentry_spec.lua) */
  c->closed = 1;
  if (c->multi) lc_multi_close(L, c->multi);
  c->multi = NULL;
  luaL_unref(L, LUA_REGISTRYINDEX, c->multi_ref);
  c->multi_ref = LUA_NOREF;
  /* Requests of it still on other multis use its headers and strings: those go with the last one. */
  cfg->closed = 1;
  if (cfg->users == 0) lc_config_free(cfg);
}

static int lc_client_gc(lua_State *L) {
  lc_client_close(L, (lc_client *)luaL_checkudata(L, 1, LC_CLIENT_MT));
  return 0;
}

static int lc_client_close_lua(lua_State *L) {
  lc_client_close(L, (lc_client *)luaL_checkudata(L, 1, LC_CLIENT_MT));
  return 0;
}

/* core.new(opts): everything is checked before the userdata owns anything. */
static int lc_client_new(lua_State *L) {
  lc_settings s;
  lc_client *c;
  if (lua_isnoneornil(L, 1)) {
    lua_settop(L, 0);
    lua_newtable(L);
  }
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  lc_settings_read(L, 1, &s);

  /* Everything is valid: from here the userdata owns what is allocated, so an
     out-of-memory error still frees it through __gc. */
  c = (lc_client *)lua_newuserdata(L, sizeof *c);
  memset(c, 0, sizeof *c);
  c->multi_ref = LUA_NOREF;
  lc_setmetatable(L, LC_CLIENT_MT);
  lc_config_fill(L, &c->cfg, &s);
  return 1;
}

/* The multi the client's blocking calls run on, made at the first: a libcurl multi holds two file
   descriptors (its wakeup pair), so a client that never blocks costs none (a spec that builds
   thousands of clients and leaves them to the collector stays far from 1024 descriptors;
   spec/client_cost_spec.lua). */
static lc_multi *lc_client_own_multi(lua_State *L, lc_client *c) {
  lc_multi *m;
  int ref;
  if (c->multi != NULL) return c->multi;
  m = lc_multi_push_new(L, LC_BLOCKING_CONNECTIONS);
  ref = luaL_ref(L, LUA_REGISTRYINDEX); /* before c points at the multi: a raise leaves c without one */
  if (c->multi != NULL || c->closed) {
    /* a finalizer the two allocations above ran made the client's multi (a blocking call of its
       own) or closed the client: this one goes, else it stayed referenced, with its descriptors,
       until lua_close (spec/review2_lazy_multi_spec.lua) */
    luaL_unref(L, LUA_REGISTRYINDEX, ref);
    lc_multi_close(L, m);
    if (c->closed) luaL_error(L, "llamacloud: the client is closed");
    return c->multi;
  }
  c->multi = m;
  c->multi_ref = ref;
  return m;
}


/* Runs the request at ridx on the client's own multi until it ends; pushes what lc_request_push_result does. */
static int lc_client_block(lua_State *L, lc_client *c, lc_request *r, int ridx) {
  int nret;
  lc_multi *m = lc_client_own_multi(L, c);
  /* The client's multi holds only the call in flight: what a call that raised left there goes now. */
  lc_multi_cancel_all(L, m);
  lc_multi_add(L, m, r, ridx);
  lc_multi_step(L, m, 0, 0);
  while (r->state != LC_ST_DONE && r->state != LC_ST_CANCELLED) {
    double w = lc_multi_next_wait(m);
    lc_multi_step(L, m, w < 0 ? 0.001 : w, 0);
  }
  nret = lc_request_push_result(L, r);
  /* Nothing else sees this request: dropping its references now lets the result go with the
     caller's last reference, not two collections later (the userdata's __gc, then the tree). */
  lc_request_release(L, r);
  return nret;
}

/* client:get(id [, opts [, want_raw]]): blocks until done; batch, nil, hint[, raw] | nil, err, hint. */
static int lc_client_get(lua_State *L) {
  lc_client *c = lc_check_client(L, 1);
  lc_request *r;
  int want_raw = lua_toboolean(L, 4);
  lua_settop(L, 3);
  r = lc_request_push_new(L, &lc_call_batch_get, 1, &c->cfg, 2, want_raw);
  return lc_client_block(L, c, r, lua_gettop(L));
}

/* The public blocking call of a declaration that takes (id [, opts]), a closure over its client
   (upvalue 1) and its call (upvalue 2, none for get): result | nil, err, and no Lua frame between
   it and the caller, so an argument error names the caller's line. */
static int lc_client_bound_call(lua_State *L) {
  lc_client *c;
  const lc_call *call = &lc_call_batch_get;
  lc_request *r;
  lua_settop(L, 2);
  c = lc_check_client(L, lua_upvalueindex(1));
  if (!lua_isnone(L, lua_upvalueindex(2))) call = (const lc_call *)lua_touserdata(L, lua_upvalueindex(2));
  r = lc_request_push_call(L, call, lua_upvalueindex(1), &c->cfg, call->id_name ? 1 : 0, call->id_name ? 2 : 1,
                           0, 0, 0);
  lc_client_block(L, c, r, 3);
  lua_settop(L, 5); /* id, opts, the request, then the result and the error */
  return 2;
}

/* client:getter(): that closure for get. */
static int lc_client_getter(lua_State *L) {
  lc_check_client(L, 1);
  lua_settop(L, 1);
  lua_pushcclosure(L, lc_client_bound_call, 1);
  return 1;
}

/* client:caller(call): that closure for another call. */
static int lc_client_caller(lua_State *L) {
  lc_check_client(L, 1);
  lc_check_call(L, 2);
  lua_settop(L, 2);
  lua_pushcclosure(L, lc_client_bound_call, 2);
  return 1;
}

/* client:request(id [, opts [, want_raw]]): a get not yet started, for a multi to drive. */
static int lc_client_request(lua_State *L) {
  lc_client *c = lc_check_client(L, 1);
  int want_raw = lua_toboolean(L, 4);
  lua_settop(L, 3);
  lc_request_push_new(L, &lc_call_batch_get, 1, &c->cfg, 2, want_raw);
  return 1;
}

/* client:prepare(call, id, opts, query, body [, want_raw]): a request of call not yet started;
   id, query and body may be nil where the call takes none. */
static int lc_client_prepare(lua_State *L) {
  lc_client *c = lc_check_client(L, 1);
  const lc_call *call = lc_check_call(L, 2);
  int want_raw = lua_toboolean(L, 7);
  lua_settop(L, 6);
  lc_request_push_call(L, call, 1, &c->cfg, 3, 4, lua_isnil(L, 5) ? 0 : 5,
                       lua_isnil(L, 6) ? 0 : 6, want_raw);
  return 1;
}

/* client:run(request): runs a request from prepare to its end, blocking; what request:result() gives. */
static int lc_client_run(lua_State *L) {
  lc_client *c = lc_check_client(L, 1);
  lc_request *r = lc_check_request(L, 2);
  if (r->state != LC_ST_NEW) luaL_error(L, "llamacloud: a request can be run once, before it runs");
  lua_settop(L, 2);
  return lc_client_block(L, c, r, 2);
}

/* client:multi([concurrency]): a multi of its own, with its own connection pool. */
static int lc_client_multi(lua_State *L) {
  double n = 16;
  lc_check_client(L, 1);
  if (!lua_isnoneornil(L, 2)) {
    if (!lc_isinteger(L, 2) || (n = lua_tonumber(L, 2)) < 1 || n > 10000)
      luaL_error(L, "llamacloud: concurrency must be a whole number from 1 to 10000");
  }
  lc_multi_push_new(L, (int)n);
  return 1;
}

/* client:config(): the resolved settings, for the Lua layer and the specs (never the key). */
static int lc_client_config(lua_State *L) {
  lc_client *c = lc_check_client(L, 1);
  const struct curl_slist *p;
  lua_createtable(L, 0, 8);
  lua_pushstring(L, c->cfg.base_url);
  lua_setfield(L, -2, "base_url");
  lua_pushnumber(L, c->cfg.timeout);
  lua_setfield(L, -2, "timeout");
  lc_pushint(L, c->cfg.max_retries);
  lua_setfield(L, -2, "max_retries");
  lc_pushint(L, (long long)c->cfg.max_body);
  lua_setfield(L, -2, "max_body_bytes");
  if (c->cfg.organization_id) {
    lua_pushstring(L, c->cfg.organization_id);
    lua_setfield(L, -2, "organization_id");
  }
  if (c->cfg.project_id) {
    lua_pushstring(L, c->cfg.project_id);
    lua_setfield(L, -2, "project_id");
  }
  lua_newtable(L);
  for (p = c->cfg.headers; p != NULL; p = p->next) {
    const char *colon = strchr(p->data, ':');
    if (colon == NULL || lc_header_named(p->data, "Authorization")) continue;
    lua_pushlstring(L, p->data, (size_t)(colon - p->data));
    lua_pushstring(L, colon[1] == ' ' ? colon + 2 : colon + 1);
    lua_rawset(L, -3);
  }
  lua_setfield(L, -2, "headers");
  return 1;
}

/* ---- request and multi methods ---- */

static int lc_request_result(lua_State *L) { return lc_request_push_result(L, lc_check_request(L, 1)); }

static int lc_request_done(lua_State *L) {
  lc_request *r = lc_check_request(L, 1);
  lua_pushboolean(L, r->state == LC_ST_DONE || r->state == LC_ST_CANCELLED);
  return 1;
}

static int lc_request_cancel(lua_State *L) {
  lc_request *r = lc_check_request(L, 1);
  lc_request_detach(L, r);
  if (r->state != LC_ST_DONE) r->state = LC_ST_CANCELLED;
  return 0;
}

static int lc_request_close(lua_State *L) {
  lc_request_release(L, lc_check_request(L, 1));
  return 0;
}

static int lc_request_attempts(lua_State *L) {
  lua_pushinteger(L, lc_check_request(L, 1)->attempts);
  return 1;
}

static lc_multi *lc_check_multi(lua_State *L, int idx) {
  lc_multi *m = (lc_multi *)luaL_checkudata(L, idx, LC_MULTI_MT);
  if (m->closed) luaL_error(L, "llamacloud: the multi is closed");
  return m;
}

static int lc_multi_add_lua(lua_State *L) {
  lc_multi *m = lc_check_multi(L, 1);
  lc_request *r = lc_check_request(L, 2);
  if (r->state != LC_ST_NEW) luaL_error(L, "llamacloud: a request can be added once, before it runs");
  lc_multi_add(L, m, r, 2);
  return 0;
}

/* multi:step([wait_s]): finished requests (a list, or nil) and seconds until the next step is due (nil: idle). */
static int lc_multi_step_lua(lua_State *L) {
  lc_multi *m = lc_check_multi(L, 1);
  double wait = luaL_optnumber(L, 2, 0), next;
  lua_settop(L, 2);
  lc_multi_step(L, m, wait, -1); /* pushes the list, made while the multi is busy */
  if (lc_rawlen(L, 3) == 0) {
    lua_pushnil(L);
    lua_replace(L, 3);
  }
  next = lc_multi_next_wait(m);
  if (next < 0) lua_pushnil(L); else lua_pushnumber(L, next);
  return 2;
}

/* multi:watch(): records libcurl's socket interest from now on, for an event-loop host
   that polls the sockets itself and drives the multi with socket_action. */
static int lc_multi_watch(lua_State *L) {
  lc_multi *m = lc_check_multi(L, 1);
  if (m->running > 0) luaL_error(L, "llamacloud: watch a multi before any transfer starts");
  m->watch = 1;
  return 0;
}

/* multi:sockets(): {[fd] = "r"|"w"|"rw"} that libcurl wants watched now, and the list of
   fds it dropped since the last call, in order: close those watchers first. */
static int lc_multi_sockets(lua_State *L) {
  lc_multi *m = lc_check_multi(L, 1);
  int i;
  lua_createtable(L, 0, m->nsocks);
  for (i = 0; i < m->nsocks; i++) {
    int w = m->socks[i].what;
    lua_pushstring(L, w == CURL_POLL_IN ? "r" : w == CURL_POLL_OUT ? "w" : w == CURL_POLL_INOUT ? "rw" : "");
    lua_rawseti(L, -2, m->socks[i].fd);
  }
  lua_createtable(L, m->ngone, 0);
  for (i = 0; i < m->ngone; i++) {
    lua_pushinteger(L, m->gone[i]);
    lua_rawseti(L, -2, i + 1);
  }
  m->ngone = 0;
  return 2;
}

/* multi:socket_action([fd [, events]]): never blocks. With fd, libcurl reads or writes that
   socket (events: "r", "w", "rw", or nil to let it find out); without, it runs its timers.
   Returns what step returns: finished requests (or nil) and seconds until the next step. */
static int lc_multi_socket_action_lua(lua_State *L) {
  lc_multi *m = lc_check_multi(L, 1);
  int fd = -1, ev = 0;
  double next;
  if (!lua_isnoneornil(L, 2)) {
    lua_Number n = luaL_checknumber(L, 2);
    if (!(n >= 0 && n <= 2147483647.0) || n != floor(n)) luaL_argerror(L, 2, "must be a file descriptor");
    fd = (int)n;
  }
  if (!lua_isnoneornil(L, 3)) {
    const char *e = luaL_checkstring(L, 3);
    if (strchr(e, 'r')) ev |= CURL_CSELECT_IN;
    if (strchr(e, 'w')) ev |= CURL_CSELECT_OUT;
    if (strchr(e, 'e')) ev |= CURL_CSELECT_ERR;
  }
  lua_settop(L, 3);
  lc_multi_socket_action(L, m, fd, ev, -1); /* pushes the list, made while the multi is busy */
  if (lc_rawlen(L, 4) == 0) {
    lua_pushnil(L);
    lua_replace(L, 4);
  }
  next = lc_multi_next_wait(m);
  if (next < 0) lua_pushnil(L); else lua_pushnumber(L, next);
  return 2;
}

static int lc_multi_close_lua(lua_State *L) {
  lc_multi_close(L, (lc_multi *)luaL_checkudata(L, 1, LC_MULTI_MT));
  return 0;
}

static int lc_multi_counts(lua_State *L) {
  lc_multi *m = lc_check_multi(L, 1);
  lua_pushinteger(L, m->running);
  lua_pushinteger(L, m->queued.n + m->retry.n + m->ready.n);
  return 2;
}

/* ---- module functions ---- */

static int lc_core_decode(lua_State *L) {
  size_t n, pos;
  const char *s = luaL_checklstring(L, 1, &n), *err;
  if (lc_json_decode(L, s, n, &err, &pos)) return 1;
  lua_pushnil(L);
  lua_pushfstring(L, "%s at byte %d", err, (int)pos);
  return 2;
}

static int lc_core_now(lua_State *L) {
  lua_pushnumber(L, lc_now());
  return 1;
}

static int lc_core_sleep(lua_State *L) {
  lc_sleep(luaL_checknumber(L, 1));
  return 0;
}

static int lc_core_isatty(lua_State *L) {
  lua_Number fd = luaL_checknumber(L, 1);
  lua_pushboolean(L, fd >= 0 && fd <= 2147483647.0 && isatty((int)fd));
  return 1;
}

static int lc_core_encode_segment(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  lc_buf b = {NULL, 0, 0};
  if (lc_url_encode(&b, s, n) != 0) {
    lc_buf_free(&b);
    return luaL_error(L, "llamacloud: out of memory");
  }
  lua_pushlstring(L, b.data ? b.data : "", b.len);
  lc_buf_free(&b);
  return 1;
}

static int lc_core_retry_after(lua_State *L) {
  const char *ms = luaL_optstring(L, 1, NULL), *ra = luaL_optstring(L, 2, NULL);
  lua_Number n = luaL_optnumber(L, 3, (lua_Number)time(NULL));
  double v;
  if (!(n >= 0 && n < 1e15)) luaL_argerror(L, 3, "must be seconds since the epoch");
  v = lc_retry_after(ms, ra, (time_t)n);
  if (v < 0) lua_pushnil(L); else lua_pushnumber(L, v);
  return 1;
}

static int lc_core_retry_delay(lua_State *L) {
  lua_Number done = luaL_checknumber(L, 1);
  double hint = luaL_optnumber(L, 2, -1);
  if (!(done >= 0 && done <= 1000)) luaL_argerror(L, 1, "must be a retry count from 0 to 1000");
  lua_pushnumber(L, lc_retry_delay((int)done, hint, luaL_optnumber(L, 3, 0)));
  return 1;
}

static void lc_check_libcurl(lua_State *L) {
  const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
  if (v->version_num < 0x075500 || !(v->features & CURL_VERSION_SSL))
    luaL_error(L, "llamacloud: needs libcurl 7.85 or later with TLS support; this process has libcurl %s%s",
               v->version, (v->features & CURL_VERSION_SSL) ? "" : " without TLS");
}

/* A userdata class: its metatable with the methods as __index and gc as __gc. */
static void lc_register_class(lua_State *L, const char *name, const luaL_Reg *methods, lua_CFunction gc) {
  lc_newmetatable(L, name);
  lua_newtable(L);
  lc_setfuncs(L, methods, 0);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
}

int luaopen_llamacloud_core(lua_State *L) {
  static int curl_ready = 0; /* curl_global_init is reference counted: call it once per process */
  static const luaL_Reg client_methods[] = {
    {"get", lc_client_get}, {"getter", lc_client_getter}, {"caller", lc_client_caller},
    {"request", lc_client_request}, {"prepare", lc_client_prepare}, {"run", lc_client_run}, {"multi", lc_client_multi},
    {"config", lc_client_config}, {"close", lc_client_close_lua}, {NULL, NULL}};
  static const luaL_Reg request_methods[] = {
    {"result", lc_request_result}, {"done", lc_request_done}, {"cancel", lc_request_cancel},
    {"close", lc_request_close}, {"attempts", lc_request_attempts}, {NULL, NULL}};
  static const luaL_Reg multi_methods[] = {
    {"add", lc_multi_add_lua}, {"step", lc_multi_step_lua}, {"counts", lc_multi_counts},
    {"watch", lc_multi_watch}, {"sockets", lc_multi_sockets}, {"socket_action", lc_multi_socket_action_lua},
    {"close", lc_multi_close_lua}, {NULL, NULL}};
  static const luaL_Reg call_methods[] = {{NULL, NULL}};
  static const luaL_Reg funcs[] = {
    {"new", lc_client_new}, {"decode", lc_core_decode}, {"now", lc_core_now}, {"sleep", lc_core_sleep},
    {"error", lc_error_new_lua}, {"call", lc_call_new_lua}, {"isatty", lc_core_isatty}, {"encode_segment", lc_core_encode_segment},
    {"retry_after", lc_core_retry_after}, {"retry_delay", lc_core_retry_delay}, {NULL, NULL}};

  lc_check_libcurl(L);
  if (!curl_ready) {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) luaL_error(L, "llamacloud: curl_global_init failed");
    curl_ready = 1;
  }
  lc_error_open(L);
  lua_pushlightuserdata(L, &lc_attempt_build_key);
  lua_pushcfunction(L, lc_attempt_build);
  lua_rawset(L, LUA_REGISTRYINDEX);

  lc_register_class(L, LC_CLIENT_MT, client_methods, lc_client_gc);
  lc_register_class(L, LC_REQUEST_MT, request_methods, lc_request_gc);
  lc_register_class(L, LC_MULTI_MT, multi_methods, lc_multi_close_lua);
  lc_register_class(L, LC_CALL_MT, call_methods, lc_call_gc);

  lua_newtable(L);
  lc_setfuncs(L, funcs, 0);
  lc_webhook_open(L);
  lua_pushliteral(L, LC_VERSION);
  lua_setfield(L, -2, "VERSION");
  lua_pushstring(L, curl_version_info(CURLVERSION_NOW)->version);
  lua_setfield(L, -2, "curl_version");
  lua_pushstring(L, lc_lua_version());
  lua_setfield(L, -2, "lua_version");
  lua_pushlightuserdata(L, NULL);
  lua_setfield(L, -2, "null");
  luaL_getmetatable(L, LC_ERROR_MT);
  lua_setfield(L, -2, "error_mt");
  return 1;
}
