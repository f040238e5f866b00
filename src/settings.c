/* The client's settings: options checked, the environment read once at new, default headers, base URL rules. */

#define LC_DEFAULT_BASE_URL "https://api.cloud.llamaindex.ai"
#define LC_EU_BASE_URL "https://api.cloud.eu.llamaindex.ai"
#define LC_DEFAULT_TIMEOUT 60.0
#define LC_DEFAULT_MAX_RETRIES 2
#define LC_DEFAULT_MAX_BODY ((size_t)256 * 1024 * 1024)
#define LC_MAX_RETRIES_LIMIT 100

/* What a request needs from its client; lives in the client, kept alive by the request's client_ref. */
typedef struct lc_config {
  unsigned long long id;      /* unique in the process: which settings a pooled transfer was set for */
  char *api_key;
  char *base_url;             /* without a trailing slash */
  char *proxy, *ca_file, *ca_path;
  char *organization_id, *project_id;
  struct curl_slist *headers; /* Authorization, Accept, User-Agent and custom ones */
  double timeout;
  int max_retries;
  size_t max_body;
  int log_debug;
  int users;   /* requests built from it: a closed client's strings live until the last is released */
  int closed;  /* its client is closed: lc_config_free runs when users drops to 0 */
} lc_config;

static unsigned long long lc_config_serial; /* the last lc_config id given out */

static int lc_header_named(const char *line, const char *name);

/* Frees a header list, the Authorization line (it holds the key) wiped first. */
static void lc_slist_free_wiped(struct curl_slist *list) {
  struct curl_slist *p;
  for (p = list; p != NULL; p = p->next)
    if (lc_header_named(p->data, "Authorization")) explicit_bzero(p->data, strlen(p->data));
  curl_slist_free_all(list);
}

/* Frees what the config owns and zeroes it. The key is wiped with explicit_bzero, which the
   compiler may not drop as a store to memory about to be freed. */
static void lc_config_free(lc_config *cfg) {
  if (cfg->api_key) explicit_bzero(cfg->api_key, strlen(cfg->api_key));
  free(cfg->api_key);
  free(cfg->base_url);
  free(cfg->proxy);
  free(cfg->ca_file);
  free(cfg->ca_path);
  free(cfg->organization_id);
  free(cfg->project_id);
  lc_slist_free_wiped(cfg->headers);
  memset(cfg, 0, sizeof *cfg);
  cfg->closed = 1; /* still closed: a call that was building a request from it sees so (call.c) */
}

/* ---- option tables: read raw (no __index runs), every mistake raises naming the option ---- */

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

/* Pushes option name of the table at idx, read raw: an __index metamethod is not consulted, so a
   key the table does not hold is absent (spec/options_spec.lua, "read raw"). */
static int lc_opt_push(lua_State *L, int idx, const char *name) {
  idx = lc_absindex(L, idx);
  lua_pushstring(L, name);
  lua_rawget(L, idx);
  return lua_type(L, -1);
}

/* The string option name, or NULL when absent; anything but a string raises. The value is left
   pushed (nil when absent), which anchors the string until the caller pops it. */
static const char *lc_opt_string(lua_State *L, int idx, const char *name, const char *fn) {
  int t = lc_opt_push(L, idx, name);
  if (t == LUA_TNIL) return NULL;
  if (t != LUA_TSTRING)
    luaL_error(L, "llamacloud: %s: option '%s' must be a string (got %s)", fn, name, luaL_typename(L, -1));
  return lua_tostring(L, -1);
}

static int lc_opt_number(lua_State *L, int idx, const char *name, const char *fn, double *out) {
  double v;
  if (lc_opt_push(L, idx, name) == LUA_TNIL) {
    lua_pop(L, 1);
    return 0;
  }
  v = lua_tonumber(L, -1);
  if (lua_type(L, -1) != LUA_TNUMBER || !(v > 0) || v > 1e9)
    luaL_error(L, "llamacloud: %s: option '%s' must be a positive number of seconds, at most 1e9", fn, name);
  lua_pop(L, 1);
  *out = v;
  return 1;
}

