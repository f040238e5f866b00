/* One request as a small state machine (queued until a time, running, done): its lifetime, and how
   one attempt ends. multi.c drives many; nothing here sleeps on its own. */
#include <limits.h>
#include <math.h>

#define LC_REQUEST_MT "llamacloud.request"
#define LC_MULTI_MT "llamacloud.multi"

/* What a 2xx body must be (API.md, errors table): a batch (an object with string id and status), a
   page (an object whose items is an array) or a job (an object with a string status at status or
   job.status). */
enum lc_shape { LC_SHAPE_BATCH, LC_SHAPE_PAGE, LC_SHAPE_JOB };

enum lc_state { LC_ST_NEW, LC_ST_QUEUED, LC_ST_RUNNING, LC_ST_DONE, LC_ST_CANCELLED };

typedef struct lc_request lc_request;
typedef struct lc_multi lc_multi;
typedef struct lc_list { lc_request *head, *tail; int n; } lc_list;
/* A binary min-heap of queued requests (multi.c): by start time then queue order, or by queue order
   alone. The array is reserved in lc_multi_add for every request the multi holds, so a push never
   allocates; freed in lc_multi_close. A dirty heap is an unordered array, ordered again before use. */
typedef struct lc_heap { lc_request **a; int n, cap, by_seq, dirty; } lc_heap;

struct lc_request {
  enum lc_state state;
  int attempts, max_retries;
  long timeout_ms;
  long attempt_timeout_ms;     /* the running attempt's: timeout_ms cut to what is left before deadline */
  double deadline;             /* core.now() seconds by which the request ends (HUGE_VAL: none) */
  double start_at;             /* monotonic seconds before which the next attempt must not start */
  double attempt_started;
  const char *method;          /* "GET" or "POST": the call's, static */
  int post;                    /* a POST: its body (maybe empty) goes out on every attempt */
  lc_buf body;                 /* the request body; freed in lc_request_release */
  enum lc_policy policy;       /* the retries the call allows */
  enum lc_shape shape;         /* what its 2xx body must be */
  lc_buf url;                  /* the whole URL, built at creation; freed in lc_request_release */
  struct curl_slist *headers;  /* the client's list, or own_headers: freed in lc_request_release */
  int own_headers;
  int unbuilt;                 /* its headers could not be built (libcurl out of memory): it fails at
                                  its start, unsent, as nil, err (spec/oom/driver.lua, mode curl) */
  const lc_config *cfg;
  int client_ref;              /* keeps cfg alive; unref in lc_request_release */
  lc_transfer *t;              /* lent by the multi while running */
  lc_multi *multi;             /* the multi holding it, or NULL; then on its members list */
  lc_request *mprev, *mnext;   /* that members list: whatever state lists miss, close still finds */
  int self_ref;                /* held by the multi while the request is in it */
  int result_ref;              /* the batch or the error once done; unref in lc_request_release */
  int ok;
  int want_raw;                /* keep the raw body of a batch (the CLI prints it unchanged) */
  int cut_in_flight;           /* cancelled while an attempt was on the wire: a create may have been made */
  int raw_ref;
  double hint;                 /* the last response's retry-after in seconds, -1 when none */
  lc_request *prev, *next;     /* the multi's queued or running list */
  unsigned long long seq;      /* the order it was queued (again) in: who starts first among the due */
  lc_heap *heap;               /* the multi's heap it waits in (a retry), or NULL */
  int heap_at;                 /* its index there */
};

