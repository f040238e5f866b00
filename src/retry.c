/* Pure retry decisions: whether an attempt's outcome is retried, and how long to wait first. */
#include <time.h>

#define LC_RETRY_AFTER_MAX 60.0
#define LC_BACKOFF_INITIAL 0.5
#define LC_BACKOFF_MAX 8.0
#define LC_BACKOFF_JITTER 0.25

/* What an attempt ended with, as far as retrying is concerned. */
enum lc_outcome {
  LC_OUT_OK,         /* a 2xx whose body is a batch */
  LC_OUT_STATUS,     /* a non-2xx answer */
  LC_OUT_CONNECTION, /* refused, reset, DNS, TLS, closed mid-body */
  LC_OUT_TIMEOUT,    /* the attempt ran past its deadline */
  LC_OUT_INVALID     /* a 2xx that is not a batch, or a body over max_body_bytes */
};

/* What a call allows: reads (and cancel) are retried as the SDKs do; a create is sent again only
   when its first attempt certainly did not reach the service (spec/create_spec.lua). */
enum lc_policy { LC_POLICY_IDEMPOTENT, LC_POLICY_CREATE };

/* Whether a failed attempt certainly did not reach the service: nothing connected, or the service
   answered that it did not take the request (429, 503). */
static int lc_retry_not_received(enum lc_outcome out, CURLcode code, long status) {
  if (out == LC_OUT_CONNECTION)
    return code == CURLE_COULDNT_CONNECT || code == CURLE_COULDNT_RESOLVE_HOST || code == CURLE_COULDNT_RESOLVE_PROXY;
  return out == LC_OUT_STATUS && (status == 429 || status == 503);
}

/* Whether a create that failed this way may have made a batch: a timeout, a connection that
   broke after it was made, a 5xx other than 503 (spec/create_spec.lua), or a 2xx whose body is not
   a batch or is over max_body_bytes: the service took that create (spec/create_spec.lua). */
static int lc_retry_may_have_created(enum lc_outcome out, CURLcode code, long status) {
  if (out == LC_OUT_TIMEOUT || out == LC_OUT_INVALID) return 1;
  if (out == LC_OUT_CONNECTION) return !lc_retry_not_received(out, code, status);
  return out == LC_OUT_STATUS && status >= 500 && status != 503;
}

/* x_should_retry is the header's value or NULL. Validation errors and 3xx are never retried. */
static int lc_retry_wanted(enum lc_outcome out, long status, const char *x_should_retry) {
  switch (out) {
  case LC_OUT_CONNECTION:
  case LC_OUT_TIMEOUT:
    return 1;
  case LC_OUT_STATUS:
    if (status >= 300 && status < 400) return 0;
    if (x_should_retry != NULL) {
      if (strcmp(x_should_retry, "true") == 0) return 1;
      if (strcmp(x_should_retry, "false") == 0) return 0;
    }
    return status == 408 || status == 409 || status == 429 || status >= 500;
  default:
    return 0;
  }
}

/* A create's retry: only what certainly did not reach the service, and x-should-retry may only
   forbid it. */
static int lc_retry_wanted_create(enum lc_outcome out, CURLcode code, long status, const char *x_should_retry) {
  if (!lc_retry_not_received(out, code, status)) return 0;
  return x_should_retry == NULL || strcmp(x_should_retry, "false") != 0;
}

/* A locale-independent decimal: digits with an optional fraction, optionally signed,
   surrounded by blanks only. Returns 0 and sets *out, or -1. */
static int lc_retry_parse_number(const char *s, double *out) {
  double v = 0, scale = 1;
  int neg = 0, digits = 0;
  while (*s == ' ' || *s == '\t') s++;
  if (*s == '-' || *s == '+') neg = (*s++ == '-');
  for (; *s >= '0' && *s <= '9'; s++, digits++) {
    v = v * 10 + (*s - '0');
    if (v > 1e12) return -1;
  }
  if (*s == '.') {
    for (s++; *s >= '0' && *s <= '9'; s++, digits++) {
      scale /= 10;
      v += (*s - '0') * scale;
    }
  }
  while (*s == ' ' || *s == '\t') s++;
  if (*s != '\0' || digits == 0) return -1;
  *out = neg ? -v : v;
  return 0;
}

/* The server's hint in seconds, or -1 when there is none usable: retry-after-ms wins
   over retry-after (seconds or an HTTP date, relative to now); outside 0..60 s is ignored. */
static double lc_retry_after(const char *retry_after_ms, const char *retry_after, time_t now) {
  double v;
  if (retry_after_ms != NULL && lc_retry_parse_number(retry_after_ms, &v) == 0) {
    v /= 1000.0;
    if (v >= 0 && v <= LC_RETRY_AFTER_MAX) return v;
    return -1;
  }
  if (retry_after != NULL) {
    if (lc_retry_parse_number(retry_after, &v) != 0) {
      time_t at = curl_getdate(retry_after, NULL);
      if (at == (time_t)-1) return -1;
      v = difftime(at, now);
    }
    if (v >= 0 && v <= LC_RETRY_AFTER_MAX) return v;
  }
  return -1;
}

/* Seconds to wait before retry number retries_done + 1: the hint when usable, else
   0.5 * 2^n capped at 8 s, shortened by up to 25 % jitter (unit in [0, 1)). */
static double lc_retry_delay(int retries_done, double hint, double unit) {
  double d = LC_BACKOFF_INITIAL;
  int i;
  if (hint >= 0) return hint;
  for (i = 0; i < retries_done && d < LC_BACKOFF_MAX; i++) d *= 2;
  if (d > LC_BACKOFF_MAX) d = LC_BACKOFF_MAX;
  return d * (1.0 - unit * LC_BACKOFF_JITTER);
}
