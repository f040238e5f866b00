/* The call engine: a request from a call's declaration (method, path with an encoded segment,
   repeated-key query, options, optional JSON body, retry policy, response shape) and the caller's
   arguments. Declarations live in Lua (lua/llamacloud/calls.lua); core.call turns one into an
   lc_call once, at load. batches.get's is also compiled in, for the C getter. */

#define LC_CALL_MT "llamacloud.call"
#define LC_CALL_MAX_OPTIONS 24

typedef struct lc_call {
  const char *name;     /* in messages: "get" */
  const char *method;   /* "GET" or "POST": static strings */
  const char *path;     /* before the id segment (or the whole path): "/api/v2/batches/" */
  const char *suffix;   /* after the id segment: "/cancel", or "" */
  const char *id_name;  /* the id argument, in messages: "batch_id"; NULL when the call takes no id */
  const char *options[LC_CALL_MAX_OPTIONS + 1]; /* the options it accepts, NULL-terminated */
  const char *repeated; /* a string-or-list option sent as a repeated query key, or NULL */
  enum lc_policy policy;
  enum lc_shape shape;
  int anchor;           /* registry ref of a table holding the strings above (LUA_NOREF: static) */
} lc_call;

static const lc_call lc_call_batch_get = {
  "get", "GET", "/api/v2/batches/", "", "batch_id",
  {"expand", "organization_id", "project_id", "timeout", "max_retries", "headers", "extra_query", "deadline", NULL},
  "expand", LC_POLICY_IDEMPOTENT, LC_SHAPE_BATCH, LUA_NOREF};

/* A string field of the declaration at idx, anchored in the table at aidx; NULL when absent. */
static const char *lc_decl_string(lua_State *L, int idx, int aidx, const char *field, int required) {
  const char *s;
  lua_getfield(L, idx, field);
  if (lua_isnil(L, -1) && !required) {
    lua_pop(L, 1);
    return NULL;
  }
  if (lua_type(L, -1) != LUA_TSTRING) luaL_error(L, "llamacloud: core.call: '%s' must be a string", field);
  s = lua_tostring(L, -1);
  lua_rawseti(L, aidx, (int)lc_rawlen(L, aidx) + 1); /* the string lives as long as the call */
  return s;
}

static int lc_decl_enum(lua_State *L, int idx, const char *field, const char *const *names) {
  int i;
  lua_getfield(L, idx, field);
  for (i = 0; names[i] != NULL; i++)
    if (lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), names[i]) == 0) {
      lua_pop(L, 1);
      return i;
    }
  return luaL_error(L, "llamacloud: core.call: '%s' is not one the engine knows", field);
}

/* core.call(decl): an lc_call from a declaration table { name, method, path [, suffix] [, id_name],
   options = {...}, [repeated], policy = "idempotent"|"create", shape = "batch"|"page"|"job" }. */
static int lc_call_new_lua(lua_State *L) {
  static const char *const methods[] = {"GET", "POST", NULL};
  static const char *const policies[] = {"idempotent", "create", NULL};
  static const char *const shapes[] = {"batch", "page", "job", NULL};
  lc_call *c;
  int aidx, i, n;
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  lua_newtable(L);
  c = (lc_call *)lua_newuserdata(L, sizeof *c);
  memset(c, 0, sizeof *c);
  c->anchor = LUA_NOREF;
  lc_setmetatable(L, LC_CALL_MT);
  lua_insert(L, 2); /* the call at 2, the anchor table at 3 */
  aidx = 3;
  c->name = lc_decl_string(L, 1, aidx, "name", 1);
  c->method = methods[lc_decl_enum(L, 1, "method", methods)];
  c->path = lc_decl_string(L, 1, aidx, "path", 1);
  c->suffix = lc_decl_string(L, 1, aidx, "suffix", 0);
  if (c->suffix == NULL) c->suffix = "";
  c->id_name = lc_decl_string(L, 1, aidx, "id_name", 0);
  c->repeated = lc_decl_string(L, 1, aidx, "repeated", 0);
  c->policy = (enum lc_policy)lc_decl_enum(L, 1, "policy", policies);
  c->shape = (enum lc_shape)lc_decl_enum(L, 1, "shape", shapes);
  lua_getfield(L, 1, "options");
  luaL_checktype(L, -1, LUA_TTABLE);
  n = (int)lc_rawlen(L, -1);
  if (n > LC_CALL_MAX_OPTIONS) luaL_error(L, "llamacloud: core.call: more than %d options", LC_CALL_MAX_OPTIONS);
  for (i = 1; i <= n; i++) {
    lua_rawgeti(L, -1, i);
    if (lua_type(L, -1) != LUA_TSTRING) luaL_error(L, "llamacloud: core.call: options must be strings");
    c->options[i - 1] = lua_tostring(L, -1);
    lua_rawseti(L, aidx, (int)lc_rawlen(L, aidx) + 1);
  }
  c->options[n] = NULL;
  lua_pop(L, 1);
  lua_pushvalue(L, aidx);
  c->anchor = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_settop(L, 2);
  return 1;
}

