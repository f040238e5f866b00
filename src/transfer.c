/* One libcurl easy handle and what it captures: the final response's header block and its body, capped while receiving. */
#include <ctype.h>
#include <curl/curl.h>

#define LC_BODY_KEEP ((size_t)1 << 20) /* a pooled body buffer past this shrinks for a small body */
#define LC_BODY_FIRST ((size_t)64 << 10) /* the first allocation for a body, whatever it announces */

/* Why the transfer stopped reading early. */
enum lc_cut {
  LC_CUT_NONE,
  LC_CUT_BODY,       /* a 2xx body passed max_body */
  LC_CUT_HEAD,       /* the header block passed LC_MAX_HEADER_BYTES */
  LC_CUT_ERROR_BODY  /* an error's body was cut at max_body: the response is still that error */
};

typedef struct lc_transfer {
  CURL *easy;           /* curl_easy_cleanup in lc_transfer_free */
  lc_buf body;          /* lc_buf_free in lc_transfer_free */
  lc_buf head;          /* the last header block only; freed likewise */
  size_t max_body;
  enum lc_cut cut;
  size_t announced;     /* the body's Content-Length when sane (0: unknown): a ceiling for growth */
  unsigned long long cfg_id; /* the client settings its options were set for (0: none yet) */
  char errbuf[CURL_ERROR_SIZE];
  CURLU *url;           /* the URL libcurl uses; curl_url_cleanup in lc_transfer_free */
  char *url_text;       /* the string url was parsed from; freed in lc_transfer_free */
  unsigned int top_keys; /* members of the last batch decoded here: the next one's size guess */
  int posted;           /* the handle is set for a POST (lc_request_apply) */
  int fresh;            /* the handle is set for a fresh connection (lc_request_apply) */
  int retry_headers;    /* the block has a retry-after(-ms) or x-should-retry line: worth looking up */
  struct lc_transfer *next_idle; /* a multi's pool of idle transfers */
} lc_transfer;

/* libcurl callbacks never call Lua: they only append to C buffers. Returning a
   short count aborts the transfer, which is how the body cap is enforced. */
