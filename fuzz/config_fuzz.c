/* libFuzzer target: what src/core.c reads from the user's environment and options before any request:
   LLAMA_CLOUD_CUSTOM_HEADERS lines, header names and values, and the base URL's plain-http check. */

/* Build and run: scripts/fuzz.sh config (or make fuzz FUZZ_TARGETS=config FUZZ_SECONDS=600).
   Input: byte 0 picks the check; the rest (cut at the first NUL, as an environment value is) is the
   text. Checked on every input:
   - custom headers: parsing raises a message naming LLAMA_CLOUD_CUSTOM_HEADERS, or gives names that
     pass lc_header_name_ok and values with no CR, LF or NUL; merged over the default list, every
     line is "Name: value", each name once, and Authorization still carries the key unless the
     variable set it;
   - base URL: refused, or accepted without trailing slash, parsing to the same scheme and host, and
     (allow_insecure_http off) plain http only to a loopback host, even once the API path is added;
   - the Lua stack is balanced and nothing leaks on either path (ASan's leak check). */

#define _GNU_SOURCE /* as src/core.c: memmem, strcasecmp */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "../src/compat.h"
#include "../src/core.c"

#define FUZZ_NAME "config_fuzz"
#include "fuzz_common.h"

#define FUZZ_KEY "sk-fuzz-config-Key"

static const uint8_t *cur_data;
static size_t cur_size;
static struct curl_slist *base_list, *merged_list; /* freed after each input, even after an error */

/* The checks run inside Lua calls: they fail on the input kept here. */
static void fuzz_fail_input(const char *why) {
  fuzz_fail(why, cur_data, cur_size);
}

static int fuzz_env_headers(lua_State *L) {
  int n = 0;
  struct curl_slist *p;
  const char *env_auth = NULL;
  lua_settop(L, 0);
  if (!lc_push_env_headers(L)) return 0;
  lc_check_headers(L, 1, "LLAMA_CLOUD_CUSTOM_HEADERS");
  lua_pushnil(L);
  while (lua_next(L, 1) != 0) {
    size_t vn;
    const char *v = lua_tolstring(L, -1, &vn);
    if (!lc_header_name_ok(lua_tostring(L, -2))) fuzz_fail_input("accepted a bad header name");
    if (memchr(v, '\r', vn) || memchr(v, '\n', vn) || memchr(v, '\0', vn)) fuzz_fail_input("accepted a bad value");
    if (strcasecmp(lua_tostring(L, -2), "authorization") == 0) env_auth = lua_tostring(L, -2);
    lua_pop(L, 1);
  }
  base_list = lc_default_headers(L, FUZZ_KEY);
  if (lc_headers_merge(L, base_list, 1, &merged_list) != 0) luaL_error(L, "llamacloud: out of memory");
  /* Every line is "Name: value"; a default line stays only when no variable line names it. */
  for (p = merged_list; p != NULL; p = p->next) {
    const char *colon = strchr(p->data, ':');
    struct curl_slist *b;
    int from_base = 0;
    if (colon == NULL || colon == p->data || colon[1] != ' ') fuzz_fail_input("merged line not 'Name: value'");
    if (strpbrk(p->data, "\r\n")) fuzz_fail_input("merged line holds CR or LF");
    for (b = base_list; b != NULL; b = b->next)
      if (strcmp(b->data, p->data) == 0) from_base = 1;
    if (from_base) {
      lua_pushnil(L);
      while (lua_next(L, 1) != 0) {
        const char *k = lua_tostring(L, -2), *v = lua_tostring(L, -1);
        size_t kn = strlen(k);
        if (lc_header_named(p->data, k) && !(strncmp(p->data, k, kn) == 0 && strcmp(p->data + kn + 2, v) == 0))
          fuzz_fail_input("a default header was not overridden");
        lua_pop(L, 1);
      }
    }
    if (lc_header_named(p->data, "Authorization") && env_auth == NULL &&
        strcmp(p->data, "Authorization: Bearer " FUZZ_KEY) != 0)
      fuzz_fail_input("the Authorization line changed");
    n++;
  }
  if (env_auth == NULL) {
    for (p = merged_list; p != NULL; p = p->next)
      if (strcmp(p->data, "Authorization: Bearer " FUZZ_KEY) == 0) break;
    if (p == NULL) fuzz_fail_input("the Authorization line is gone");
  }
  lua_pushinteger(L, n);
  return 1;
}

