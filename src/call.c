/* The call engine: a request from a call's declaration (method, path with an encoded segment,
   repeated-key query, options, retry policy) and the caller's arguments. */

/* One call the engine makes. Only GET calls exist yet; a call with a body would add it here. */
typedef struct lc_call {
  const char *name;           /* in messages: "get" */
  const char *method;         /* "GET" */
  const char *path;           /* before the id segment: "/api/v2/batches/" */
  const char *id_name;        /* the id argument, in messages: "batch_id" */
  const char *const *options; /* the options it accepts */
  const char *repeated;       /* a string-or-list option sent as a repeated query key, or NULL */
  int retries;                /* its retry policy allows retries (reads do; a create would not) */
} lc_call;

static const char *const lc_get_options[] = {
  "expand", "organization_id", "project_id", "timeout", "max_retries", "headers", "extra_query", "deadline", NULL};

static const lc_call lc_call_batch_get = {
  "get", "GET", "/api/v2/batches/", "batch_id", lc_get_options, "expand", 1};


static void lc_check_string_list(lua_State *L, int idx, const char *fn, const char *what) {
  size_t i, n;
  if (lua_type(L, idx) == LUA_TSTRING) return;
  if (!lua_istable(L, idx)) luaL_error(L, "llamacloud: %s: option '%s' must be a string or a list of strings", fn, what);
  n = lc_rawlen(L, idx);
  for (i = 1; i <= n; i++) {
    lua_rawgeti(L, idx, (int)i);
    if (lua_type(L, -1) != LUA_TSTRING)
      luaL_error(L, "llamacloud: %s: option '%s' must be a string or a list of strings (item %d is a %s)", fn, what,
                 (int)i, luaL_typename(L, -1));
    lua_pop(L, 1);
  }
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    lua_pop(L, 1);
    if (!lc_isinteger(L, -1) || lua_tonumber(L, -1) < 1 || lua_tonumber(L, -1) > (double)n)
      luaL_error(L, "llamacloud: %s: option '%s' must be a string or a list of strings", fn, what);
  }
}

static int lc_query_value_ok(lua_State *L, int idx) {
  int t = lua_type(L, idx);
  return t == LUA_TSTRING || t == LUA_TNUMBER || t == LUA_TBOOLEAN;
}