static size_t lc_transfer_on_body(char *p, size_t size, size_t n, void *ud) {
  lc_transfer *t = (lc_transfer *)ud;
  size_t len = size * n;
  if (t->body.len + len > t->max_body) {
    long status = 0;
    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
    if (status >= 200 && status < 300) {
      t->cut = LC_CUT_BODY;
      return 0;
    }
    /* An error's body is only read for its message: keep what fits, then stop reading. */
    if (t->body.len < t->max_body && lc_buf_add(&t->body, p, t->max_body - t->body.len) != 0) return 0;
    t->cut = LC_CUT_ERROR_BODY;
    return 0;
  }
  if (t->body.len == 0) {
    /* A pooled buffer far larger than this body shrinks (realloc, not free: a freed large block
       makes glibc serve the next from the heap). */
    curl_off_t cl = -1;
    curl_easy_getinfo(t->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
    t->announced = cl > 0 && (size_t)cl <= t->max_body ? (size_t)cl : 0;
    if (cl >= 0 && t->body.cap > LC_BODY_KEEP && (size_t)cl < t->body.cap / 4)
      lc_buf_shrink(&t->body, (size_t)cl + 1 > LC_BODY_KEEP / 4 ? (size_t)cl + 1 : LC_BODY_KEEP / 4);
  }
  if (t->body.len + len + 1 > t->body.cap) {
    /* The server's Content-Length is trusted only as a ceiling: nothing is reserved from it
       before bytes arrive. The buffer doubles as they do, from LC_BODY_FIRST, and stops at the
       announced size, so growing costs at most twice what arrived, and an honest announcement
       no more than the body (spec/transport_spec.lua, "Content-Length"). */
    size_t need = t->body.len + len + 1, cap = t->body.cap ? t->body.cap * 2 : LC_BODY_FIRST;
    if (cap < need) cap = need;
    if (t->announced >= need && cap > t->announced + 1) cap = t->announced + 1;
    if (lc_buf_grow_to(&t->body, cap) != 0) return 0;
  }
  if (lc_buf_add(&t->body, p, len) != 0) return 0;
  return len;
}

static size_t lc_transfer_on_header(char *p, size_t size, size_t n, void *ud) {
  lc_transfer *t = (lc_transfer *)ud;
  size_t len = size * n;
  /* A new status line (after 100 Continue or a proxy's CONNECT) starts a new block. */
  if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) {
    lc_buf_clear(&t->head);
    t->retry_headers = 0;
  }
  if ((len > 11 && strncasecmp(p, "retry-after", 11) == 0) || (len > 14 && strncasecmp(p, "x-should-retry", 14) == 0))
    t->retry_headers = 1;
  if (t->head.len + len > LC_MAX_HEADER_BYTES) {
    t->cut = LC_CUT_HEAD;
    return 0;
  }
  if (lc_buf_add(&t->head, p, len) != 0) return 0;
  /* At the blank line ending the block: a 2xx announcing more than max_body is refused before
     any of it arrives. An error's body is read, cut at max_body, for its message. */
  if (len <= 2 && (p[0] == '\n' || (len == 2 && p[0] == '\r' && p[1] == '\n'))) {
    long status = 0;
    curl_off_t cl = -1;
    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(t->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
    if (status >= 200 && status < 300 && cl > 0 && (curl_off_t)t->max_body < cl) {
      t->cut = LC_CUT_BODY;
      return 0;
    }
  }
  return len;
}

static lc_transfer *lc_transfer_new(void) {
  lc_transfer *t = (lc_transfer *)calloc(1, sizeof *t);
  if (t == NULL) return NULL;
  t->easy = curl_easy_init();
  if (t->easy == NULL) {
    free(t);
    return NULL;
  }
  return t;
}

/* Readies t for a request of the client whose settings have serial cfg_id: clears what the last
   response left, and when t last served other settings (or none), resets the handle and sets
   every option again, so no proxy or CA of another client survives on a pooled handle
   (spec/transport_spec.lua, "a pooled handle"). curl_easy_reset keeps the connections. */
static int lc_transfer_prepare(lc_transfer *t, unsigned long long cfg_id, const char *proxy, const char *ca_file,
                               const char *ca_path) {
  CURL *e = t->easy;
  lc_buf_clear(&t->body);
  lc_buf_clear(&t->head);
  t->retry_headers = 0;
  t->cut = LC_CUT_NONE;
  t->errbuf[0] = '\0';
  if (t->cfg_id == cfg_id) return 0;
  curl_easy_reset(e);
  t->cfg_id = 0;
  t->posted = t->fresh = 0;
  free(t->url_text); /* CURLOPT_CURLU went with the reset */
  t->url_text = NULL;
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, lc_transfer_on_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, lc_transfer_on_header);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, t);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf);
  /* Redirects are never followed, so the key can never travel to another host. */
  curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
  curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
  /* gzip only: each listed encoding costs libcurl work on every request (docs/performance.md). */
  if (curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "gzip") != CURLE_OK ||
      curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK ||
      (proxy && curl_easy_setopt(e, CURLOPT_PROXY, proxy) != CURLE_OK) ||
      (ca_file && curl_easy_setopt(e, CURLOPT_CAINFO, ca_file) != CURLE_OK) ||
      (ca_path && curl_easy_setopt(e, CURLOPT_CAPATH, ca_path) != CURLE_OK))
    return -1;
  t->cfg_id = cfg_id;
  return 0;
}

static void lc_transfer_free(lc_transfer *t) {
  if (t == NULL) return;
  if (t->easy) curl_easy_cleanup(t->easy);
  t->easy = NULL;
  if (t->url) curl_url_cleanup(t->url);
  t->url = NULL;
  free(t->url_text);
  t->url_text = NULL;
  lc_buf_free(&t->body);
  lc_buf_free(&t->head);
  free(t);
}