struct lc_multi {
  CURLM *m;                    /* curl_multi_cleanup in lc_multi_close */
  int concurrency;
  int running;
  double pause_until;          /* a 429 holds back every new attempt of this multi until then */
  double earliest_deadline;    /* no queued request's deadline is before this (a lower bound) */
  lc_list queued, active;      /* added and waiting to start, in FIFO order; in flight */
  lc_request *members;         /* every request whose multi is this one (lc_request_set_multi) */
  lc_heap retry;               /* queued again, by the time each retry is due */
  lc_heap ready;               /* retries now due, in queue order, merged with queued by seq */
  unsigned long long seq;      /* the last seq given out */
  lc_transfer *idle;           /* pooled transfers, freed in lc_multi_close */
  unsigned long long rng;
  int closed;
  int busy;                    /* inside lc_multi_step or lc_multi_socket_action (multi.c, lc_multi_run) */
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

/* Sleeps s seconds (nothing when s is not > 0, NaN included; at most 31 years), through signals. */
static void lc_sleep(double s) {
  struct timespec ts;
  if (!(s > 0)) return;
  if (s > 1e9) s = 1e9; /* time_t-safe */
  ts.tv_sec = (time_t)s;
  ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
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

/* Puts r on m's members list (m non-NULL) or takes it off its multi's: r->multi is only ever
   changed here, so a multi that closes lets go of every request pointing at it, whatever state
   list an error path left it out of (spec/oom: 5.1 get_many read a freed multi at lua_close). */
static void lc_request_set_multi(lc_request *r, lc_multi *m) {
  lc_multi *old = r->multi;
  if (old != NULL) {
    if (r->mprev) r->mprev->mnext = r->mnext; else old->members = r->mnext;
    if (r->mnext) r->mnext->mprev = r->mprev;
    r->mprev = r->mnext = NULL;
  }
  r->multi = m;
  if (m != NULL) {
    r->mprev = NULL;
    r->mnext = m->members;
    if (m->members) m->members->mprev = r;
    m->members = r;
  }
}

static void lc_multi_check_idle(lua_State *L, const lc_multi *m); /* multi.c */
static void lc_multi_unqueue(lc_multi *m, lc_request *r);        /* multi.c */
static void lc_multi_requeue(lc_multi *m, lc_request *r);        /* multi.c */

/* Takes r out of its multi, aborting a transfer in flight (libcurl then closes that
   connection), and drops the multi's reference to it. Safe on a request in any state. */
static void lc_request_detach(lua_State *L, lc_request *r) {
  lc_multi *m = r->multi;
  if (m == NULL) return;
  lc_multi_check_idle(L, m); /* a finalizer run mid-step must not pull a request out (spec/reentry_spec.lua) */
  if (r->state == LC_ST_RUNNING && r->t != NULL) {
    r->cut_in_flight = 1;
    curl_multi_remove_handle(m->m, r->t->easy);
    lc_list_remove(&m->active, r);
    m->running--;
    lc_multi_give_back(m, r->t);
    r->t = NULL;
  } else if (r->state == LC_ST_QUEUED) {
    lc_multi_unqueue(m, r);
  }
  lc_request_set_multi(r, NULL);
  luaL_unref(L, LUA_REGISTRYINDEX, r->self_ref);
  r->self_ref = LUA_NOREF;
}

static void lc_request_release(lua_State *L, lc_request *r) {
  lc_request_detach(L, r);
  if (r->state != LC_ST_DONE) r->state = LC_ST_CANCELLED;
  lc_buf_free(&r->url);
  lc_buf_free(&r->body);
  if (r->own_headers) lc_slist_free_wiped(r->headers);
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

/* Writes s with every copy of key masked, as errors.c masks error strings: a URL holds the key when
   the caller built an id or a query value from it (spec/redaction_spec.lua, "URL holds it"). */
static void lc_log_masked(const char *s, const char *key) {
  size_t kn = key ? strlen(key) : 0;
  const char *hit;
  while (kn > 0 && (hit = strstr(s, key)) != NULL) {
    fwrite(s, 1, (size_t)(hit - s), stderr);
    fputs("[redacted]", stderr);
    s = hit + kn;
  }
  fputs(s, stderr);
}

static void lc_log_attempt(const lc_request *r, long status, const char *what, double ms, const char *decision) {
  if (!r->cfg->log_debug) return;
  fprintf(stderr, "llamacloud: %s ", r->method);
  lc_log_masked(r->url.data, r->cfg->api_key);
  if (status > 0)
    fprintf(stderr, " -> %ld in %.1f ms (attempt %d of %d): %s\n", status, ms, r->attempts, r->max_retries + 1, decision);
  else
    fprintf(stderr, " -> %s in %.1f ms (attempt %d of %d): %s\n", what, ms, r->attempts, r->max_retries + 1, decision);
}

/* An attempt's libcurl timeout: the request's, cut to what is left before its deadline, at least 1 ms
   (spec/deadline_spec.lua). */
static long lc_request_attempt_timeout(const lc_request *r, double now) {
  double left = (r->deadline - now) * 1000.0;
  if (!(left < (double)r->timeout_ms)) return r->timeout_ms; /* also no deadline (HUGE_VAL) */
  return left < 1.0 ? 1 : (long)ceil(left);
}

/* Sets what differs between the requests a pooled transfer serves, on every attempt: the method and
   body, and for a create a connection of its own. libcurl sends a request again by itself when a
   reused connection turns out dead, which for a create could make a second batch: a fresh
   connection is never retried that way (CURLOPT_FRESH_CONNECT; spec/create_spec.lua, "kept-alive"). */
static void lc_request_apply(const lc_request *r, lc_transfer *t) {
  CURL *e = t->easy;
  if (r->post) {
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body.data ? r->body.data : "");
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)r->body.len);
  } else if (t->posted) {
    curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
  }
  t->posted = r->post;
  if (r->policy == LC_POLICY_CREATE || t->fresh) {
    curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, r->policy == LC_POLICY_CREATE ? 1L : 0L);
    t->fresh = r->policy == LC_POLICY_CREATE;
  }
}

