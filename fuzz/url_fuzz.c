/* libFuzzer target: src/url.c, which turns a caller's batch id and query values into URL text. */

/* Build and run: scripts/fuzz.sh url (or make fuzz FUZZ_TARGETS=url FUZZ_SECONDS=600).
   Input: byte 0 steers the buffer's starting state; the rest is an id, then (split at the first 0xFF)
   a query key and value. Checked on every input:
   - lc_url_encode writes only unreserved bytes and %XX (upper-case hex), at most 3 bytes per byte,
     and percent-decoding it gives the input back, so an id is always exactly one path segment;
   - lc_url_check_id refuses exactly the empty id, "." and "..";
   - lc_url_add_query appends "?k=v" then "&k=v", each part decoding back to what was given;
   - text already in the buffer is never touched. */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/compat.h"
#include "../src/buf.c"
#include "../src/url.c"

#define FUZZ_NAME "url_fuzz"
#include "fuzz_common.h"

static int fuzz_hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Checks s[0..n) is encoded text and that it decodes to want[0..wn). */
static void fuzz_check_encoded(const char *s, size_t n, const uint8_t *want, size_t wn, const uint8_t *data,
                               size_t size) {
  size_t i, o = 0;
  if (n > wn * 3) fuzz_fail("encoding longer than 3 bytes per byte", data, size);
  for (i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    int hi, lo;
    if (lc_url_unreserved(c)) {
      if (o >= wn || want[o] != c) fuzz_fail("encoding does not decode back", data, size);
      o++;
      continue;
    }
    if (c != '%' || i + 2 >= n || (hi = fuzz_hex(s[i + 1])) < 0 ||
        (lo = fuzz_hex(s[i + 2])) < 0)
      fuzz_fail("a byte that is neither unreserved nor %XX", data, size);
    if (o >= wn || want[o] != (unsigned char)(hi * 16 + lo)) fuzz_fail("encoding does not decode back", data, size);
    if (lc_url_unreserved(want[o])) fuzz_fail("an unreserved byte was percent-encoded", data, size);
    o++;
    i += 2;
  }
  if (o != wn) fuzz_fail("encoding lost bytes", data, size);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  lc_buf b = {NULL, 0, 0};
  const uint8_t *id, *k, *v, *ff;
  size_t idn, kn, vn, start, mark;
  const char *why;
  int first = 1;
  char *copy;

  if (size < 1) return 0;
  /* Start empty, or with text already there (as when the base URL is in the buffer). */
  if (data[0] & 1) {
    if (lc_buf_adds(&b, "http://127.0.0.1:1/api/v2/batches/") != 0) abort();
  }
  if (data[0] & 2) {
    /* a buffer grown to exactly full, so an append must realloc */
    while (b.len + 1 < b.cap || b.cap == 0)
      if (lc_buf_add(&b, "a", 1) != 0) abort();
  }
  start = b.len;
  id = data + 1;
  ff = (const uint8_t *)memchr(id, 0xFF, size - 1);
  idn = ff ? (size_t)(ff - id) : size - 1;

  copy = (char *)malloc(idn ? idn : 1); /* exact size: ASan sees a read past the id */
  memcpy(copy, id, idn);
  why = lc_url_check_id(copy, idn);
  if ((why != NULL) != (idn == 0 || (idn == 1 && id[0] == '.') || (idn == 2 && id[0] == '.' && id[1] == '.')))
    fuzz_fail("check_id decision wrong", data, size);
  if (lc_url_encode(&b, copy, idn) != 0) abort();
  free(copy);
  if (b.data == NULL ? idn != 0 : b.data[b.len] != '\0') fuzz_fail("buffer not terminated", data, size);
  if (b.data) fuzz_check_encoded(b.data + start, b.len - start, id, idn, data, size);
  if (b.len > 0 && memchr(b.data + start, '/', b.len - start) != NULL) fuzz_fail("a slash left in the id", data, size);

  if (ff) {
    const uint8_t *eq;
    k = ff + 1;
    eq = (const uint8_t *)memchr(k, '=', (size_t)(data + size - k));
    kn = eq ? (size_t)(eq - k) : (size_t)(data + size - k);
    v = eq ? eq + 1 : data + size;
    vn = (size_t)(data + size - v);
    mark = b.len;
    if (lc_url_add_query(&b, &first, (const char *)k, kn, (const char *)v, vn) != 0) abort();
    if (b.data[mark] != '?' || first) fuzz_fail("first query part not '?'", data, size);
    {
      const char *q = b.data + mark + 1, *e = b.data + b.len, *eqs = memchr(q, '=', (size_t)(e - q));
      if (eqs == NULL) fuzz_fail("no '=' in a query part", data, size);
      fuzz_check_encoded(q, (size_t)(eqs - q), k, kn, data, size);
      fuzz_check_encoded(eqs + 1, (size_t)(e - eqs - 1), v, vn, data, size);
    }
    mark = b.len;
    if (lc_url_add_query(&b, &first, (const char *)v, vn, (const char *)k, kn) != 0) abort();
    if (b.data[mark] != '&') fuzz_fail("second query part not '&'", data, size);
  }
  if ((data[0] & 1) && memcmp(b.data, "http://127.0.0.1:1/api/v2/batches/", 34) != 0)
    fuzz_fail("text already in the buffer changed", data, size);
  lc_buf_free(&b);
  return 0;
}