static int lc_call_gc(lua_State *L) {
  lc_call *c = (lc_call *)luaL_checkudata(L, 1, LC_CALL_MT);
  luaL_unref(L, LUA_REGISTRYINDEX, c->anchor);
  c->anchor = LUA_NOREF;
  return 0;
}

static const lc_call *lc_check_call(lua_State *L, int idx) {
  lc_call *c = (lc_call *)luaL_checkudata(L, idx, LC_CALL_MT);
  if (c->anchor == LUA_NOREF) luaL_error(L, "llamacloud: the call is released");
  return c;
}

/* Whether list has a line of the header that line names ("Name: value" or "Name:"). */
static int lc_headers_have(const struct curl_slist *list, const char *line) {
  size_t n = strcspn(line, ":");
  for (; list != NULL; list = list->next)
    if (strncasecmp(list->data, line, n) == 0 && list->data[n] == ':') return 1;
  return 0;
}

/* A copy of base with lines appended, owned by the caller (curl_slist_free_all). A POST sends
   its Content-Type and never waits for 100-continue, unless base (the caller's opts.headers) sets
   that header: one line each, the caller's (spec/create_spec.lua, "headers"). NULL when libcurl
   ran out of memory, with nothing left allocated. */
static struct curl_slist *lc_headers_plus(const struct curl_slist *base, const char *const *lines) {
  struct curl_slist *out = NULL, *tmp;
  const struct curl_slist *p;
  int i;
  for (p = base; p != NULL; p = p->next) {
    if ((tmp = curl_slist_append(out, p->data)) == NULL) goto oom;
    out = tmp;
  }
  for (i = 0; lines[i] != NULL; i++) {
    if (lc_headers_have(base, lines[i])) continue;
    if ((tmp = curl_slist_append(out, lines[i])) == NULL) goto oom;
    out = tmp;
  }
  return out;
oom:
  lc_slist_free_wiped(out);
  return NULL;
}

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

