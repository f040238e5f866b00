/* luaopen_llamacloud_core: the client (options checked, environment read once at new), get, requests and multis.
   The module is one translation unit: the files below are its parts, each owning one concern. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <errno.h>
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
#include "request.c"

#define LC_CLIENT_MT "llamacloud.client"
#define LC_DEFAULT_BASE_URL "https://api.cloud.llamaindex.ai"
#define LC_EU_BASE_URL "https://api.cloud.eu.llamaindex.ai"
#define LC_DEFAULT_TIMEOUT 60.0
#define LC_DEFAULT_MAX_RETRIES 2
#define LC_DEFAULT_MAX_BODY ((size_t)256 * 1024 * 1024)
#define LC_MAX_RETRIES_LIMIT 100
#define LC_BLOCKING_CONNECTIONS 4

static unsigned long long lc_config_serial; /* the last lc_config id given out */

typedef struct lc_client {
  lc_config cfg;    /* strings and header list freed in lc_client_close */
  lc_multi *multi;  /* the multi blocking get runs on; its userdata is held by multi_ref */
  int multi_ref;    /* unref in lc_client_close */
  int closed;
} lc_client;

static const char *const lc_client_options[] = {
  "api_key", "base_url", "region", "timeout", "max_retries", "headers", "organization_id", "project_id",
  "max_body_bytes", "proxy", "ca_file", "ca_path", "allow_insecure_http", NULL};

static const char *const lc_get_options[] = {
  "expand", "organization_id", "project_id", "timeout", "max_retries", "headers", "extra_query", "deadline", NULL};

/* ---- checking what the caller passed: every mistake raises, naming it ---- */

static void lc_check_known(lua_State *L, int idx, const char *const *known, const char *fn) {
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    int i, found = 0;
    lua_pop(L, 1);
    if (lua_type(L, -1) != LUA_TSTRING) luaL_error(L, "llamacloud: %s: option names must be strings", fn);
    for (i = 0; known[i] != NULL; i++)
      if (strcmp(lua_tostring(L, -1), known[i]) == 0) found = 1;
    if (!found) luaL_error(L, "llamacloud: %s: unknown option '%s'", fn, lua_tostring(L, -1));
  }
}

/* The string option name in the table at idx, or NULL when absent; anything but a string raises. */
static const char *lc_opt_string(lua_State *L, int idx, const char *name, const char *fn) {
  const char *s;
  lua_getfield(L, idx, name);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return NULL;
  }
  if (lua_type(L, -1) != LUA_TSTRING)
    luaL_error(L, "llamacloud: %s: option '%s' must be a string (got %s)", fn, name, luaL_typename(L, -1));
  s = lua_tostring(L, -1);
  lua_pop(L, 1); /* still referenced by the options table */
  return s;
}

static int lc_opt_number(lua_State *L, int idx, const char *name, const char *fn, double *out) {
  double v;
  lua_getfield(L, idx, name);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return 0;
  }
  v = lua_tonumber(L, -1);
  if (lua_type(L, -1) != LUA_TNUMBER || !(v > 0) || v > 1e9)
    luaL_error(L, "llamacloud: %s: option '%s' must be a positive number of seconds", fn, name);
  lua_pop(L, 1);
  *out = v;
  return 1;
}

/* An absolute time in seconds on core.now()'s clock; any number but NaN (math.huge: none). */
static int lc_opt_time(lua_State *L, int idx, const char *name, const char *fn, double *out) {
  double v;
  lua_getfield(L, idx, name);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return 0;
  }
  v = lua_tonumber(L, -1);
  if (lua_type(L, -1) != LUA_TNUMBER || v != v)
    luaL_error(L, "llamacloud: %s: option '%s' must be a time in seconds on core.now()'s clock", fn, name);
  lua_pop(L, 1);
  *out = v;
  return 1;
}