static void lc_check_extra_query(lua_State *L, int idx, const char *fn) {
  idx = lc_absindex(L, idx);
  if (!lua_istable(L, idx)) luaL_error(L, "llamacloud: %s: option 'extra_query' must be a table", fn);
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    if (lua_type(L, -2) != LUA_TSTRING)
      luaL_error(L, "llamacloud: %s: option 'extra_query' keys must be strings", fn);
    if (lua_istable(L, -1)) {
      size_t i, n = lc_rawlen(L, -1);
      for (i = 1; i <= n; i++) {
        lua_rawgeti(L, -1, (int)i);
        if (!lc_query_value_ok(L, -1))
          luaL_error(L, "llamacloud: %s: option 'extra_query': '%s' holds a %s", fn, lua_tostring(L, -3),
                     luaL_typename(L, -1));
        lua_pop(L, 1);
      }
      /* Only 1..n are sent: any other key would be dropped silently. */
      lua_pushnil(L);
      while (lua_next(L, -2) != 0) {
        lua_pop(L, 1);
        if (!lc_isinteger(L, -1) || lua_tonumber(L, -1) < 1 || lua_tonumber(L, -1) > (double)n)
          luaL_error(L, "llamacloud: %s: option 'extra_query': '%s' must be a string, number, boolean or list",
                     fn, lua_tostring(L, -3));
      }
    } else if (!lc_query_value_ok(L, -1)) {
      luaL_error(L, "llamacloud: %s: option 'extra_query': '%s' must be a string, number, boolean or list",
                 fn, lua_tostring(L, -2));
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

static int lc_add_extra_query(lua_State *L, lc_buf *b, int *first, int idx, const char *fn) {
  /* Keys sorted so the URL does not depend on table order. */
  int n = 0, i, j;
  const char *keys[64];
  idx = lc_absindex(L, idx);
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    lua_pop(L, 1);
    if (n == 64) luaL_error(L, "llamacloud: %s: option 'extra_query' has more than 64 keys", fn);
    keys[n++] = lua_tostring(L, -1);
  }
  for (i = 1; i < n; i++)
    for (j = i; j > 0 && strcmp(keys[j - 1], keys[j]) > 0; j--) {
      const char *k = keys[j];
      keys[j] = keys[j - 1];
      keys[j - 1] = k;
    }
  for (i = 0; i < n; i++) {
    /* keys[i] stays valid: it is a key of the table, which nothing changes meanwhile */
    lua_pushstring(L, keys[i]);
    lua_rawget(L, idx);
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

/* Adds the repeated option's values (a string or a list) at the top of the stack to the query. */
static int lc_add_repeated(lua_State *L, lc_buf *b, int *first, const char *key) {
  size_t kn = strlen(key), n, i, vn;
  const char *v;
  if (lua_type(L, -1) == LUA_TSTRING) {
    v = lua_tolstring(L, -1, &vn);
    return lc_url_add_query(b, first, key, kn, v, vn);
  }
  if (!lua_istable(L, -1)) return 0;
  n = lc_rawlen(L, -1);
  for (i = 1; i <= n; i++) {
    int rc;
    lua_rawgeti(L, -1, (int)i);
    v = lua_tolstring(L, -1, &vn);
    rc = lc_url_add_query(b, first, key, kn, v, vn);
    lua_pop(L, 1);
    if (rc != 0) return -1;
  }
  return 0;
}

/* Pushes a new request of call for the client whose settings are cfg (its userdata at cidx),
   the id at idx and the options at idx + 1. Options are read raw; each string read stays on
   the stack until the request is built, then only the request is left above what was there. */
static lc_request *lc_request_push_new(lua_State *L, const lc_call *call, int cidx, lc_config *cfg, int idx,
                                       int want_raw) {
  int base = lua_gettop(L), opts = idx + 1, first = 1, has_opts, repeated_idx = 0, extra_idx = 0, headers_idx = 0;
  size_t idlen;
  const char *id, *org = cfg->organization_id, *project = cfg->project_id, *err, *fn = call->name;
  double timeout = cfg->timeout, max_retries = cfg->max_retries, deadline = HUGE_VAL;
  lc_request *r;

  if (lua_type(L, idx) != LUA_TSTRING)
    luaL_error(L, "llamacloud: %s: %s must be a string (got %s)", fn, call->id_name, luaL_typename(L, idx));
  id = lua_tolstring(L, idx, &idlen);
  if ((err = lc_url_check_id(id, idlen)) != NULL) luaL_error(L, "llamacloud: %s: %s", fn, err);
  has_opts = !lua_isnoneornil(L, opts);
  if (has_opts && !lua_istable(L, opts))
    luaL_error(L, "llamacloud: %s: opts must be a table (got %s)", fn, luaL_typename(L, opts));
  if (has_opts) {
    const char *s;
    lc_check_known(L, opts, call->options, fn);
    lc_opt_number(L, opts, "timeout", fn, &timeout);
    lc_opt_time(L, opts, "deadline", fn, &deadline);
    lc_opt_count(L, opts, "max_retries", fn, 0, LC_MAX_RETRIES_LIMIT, &max_retries);
    if ((s = lc_opt_string(L, opts, "organization_id", fn)) != NULL) org = s;
    if ((s = lc_opt_string(L, opts, "project_id", fn)) != NULL) project = s;
    if (call->repeated && lc_opt_push(L, opts, call->repeated) != LUA_TNIL) {
      repeated_idx = lua_gettop(L);
      lc_check_string_list(L, repeated_idx, fn, call->repeated);
    }
    if (lc_opt_push(L, opts, "headers") != LUA_TNIL) {
      headers_idx = lua_gettop(L);
      lc_check_headers(L, headers_idx, lua_pushfstring(L, "%s: option 'headers'", fn));
    }
    if (lc_opt_push(L, opts, "extra_query") != LUA_TNIL) {
      extra_idx = lua_gettop(L);
      lc_check_extra_query(L, extra_idx, fn);
    }
  }

  r = (lc_request *)lua_newuserdata(L, sizeof *r);
  memset(r, 0, sizeof *r);
  r->self_ref = r->result_ref = r->raw_ref = r->client_ref = LUA_NOREF;
  r->hint = -1;
  r->state = LC_ST_NEW;
  lc_setmetatable(L, LC_REQUEST_MT);
  r->cfg = cfg;
  cfg->users++; /* dropped in lc_request_release */
  r->method = call->method;
  r->headers = cfg->headers;
  r->max_retries = call->retries ? (int)max_retries : 0;
  r->timeout_ms = (long)ceil(timeout * 1000.0);
  r->deadline = deadline;
  r->want_raw = want_raw;
  lua_pushvalue(L, cidx);
  r->client_ref = luaL_ref(L, LUA_REGISTRYINDEX);

  /* The URL is built in the request's own buffer: an error on the way frees it with the request. */
  if (lc_buf_adds(&r->url, cfg->base_url) != 0 || lc_buf_adds(&r->url, call->path) != 0 ||
      lc_url_encode(&r->url, id, idlen) != 0)
    goto oom;
  if (repeated_idx) {
    lua_pushvalue(L, repeated_idx);
    if (lc_add_repeated(L, &r->url, &first, call->repeated) != 0) goto oom;
    lua_pop(L, 1);
  }
  if (org && lc_url_add_query(&r->url, &first, "organization_id", 15, org, strlen(org)) != 0) goto oom;
  if (project && lc_url_add_query(&r->url, &first, "project_id", 10, project, strlen(project)) != 0) goto oom;
  if (extra_idx && lc_add_extra_query(L, &r->url, &first, extra_idx, fn) != 0) goto oom;
  if (headers_idx) {
    r->headers = lc_headers_merge(L, cfg->headers, headers_idx);
    r->own_headers = 1;
  }
  lua_insert(L, base + 1);
  lua_settop(L, base + 1);
  return r;
oom:
  luaL_error(L, "llamacloud: out of memory");
  return NULL;
}