/* what names the table in messages: "option 'extra_query'" or "query" (prepare's argument). */
static void lc_check_extra_query(lua_State *L, int idx, const char *fn, const char *what) {
  idx = lc_absindex(L, idx);
  if (!lua_istable(L, idx)) luaL_error(L, "llamacloud: %s: %s must be a table (got %s)", fn, what,
                                    luaL_typename(L, idx));
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    if (lua_type(L, -2) != LUA_TSTRING)
      luaL_error(L, "llamacloud: %s: %s keys must be strings", fn, what);
    if (lua_istable(L, -1)) {
      size_t i, n = lc_rawlen(L, -1);
      for (i = 1; i <= n; i++) {
        lua_rawgeti(L, -1, (int)i);
        if (!lc_query_value_ok(L, -1))
          luaL_error(L, "llamacloud: %s: %s: '%s' holds a %s", fn, what, lua_tostring(L, -3),
                     luaL_typename(L, -1));
        lua_pop(L, 1);
      }
      /* Only 1..n are sent: any other key would be dropped silently. */
      lua_pushnil(L);
      while (lua_next(L, -2) != 0) {
        lua_pop(L, 1);
        if (!lc_isinteger(L, -1) || lua_tonumber(L, -1) < 1 || lua_tonumber(L, -1) > (double)n)
          luaL_error(L, "llamacloud: %s: %s: '%s' must be a string, number, boolean or list",
                     fn, what, lua_tostring(L, -3));
      }
    } else if (!lc_query_value_ok(L, -1)) {
      luaL_error(L, "llamacloud: %s: %s: '%s' must be a string, number, boolean or list",
                 fn, what, lua_tostring(L, -2));
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

/* Pushes a new request of call for the client whose settings are cfg (its userdata at cidx): the id
   at id_idx (0: none; a call that takes none raises if one is given), the options at opts_idx, a table of query parameters at
   query_idx (0: none; sorted keys, a list repeats its key) and a body string at body_idx (0: none).
   Options are read raw; each string read stays on the stack until the request is built, then only
   the request is left above what was there. */
static lc_request *lc_request_push_call(lua_State *L, const lc_call *call, int cidx, lc_config *cfg, int id_idx,
                                        int opts, int query_idx, int body_idx, int want_raw) {
  int base = lua_gettop(L), first = 1, has_opts, repeated_idx = 0, extra_idx = 0, headers_idx = 0;
  size_t idlen = 0;
  const char *id = NULL, *org = NULL, *project = NULL, *err, *fn = call->name;
  double timeout = cfg->timeout, max_retries = cfg->max_retries, deadline = HUGE_VAL;
  lc_request *r;

  if (call->id_name != NULL) {
    if (lua_type(L, id_idx) != LUA_TSTRING)
      luaL_error(L, "llamacloud: %s: %s must be a string (got %s)", fn, call->id_name, luaL_typename(L, id_idx));
    id = lua_tolstring(L, id_idx, &idlen);
    if ((err = lc_url_check_id(id, idlen)) != NULL) {
      /* the check names batch_id; another call names its own argument */
      if (strncmp(err, "batch_id", 8) == 0 && strcmp(call->id_name, "batch_id") != 0)
        luaL_error(L, "llamacloud: %s: %s%s", fn, call->id_name, err + 8);
      luaL_error(L, "llamacloud: %s: %s", fn, err);
    }
  }
  /* what a call does not send raises rather than being dropped (spec/create_spec.lua) */
  if (call->id_name == NULL && id_idx && !lua_isnil(L, id_idx)) luaL_error(L, "llamacloud: %s: takes no id", fn);
  if (body_idx && lua_type(L, body_idx) != LUA_TSTRING)
    luaL_error(L, "llamacloud: %s: the body must be a string (got %s)", fn, luaL_typename(L, body_idx));
  if (body_idx && call->method[0] != 'P') luaL_error(L, "llamacloud: %s: takes no body", fn);
  if (query_idx && !lua_isnil(L, query_idx)) lc_check_extra_query(L, query_idx, fn, "query");
  else query_idx = 0;
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
      lc_check_extra_query(L, extra_idx, fn, "option 'extra_query'");
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
  /* A finalizer run by an allocation above may have closed the client, freeing its strings: from
     here on they live as long as r, and none was read before (spec/review2_lazy_multi_spec.lua). */
  if (cfg->closed) luaL_error(L, "llamacloud: the client is closed");
  if (org == NULL) org = cfg->organization_id;
  if (project == NULL) project = cfg->project_id;
  r->method = call->method;
  r->post = call->method[0] == 'P';
  r->policy = call->policy;
  r->shape = call->shape;
  r->headers = cfg->headers;
  r->max_retries = (int)max_retries;
  r->timeout_ms = (long)ceil(timeout * 1000.0);
  r->deadline = deadline;
  r->want_raw = want_raw;
  lua_pushvalue(L, cidx);
  r->client_ref = luaL_ref(L, LUA_REGISTRYINDEX);

  /* The URL is built in the request's own buffer: an error on the way frees it with the request. */
  if (lc_buf_adds(&r->url, cfg->base_url) != 0 || lc_buf_adds(&r->url, call->path) != 0 ||
      (id != NULL && lc_url_encode(&r->url, id, idlen) != 0) || lc_buf_adds(&r->url, call->suffix) != 0)
    goto oom;
  if (query_idx && lc_add_extra_query(L, &r->url, &first, query_idx, fn) != 0) goto oom;
  if (repeated_idx) {
    lua_pushvalue(L, repeated_idx);
    if (lc_add_repeated(L, &r->url, &first, call->repeated) != 0) goto oom;
    lua_pop(L, 1);
  }
  if (org && lc_url_add_query(&r->url, &first, "organization_id", 15, org, strlen(org)) != 0) goto oom;
  if (project && lc_url_add_query(&r->url, &first, "project_id", 10, project, strlen(project)) != 0) goto oom;
  if (extra_idx && lc_add_extra_query(L, &r->url, &first, extra_idx, fn) != 0) goto oom;
  if (body_idx) {
    size_t n;
    const char *b = lua_tolstring(L, body_idx, &n);
    if (lc_buf_add(&r->body, b, n) != 0) goto oom;
  }
  /* libcurl out of memory while the headers are built: the request still becomes one, and fails
     at its start, unsent (lc_multi_start): an allocation failure on the wire's side is nil, err. */
  if (headers_idx) {
    struct curl_slist *h;
    if (lc_headers_merge(L, cfg->headers, headers_idx, &h) != 0) r->unbuilt = 1;
    else r->headers = h, r->own_headers = 1;
  }
  if (r->post && !r->unbuilt) {
    /* Without a body libcurl would announce a form; with one it is JSON (encoded by the Lua layer). */
    static const char *const json[] = {"Content-Type: application/json", "Expect:", NULL};
    static const char *const none[] = {"Content-Type:", "Expect:", NULL};
    struct curl_slist *h = lc_headers_plus(r->headers, body_idx ? json : none);
    if (h == NULL) {
      r->unbuilt = 1;
    } else {
      if (r->own_headers) lc_slist_free_wiped(r->headers);
      r->headers = h;
      r->own_headers = 1;
    }
  }
  lua_insert(L, base + 1);
  lua_settop(L, base + 1);
  return r;
oom:
  luaL_error(L, "llamacloud: out of memory");
  return NULL;
}

/* batches.get's request: the id at idx and the options at idx + 1. */
static lc_request *lc_request_push_new(lua_State *L, const lc_call *call, int cidx, lc_config *cfg, int idx,
                                       int want_raw) {
  return lc_request_push_call(L, call, cidx, cfg, idx, idx + 1, 0, 0, want_raw);
}