static int lc_opt_count(lua_State *L, int idx, const char *name, const char *fn, double min, double max, double *out) {
  double v;
  lua_getfield(L, idx, name);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return 0;
  }
  v = lua_tonumber(L, -1);
  if (!lc_isinteger(L, -1) || v < min || v > max) {
    char range[64]; /* lua_pushfstring has no %.0f */
    snprintf(range, sizeof range, "%.0f to %.0f", min, max);
    luaL_error(L, "llamacloud: %s: option '%s' must be a whole number from %s", fn, name, range);
  }
  lua_pop(L, 1);
  *out = v;
  return 1;
}

static int lc_header_name_ok(const char *s) {
  if (*s == '\0') return 0;
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c <= 32 || c >= 127 || strchr("()<>@,;:\\\"/[]?={}", c) != NULL) return 0;
  }
  return 1;
}

static int lc_header_value_ok(const char *s, size_t n) {
  size_t i;
  for (i = 0; i < n; i++)
    if (s[i] == '\r' || s[i] == '\n' || s[i] == '\0') return 0;
  return 1;
}

/* Checks a headers table (name -> string value) before anything is built from it. */
static void lc_check_headers(lua_State *L, int idx, const char *what) {
  idx = lc_absindex(L, idx);
  if (!lua_istable(L, idx)) luaL_error(L, "llamacloud: %s must be a table of name = value", what);
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    size_t n;
    const char *v;
    if (lua_type(L, -2) != LUA_TSTRING || !lc_header_name_ok(lua_tostring(L, -2)))
      luaL_error(L, "llamacloud: %s: invalid header name", what);
    if (lua_type(L, -1) != LUA_TSTRING)
      luaL_error(L, "llamacloud: %s: header '%s' must be a string", what, lua_tostring(L, -2));
    v = lua_tolstring(L, -1, &n);
    if (!lc_header_value_ok(v, n))
      luaL_error(L, "llamacloud: %s: header '%s' contains CR, LF or NUL", what, lua_tostring(L, -2));
    lua_pop(L, 1);
  }
}

static int lc_header_named(const char *line, const char *name) {
  size_t n = strlen(name);
  return strncasecmp(line, name, n) == 0 && line[n] == ':';
}

/* A new list: base's lines whose names the table at idx does not set, then the table's.
   The caller frees it with curl_slist_free_all. The table was checked already. */
static struct curl_slist *lc_headers_merge(lua_State *L, const struct curl_slist *base, int idx) {
  struct curl_slist *out = NULL, *tmp;
  const struct curl_slist *p;
  idx = lc_absindex(L, idx);
  for (p = base; p != NULL; p = p->next) {
    int overridden = 0;
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
      lua_pop(L, 1);
      if (lc_header_named(p->data, lua_tostring(L, -1))) overridden = 1;
    }
    if (overridden) continue;
    if ((tmp = curl_slist_append(out, p->data)) == NULL) goto oom;
    out = tmp;
  }
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    const char *line = lua_pushfstring(L, "%s: %s", lua_tostring(L, -2), lua_tostring(L, -1));
    tmp = curl_slist_append(out, line);
    lua_pop(L, 2);
    if (tmp == NULL) goto oom;
    out = tmp;
  }
  return out;
oom:
  curl_slist_free_all(out);
  luaL_error(L, "llamacloud: out of memory");
  return NULL;
}

/* ---- the environment, read once at new ---- */