/* Whether the table at idx is a sequence (every key 1..n; an empty table is one). */
static int lc_request_is_array(lua_State *L, int idx) {
  size_t n = lc_rawlen(L, idx), k = 0;
  idx = lc_absindex(L, idx);
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    lua_pop(L, 1);
    if (!lc_isinteger(L, -1) || lua_tonumber(L, -1) < 1 || lua_tonumber(L, -1) > (double)n) {
      lua_pop(L, 1);
      return 0;
    }
    k++;
  }
  return k == n;
}

/* Checks the decoded body at the top against shape; 1, or 0 with the body replaced by a message. */
static int lc_request_check_shape(lua_State *L, enum lc_shape shape) {
  const char *why = NULL;
  int ok;
  if (shape == LC_SHAPE_BATCH) {
    lua_getfield(L, -1, "id");
    lua_getfield(L, -2, "status");
    ok = lua_type(L, -1) == LUA_TSTRING && lua_type(L, -2) == LUA_TSTRING;
    lua_pop(L, 2);
    why = "response body is not a batch: it lacks a string 'id' and 'status'";
  } else if (shape == LC_SHAPE_PAGE) {
    lua_getfield(L, -1, "items");
    ok = lua_istable(L, -1) && lc_request_is_array(L, -1);
    lua_pop(L, 1);
    why = "response body is not a page: it lacks an 'items' array";
  } else {
    lua_getfield(L, -1, "status");
    ok = lua_type(L, -1) == LUA_TSTRING;
    lua_pop(L, 1);
    if (!ok) {
      lua_getfield(L, -1, "job");
      if (lua_istable(L, -1)) {
        lua_getfield(L, -1, "status");
        ok = lua_type(L, -1) == LUA_TSTRING;
        lua_pop(L, 1);
      }
      lua_pop(L, 1);
    }
    why = "response body is not a job: it has no string 'status' nor 'job.status'";
  }
  if (ok) return 1;
  lua_pop(L, 1);
  lua_pushstring(L, why);
  return 0;
}

/* Validates a 2xx body: a JSON object of the request's shape. Leaves the value on the stack and
   returns 1, or leaves a message and returns 0. */
static int lc_request_decode_body(lua_State *L, lc_transfer *t, enum lc_shape shape) {
  const char *err, *p = t->body.data ? t->body.data : "", *end = p + t->body.len;
  size_t pos;
  if (!lc_json_decode_hinted(L, p, t->body.len, &t->top_keys, &err, &pos)) {
    lua_pushfstring(L, "response body is not valid JSON (%s at byte %d)", err, (int)pos);
    return 0;
  }
  /* An object, not an array: told apart by the text, since both decode to tables. */
  while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')) p++;
  if (!lua_istable(L, -1) || p == end || *p != '{') {
    lua_pop(L, 1);
    lua_pushliteral(L, "response body is not a JSON object");
    return 0;
  }
  return lc_request_check_shape(L, shape);
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

/* The end of one attempt, as the steps of lc_request_attempt_done see it. The rule this file keeps
   (STYLE.md, "C resources"): every Lua value is built, and every registry reference taken, before
   C state changes; what cannot be ordered that way runs in a protected call first. A raise then
   leaves every list, count and handle as it was, and lc_request_detach is safe on any request,
   with a transfer or without (spec/raise_spec.lua). */
typedef struct lc_attempt {
  lc_multi *m;
  lc_request *r;
  lc_transfer *t;
  CURLcode code;
  enum lc_outcome out;
  long status;
  double hint;              /* the response's retry-after in seconds, -1 when none */
  const char *x_should;     /* x-should-retry's value (in should) or NULL */
  char should[16];
  double ms;                /* how long the attempt took */
  int retry;                /* queued again rather than done */
  double delay;             /* the pause before that retry */
  int result_ref, raw_ref;  /* taken in lc_attempt_build; the request's once it is done */
} lc_attempt;

/* Step 1, curl bookkeeping: what the attempt ended with, read from libcurl and the captured head.
   Reads only; changes nothing. */
static void lc_attempt_read(lc_attempt *a) {
  lc_transfer *t = a->t;
  char ra_ms[64], ra[128];
  a->hint = -1;
  a->x_should = NULL;
  a->status = 0;
  /* An error response too large to keep is still that error: its start is the body. */
  if (t->cut == LC_CUT_ERROR_BODY) a->code = CURLE_OK;
  if (a->code == CURLE_OK && lc_transfer_head_complete(t)) {
    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &a->status);
    if (t->retry_headers) { /* most responses have none (docs/performance.md) */
      a->hint = lc_retry_after(lc_transfer_header(t, "retry-after-ms", ra_ms, sizeof ra_ms),
                               lc_transfer_header(t, "retry-after", ra, sizeof ra), time(NULL));
      a->x_should = lc_transfer_header(t, "x-should-retry", a->should, sizeof a->should);
    }
  }
  a->ms = (lc_now() - a->r->attempt_started) * 1000.0;
}

