/* One request as a small state machine (queued until a time, running, done) and the multi that drives many.
   Nothing here sleeps on its own: whoever drives a multi decides how to wait for its next step. */
#include <math.h>

#define LC_REQUEST_MT "llamacloud.request"
#define LC_MULTI_MT "llamacloud.multi"

enum lc_state { LC_ST_NEW, LC_ST_QUEUED, LC_ST_RUNNING, LC_ST_DONE, LC_ST_CANCELLED };

/* What a request needs from its client; lives in the client, kept alive by client_ref. */
typedef struct lc_config {
  char *api_key;
  char *base_url; /* without a trailing slash */
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

/* Frees what the config owns and zeroes it; the key is wiped first. */
static void lc_config_free(lc_config *cfg) {
  if (cfg->api_key) memset(cfg->api_key, 0, strlen(cfg->api_key));
  free(cfg->api_key);
  free(cfg->base_url);
  free(cfg->proxy);
  free(cfg->ca_file);
  free(cfg->ca_path);
  free(cfg->organization_id);
  free(cfg->project_id);
  curl_slist_free_all(cfg->headers);
  memset(cfg, 0, sizeof *cfg);
}

typedef struct lc_request lc_request;
typedef struct lc_multi lc_multi;
typedef struct lc_list { lc_request *head, *tail; int n; } lc_list;

struct lc_request {
  enum lc_state state;
  int attempts, max_retries;
  long timeout_ms;
  long attempt_timeout_ms;     /* the running attempt's: timeout_ms cut to what is left before deadline */
  double deadline;             /* core.now() seconds by which the request ends (HUGE_VAL: none) */
  double start_at;             /* monotonic seconds before which the next attempt must not start */
  double attempt_started;
  char *url;                   /* freed in lc_request_release */
  struct curl_slist *headers;  /* the client's list, or own_headers: freed in lc_request_release */
  int own_headers;
  const lc_config *cfg;
  int client_ref;              /* keeps cfg alive; unref in lc_request_release */
  lc_transfer *t;              /* lent by the multi while running */
  lc_multi *multi;             /* the multi holding it, or NULL */
  int self_ref;                /* held by the multi while the request is in it */
  int result_ref;              /* the batch or the error once done; unref in lc_request_release */
  int ok;
  int want_raw;                /* keep the raw body of a batch (the CLI prints it unchanged) */
  int raw_ref;
  double hint;                 /* the last response's retry-after in seconds, -1 when none */
  lc_request *prev, *next;     /* the multi's queued or running list */
};

struct lc_multi {
  CURLM *m;                    /* curl_multi_cleanup in lc_multi_close */
  int concurrency;
  int running;
  double pause_until;          /* a 429 holds back every new attempt of this multi until then */
  lc_list queued, active;      /* waiting to start (or to retry) in FIFO order; in flight */
  lc_transfer *idle;           /* pooled transfers, freed in lc_multi_close */
  unsigned long long rng;
  int closed;
  /* Socket interest for an event-loop host (m:watch()): filled by lc_multi_on_socket,
     read by m:sockets(); both arrays are freed in lc_multi_close. */
  int watch;
  struct lc_sock { int fd, what; } *socks; /* what libcurl wants from each socket now */
  int nsocks, capsocks;
  int *gone;                   /* sockets libcurl dropped since the last m:sockets(), in order */
  int ngone, capgone;
};

static double lc_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double lc_multi_random(lc_multi *m) {
  m->rng ^= m->rng << 13;
  m->rng ^= m->rng >> 7;
  m->rng ^= m->rng << 17;
  return (double)(m->rng >> 11) / 9007199254740992.0;
}

/* FIFO: ids start in the order they were added. Push and remove are O(1) (spec/scale_spec.lua). */
static void lc_list_push(lc_list *l, lc_request *r) {
  r->next = NULL;
  r->prev = l->tail;
  if (l->tail) l->tail->next = r; else l->head = r;
  l->tail = r;
  l->n++;
}

static void lc_list_remove(lc_list *l, lc_request *r) {
  if (r->prev) r->prev->next = r->next; else l->head = r->next;
  if (r->next) r->next->prev = r->prev; else l->tail = r->prev;
  r->prev = r->next = NULL;
  l->n--;
}

static void lc_multi_give_back(lc_multi *m, lc_transfer *t) {
  if (m->closed) {
    lc_transfer_free(t);
    return;
  }
  t->next_idle = m->idle;
  m->idle = t;
}

/* Takes r out of its multi, aborting a transfer in flight (libcurl then closes that
   connection), and drops the multi's reference to it. */
static void lc_request_detach(lua_State *L, lc_request *r) {
  lc_multi *m = r->multi;
  if (m == NULL) return;
  if (r->state == LC_ST_RUNNING) {
    curl_multi_remove_handle(m->m, r->t->easy);
    lc_multi_give_back(m, r->t);
    r->t = NULL;
    m->running--;
    lc_list_remove(&m->active, r);
  } else if (r->state == LC_ST_QUEUED) {
    lc_list_remove(&m->queued, r);
  }
  r->multi = NULL;
  luaL_unref(L, LUA_REGISTRYINDEX, r->self_ref);
  r->self_ref = LUA_NOREF;
}

static void lc_request_release(lua_State *L, lc_request *r) {
  lc_request_detach(L, r);
  if (r->state != LC_ST_DONE) r->state = LC_ST_CANCELLED;
  free(r->url);
  r->url = NULL;
  if (r->own_headers) curl_slist_free_all(r->headers);
  r->headers = NULL;
  r->own_headers = 0;
  luaL_unref(L, LUA_REGISTRYINDEX, r->result_ref);
  luaL_unref(L, LUA_REGISTRYINDEX, r->raw_ref);
  if (r->cfg != NULL) {
    /* the client's userdata is still alive here: client_ref is only dropped below */
    lc_config *cfg = (lc_config *)r->cfg;
    if (--cfg->users == 0 && cfg->closed) lc_config_free(cfg);
    r->cfg = NULL;
  }
  luaL_unref(L, LUA_REGISTRYINDEX, r->client_ref);
  r->result_ref = r->raw_ref = r->client_ref = LUA_NOREF;
}

static void lc_log_attempt(const lc_request *r, long status, const char *what, double ms, const char *decision) {
  if (!r->cfg->log_debug) return;
  if (status > 0)
    fprintf(stderr, "llamacloud: GET %s -> %ld in %.1f ms (attempt %d of %d): %s\n", r->url, status, ms,
            r->attempts, r->max_retries + 1, decision);
  else
    fprintf(stderr, "llamacloud: GET %s -> %s in %.1f ms (attempt %d of %d): %s\n", r->url, what, ms,
            r->attempts, r->max_retries + 1, decision);
}

/* An attempt's libcurl timeout: the request's, cut to what is left before its deadline, at least 1 ms
   (spec/deadline_spec.lua). */
static long lc_request_attempt_timeout(const lc_request *r, double now) {
  double left = (r->deadline - now) * 1000.0;
  if (!(left < (double)r->timeout_ms)) return r->timeout_ms; /* also no deadline (HUGE_VAL) */
  return left < 1.0 ? 1 : (long)ceil(left);
}

static int lc_multi_start(lc_multi *m, lc_request *r) {
  lc_transfer *t = m->idle;
  CURL *e;
  if (t != NULL) {
    m->idle = t->next_idle;
  } else if ((t = lc_transfer_new()) == NULL) {
    return -1;
  }
  e = t->easy;
  lc_buf_clear(&t->body);
  lc_buf_clear(&t->head);
  t->retry_headers = 0;
  t->too_big = 0;
  t->errbuf[0] = '\0';
  t->max_body = r->cfg->max_body;
  lc_transfer_set_url(t, r->url);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers);
  r->attempt_timeout_ms = lc_request_attempt_timeout(r, lc_now());
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, r->attempt_timeout_ms);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, r->attempt_timeout_ms);
  curl_easy_setopt(e, CURLOPT_PRIVATE, r);
  if (r->cfg->proxy) curl_easy_setopt(e, CURLOPT_PROXY, r->cfg->proxy);
  if (r->cfg->ca_file) curl_easy_setopt(e, CURLOPT_CAINFO, r->cfg->ca_file);
  if (r->cfg->ca_path) curl_easy_setopt(e, CURLOPT_CAPATH, r->cfg->ca_path);
  if (curl_multi_add_handle(m->m, e) != CURLM_OK) {
    lc_multi_give_back(m, t);
    return -1;
  }
  r->t = t;
  r->attempts++;
  r->attempt_started = lc_now();
  r->state = LC_ST_RUNNING;
  lc_list_remove(&m->queued, r);
  lc_list_push(&m->active, r);
  m->running++;
  return 0;
}