/* getenv's value without surrounding blanks, pushed as a string; NULL (nothing pushed) when unset or empty. */
static const char *lc_push_env(lua_State *L, const char *name) {
  const char *v = getenv(name), *e;
  if (v == NULL) return NULL;
  while (*v == ' ' || *v == '\t' || *v == '\r' || *v == '\n') v++;
  e = v + strlen(v);
  while (e > v && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n')) e--;
  if (e == v) return NULL;
  lua_pushlstring(L, v, (size_t)(e - v));
  return lua_tostring(L, -1);
}

/* LLAMA_CLOUD_CUSTOM_HEADERS ("Name: value" lines) as a checked headers table, pushed; nothing when unset. */
static int lc_push_env_headers(lua_State *L) {
  const char *s = lc_push_env(L, "LLAMA_CLOUD_CUSTOM_HEADERS");
  int line = 0;
  if (s == NULL) return 0;
  lua_newtable(L);
  while (*s) {
    const char *eol = strchr(s, '\n'), *end = eol ? eol : s + strlen(s), *colon, *v, *ve;
    line++;
    ve = end;
    while (ve > s && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t')) ve--;
    if (ve > s) {
      colon = memchr(s, ':', (size_t)(ve - s));
      if (colon == NULL || colon == s)
        luaL_error(L, "llamacloud: LLAMA_CLOUD_CUSTOM_HEADERS: line %d is not 'Name: value'", line);
      lua_pushlstring(L, s, (size_t)(colon - s));
      if (!lc_header_name_ok(lua_tostring(L, -1)))
        luaL_error(L, "llamacloud: LLAMA_CLOUD_CUSTOM_HEADERS: line %d has an invalid header name", line);
      for (v = colon + 1; v < ve && (*v == ' ' || *v == '\t'); v++) {}
      lua_pushlstring(L, v, (size_t)(ve - v));
      lua_rawset(L, -3);
    }
    s = eol ? eol + 1 : end;
  }
  lua_remove(L, -2);
  return 1;
}

/* ---- the client ---- */

static char *lc_strdup(lua_State *L, const char *s) {
  char *p;
  if (s == NULL) return NULL;
  p = strdup(s);
  if (p == NULL) luaL_error(L, "llamacloud: out of memory");
  return p;
}

static lc_client *lc_check_client(lua_State *L, int idx) {
  lc_client *c = (lc_client *)luaL_checkudata(L, idx, LC_CLIENT_MT);
  if (c->closed) luaL_error(L, "llamacloud: the client is closed");
  return c;
}

static void lc_client_close(lua_State *L, lc_client *c) {
  lc_config *cfg = &c->cfg;
  if (c->closed) return;
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

static int lc_is_loopback(const char *host) {
  if (strcasecmp(host, "localhost") == 0 || strcmp(host, "[::1]") == 0 || strcmp(host, "::1") == 0) return 1;
  if (strncmp(host, "127.", 4) == 0) {
    const char *p;
    for (p = host + 4; *p; p++)
      if (!((*p >= '0' && *p <= '9') || *p == '.')) return 0;
    return 1;
  }
  return 0;
}

/* Checks a base URL and pushes it without trailing slashes. Plain http to a host other
   than loopback is refused unless allowed: the key must not travel in clear text. */
static void lc_push_base_url(lua_State *L, const char *url, int allow_insecure) {
  CURLU *u = curl_url();
  char *scheme = NULL, *host = NULL;
  const char *e;
  int bad;
  if (u == NULL) luaL_error(L, "llamacloud: out of memory");
  bad = curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK;
  if (!bad && strcmp(scheme, "https") != 0 && strcmp(scheme, "http") != 0) bad = 2;
  if (!bad && strcmp(scheme, "http") == 0 && !allow_insecure && !lc_is_loopback(host)) bad = 3;
  if (bad) lua_pushstring(L, host ? host : "");
  curl_free(scheme);
  curl_free(host);
  curl_url_cleanup(u);
  if (bad == 3)
    luaL_error(L, "llamacloud: base_url: refusing plain http to %s, which would send the API key in clear "
                  "text; use https, or allow_insecure_http = true", lua_tostring(L, -1));
  if (bad) luaL_error(L, "llamacloud: base_url must be an http(s) URL (got '%s')", url);
  e = url + strlen(url);
  while (e > url && e[-1] == '/') e--;
  lua_pushlstring(L, url, (size_t)(e - url));
}

static struct curl_slist *lc_default_headers(lua_State *L, const char *api_key) {
  struct curl_slist *list = NULL, *tmp;
  const char *lines[3];
  int i;
  lines[0] = lua_pushfstring(L, "Authorization: Bearer %s", api_key);
  lines[1] = "Accept: application/json";
  lines[2] = lua_pushfstring(L, "User-Agent: llamacloud-lua/%s (%s; libcurl/%s)", LC_VERSION, lc_lua_version(),
                             curl_version_info(CURLVERSION_NOW)->version);
  for (i = 0; i < 3; i++) {
    if ((tmp = curl_slist_append(list, lines[i])) == NULL) {
      curl_slist_free_all(list);
      luaL_error(L, "llamacloud: out of memory");
    }
    list = tmp;
  }
  lua_pop(L, 2);
  return list;
}

/* core.new(opts): everything is checked before the userdata owns anything. */
static int lc_client_new(lua_State *L) {
  const char *api_key, *base_url, *region, *proxy, *ca_file, *ca_path, *org, *project;
  double timeout = LC_DEFAULT_TIMEOUT, max_retries = LC_DEFAULT_MAX_RETRIES, max_body = (double)LC_DEFAULT_MAX_BODY;
  int allow_insecure = 0, top, env_headers, log_debug;
  lc_client *c;
  lc_config *cfg;
  struct curl_slist *base, *merged;

  if (lua_isnoneornil(L, 1)) {
    lua_settop(L, 0);
    lua_newtable(L);
  }
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  lc_check_known(L, 1, lc_client_options, "new");

  lua_getfield(L, 1, "allow_insecure_http");
  if (!lua_isnil(L, -1) && !lua_isboolean(L, -1))
    luaL_error(L, "llamacloud: new: option 'allow_insecure_http' must be a boolean");
  allow_insecure = lua_toboolean(L, -1);
  lua_pop(L, 1);

  api_key = lc_opt_string(L, 1, "api_key", "new");
  if (api_key != NULL && api_key[0] == '\0') api_key = NULL;
  if (api_key == NULL) api_key = lc_push_env(L, "LLAMA_CLOUD_API_KEY");
  if (api_key == NULL) api_key = lc_push_env(L, "LLAMA_PARSE_API_KEY");
  if (api_key == NULL)
    luaL_error(L, "llamacloud: no API key: pass api_key to llamacloud.new, or set LLAMA_CLOUD_API_KEY or "
                  "LLAMA_PARSE_API_KEY");
  if (!lc_header_value_ok(api_key, strlen(api_key)))
    luaL_error(L, "llamacloud: new: api_key contains CR, LF or NUL");

  region = lc_opt_string(L, 1, "region", "new");
  if (region != NULL && strcmp(region, "eu") != 0 && strcmp(region, "us") != 0)
    luaL_error(L, "llamacloud: new: option 'region' must be \"eu\" or \"us\" (got '%s')", region);
  base_url = lc_opt_string(L, 1, "base_url", "new");
  if (base_url == NULL && region != NULL) base_url = strcmp(region, "eu") == 0 ? LC_EU_BASE_URL : LC_DEFAULT_BASE_URL;
  if (base_url == NULL) base_url = lc_push_env(L, "LLAMA_CLOUD_BASE_URL");
  if (base_url == NULL) base_url = LC_DEFAULT_BASE_URL;
  lc_push_base_url(L, base_url, allow_insecure);
  base_url = lua_tostring(L, -1);

  lc_opt_number(L, 1, "timeout", "new", &timeout);
  lc_opt_count(L, 1, "max_retries", "new", 0, LC_MAX_RETRIES_LIMIT, &max_retries);
  lc_opt_count(L, 1, "max_body_bytes", "new", 1, 9007199254740992.0, &max_body);
  proxy = lc_opt_string(L, 1, "proxy", "new");
  ca_file = lc_opt_string(L, 1, "ca_file", "new");
  ca_path = lc_opt_string(L, 1, "ca_path", "new");
  org = lc_opt_string(L, 1, "organization_id", "new");
  project = lc_opt_string(L, 1, "project_id", "new");
  lua_getfield(L, 1, "headers");
  if (!lua_isnil(L, -1)) lc_check_headers(L, -1, "new: option 'headers'");
  env_headers = lc_push_env_headers(L);
  if (env_headers) lc_check_headers(L, -1, "LLAMA_CLOUD_CUSTOM_HEADERS");
  log_debug = 0;
  if (lc_push_env(L, "LLAMA_CLOUD_LOG") != NULL) {
    log_debug = strcasecmp(lua_tostring(L, -1), "debug") == 0;
    lua_pop(L, 1);
  }
  top = lua_gettop(L);

  /* Everything is valid: from here the userdata owns what is allocated, so an
     out-of-memory error still frees it through __gc. */
  c = (lc_client *)lua_newuserdata(L, sizeof *c);
  memset(c, 0, sizeof *c);
  c->multi_ref = LUA_NOREF;
  c->closed = 0;
  lc_setmetatable(L, LC_CLIENT_MT);
  cfg = &c->cfg;
  cfg->id = ++lc_config_serial;
  cfg->timeout = timeout;
  cfg->max_retries = (int)max_retries;
  cfg->max_body = (size_t)max_body;
  cfg->log_debug = log_debug;
  cfg->api_key = lc_strdup(L, api_key);
  cfg->base_url = lc_strdup(L, base_url);
  cfg->proxy = lc_strdup(L, proxy);
  cfg->ca_file = lc_strdup(L, ca_file);
  cfg->ca_path = lc_strdup(L, ca_path);
  cfg->organization_id = lc_strdup(L, org);
  cfg->project_id = lc_strdup(L, project);
  cfg->headers = lc_default_headers(L, api_key);
  if (env_headers) {
    merged = lc_headers_merge(L, cfg->headers, top);
    curl_slist_free_all(cfg->headers);
    cfg->headers = merged;
  }
  lua_getfield(L, 1, "headers");
  if (!lua_isnil(L, -1)) {
    base = cfg->headers;
    merged = lc_headers_merge(L, base, -1);
    curl_slist_free_all(base);
    cfg->headers = merged;
  }
  lua_pop(L, 1);

  c->multi = lc_multi_push_new(L, LC_BLOCKING_CONNECTIONS);
  c->multi_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return 1;
}

/* ---- building one request ---- */

static void lc_check_string_list(lua_State *L, int idx, const char *what) {
  size_t i, n;
  if (lua_type(L, idx) == LUA_TSTRING) return;
  if (!lua_istable(L, idx)) luaL_error(L, "llamacloud: get: option '%s' must be a string or a list of strings", what);
  n = lc_rawlen(L, idx);
  for (i = 1; i <= n; i++) {
    lua_rawgeti(L, idx, (int)i);
    if (lua_type(L, -1) != LUA_TSTRING)
      luaL_error(L, "llamacloud: get: option '%s' must be a string or a list of strings (item %d is a %s)", what,
                 (int)i, luaL_typename(L, -1));
    lua_pop(L, 1);
  }
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    lua_pop(L, 1);
    if (!lc_isinteger(L, -1) || lua_tonumber(L, -1) < 1 || lua_tonumber(L, -1) > (double)n)
      luaL_error(L, "llamacloud: get: option '%s' must be a string or a list of strings", what);
  }
}

static int lc_query_value_ok(lua_State *L, int idx) {
  int t = lua_type(L, idx);
  return t == LUA_TSTRING || t == LUA_TNUMBER || t == LUA_TBOOLEAN;
}

static void lc_check_extra_query(lua_State *L, int idx) {
  idx = lc_absindex(L, idx);
  if (!lua_istable(L, idx)) luaL_error(L, "llamacloud: get: option 'extra_query' must be a table");
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    if (lua_type(L, -2) != LUA_TSTRING)
      luaL_error(L, "llamacloud: get: option 'extra_query' keys must be strings");
    if (lua_istable(L, -1)) {
      size_t i, n = lc_rawlen(L, -1);
      for (i = 1; i <= n; i++) {
        lua_rawgeti(L, -1, (int)i);
        if (!lc_query_value_ok(L, -1))
          luaL_error(L, "llamacloud: get: option 'extra_query': '%s' holds a %s", lua_tostring(L, -3),
                     luaL_typename(L, -1));
        lua_pop(L, 1);
      }
      /* Only 1..n are sent: any other key would be dropped silently. */
      lua_pushnil(L);
      while (lua_next(L, -2) != 0) {
        lua_pop(L, 1);
        if (!lc_isinteger(L, -1) || lua_tonumber(L, -1) < 1 || lua_tonumber(L, -1) > (double)n)
          luaL_error(L, "llamacloud: get: option 'extra_query': '%s' must be a string, number, boolean or list",
                     lua_tostring(L, -3));
      }
    } else if (!lc_query_value_ok(L, -1)) {
      luaL_error(L, "llamacloud: get: option 'extra_query': '%s' must be a string, number, boolean or list",
                 lua_tostring(L, -2));
    }
    lua_pop(L, 1);
  }
}

static int lc_add_query_value(lua_State *L, lc_buf *b, int *first, const char *k, int vidx) {
  size_t vn;
  const char *v;
  int rc;
  if (lua_type(L, vidx) == LUA_TBOOLEAN) {
    v = lua_toboolean(L, vidx) ? "true" : "false";
    return lc_url_add_query(b, first, k, strlen(k), v, strlen(v));
  }
  lua_pushvalue(L, vidx); /* converted on a copy: a number in the caller's table stays a number */
  v = lua_tolstring(L, -1, &vn);
  rc = lc_url_add_query(b, first, k, strlen(k), v, vn);
  lua_pop(L, 1);
  return rc;
}

static int lc_add_extra_query(lua_State *L, lc_buf *b, int *first, int idx) {
  /* Keys sorted so the URL does not depend on table order. */
  int n = 0, i, j;
  const char *keys[64];
  idx = lc_absindex(L, idx);
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    lua_pop(L, 1);
    if (n == 64) luaL_error(L, "llamacloud: get: option 'extra_query' has more than 64 keys");
    keys[n++] = lua_tostring(L, -1);
  }
  for (i = 1; i < n; i++)
    for (j = i; j > 0 && strcmp(keys[j - 1], keys[j]) > 0; j--) {
      const char *k = keys[j];
      keys[j] = keys[j - 1];
      keys[j - 1] = k;
    }
  for (i = 0; i < n; i++) {
    lua_getfield(L, idx, keys[i]);
    if (lua_istable(L, -1)) {
      size_t k, len = lc_rawlen(L, -1);
      for (k = 1; k <= len; k++) {
        lua_rawgeti(L, -1, (int)k);
        if (lc_add_query_value(L, b, first, keys[i], lua_gettop(L)) != 0) return -1;
        lua_pop(L, 1);
      }
    } else if (lc_add_query_value(L, b, first, keys[i], lua_gettop(L)) != 0) {
      return -1;
    }
    lua_pop(L, 1);
  }
  return 0;
}

