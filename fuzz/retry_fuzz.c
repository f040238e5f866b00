/* libFuzzer target: src/retry.c, which reads retry-after-ms, retry-after (seconds or an HTTP date, through
   curl_getdate) and x-should-retry straight from a server's headers. */

/* Build and run: scripts/fuzz.sh retry (or make fuzz FUZZ_TARGETS=retry FUZZ_SECONDS=600).
   Input: byte 0 and 1 steer the delay and decision checks; the rest, split at the first LF, is the
   retry-after-ms value then the retry-after value. Checked on every input:
   - lc_retry_parse_number accepts only what strtod reads the same way (blanks, sign, digits,
     one fraction), and gives strtod's value;
   - lc_retry_after is -1 or within 0..60 s, and retry-after-ms wins whenever it parses;
   - lc_retry_delay is the hint when there is one, else within 0.375..8 s;
   - lc_retry_wanted never retries a 3xx and only answers 0 or 1. */

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <curl/curl.h>

#include "../src/compat.h"
#include "../src/retry.c"

#define FUZZ_NAME "retry_fuzz"
#include "fuzz_common.h"

/* Our grammar, checked independently: [ \t]* [+-]? digits [. digits] [ \t]*, at least one digit. */
static int fuzz_grammar(const char *s) {
  int digits = 0;
  while (*s == ' ' || *s == '\t') s++;
  if (*s == '+' || *s == '-') s++;
  while (*s >= '0' && *s <= '9') s++, digits++;
  if (*s == '.')
    for (s++; *s >= '0' && *s <= '9'; s++) digits++;
  while (*s == ' ' || *s == '\t') s++;
  return *s == '\0' && digits > 0;
}

static void fuzz_number(const char *s, const uint8_t *data, size_t size) {
  double v, w;
  if (lc_retry_parse_number(s, &v) != 0) return;
  if (!fuzz_grammar(s)) fuzz_fail("accepted a number outside the grammar", data, size);
  if (!isfinite(v)) fuzz_fail("parsed a non-finite number", data, size);
  w = strtod(s, NULL);
  if (fabs(v - w) > 1e-9 * (fabs(w) > 1 ? fabs(w) : 1)) fuzz_fail("value differs from strtod", data, size);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *buf, *ms, *ra, *lf;
  double v, hint, d, unit;
  int n, out, r;
  long status;
  static const time_t nows[] = {0, 784111777, 1767225600, 2147483647};

  if (size < 2) return 0;
  buf = (char *)malloc(size - 2 + 1);
  memcpy(buf, data + 2, size - 2);
  buf[size - 2] = '\0';
  ms = buf;
  lf = strchr(buf, '\n');
  ra = NULL;
  if (lf != NULL) {
    *lf = '\0';
    ra = lf + 1;
  }
  fuzz_number(ms, data, size);
  if (ra) fuzz_number(ra, data, size);

  hint = lc_retry_after(data[0] & 1 ? ms : NULL, ra ? ra : (data[0] & 1 ? NULL : ms), nows[data[0] >> 6]);
  if (!(hint == -1 || (hint >= 0 && hint <= LC_RETRY_AFTER_MAX))) fuzz_fail("hint out of range", data, size);
  if ((data[0] & 1) && lc_retry_parse_number(ms, &v) == 0) {
    double want = v / 1000.0;
    if (want >= 0 && want <= LC_RETRY_AFTER_MAX ? hint != want : hint != -1)
      fuzz_fail("retry-after-ms did not win", data, size);
  }
  /* curl_getdate itself: any date it returns is what the hint is computed from. */
  if (ra) (void)curl_getdate(ra, NULL);

  n = (int)(signed char)data[1] * ((data[0] & 2) ? 1000000 : 1);
  unit = (double)(data[0] & 0x3c) / 64.0;
  d = lc_retry_delay(n, hint, unit);
  if (hint >= 0 ? d != hint : !(d >= LC_BACKOFF_INITIAL * (1 - LC_BACKOFF_JITTER) && d <= LC_BACKOFF_MAX))
    fuzz_fail("delay out of range", data, size);

  for (out = LC_OUT_OK; out <= LC_OUT_INVALID; out++) {
    status = 100 + (long)data[1] * 4 % 900;
    r = lc_retry_wanted((enum lc_outcome)out, status, ms);
    if (r != 0 && r != 1) fuzz_fail("retry decision not 0 or 1", data, size);
    if (out == LC_OUT_STATUS && status >= 300 && status < 400 && r) fuzz_fail("retried a 3xx", data, size);
    if ((out == LC_OUT_OK || out == LC_OUT_INVALID) && r) fuzz_fail("retried a success or validation error", data, size);
  }
  free(buf);
  return 0;
}