/* Validates a 2xx body: a JSON object with string id and status. Leaves the batch on
   the stack and returns 1, or leaves a message and returns 0. */
static int lc_request_decode_batch(lua_State *L, lc_transfer *t) {
  const char *err;
  size_t pos;
  if (!lc_json_decode_hinted(L, t->body.data ? t->body.data : "", t->body.len, &t->top_keys, &err, &pos)) {
    lua_pushfstring(L, "response body is not valid JSON (%s at byte %d)", err, (int)pos);
    return 0;
  }
  if (!lua_istable(L, -1)) {
    lua_pop(L, 1);
    lua_pushliteral(L, "response body is not a JSON object");
    return 0;
  }
  lua_getfield(L, -1, "id");
  lua_getfield(L, -2, "status");
  if (lua_type(L, -1) != LUA_TSTRING || lua_type(L, -2) != LUA_TSTRING) {
    lua_pop(L, 3);
    lua_pushliteral(L, "response body is not a batch: it lacks a string 'id' and 'status'");
    return 0;
  }
  lua_pop(L, 2);
  return 1;
}

/* Pushes the decoded body of a failed response, or its raw text when it is not JSON. */
static void lc_request_push_error_body(lua_State *L, const lc_transfer *t) {
  const char *err;
  size_t pos;
  if (t->body.len == 0) {
    lua_pushliteral(L, "");
    return;
  }
  if (!lc_json_decode(L, t->body.data, t->body.len, &err, &pos)) lua_pushlstring(L, t->body.data, t->body.len);
}