static int lc_request_gc(lua_State *L) {
  lc_request_release(L, (lc_request *)luaL_checkudata(L, 1, LC_REQUEST_MT));
  return 0;
}

/* Pushes a new request userdata for client c (at cidx), id at idx, opts at idx + 1. */
static lc_request *lc_request_push_new(lua_State *L, int cidx, lc_client *c, int idx, int want_raw) {
  int opts = idx + 1, first = 1, has_opts;
  size_t idlen;
  const char *id, *org, *project, *err;
  double timeout = c->cfg.timeout, max_retries = c->cfg.max_retries, deadline = HUGE_VAL;
  lc_request *r;

  if (lua_type(L, idx) != LUA_TSTRING)
    luaL_error(L, "llamacloud: get: batch_id must be a string (got %s)", luaL_typename(L, idx));
  id = lua_tolstring(L, idx, &idlen);
  if ((err = lc_url_check_id(id, idlen)) != NULL) luaL_error(L, "llamacloud: get: %s", err);
  has_opts = !lua_isnoneornil(L, opts);
  if (has_opts && !lua_istable(L, opts))
    luaL_error(L, "llamacloud: get: opts must be a table (got %s)", luaL_typename(L, opts));
  org = c->cfg.organization_id;
  project = c->cfg.project_id;
  if (has_opts) {
    const char *s;
    lc_check_known(L, opts, lc_get_options, "get");
    lc_opt_number(L, opts, "timeout", "get", &timeout);
    lc_opt_time(L, opts, "deadline", "get", &deadline);
    lc_opt_count(L, opts, "max_retries", "get", 0, LC_MAX_RETRIES_LIMIT, &max_retries);
    if ((s = lc_opt_string(L, opts, "organization_id", "get")) != NULL) org = s;
    if ((s = lc_opt_string(L, opts, "project_id", "get")) != NULL) project = s;
    lua_getfield(L, opts, "expand");
    if (!lua_isnil(L, -1)) lc_check_string_list(L, lua_gettop(L), "expand");
    lua_pop(L, 1);
    lua_getfield(L, opts, "headers");
    if (!lua_isnil(L, -1)) lc_check_headers(L, -1, "get: option 'headers'");
    lua_pop(L, 1);
    lua_getfield(L, opts, "extra_query");
    if (!lua_isnil(L, -1)) lc_check_extra_query(L, -1);
    lua_pop(L, 1);
  }

  r = (lc_request *)lua_newuserdata(L, sizeof *r);
  memset(r, 0, sizeof *r);
  r->self_ref = r->result_ref = r->raw_ref = r->client_ref = LUA_NOREF;
  r->hint = -1;
  r->state = LC_ST_NEW;
  lc_setmetatable(L, LC_REQUEST_MT);
  r->cfg = &c->cfg;
  c->cfg.users++; /* dropped in lc_request_release */
  r->headers = c->cfg.headers;
  r->max_retries = (int)max_retries;
  r->timeout_ms = (long)ceil(timeout * 1000.0);
  r->deadline = deadline;
  r->want_raw = want_raw;
  lua_pushvalue(L, cidx);
  r->client_ref = luaL_ref(L, LUA_REGISTRYINDEX);

  /* The URL is built in the request's own buffer: an error on the way frees it with the request. */
  if (lc_buf_adds(&r->url, c->cfg.base_url) != 0 || lc_buf_adds(&r->url, "/api/v2/batches/") != 0 ||
      lc_url_encode(&r->url, id, idlen) != 0)
    goto oom;
  if (has_opts) {
    lua_getfield(L, opts, "expand");
    if (lua_type(L, -1) == LUA_TSTRING) {
      size_t n;
      const char *v = lua_tolstring(L, -1, &n);
      if (lc_url_add_query(&r->url, &first, "expand", 6, v, n) != 0) goto oom;
    } else if (lua_istable(L, -1)) {
      size_t i, n = lc_rawlen(L, -1);
      for (i = 1; i <= n; i++) {
        size_t vn;
        const char *v;
        lua_rawgeti(L, -1, (int)i);
        v = lua_tolstring(L, -1, &vn);
        if (lc_url_add_query(&r->url, &first, "expand", 6, v, vn) != 0) goto oom;
        lua_pop(L, 1);
      }
    }
    lua_pop(L, 1);
  }
  if (org && lc_url_add_query(&r->url, &first, "organization_id", 15, org, strlen(org)) != 0) goto oom;
  if (project && lc_url_add_query(&r->url, &first, "project_id", 10, project, strlen(project)) != 0) goto oom;
  if (has_opts) {
    lua_getfield(L, opts, "extra_query");
    if (!lua_isnil(L, -1) && lc_add_extra_query(L, &r->url, &first, -1) != 0) goto oom;
    lua_pop(L, 1);
    lua_getfield(L, opts, "headers");
    if (!lua_isnil(L, -1)) {
      r->headers = lc_headers_merge(L, c->cfg.headers, -1);
      r->own_headers = 1;
    }
    lua_pop(L, 1);
  }
  return r;
oom:
  luaL_error(L, "llamacloud: out of memory");
  return NULL;
}