/* Scheme and host of url as libcurl parses it; 0 when it does not. */
static int fuzz_parse(const char *url, char **scheme, char **host) {
  CURLU *u = curl_url();
  int ok;
  *scheme = *host = NULL;
  ok = curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
       curl_url_get(u, CURLUPART_SCHEME, scheme, 0) == CURLUE_OK &&
       curl_url_get(u, CURLUPART_HOST, host, 0) == CURLUE_OK;
  curl_url_cleanup(u);
  return ok;
}

/* The key new holds while it judges the base URL: no refusal may echo it. */
#define FUZZ_BASE_URL_KEY "sk-fuzz"

static int fuzz_base_url(lua_State *L) {
  const char *url = lua_tostring(L, 1), *out;
  int allow = lua_toboolean(L, 2);
  char *s0, *h0, *s1, *h1, *s2, *h2;
  size_t n;
  lua_settop(L, 2);
  lc_push_base_url(L, url, allow, FUZZ_BASE_URL_KEY);
  out = lua_tolstring(L, -1, &n);
  if (n > 0 && out[n - 1] == '/') fuzz_fail_input("base URL kept a trailing slash");
  if (!fuzz_parse(url, &s0, &h0)) fuzz_fail_input("accepted a URL libcurl cannot parse");
  lua_pushfstring(L, "%s/api/v2/batches/bat-x", out);
  if (!fuzz_parse(out, &s1, &h1) || !fuzz_parse(lua_tostring(L, -1), &s2, &h2)) {
    /* "http://h/" trimmed to "http://h" must still parse */
    fuzz_fail_input("the trimmed or extended base URL does not parse");
  }
  if (strcmp(s0, s1) != 0 || strcmp(h0, h1) != 0 || strcmp(s0, s2) != 0 || strcmp(h0, h2) != 0)
    fuzz_fail_input("trimming or adding the path changed the scheme or host");
  if (strcmp(s0, "https") != 0 && strcmp(s0, "http") != 0) fuzz_fail_input("accepted a scheme other than http(s)");
  if (!allow && strcmp(s0, "http") == 0 && !lc_is_loopback(h0)) fuzz_fail_input("plain http to a remote host");
  curl_free(s0), curl_free(h0), curl_free(s1), curl_free(h1), curl_free(s2), curl_free(h2);
  return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *text;
  int top, rc;
  const char *msg;
  if (size < 1) return 0;
  cur_data = data;
  cur_size = size;
  if (G == NULL) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    fuzz_open_state();
  }
  top = lua_gettop(G);
  text = (char *)malloc(size);
  memcpy(text, data + 1, size - 1);
  text[size - 1] = '\0';

  switch (data[0] % 3) {
  case 0:
    setenv("LLAMA_CLOUD_CUSTOM_HEADERS", text, 1);
    lua_pushcfunction(G, fuzz_env_headers);
    rc = lua_pcall(G, 0, 1, 0);
    curl_slist_free_all(base_list);
    curl_slist_free_all(merged_list);
    base_list = merged_list = NULL;
    if (rc != 0) {
      msg = lua_tostring(G, -1);
      if (msg == NULL || strstr(msg, "LLAMA_CLOUD_CUSTOM_HEADERS") == NULL)
        fuzz_fail("error does not name the variable", data, size);
    }
    break;
  case 1:
    lua_pushcfunction(G, fuzz_base_url);
    lua_pushstring(G, text);
    lua_pushboolean(G, data[0] & 4);
    rc = lua_pcall(G, 2, 1, 0);
    if (rc != 0) {
      msg = lua_tostring(G, -1);
      if (msg == NULL || strncmp(msg, "llamacloud: base_url", 20) != 0)
        fuzz_fail("unexpected base_url error", data, size);
      if (strstr(msg, FUZZ_BASE_URL_KEY) != NULL) fuzz_fail("a base_url error holds the key", data, size);
    }
    break;
  default: {
    size_t i, n = strlen(text);
    int bad_name = n == 0, bad_value = 0;
    for (i = 0; i < n; i++) {
      unsigned char c = (unsigned char)text[i];
      if (c <= 32 || c >= 127 || strchr("()<>@,;:\\\"/[]?={}", c) != NULL) bad_name = 1;
    }
    if (lc_header_name_ok(text) == bad_name) fuzz_fail("header name check wrong", data, size);
    for (i = 0; i < size - 1; i++)
      if (data[1 + i] == '\r' || data[1 + i] == '\n' || data[1 + i] == '\0') bad_value = 1;
    if (lc_header_value_ok((const char *)data + 1, size - 1) == bad_value)
      fuzz_fail("header value check wrong", data, size);
    break;
  }
  }
  free(text);
  lua_settop(G, top);
  unsetenv("LLAMA_CLOUD_CUSTOM_HEADERS");
  return 0;
}
