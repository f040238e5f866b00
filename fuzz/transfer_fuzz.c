/* libFuzzer target: a response as libcurl hands it over (header lines, body chunks) through src/transfer.c's
   capture, header lookup and header table, and the error src/errors.c builds from it. */

/* Build and run: scripts/fuzz.sh transfer (or make fuzz FUZZ_TARGETS=transfer FUZZ_SECONDS=600).
   Input: byte 0 picks max_body, byte 1 the status, byte 2 the body chunk size; the rest is the
   header block, then "\r\n\r\n", then the body. Checked on every input:
   - the header block never passes LC_MAX_HEADER_BYTES and the body never passes max_body;
   - lc_transfer_header's copy is NUL-terminated within its buffer, one line, trimmed;
   - a retry-after(-ms) or x-should-retry line that lookup finds was flagged by the capture;
   - the headers table has lower-case names with no CR or LF and string values;
   - a 2xx is a batch (string id and status) or a validation message; any other status builds
     an error whose message starts with the status, with a name, and in which no string
     (message, body, headers, at any depth, keys included) holds the API key;
   - the Lua stack is balanced. */

#define _GNU_SOURCE /* memmem */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "../src/compat.h"
#include "../src/core.c"

#define FUZZ_NAME "transfer_fuzz"
#include "fuzz_common.h"

#define FUZZ_KEY "sk-fuzz-7Qm2Xv9Lt5Kp3"

static int fuzz_has_key(const char *s, size_t n) {
  return memmem(s, n, FUZZ_KEY, sizeof FUZZ_KEY - 1) != NULL;
}

/* Whether any string reachable from the value at idx (keys too) holds the key. */
static int fuzz_leaks(lua_State *L, int idx, int depth) {
  int found = 0;
  size_t n;
  const char *s;
  idx = lc_absindex(L, idx);
  if (lua_type(L, idx) == LUA_TSTRING) {
    s = lua_tolstring(L, idx, &n);
    return fuzz_has_key(s, n);
  }
  if (lua_type(L, idx) != LUA_TTABLE || depth > 80) return 0;
  lua_pushnil(L);
  while (!found && lua_next(L, idx) != 0) {
    found = fuzz_leaks(L, -2, depth + 1) || fuzz_leaks(L, -1, depth + 1);
    lua_pop(L, 1);
  }
  if (found) lua_pop(L, 1);
  return found;
}

static const long fuzz_statuses[] = {200, 201, 204, 299, 301, 302, 304, 400, 401, 403, 404, 408,
                                     409, 418, 422, 429, 500, 502, 503, 599, 100, 999};
static const size_t fuzz_caps[] = {0, 1, 16, 64, 300, 4096, 65536, (size_t)-1};
static const char *const fuzz_names[] = {"retry-after-ms", "retry-after", "x-should-retry", "x-request-id",
                                         "content-type", "h", "", NULL};

static void fuzz_check_lookup(const lc_transfer *t, const uint8_t *data, size_t size) {
  static const size_t outlens[] = {1, 2, 16, 64, 256};
  char out[256 + 8];
  int i, j;
  for (i = 0; fuzz_names[i] != NULL; i++) {
    for (j = 0; j < 5; j++) {
      const char *v;
      size_t n;
      memset(out, 'Z', sizeof out);
      v = lc_transfer_header(t, fuzz_names[i], out, outlens[j]);
      if (v == NULL) continue;
      if (v != out) fuzz_fail("lookup did not return its buffer", data, size);
      n = strnlen(out, sizeof out);
      if (n >= outlens[j]) fuzz_fail("lookup result not terminated within outlen", data, size);
      if (out[outlens[j]] != 'Z') fuzz_fail("lookup wrote past outlen", data, size);
      if (memchr(out, '\n', n) != NULL) fuzz_fail("lookup result spans lines", data, size);
      if (n > 0 && (out[0] == ' ' || out[0] == '\t')) fuzz_fail("lookup result not trimmed", data, size);
      /* unless cut to fit, or past a NUL (libcurl refuses those in headers), the end is trimmed too */
      if (n > 0 && n < outlens[j] - 1 && !memchr(t->head.data, '\0', t->head.len) && (out[n - 1] == ' ' || out[n - 1] == '\t' || out[n - 1] == '\r'))
        fuzz_fail("lookup result not trimmed at the end", data, size);
    }
  }
}