/* Step 2, classification and error building: pushes the batch or the error and sets a->out. */
static void lc_attempt_push_outcome(lua_State *L, lc_attempt *a) {
  const lc_transfer *t = a->t;
  const char *key = a->r->cfg->api_key;
  if (a->code == CURLE_OK && a->status == 0) {
    a->out = LC_OUT_CONNECTION;
    lua_pushliteral(L, "connection closed before the response headers ended");
    lc_error_push(L, "APIConnectionError", lua_tostring(L, -1), key);
  } else if (a->code == CURLE_OK && a->status >= 200 && a->status < 300) {
    if (lc_request_decode_body(L, a->t, a->r->shape)) {
      a->out = LC_OUT_OK;
      return;
    }
    a->out = LC_OUT_INVALID;
    lc_error_push(L, "APIResponseValidationError", lua_tostring(L, -1), key);
    lc_transfer_push_headers(L, t);
    lc_error_redact_table(L, -1, key);
    lc_error_setfield(L, -2, "headers");
    lc_error_set_number(L, "status", (double)a->status);
  } else if (a->code == CURLE_OK) {
    a->out = LC_OUT_STATUS;
    lc_request_push_error_body(L, t);
    lc_error_push_status(L, t, a->status, -1, a->r->attempts, key);
    lua_remove(L, -2);
    return;
  } else if (a->code == CURLE_OPERATION_TIMEDOUT) {
    a->out = LC_OUT_TIMEOUT;
    lua_pushfstring(L, "request timed out after %f s (%s)", (double)a->r->attempt_timeout_ms / 1000.0,
                    t->errbuf[0] ? t->errbuf : curl_easy_strerror(a->code));
    lc_error_push(L, "APITimeoutError", lua_tostring(L, -1), key);
  } else if (t->cut == LC_CUT_BODY) {
    char limit[32]; /* lua_pushfstring has no %zu */
    a->out = LC_OUT_INVALID;
    snprintf(limit, sizeof limit, "%zu", a->r->cfg->max_body);
    lua_pushfstring(L, "response body is larger than max_body_bytes (%s bytes)", limit);
    lc_error_push(L, "APIResponseValidationError", lua_tostring(L, -1), key);
  } else {
    a->out = LC_OUT_CONNECTION;
    if (t->cut == LC_CUT_HEAD)
      lua_pushliteral(L, "response headers are larger than the client accepts");
    else
      lua_pushfstring(L, "%s (%s)", curl_easy_strerror(a->code), t->errbuf[0] ? t->errbuf : "no detail");
    lc_error_push(L, "APIConnectionError", lua_tostring(L, -1), key);
  }
  lua_remove(L, -2); /* the message */
  lc_error_set_number(L, "attempts", a->r->attempts);
}

/* Step 3, the retry decision: pure, but for the jitter drawn from the multi's generator. A retry
   whose pause would end at or after the deadline is not scheduled (spec/deadline_spec.lua). */
static int lc_attempt_retry(lc_attempt *a) {
  const lc_request *r = a->r;
  int wanted;
  if (a->out == LC_OUT_OK || r->attempts > r->max_retries) return 0;
  if (r->policy == LC_POLICY_CREATE)
    wanted = lc_retry_wanted_create(a->out, a->code, a->status, a->x_should);
  else
    wanted = lc_retry_wanted(a->out, a->status, a->x_should);
  if (!wanted) return 0;
  a->delay = lc_retry_delay(r->attempts - 1, a->hint, lc_multi_random(a->m));
  return lc_now() + a->delay < r->deadline;
}

/* Steps 2 and 3, run as a protected call: the outcome is built and, when the request ends,
   referenced and appended to the list given as argument 2 (a table, or nil). */
static char lc_attempt_build_key; /* its address keys the function in the registry (luaopen) */