static void lc_request_finish(lua_State *L, lc_request *r, int ok) {
  r->ok = ok;
  r->result_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  r->state = LC_ST_DONE;
}

/* Ends one attempt: done, failed for good, or queued again to retry at a time.
   The transfer goes back to the pool once what is needed of it is read. */
static void lc_request_attempt_done(lua_State *L, lc_multi *m, lc_request *r, CURLcode code) {
  lc_transfer *t = r->t;
  const lc_config *cfg = r->cfg;
  enum lc_outcome out;
  long status = 0;
  char should[16], ra_ms[64], ra[128];
  const char *x_should = NULL;
  double ms = (lc_now() - r->attempt_started) * 1000.0, delay;
  int top = lua_gettop(L), retry;

  curl_multi_remove_handle(m->m, t->easy);
  lc_list_remove(&m->active, r);
  m->running--;
  r->t = NULL;
  r->hint = -1;

  /* An error response too large to keep is still that error: its start is the body. */
  if (t->too_big == 3) code = CURLE_OK;
  if (code == CURLE_OK && !lc_transfer_head_complete(t)) {
    out = LC_OUT_CONNECTION;
    lua_pushliteral(L, "connection closed before the response headers ended");
    lc_error_push(L, "APIConnectionError", lua_tostring(L, -1), cfg->api_key);
  } else if (code == CURLE_OK) {
    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
    if (t->retry_headers) { /* most responses have none: three scans of the block saved */
      r->hint = lc_retry_after(lc_transfer_header(t, "retry-after-ms", ra_ms, sizeof ra_ms),
                               lc_transfer_header(t, "retry-after", ra, sizeof ra), time(NULL));
      x_should = lc_transfer_header(t, "x-should-retry", should, sizeof should);
    }
    if (status >= 200 && status < 300) {
      if (lc_request_decode_batch(L, t)) {
        out = LC_OUT_OK;
        if (r->want_raw) {
          lua_pushlstring(L, t->body.data, t->body.len);
          r->raw_ref = luaL_ref(L, LUA_REGISTRYINDEX);
        }
      } else {
        out = LC_OUT_INVALID;
        lc_error_push(L, "APIResponseValidationError", lua_tostring(L, -1), cfg->api_key);
        lc_transfer_push_headers(L, t);
        lc_error_redact_table(L, -1, cfg->api_key);
        lua_setfield(L, -2, "headers");
        lc_error_set_number(L, "status", (double)status);
      }
    } else {
      out = LC_OUT_STATUS;
      lc_request_push_error_body(L, t);
      lc_error_push_status(L, t, status, -1, r->attempts, cfg->api_key);
    }
  } else if (code == CURLE_OPERATION_TIMEDOUT) {
    out = LC_OUT_TIMEOUT;
    lua_pushfstring(L, "request timed out after %f s (%s)", (double)r->attempt_timeout_ms / 1000.0,
                    t->errbuf[0] ? t->errbuf : curl_easy_strerror(code));
    lc_error_push(L, "APITimeoutError", lua_tostring(L, -1), cfg->api_key);
  } else if (t->too_big == 1) {
    out = LC_OUT_INVALID;
    char limit[32]; /* lua_pushfstring has no %zu */
    snprintf(limit, sizeof limit, "%zu", cfg->max_body);
    lua_pushfstring(L, "response body is larger than max_body_bytes (%s bytes)", limit);
    lc_error_push(L, "APIResponseValidationError", lua_tostring(L, -1), cfg->api_key);
  } else {
    out = LC_OUT_CONNECTION;
    if (t->too_big == 2)
      lua_pushliteral(L, "response headers are larger than the client accepts");
    else
      lua_pushfstring(L, "%s (%s)", curl_easy_strerror(code), t->errbuf[0] ? t->errbuf : "no detail");
    lc_error_push(L, "APIConnectionError", lua_tostring(L, -1), cfg->api_key);
  }
  if (out != LC_OUT_STATUS && out != LC_OUT_OK) lc_error_set_number(L, "attempts", r->attempts);

  retry = out != LC_OUT_OK && lc_retry_wanted(out, status, x_should) && r->attempts <= r->max_retries;
  if (retry) {
    delay = lc_retry_delay(r->attempts - 1, r->hint, lc_multi_random(m));
    /* A retry whose pause would end at or after the deadline is not scheduled: this error is the result. */
    if (lc_now() + delay >= r->deadline) retry = 0;
  }
  if (retry) {
    r->start_at = lc_now() + delay;
    if (status == 429 && r->start_at > m->pause_until) m->pause_until = r->start_at;
    if (cfg->log_debug) {
      char d[64];
      snprintf(d, sizeof d, "retrying in %.3f s", delay);
      lc_log_attempt(r, status, curl_easy_strerror(code), ms, d);
    }
    lua_settop(L, top);
    r->state = LC_ST_QUEUED;
    lc_list_push(&m->queued, r);
  } else {
    lc_log_attempt(r, status, curl_easy_strerror(code), ms, out == LC_OUT_OK ? "done" : "giving up");
    if (lua_gettop(L) > top + 1) {
      lua_replace(L, top + 1);
      lua_settop(L, top + 1);
    }
    lc_request_finish(L, r, out == LC_OUT_OK);
  }
  lc_multi_give_back(m, t);
}