static void fuzz_check_table(lua_State *L, int idx, const uint8_t *data, size_t size) {
  idx = lc_absindex(L, idx);
  if (!lua_istable(L, idx)) fuzz_fail("headers is not a table", data, size);
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    size_t n, i;
    const char *k;
    if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
      fuzz_fail("headers table holds a non-string", data, size);
    k = lua_tolstring(L, -2, &n);
    if (n == 0) fuzz_fail("empty header name", data, size);
    for (i = 0; i < n; i++) {
      if (k[i] >= 'A' && k[i] <= 'Z') fuzz_fail("header name not lower case", data, size);
      if (k[i] == '\n' || k[i] == ':') fuzz_fail("header name holds LF or ':'", data, size);
    }
    k = lua_tolstring(L, -1, &n);
    if (memchr(k, '\n', n) != NULL) fuzz_fail("header value holds LF", data, size);
    lua_pop(L, 1);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  lc_transfer t;
  const uint8_t *p, *end, *sep;
  size_t chunk;
  long status;
  int top;
  char ra_ms[64], ra[128];
  double hint;

  if (size < 3) return 0;
  if (G == NULL) {
    fuzz_open_state();
    lc_error_open(G);
  }
  top = lua_gettop(G);
  memset(&t, 0, sizeof t);
  t.max_body = fuzz_caps[data[0] % (sizeof fuzz_caps / sizeof fuzz_caps[0])];
  status = fuzz_statuses[data[1] % (sizeof fuzz_statuses / sizeof fuzz_statuses[0])];
  chunk = (size_t)(data[2] % 64) + 1;
  p = data + 3;
  end = data + size;
  sep = (const uint8_t *)memmem(p, (size_t)(end - p), "\r\n\r\n", 4);

  /* Header lines one at a time, each ending in its LF, as libcurl delivers them. */
  {
    const uint8_t *hend = sep ? sep + 4 : end;
    while (p < hend) {
      const uint8_t *eol = memchr(p, '\n', (size_t)(hend - p));
      size_t len = eol ? (size_t)(eol - p) + 1 : (size_t)(hend - p);
      char *line = (char *)malloc(len); /* exact size, so ASan sees a read past the line */
      size_t got;
      memcpy(line, p, len);
      got = lc_transfer_on_header(line, 1, len, &t);
      free(line);
      if (got != len) break;
      p += len;
    }
    if (t.head.len > LC_MAX_HEADER_BYTES) fuzz_fail("header block past its cap", data, size);
    p = hend;
  }
  while (p < end) {
    size_t len = (size_t)(end - p) < chunk ? (size_t)(end - p) : chunk;
    char *part = (char *)malloc(len);
    size_t got;
    memcpy(part, p, len);
    got = lc_transfer_on_body(part, 1, len, &t);
    free(part);
    if (got != len) {
      if (t.cut != LC_CUT_BODY && t.body.len + len <= t.max_body) fuzz_fail("body refused under its cap", data, size);
      break;
    }
    p += len;
  }
  if (t.body.len > t.max_body) fuzz_fail("body past max_body", data, size);

  fuzz_check_lookup(&t, data, size);
  /* request.c looks the retry headers up only when the capture flagged one */
  if (!t.retry_headers && (lc_transfer_header(&t, "retry-after-ms", ra_ms, sizeof ra_ms) != NULL ||
                           lc_transfer_header(&t, "retry-after", ra, sizeof ra) != NULL ||
                           lc_transfer_header(&t, "x-should-retry", ra, sizeof ra) != NULL))
    fuzz_fail("a retry header was not flagged", data, size);
  lc_transfer_push_headers(G, &t);
  fuzz_check_table(G, -1, data, size);
  lua_pop(G, 1);

  hint = lc_retry_after(lc_transfer_header(&t, "retry-after-ms", ra_ms, sizeof ra_ms),
                        lc_transfer_header(&t, "retry-after", ra, sizeof ra), (time_t)1767225600);
  if (!(hint == -1 || (hint >= 0 && hint <= LC_RETRY_AFTER_MAX))) fuzz_fail("hint out of range", data, size);

  if (status >= 200 && status < 300) {
    /* The same body read as each call's shape: accepted only when it is that shape. */
    int top = lua_gettop(G);
    enum lc_shape shape;
    for (shape = LC_SHAPE_BATCH; shape <= LC_SHAPE_JOB; shape++) {
      if (lc_request_decode_body(G, &t, shape)) {
        if (!lua_istable(G, -1)) fuzz_fail("accepted a body that is not an object", data, size);
        if (shape == LC_SHAPE_BATCH) {
          lua_getfield(G, -1, "id");
          lua_getfield(G, -2, "status");
          if (lua_type(G, -1) != LUA_TSTRING || lua_type(G, -2) != LUA_TSTRING)
            fuzz_fail("accepted a batch without string id and status", data, size);
        } else if (shape == LC_SHAPE_PAGE) {
          lua_getfield(G, -1, "items");
          if (!lua_istable(G, -1)) fuzz_fail("accepted a page without an items array", data, size);
        }
      } else if (lua_type(G, -1) != LUA_TSTRING) {
        fuzz_fail("no validation message", data, size);
      } else {
        lc_error_push(G, "APIResponseValidationError", lua_tostring(G, -1), FUZZ_KEY);
        if (fuzz_leaks(G, -1, 0)) fuzz_fail("the key leaked into a validation error", data, size);
      }
      lua_settop(G, top);
    }
  } else {
    char prefix[16];
    const char *msg;
    lc_request_push_error_body(G, &t);
    lc_error_push_status(G, &t, status, -1, 1, FUZZ_KEY);
    if (!lua_istable(G, -1)) fuzz_fail("status error is not a table", data, size);
    lua_getfield(G, -1, "name");
    if (lua_type(G, -1) != LUA_TSTRING) fuzz_fail("status error has no name", data, size);
    lua_pop(G, 1);
    lua_getfield(G, -1, "message");
    msg = lua_tostring(G, -1);
    snprintf(prefix, sizeof prefix, "%ld ", status);
    if (msg == NULL || strncmp(msg, prefix, strlen(prefix)) != 0)
      fuzz_fail("status error message does not start with the status", data, size);
    lua_pop(G, 1);
    lua_getfield(G, -1, "headers");
    fuzz_check_table(G, -1, data, size);
    lua_pop(G, 1);
    if (fuzz_leaks(G, -1, 0)) fuzz_fail("the key leaked into a status error", data, size);
    lua_pushcfunction(G, lc_error_tostring);
    lua_pushvalue(G, -2);
    if (lua_pcall(G, 1, 1, 0) != 0 || lua_type(G, -1) != LUA_TSTRING)
      fuzz_fail("__tostring failed", data, size);
  }
  lua_settop(G, top);
  lc_buf_free(&t.head);
  lc_buf_free(&t.body);
  lua_gc(G, LUA_GCSTEP, 0);
  return 0;
}