/* An absolute time in seconds on core.now()'s clock; any number but NaN (math.huge: none). */
static int lc_opt_time(lua_State *L, int idx, const char *name, const char *fn, double *out) {
  double v;
  if (lc_opt_push(L, idx, name) == LUA_TNIL) {
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
  if (lc_opt_push(L, idx, name) == LUA_TNIL) {
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

/* ---- headers ---- */

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

/* Appends "name: value" to *list. Only C allocates here, so nothing raises while the list is
   owned by a C local. Returns -1 when out of memory (*list kept). */
static int lc_headers_append(struct curl_slist **list, lc_buf *line, const char *name, const char *value,
                             size_t vn) {
  struct curl_slist *tmp;
  lc_buf_clear(line);
  if (lc_buf_adds(line, name) != 0 || lc_buf_add(line, ": ", 2) != 0 || lc_buf_add(line, value, vn) != 0) return -1;
  if ((tmp = curl_slist_append(*list, line->data)) == NULL) return -1;
  *list = tmp;
  return 0;
}

/* A new list in *merged: base's lines whose names the table at idx does not set, then the table's.
   The caller frees it with lc_slist_free_wiped. The table was checked already; walking it with
   lua_next allocates nothing, so nothing raises. Returns -1, with nothing left allocated, when
   libcurl or malloc ran out of memory: the caller decides whether that raises (new) or fails
   the call (spec/oom: libcurl's allocations failing are nil, err). */
static int lc_headers_merge(lua_State *L, const struct curl_slist *base, int idx, struct curl_slist **merged) {
  struct curl_slist *out = NULL, *tmp;
  const struct curl_slist *p;
  lc_buf line = {NULL, 0, 0};
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
    size_t vn;
    const char *v = lua_tolstring(L, -1, &vn);
    if (lc_headers_append(&out, &line, lua_tostring(L, -2), v, vn) != 0) {
      lua_pop(L, 2);
      goto oom;
    }
    lua_pop(L, 1);
  }
  lc_buf_free(&line);
  *merged = out;
  return 0;
oom:
  lc_buf_free(&line);
  lc_slist_free_wiped(out);
  *merged = NULL;
  return -1;
}

/* Authorization, Accept and User-Agent, built in C only (see lc_headers_append): the key never
   becomes a Lua string, and the line buffer that held it is wiped. */
static struct curl_slist *lc_default_headers(lua_State *L, const char *api_key) {
  struct curl_slist *list = NULL, *tmp;
  lc_buf line = {NULL, 0, 0};
  char ua[160];
  int bad;
  snprintf(ua, sizeof ua, "llamacloud-lua/%s (%s; libcurl/%s)", LC_VERSION, lc_lua_version(),
           curl_version_info(CURLVERSION_NOW)->version);
  bad = lc_buf_adds(&line, "Authorization: Bearer ") != 0 || lc_buf_adds(&line, api_key) != 0 ||
        (tmp = curl_slist_append(NULL, line.data)) == NULL;
  if (!bad) list = tmp;
  if (line.data) explicit_bzero(line.data, line.cap);
  bad = bad || lc_headers_append(&list, &line, "Accept", "application/json", 16) != 0 ||
        lc_headers_append(&list, &line, "User-Agent", ua, strlen(ua)) != 0;
  lc_buf_free(&line);
  if (bad) {
    lc_slist_free_wiped(list);
    luaL_error(L, "llamacloud: out of memory");
  }
  return list;
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

/* ---- the base URL ---- */

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

enum lc_url_verdict { LC_URL_OK, LC_URL_BAD, LC_URL_SCHEME, LC_URL_CLEAR, LC_URL_EXTRA, LC_URL_USER, LC_URL_OOM };

/* Whether u has part a or part b: 1, 0, or -1 when libcurl ran out of memory finding out (a check
   that cannot be made is not passed: spec/oom/driver.lua, "new"). */
static int lc_url_has_either(CURLU *u, CURLUPart a, CURLUPart b) {
  CURLUPart parts[2];
  int i;
  parts[0] = a;
  parts[1] = b;
  for (i = 0; i < 2; i++) {
    char *s = NULL;
    CURLUcode rc = curl_url_get(u, parts[i], &s, 0);
    curl_free(s);
    if (rc == CURLUE_OK) return 1;
    if (rc == CURLUE_OUT_OF_MEMORY) return -1;
  }
  return 0;
}

/* Judges a base URL in C only: libcurl's strings are freed before the caller builds any Lua
   value, so a raise cannot leak them. host (for the message) is copied into hostbuf. libcurl
   running out of memory is LC_URL_OOM, never a verdict on the URL. */
static enum lc_url_verdict lc_base_url_judge(const char *url, int allow_insecure, char *hostbuf, size_t hostlen) {
  CURLU *u = curl_url();
  char *scheme = NULL, *host = NULL;
  CURLUcode rc;
  enum lc_url_verdict v = LC_URL_OK;
  int has;
  hostbuf[0] = '\0';
  if (u == NULL) return LC_URL_OOM;
  if ((rc = curl_url_set(u, CURLUPART_URL, url, 0)) != CURLUE_OK ||
      (rc = curl_url_get(u, CURLUPART_SCHEME, &scheme, 0)) != CURLUE_OK ||
      (rc = curl_url_get(u, CURLUPART_HOST, &host, 0)) != CURLUE_OK)
    v = rc == CURLUE_OUT_OF_MEMORY ? LC_URL_OOM : LC_URL_BAD;
  else if (strcmp(scheme, "https") != 0 && strcmp(scheme, "http") != 0)
    v = LC_URL_SCHEME;
  else if (strcmp(scheme, "http") == 0 && !allow_insecure && !lc_is_loopback(host))
    v = LC_URL_CLEAR;
  else if ((has = lc_url_has_either(u, CURLUPART_USER, CURLUPART_PASSWORD)) != 0)
    v = has < 0 ? LC_URL_OOM : LC_URL_USER;
  else if ((has = lc_url_has_either(u, CURLUPART_QUERY, CURLUPART_FRAGMENT)) != 0)
    v = has < 0 ? LC_URL_OOM : LC_URL_EXTRA;
  if (host) snprintf(hostbuf, hostlen, "%s", host);
  curl_free(scheme);
  curl_free(host);
  curl_url_cleanup(u);
  return v;
}

/* Raises the message at the top of the stack with every copy of the key masked: a base URL echoed
   back may hold it (a token in its query, or the key's variable given as the URL's by mistake;
   spec/redaction_spec.lua, "base_url"). */
static void lc_settings_raise_redacted(lua_State *L, const char *api_key) {
  lc_error_redact_top(L, api_key);
  luaL_where(L, 1);
  lua_insert(L, -2);
  lua_concat(L, 2);
  lua_error(L);
}

/* Checks a base URL and pushes it without trailing slashes. Plain http to a host other than
   loopback is refused unless allowed: the key must not travel in clear text. A query, a fragment
   or user-info is refused: the API path would land inside them (spec/options_spec.lua). No message
   holds api_key. */
static void lc_push_base_url(lua_State *L, const char *url, int allow_insecure, const char *api_key) {
  char host[256];
  const char *e;
  switch (lc_base_url_judge(url, allow_insecure, host, sizeof host)) {
  case LC_URL_OK: break;
  case LC_URL_OOM: luaL_error(L, "llamacloud: out of memory"); break;
  case LC_URL_CLEAR:
    lua_pushfstring(L, "llamacloud: base_url: refusing plain http to %s, which would send the API key in clear "
                       "text; use https, or allow_insecure_http = true", host);
    lc_settings_raise_redacted(L, api_key);
    break;
  case LC_URL_USER:
    /* not echoed: it may hold a password */
    luaL_error(L, "llamacloud: base_url must not contain user-info (user:password@); pass the key as api_key");
    break;
  case LC_URL_EXTRA:
    lua_pushfstring(L, "llamacloud: base_url must not have a query or fragment (got '%s')", url);
    lc_settings_raise_redacted(L, api_key);
    break;
  default:
    lua_pushfstring(L, "llamacloud: base_url must be an http(s) URL (got '%s')", url);
    lc_settings_raise_redacted(L, api_key);
  }
  e = url + strlen(url);
  while (e > url && e[-1] == '/') e--;
  lua_pushlstring(L, url, (size_t)(e - url));
}

/* ---- reading new's options ---- */

static const char *const lc_client_options[] = {
  "api_key", "base_url", "region", "timeout", "max_retries", "headers", "organization_id", "project_id",
  "max_body_bytes", "proxy", "ca_file", "ca_path", "allow_insecure_http", NULL};

/* new's options and the environment, checked. Every string points into a value left on the
   stack by lc_settings_read, which anchors it until the caller's frame ends. */
typedef struct lc_settings {
  const char *api_key, *base_url, *proxy, *ca_file, *ca_path, *org, *project;
  double timeout, max_retries, max_body;
  int log_debug;
  int headers_idx;     /* the headers option's table, or 0 */
  int env_headers_idx; /* LLAMA_CLOUD_CUSTOM_HEADERS as a table, or 0 */
} lc_settings;

/* Reads and checks the options table at idx (raw) and the environment; raises on any mistake. */
static void lc_settings_read(lua_State *L, int idx, lc_settings *s) {
  const char *region;
  int allow_insecure;
  memset(s, 0, sizeof *s);
  s->timeout = LC_DEFAULT_TIMEOUT;
  s->max_retries = LC_DEFAULT_MAX_RETRIES;
  s->max_body = (double)LC_DEFAULT_MAX_BODY;
  idx = lc_absindex(L, idx);
  lc_check_known(L, idx, lc_client_options, "new");

  if (lc_opt_push(L, idx, "allow_insecure_http") != LUA_TNIL && !lua_isboolean(L, -1))
    luaL_error(L, "llamacloud: new: option 'allow_insecure_http' must be a boolean");
  allow_insecure = lua_toboolean(L, -1);
  lua_pop(L, 1);

  s->api_key = lc_opt_string(L, idx, "api_key", "new");
  if (s->api_key != NULL && s->api_key[0] == '\0') s->api_key = NULL;
  if (s->api_key == NULL) s->api_key = lc_push_env(L, "LLAMA_CLOUD_API_KEY");
  if (s->api_key == NULL) s->api_key = lc_push_env(L, "LLAMA_PARSE_API_KEY");
  if (s->api_key == NULL)
    luaL_error(L, "llamacloud: no API key: pass api_key to llamacloud.new, or set LLAMA_CLOUD_API_KEY or "
                  "LLAMA_PARSE_API_KEY");
  if (!lc_header_value_ok(s->api_key, strlen(s->api_key)))
    luaL_error(L, "llamacloud: new: api_key contains CR, LF or NUL");

  region = lc_opt_string(L, idx, "region", "new");
  if (region != NULL && strcmp(region, "eu") != 0 && strcmp(region, "us") != 0)
    luaL_error(L, "llamacloud: new: option 'region' must be \"eu\" or \"us\" (got '%s')", region);
  s->base_url = lc_opt_string(L, idx, "base_url", "new");
  if (s->base_url == NULL && region != NULL)
    s->base_url = strcmp(region, "eu") == 0 ? LC_EU_BASE_URL : LC_DEFAULT_BASE_URL;
  if (s->base_url == NULL) s->base_url = lc_push_env(L, "LLAMA_CLOUD_BASE_URL");
  if (s->base_url == NULL) s->base_url = LC_DEFAULT_BASE_URL;
  lc_push_base_url(L, s->base_url, allow_insecure, s->api_key);
  s->base_url = lua_tostring(L, -1);

  lc_opt_number(L, idx, "timeout", "new", &s->timeout);
  lc_opt_count(L, idx, "max_retries", "new", 0, LC_MAX_RETRIES_LIMIT, &s->max_retries);
  lc_opt_count(L, idx, "max_body_bytes", "new", 1, 9007199254740992.0, &s->max_body);
  s->proxy = lc_opt_string(L, idx, "proxy", "new");
  s->ca_file = lc_opt_string(L, idx, "ca_file", "new");
  s->ca_path = lc_opt_string(L, idx, "ca_path", "new");
  s->org = lc_opt_string(L, idx, "organization_id", "new");
  s->project = lc_opt_string(L, idx, "project_id", "new");
  if (lc_opt_push(L, idx, "headers") != LUA_TNIL) {
    lc_check_headers(L, -1, "new: option 'headers'");
    s->headers_idx = lua_gettop(L);
  }
  if (lc_push_env_headers(L)) {
    lc_check_headers(L, -1, "LLAMA_CLOUD_CUSTOM_HEADERS");
    s->env_headers_idx = lua_gettop(L);
  }
  if (lc_push_env(L, "LLAMA_CLOUD_LOG") != NULL) s->log_debug = strcasecmp(lua_tostring(L, -1), "debug") == 0;
}

static char *lc_strdup(lua_State *L, const char *s) {
  char *p;
  if (s == NULL) return NULL;
  p = strdup(s);
  if (p == NULL) luaL_error(L, "llamacloud: out of memory");
  return p;
}

/* Fills cfg, which a userdata already owns (so an out-of-memory error frees what is set). */
static void lc_config_fill(lua_State *L, lc_config *cfg, const lc_settings *s) {
  struct curl_slist *merged;
  cfg->id = ++lc_config_serial;
  cfg->timeout = s->timeout;
  cfg->max_retries = (int)s->max_retries;
  cfg->max_body = (size_t)s->max_body;
  cfg->log_debug = s->log_debug;
  cfg->api_key = lc_strdup(L, s->api_key);
  cfg->base_url = lc_strdup(L, s->base_url);
  cfg->proxy = lc_strdup(L, s->proxy);
  cfg->ca_file = lc_strdup(L, s->ca_file);
  cfg->ca_path = lc_strdup(L, s->ca_path);
  cfg->organization_id = lc_strdup(L, s->org);
  cfg->project_id = lc_strdup(L, s->project);
  cfg->headers = lc_default_headers(L, s->api_key);
  if (s->env_headers_idx) {
    if (lc_headers_merge(L, cfg->headers, s->env_headers_idx, &merged) != 0)
      luaL_error(L, "llamacloud: out of memory");
    lc_slist_free_wiped(cfg->headers); /* the replaced list holds the key too */
    cfg->headers = merged;
  }
  if (s->headers_idx) {
    if (lc_headers_merge(L, cfg->headers, s->headers_idx, &merged) != 0) luaL_error(L, "llamacloud: out of memory");
    lc_slist_free_wiped(cfg->headers);
    cfg->headers = merged;
  }
}