/* Whether the header block ended with its blank line: libcurl 7.88 reports a response
   whose connection closed mid-headers as complete, which must count as a connection error. */
static int lc_transfer_head_complete(const lc_transfer *t) {
  const char *d = t->head.data;
  size_t n = t->head.len;
  if (d == NULL || n < 2) return 0;
  return (d[n - 1] == '\n' && d[n - 2] == '\n') ||
         (n >= 3 && d[n - 1] == '\n' && d[n - 2] == '\r' && d[n - 3] == '\n');
}

/* Points the transfer at url through a CURLU handle it keeps, parsed only when the URL differs
   from this transfer's last one (a string URL libcurl would parse on every request;
   docs/performance.md). If it does not parse, libcurl gets the string and reports the error. */
static void lc_transfer_set_url(lc_transfer *t, const char *url) {
  if (t->url_text != NULL && strcmp(t->url_text, url) == 0) return; /* CURLOPT_CURLU still set */
  free(t->url_text);
  t->url_text = NULL;
  if (t->url == NULL) t->url = curl_url();
  if (t->url != NULL && curl_url_set(t->url, CURLUPART_URL, url, 0) == CURLUE_OK) {
    curl_easy_setopt(t->easy, CURLOPT_CURLU, t->url);
    t->url_text = strdup(url); /* NULL when out of memory: the next call parses again */
    return;
  }
  curl_easy_setopt(t->easy, CURLOPT_CURLU, NULL);
  curl_easy_setopt(t->easy, CURLOPT_URL, url);
}

/* The captured value of header name (lower-case) copied into out, or NULL. */
static const char *lc_transfer_header(const lc_transfer *t, const char *name, char *out, size_t outlen) {
  size_t nlen = strlen(name);
  const char *p = t->head.data, *end = p ? p + t->head.len : NULL;
  if (p == NULL) return NULL;
  while (p < end) {
    const char *eol = memchr(p, '\n', (size_t)(end - p));
    const char *stop = eol ? eol : end;
    if ((size_t)(stop - p) > nlen && p[nlen] == ':' && strncasecmp(p, name, nlen) == 0) {
      const char *v = p + nlen + 1, *ve = stop;
      size_t vn;
      while (v < ve && (*v == ' ' || *v == '\t')) v++;
      while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t')) ve--;
      vn = (size_t)(ve - v);
      if (vn >= outlen) vn = outlen - 1;
      memcpy(out, v, vn);
      out[vn] = '\0';
      return out;
    }
    p = stop + 1;
  }
  return NULL;
}

/* Pushes the header block as a table: lower-case names, repeated values joined with ", ". */
static void lc_transfer_push_headers(lua_State *L, const lc_transfer *t) {
  const char *p = t->head.data, *end;
  lua_newtable(L);
  if (p == NULL) return;
  end = p + t->head.len;
  while (p < end) {
    const char *eol = memchr(p, '\n', (size_t)(end - p));
    const char *stop = eol ? eol : end, *colon;
    colon = memchr(p, ':', (size_t)(stop - p));
    if (colon != NULL && colon > p && (stop - p < 5 || memcmp(p, "HTTP/", 5) != 0)) {
      luaL_Buffer nb;
      const char *v = colon + 1, *ve = stop, *q;
      while (v < ve && (*v == ' ' || *v == '\t')) v++;
      while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t')) ve--;
      luaL_buffinit(L, &nb);
      for (q = p; q < colon; q++) luaL_addchar(&nb, (char)tolower((unsigned char)*q));
      luaL_pushresult(&nb);
      lua_pushvalue(L, -1);
      lua_rawget(L, -3);
      if (lua_isstring(L, -1)) {
        lua_pushliteral(L, ", ");
        lua_pushlstring(L, v, (size_t)(ve - v));
        lua_concat(L, 3);
      } else {
        lua_pop(L, 1);
        lua_pushlstring(L, v, (size_t)(ve - v));
      }
      lua_rawset(L, -3);
    }
    p = stop + 1;
  }
}