static lc_request *lc_check_request(lua_State *L, int idx) {
  return (lc_request *)luaL_checkudata(L, idx, LC_REQUEST_MT);
}

/* client:get(id [, opts [, want_raw]]): blocks until done; batch, nil, hint[, raw] | nil, err, hint. */
static int lc_client_get(lua_State *L) {
  lc_client *c = lc_check_client(L, 1);
  lc_request *r;
  int ridx, nret, want_raw = lua_toboolean(L, 4);
  lua_settop(L, 3);
  r = lc_request_push_new(L, 1, c, 2, want_raw);
  ridx = lua_gettop(L);
  /* The client's multi holds only the get in flight: what a get that raised left there goes now. */
  lc_multi_cancel_all(L, c->multi);
  lc_multi_add(L, c->multi, r, ridx);
  lc_multi_step(L, c->multi, 0, 0);
  while (r->state != LC_ST_DONE && r->state != LC_ST_CANCELLED) {
    double w = lc_multi_next_wait(c->multi);
    lc_multi_step(L, c->multi, w < 0 ? 0.001 : w, 0);
  }
  nret = lc_request_push_result(L, r);
  /* Nothing else sees this request: dropping its references now lets the batch go with the
     caller's last reference, not two collections later (the userdata's __gc, then the tree). */
  lc_request_release(L, r);
  return nret;
}