/* libcurl's CURLMOPT_SOCKETFUNCTION: records what it wants from socket s, in C only.
   A dropped socket is also listed in gone, so a host closes its watcher for that fd
   before it watches a new socket that reuses the number. Out of memory: the entry is
   lost and the host's fallback timer still steps the multi. */
static int lc_multi_on_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp) {
  lc_multi *m = (lc_multi *)userp;
  int i;
  (void)easy;
  (void)socketp;
  if (!m->watch) return 0;
  for (i = 0; i < m->nsocks && m->socks[i].fd != (int)s; i++) {}
  if (what == CURL_POLL_REMOVE) {
    if (i < m->nsocks) m->socks[i] = m->socks[--m->nsocks];
    if (m->ngone == m->capgone) {
      int cap = m->capgone ? m->capgone * 2 : 8;
      int *p = (int *)realloc(m->gone, (size_t)cap * sizeof *p);
      if (p == NULL) return 0;
      m->gone = p;
      m->capgone = cap;
    }
    m->gone[m->ngone++] = (int)s;
    return 0;
  }
  if (i == m->nsocks) {
    if (m->nsocks == m->capsocks) {
      int cap = m->capsocks ? m->capsocks * 2 : 8;
      struct lc_sock *p = (struct lc_sock *)realloc(m->socks, (size_t)cap * sizeof *p);
      if (p == NULL) return 0;
      m->socks = p;
      m->capsocks = cap;
    }
    m->nsocks++;
    m->socks[i].fd = (int)s;
  }
  m->socks[i].what = what;
  return 0;
}

