/* The only place an error table is built: its name from the status or transfer outcome, its fields, __tostring. */

#define LC_ERROR_MT "llamacloud.error"
#define LC_DETAIL_MAX 300

static const char *lc_error_name_for_status(long status) {
  switch (status) {
  case 400: return "BadRequestError";
  case 401: return "AuthenticationError";
  case 403: return "PermissionDeniedError";
  case 404: return "NotFoundError";
  case 409: return "ConflictError";
  case 422: return "UnprocessableEntityError";
  case 429: return "RateLimitError";
  default: return status >= 500 ? "InternalServerError" : "APIStatusError";
  }
}

static int lc_error_tostring(lua_State *L) {
  lua_getfield(L, 1, "name");
  lua_pushliteral(L, ": ");
  lua_getfield(L, 1, "message");
  if (!lua_isstring(L, -3)) {
    lua_pushliteral(L, "Error");
    lua_replace(L, -4);
  }
  if (!lua_isstring(L, -1)) {
    lua_pop(L, 1);
    lua_pushliteral(L, "(no message)");
  }
  lua_concat(L, 3);
  return 1;
}

static void lc_error_open(lua_State *L) {
  if (luaL_newmetatable(L, LC_ERROR_MT)) {
    lua_pushcfunction(L, lc_error_tostring);
    lua_setfield(L, -2, "__tostring");
  }
  lua_pop(L, 1);
}

/* Whether the string at idx holds the key; length-aware, so a NUL in a body cannot hide it. */
static int lc_error_holds_key(lua_State *L, int idx, const char *api_key) {
  size_t n;
  const char *s;
  if (api_key == NULL || api_key[0] == '\0' || lua_type(L, idx) != LUA_TSTRING) return 0;
  s = lua_tolstring(L, idx, &n);
  return memmem(s, n, api_key, strlen(api_key)) != NULL;
}

/* Replaces the string at the top of the stack by itself with every copy of the key masked.
   The mask never holds the key, and a result that still would (a key overlapping its mask)
   is replaced whole by the mask. */
static void lc_error_redact_top(lua_State *L, const char *api_key) {
  const char *mask, *s, *hit;
  size_t n, kn;
  luaL_Buffer b;
  if (!lc_error_holds_key(L, -1, api_key)) return;
  mask = strstr("[redacted]", api_key) ? "***" : "[redacted]";
  kn = strlen(api_key);
  s = lua_tolstring(L, -1, &n);
  luaL_buffinit(L, &b);
  while ((hit = memmem(s, n, api_key, kn)) != NULL) {
    luaL_addlstring(&b, s, (size_t)(hit - s));
    luaL_addstring(&b, mask);
    n -= (size_t)(hit - s) + kn;
    s = hit + kn;
  }
  luaL_addlstring(&b, s, n);
  luaL_pushresult(&b);
  if (lc_error_holds_key(L, -1, api_key)) {
    lua_pop(L, 1);
    lua_pushstring(L, mask);
  }
  lua_remove(L, -2);
}

/* Masks the key in every string value of the table at idx and its nested tables (a server
   may echo the key back in a JSON body or a header); a key that holds it is renamed. */
static void lc_error_redact_table(lua_State *L, int idx, const char *api_key) {
  int renamed = 0;
  if (api_key == NULL || api_key[0] == '\0') return;
  /* As deep as the decoder goes (1000 levels): every level is masked. */
  luaL_checkstack(L, 6, "error body nested too deeply");
  idx = lc_absindex(L, idx);
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    if (lc_error_holds_key(L, -2, api_key)) renamed = 1;
    if (lc_error_holds_key(L, -1, api_key)) {
      lc_error_redact_top(L, api_key);
      lua_pushvalue(L, -2);
      lua_insert(L, -2);
      lua_rawset(L, idx);
    } else {
      if (lua_type(L, -1) == LUA_TTABLE) lc_error_redact_table(L, -1, api_key);
      lua_pop(L, 1);
    }
  }
  while (renamed) { /* new keys cannot be added while traversing: one at a time, from scratch */
    renamed = 0;
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
      if (lc_error_holds_key(L, -2, api_key)) {
        lua_pushvalue(L, -2);
        lc_error_redact_top(L, api_key);
        lua_insert(L, -2);
        lua_rawset(L, idx);
        lua_pushnil(L);
        lua_rawset(L, idx);
        renamed = 1;
        break;
      }
      lua_pop(L, 1);
    }
  }
}