/* The public blocking get, a closure over its client: batch | nil, err, and no Lua frame
   between it and the caller, so an argument error names the caller's line. */
static int lc_client_bound_get(lua_State *L) {
  lua_settop(L, 2);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lc_client_get(L);
  lua_settop(L, 6); /* ud, id, opts, the request, then the batch and the error get pushed */
  return 2;
}

/* client:getter(): that closure. */
static int lc_client_getter(lua_State *L) {
  lc_check_client(L, 1);
  lua_settop(L, 1);
  lua_pushcclosure(L, lc_client_bound_get, 1);
  return 1;
}

/* client:request(id [, opts [, want_raw]]): a request not yet started, for a multi to drive. */
static int lc_client_request(lua_State *L) {
  lc_client *c = lc_check_client(L, 1);
  int want_raw = lua_toboolean(L, 4);
  lua_settop(L, 3);
  lc_request_push_new(L, 1, c, 2, want_raw);
  return 1;
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
  lua_newtable(L);
  lc_multi_step(L, m, wait, 3);
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
  lua_newtable(L);
  lc_multi_socket_action(L, m, fd, ev, 4);
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
  lua_pushinteger(L, m->queued.n);
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
  double s = luaL_checknumber(L, 1);
  struct timespec ts;
  if (!(s > 0)) return 0; /* also NaN */
  if (s > 1e9) s = 1e9;   /* time_t-safe; 31 years */
  ts.tv_sec = (time_t)s;
  ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
  return 0;
}