static int lc_attempt_build(lua_State *L) {
  lc_attempt *a = (lc_attempt *)lua_touserdata(L, 1);
  lc_attempt_push_outcome(L, a);
  if ((a->retry = lc_attempt_retry(a)) != 0) return 0;
  if (a->out != LC_OUT_OK && a->r->policy == LC_POLICY_CREATE) {
    lua_pushboolean(L, lc_retry_may_have_created(a->out, a->code, a->status));
    lua_setfield(L, -2, "may_have_created");
  }
  if (a->out == LC_OUT_OK && a->r->want_raw) {
    lua_pushlstring(L, a->t->body.data, a->t->body.len);
    a->raw_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  a->result_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  if (lua_istable(L, 2)) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, a->r->self_ref);
    lua_rawseti(L, 2, (int)lc_rawlen(L, 2) + 1);
  }
  return 0;
}

/* The request leaves its multi for good: done (holding result_ref) or cancelled. Cannot fail. */
static void lc_request_leave(lua_State *L, lc_request *r, enum lc_state state) {
  r->state = state;
  lc_request_set_multi(r, NULL);
  luaL_unref(L, LUA_REGISTRYINDEX, r->self_ref);
  r->self_ref = LUA_NOREF;
}

/* Ends one attempt: done, failed for good, or queued again to retry at a time. Steps 1-3 build
   every Lua value; step 4 (logging) and step 5 (the C state: the transfer back to the pool, the
   request done or queued) cannot fail. If building raised (out of memory, a finalizer's error on
   5.1), the request ends cancelled, its references are dropped, and the error goes on up. */
static void lc_request_attempt_done(lua_State *L, lc_multi *m, lc_request *r, CURLcode code, int list_idx) {
  lc_attempt a;
  int rc;
  memset(&a, 0, sizeof a);
  a.m = m;
  a.r = r;
  a.t = r->t;
  a.code = code;
  a.result_ref = a.raw_ref = LUA_NOREF;
  lc_attempt_read(&a);
  /* Fetched from the registry, the function costs no allocation: nothing here can raise. */
  lua_pushlightuserdata(L, &lc_attempt_build_key);
  lua_rawget(L, LUA_REGISTRYINDEX);
  lua_pushlightuserdata(L, &a);
  if (list_idx) lua_pushvalue(L, list_idx); else lua_pushnil(L);
  rc = lua_pcall(L, 2, 0, 0);

  if (rc == 0 && r->cfg->log_debug) {
    char d[64];
    if (a.retry) snprintf(d, sizeof d, "retrying in %.3f s", a.delay);
    lc_log_attempt(r, a.status, curl_easy_strerror(a.code), a.ms, a.retry ? d : a.out == LC_OUT_OK ? "done" : "giving up");
  }

  curl_multi_remove_handle(m->m, a.t->easy);
  lc_list_remove(&m->active, r);
  m->running--;
  lc_multi_give_back(m, a.t);
  r->t = NULL;
  r->hint = a.hint;
  if (rc != 0) {
    r->cut_in_flight = 1; /* the answer was never read: for a create, it may have made one */
    luaL_unref(L, LUA_REGISTRYINDEX, a.result_ref);
    luaL_unref(L, LUA_REGISTRYINDEX, a.raw_ref);
    lc_request_leave(L, r, LC_ST_CANCELLED);
    lua_error(L); /* the error object lc_cpcall left */
  }
  if (a.retry) {
    r->start_at = lc_now() + a.delay;
    if (a.status == 429 && r->start_at > m->pause_until) m->pause_until = r->start_at;
    r->state = LC_ST_QUEUED;
    lc_multi_requeue(m, r); /* cannot fail: the heap was reserved when r was added */
    return;
  }
  r->ok = a.out == LC_OUT_OK;
  r->result_ref = a.result_ref;
  r->raw_ref = a.raw_ref;
  lc_request_leave(L, r, LC_ST_DONE);
}

/* Pushes the request's outcome the way get returns it: batch, nil, hint, raw | nil, err, hint. */
static int lc_request_push_result(lua_State *L, lc_request *r) {
  if (r->state == LC_ST_CANCELLED) {
    lua_pushnil(L);
    lc_error_push(L, "APIConnectionError", "request cancelled", NULL);
    lc_error_set_number(L, "attempts", r->attempts);
    if (r->policy == LC_POLICY_CREATE) {
      /* cut off on the wire (an exiting nginx worker): the service may have made the batch */
      lua_pushboolean(L, r->cut_in_flight);
      lua_setfield(L, -2, "may_have_created");
    }
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