/* t[field] = the value on top (popped), with t at idx, raw: an error table carries the public error_mt
   (core.error_mt), and building one runs none of its metamethods (spec/reentry_spec.lua, "raw"). */
static void lc_error_setfield(lua_State *L, int idx, const char *field) {
  idx = lc_absindex(L, idx);
  lua_pushstring(L, field);
  lua_insert(L, -2);
  lua_rawset(L, idx);
}

/* Pushes { name, message } with the error metatable; message is scrubbed of the key. */
static void lc_error_push(lua_State *L, const char *name, const char *message, const char *api_key) {
  lua_createtable(L, 0, 8);
  lua_pushstring(L, name);
  lua_setfield(L, -2, "name");
  lua_pushstring(L, message);
  lc_error_redact_top(L, api_key);
  lua_setfield(L, -2, "message");
  lc_setmetatable(L, LC_ERROR_MT);
}

static void lc_error_set_number(lua_State *L, const char *field, double v) {
  if (lc_num_is_ll(v))
    lc_pushint(L, (long long)v);
  else
    lua_pushnumber(L, v);
  lc_error_setfield(L, -2, field);
}

/* A short human text for a failed response: the body's detail or message when it has
   one, else the start of the raw body. Leaves it on the stack. */
static void lc_error_push_detail(lua_State *L, int body_idx, const lc_transfer *t, const char *api_key) {
  static const char *const fields[] = {"detail", "message", "error", NULL};
  int i;
  if (lua_istable(L, body_idx)) {
    for (i = 0; fields[i] != NULL; i++) {
      lua_getfield(L, body_idx, fields[i]);
      if (lua_type(L, -1) == LUA_TSTRING) return;
      lua_pop(L, 1);
    }
  }
  if (t->body.len > 0) {
    size_t n;
    const char *s;
    /* Masked before it is cut, so a key across the cut cannot leave a piece of itself. */
    lua_pushlstring(L, t->body.data, t->body.len);
    lc_error_redact_top(L, api_key);
    s = lua_tolstring(L, -1, &n);
    lua_pushlstring(L, s, n < LC_DETAIL_MAX ? n : LC_DETAIL_MAX);
    lua_remove(L, -2);
  } else {
    lua_pushliteral(L, "");
  }
}

/* Adds status, headers, request_id and body (decoded JSON, else raw text) of t's response. */
static void lc_error_add_response(lua_State *L, const lc_transfer *t, long status, int body_idx,
                                  const char *api_key) {
  body_idx = lc_absindex(L, body_idx);
  lc_error_set_number(L, "status", (double)status);
  lc_transfer_push_headers(L, t);
  lc_error_redact_table(L, -1, api_key);
  lua_getfield(L, -1, "x-request-id"); /* whole and already masked */
  lc_error_setfield(L, -3, "request_id");
  lc_error_setfield(L, -2, "headers");
  lua_pushvalue(L, body_idx);
  if (lua_type(L, -1) == LUA_TSTRING) lc_error_redact_top(L, api_key);
  if (lua_type(L, -1) == LUA_TTABLE) lc_error_redact_table(L, -1, api_key);
  lc_error_setfield(L, -2, "body");
}

/* Pushes the error for a non-2xx answer. body_idx holds the decoded body or the raw text. */
static void lc_error_push_status(lua_State *L, const lc_transfer *t, long status, int body_idx,
                                 int attempts, const char *api_key) {
  const char *detail;
  body_idx = lc_absindex(L, body_idx);
  lc_error_push_detail(L, body_idx, t, api_key);
  detail = lua_tostring(L, -1);
  if (detail[0] != '\0')
    lua_pushfstring(L, "%d %s", (int)status, detail);
  else
    lua_pushfstring(L, "%d (empty body)", (int)status);
  lc_error_push(L, lc_error_name_for_status(status), lua_tostring(L, -1), api_key);
  lua_replace(L, -3);
  lua_pop(L, 1);
  lc_error_add_response(L, t, status, body_idx, api_key);
  lc_error_set_number(L, "attempts", attempts);
}

/* core.error(name, message [, fields]): the Lua layer's errors (polling) are built here too. */
static int lc_error_new_lua(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  const char *message = luaL_checkstring(L, 2);
  lc_error_push(L, name, message, NULL);
  if (lua_istable(L, 3)) {
    lua_pushnil(L);
    while (lua_next(L, 3) != 0) {
      lua_pushvalue(L, -2);
      lua_insert(L, -2);
      lua_rawset(L, -4);
    }
  }
  return 1;
}