static int lc_core_isatty(lua_State *L) {
  lua_pushboolean(L, isatty((int)luaL_checknumber(L, 1)));
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
  time_t now = (time_t)luaL_optnumber(L, 3, (lua_Number)time(NULL));
  double v = lc_retry_after(ms, ra, now);
  if (v < 0) lua_pushnil(L); else lua_pushnumber(L, v);
  return 1;
}

static int lc_core_retry_delay(lua_State *L) {
  double hint = luaL_optnumber(L, 2, -1);
  lua_pushnumber(L, lc_retry_delay((int)luaL_checknumber(L, 1), hint, luaL_optnumber(L, 3, 0)));
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
    {"get", lc_client_get}, {"getter", lc_client_getter}, {"request", lc_client_request}, {"multi", lc_client_multi},
    {"config", lc_client_config}, {"close", lc_client_close_lua}, {NULL, NULL}};
  static const luaL_Reg request_methods[] = {
    {"result", lc_request_result}, {"done", lc_request_done}, {"cancel", lc_request_cancel},
    {"close", lc_request_close}, {"attempts", lc_request_attempts}, {NULL, NULL}};
  static const luaL_Reg multi_methods[] = {
    {"add", lc_multi_add_lua}, {"step", lc_multi_step_lua}, {"counts", lc_multi_counts},
    {"watch", lc_multi_watch}, {"sockets", lc_multi_sockets}, {"socket_action", lc_multi_socket_action_lua},
    {"close", lc_multi_close_lua}, {NULL, NULL}};
  static const luaL_Reg funcs[] = {
    {"new", lc_client_new}, {"decode", lc_core_decode}, {"now", lc_core_now}, {"sleep", lc_core_sleep},
    {"error", lc_error_new_lua}, {"isatty", lc_core_isatty}, {"encode_segment", lc_core_encode_segment},
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

  lua_newtable(L);
  lc_setfuncs(L, funcs, 0);
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