/* Ends the attempts libcurl reports finished. When list_idx is non-zero, requests that
   finished for good are appended to the table there. */
/* A request that ended for good leaves its multi: listed at list_idx (when non-zero) for
   whoever drives the multi, and no longer held by it. */
static void lc_multi_hand_over(lua_State *L, lc_request *r, int list_idx) {
  if (list_idx) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, r->self_ref);
    lua_rawseti(L, list_idx, (int)lc_rawlen(L, list_idx) + 1);
  }
  r->multi = NULL;
  luaL_unref(L, LUA_REGISTRYINDEX, r->self_ref);
  r->self_ref = LUA_NOREF;
}

static void lc_multi_collect(lua_State *L, lc_multi *m, int list_idx) {
  lc_request *r;
  CURLMsg *msg;
  int left;
  while ((msg = curl_multi_info_read(m->m, &left)) != NULL) {
    char *priv = NULL;
    if (msg->msg != CURLMSG_DONE) continue;
    curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
    r = (lc_request *)priv;
    lc_request_attempt_done(L, m, r, msg->data.result);
    if (r->state == LC_ST_DONE) lc_multi_hand_over(L, r, list_idx);
  }
}

/* Starts the queued requests that are due, within the concurrency limit. */
static void lc_multi_start_due(lua_State *L, lc_multi *m, int list_idx) {
  lc_request *r, *next;
  double now = lc_now();

  for (r = m->queued.head; r != NULL && m->running < m->concurrency; r = next) {
    next = r->next;
    if (r->deadline <= now) {
      /* Its time is up before this attempt was sent: nothing goes out (spec/deadline_spec.lua). */
      lua_pushliteral(L, "the request's deadline passed before it was sent");
      lc_error_push(L, "APITimeoutError", lua_tostring(L, -1), NULL);
      lua_remove(L, -2);
      lc_error_set_number(L, "attempts", r->attempts);
    } else if (now < m->pause_until || r->start_at > now || lc_multi_start(m, r) == 0) {
      continue;
    } else {
      lua_pushliteral(L, "could not start a transfer (out of memory)");
      lc_error_push(L, "APIConnectionError", lua_tostring(L, -1), NULL);
      lua_remove(L, -2);
    }
    lc_list_remove(&m->queued, r);
    lc_request_finish(L, r, 0);
    lc_multi_hand_over(L, r, list_idx);
  }
}

/* Starts what is due, lets libcurl work (waiting up to wait_s for activity when
   wait_s > 0), and ends finished attempts, listed at list_idx when non-zero. */
static void lc_multi_step(lua_State *L, lc_multi *m, double wait_s, int list_idx) {
  int still;
  lc_multi_start_due(L, m, list_idx);
  if (wait_s > 0) {
    int ms = (int)ceil(wait_s * 1000.0);
    curl_multi_poll(m->m, NULL, 0, ms, NULL);
  }
  curl_multi_perform(m->m, &still);
  lc_multi_collect(L, m, list_idx);
}

/* One event-loop step: starts what is due, lets libcurl act on socket fd (events: a
   CURL_CSELECT_* mask) or on its timers (fd < 0), and ends finished attempts. Never blocks. */
static void lc_multi_socket_action(lua_State *L, lc_multi *m, int fd, int events, int list_idx) {
  int still;
  lc_multi_start_due(L, m, list_idx);
  curl_multi_socket_action(m->m, fd < 0 ? CURL_SOCKET_TIMEOUT : (curl_socket_t)fd, fd < 0 ? 0 : events, &still);
  lc_multi_collect(L, m, list_idx);
}

/* Seconds until the multi next needs a step: libcurl's own timer or the earliest due
   queued request; -1 when nothing is in it. */
static double lc_multi_next_wait(lc_multi *m) {
  long ms = -1;
  double best = -1, now = lc_now();
  lc_request *r;
  if (m->running > 0) {
    curl_multi_timeout(m->m, &ms);
    best = ms < 0 ? 1.0 : (double)ms / 1000.0;
  }
  for (r = m->queued.head; r != NULL; r = r->next) {
    double at = r->start_at > m->pause_until ? r->start_at : m->pause_until;
    double d = (at < r->deadline ? at : r->deadline) - now;
    if (m->running >= m->concurrency) break;
    if (d < 0) d = 0;
    if (best < 0 || d < best) best = d;
  }
  return best;
}

static void lc_multi_close(lua_State *L, lc_multi *m) {
  lc_transfer *t;
  if (m->closed) return;
  /* What it still held ends cancelled: a request kept by the caller must not stay "running" forever. */
  while (m->active.head) {
    lc_request *r = m->active.head;
    lc_request_detach(L, r);
    r->state = LC_ST_CANCELLED;
  }
  while (m->queued.head) {
    lc_request *r = m->queued.head;
    lc_request_detach(L, r);
    r->state = LC_ST_CANCELLED;
  }
  m->closed = 1;
  while ((t = m->idle) != NULL) {
    m->idle = t->next_idle;
    lc_transfer_free(t);
  }
  if (m->m) curl_multi_cleanup(m->m);
  m->m = NULL;
  free(m->socks);
  free(m->gone);
  m->socks = NULL;
  m->gone = NULL;
  m->nsocks = m->capsocks = m->ngone = m->capgone = 0;
}

static lc_multi *lc_multi_push_new(lua_State *L, int concurrency) {
  lc_multi *m = (lc_multi *)lua_newuserdata(L, sizeof *m);
  memset(m, 0, sizeof *m);
  m->closed = 1; /* until the handle exists, __gc has nothing to free */
  lc_setmetatable(L, LC_MULTI_MT);
  m->m = curl_multi_init();
  if (m->m == NULL) luaL_error(L, "llamacloud: curl_multi_init failed");
  m->closed = 0;
  m->concurrency = concurrency;
  m->rng = (unsigned long long)(size_t)m ^ (unsigned long long)(lc_now() * 1e9) ^ 0x9E3779B97F4A7C15ULL;
  if (m->rng == 0) m->rng = 1;
  curl_multi_setopt(m->m, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)concurrency);
  curl_multi_setopt(m->m, CURLMOPT_MAXCONNECTS, (long)concurrency);
  curl_multi_setopt(m->m, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
  curl_multi_setopt(m->m, CURLMOPT_SOCKETFUNCTION, lc_multi_on_socket);
  curl_multi_setopt(m->m, CURLMOPT_SOCKETDATA, (void *)m);
  return m;
}

/* Adds the request at index idx to m; the multi holds it until it ends. */
static void lc_multi_add(lua_State *L, lc_multi *m, lc_request *r, int idx) {
  lua_pushvalue(L, idx);
  r->self_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  r->multi = m;
  r->state = LC_ST_QUEUED;
  lc_list_push(&m->queued, r);
}

/* Pushes the request's outcome the way get returns it: batch, nil, hint, raw | nil, err, hint. */
static int lc_request_push_result(lua_State *L, lc_request *r) {
  if (r->state == LC_ST_CANCELLED) {
    lua_pushnil(L);
    lc_error_push(L, "APIConnectionError", "request cancelled", NULL);
    lc_error_set_number(L, "attempts", r->attempts);
    return 2;
  }
  if (r->state != LC_ST_DONE) return luaL_error(L, "llamacloud: request has not finished");
  if (r->ok) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, r->result_ref);
    lua_pushnil(L);
  } else {
    lua_pushnil(L);
    lua_rawgeti(L, LUA_REGISTRYINDEX, r->result_ref);
  }
  if (r->hint >= 0) lua_pushnumber(L, r->hint); else lua_pushnil(L);
  if (r->raw_ref != LUA_NOREF) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, r->raw_ref);
    return 4;
  }
  return 3;
}
