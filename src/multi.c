/* The multi that drives many requests: starting what is due within its concurrency, stepping
   libcurl (blocking up to a wait, or one socket event for an event-loop host), collecting what
   finished. Whoever drives it decides how to wait for its next step. */

/* ---- the queue: added requests in a FIFO, retries in a heap by due time, due retries in a heap by
   queue order. Every operation costs O(1) or O(log n), never a walk of the queue, so a step costs the
   same with 50,000 requests queued as with 2,000 (spec/scale_spec.lua, "a step"). ---- */

static int lc_heap_before(const lc_heap *h, const lc_request *a, const lc_request *b) {
  if (!h->by_seq && a->start_at != b->start_at) return a->start_at < b->start_at;
  return a->seq < b->seq;
}

static void lc_heap_place(lc_heap *h, int i, lc_request *r) {
  h->a[i] = r;
  r->heap_at = i;
}

static void lc_heap_up(lc_heap *h, int i) {
  lc_request *r = h->a[i];
  while (i > 0 && lc_heap_before(h, r, h->a[(i - 1) / 2])) {
    lc_heap_place(h, i, h->a[(i - 1) / 2]);
    i = (i - 1) / 2;
  }
  lc_heap_place(h, i, r);
}

static void lc_heap_down(lc_heap *h, int i) {
  lc_request *r = h->a[i];
  for (;;) {
    int c = 2 * i + 1;
    if (c >= h->n) break;
    if (c + 1 < h->n && lc_heap_before(h, h->a[c + 1], h->a[c])) c++;
    if (!lc_heap_before(h, h->a[c], r)) break;
    lc_heap_place(h, i, h->a[c]);
    i = c;
  }
  lc_heap_place(h, i, r);
}

/* Orders a dirty heap again (an expiry walk left it unordered), in O(n). */
static void lc_heap_fix(lc_heap *h) {
  int i;
  if (!h->dirty) return;
  for (i = h->n / 2 - 1; i >= 0; i--) lc_heap_down(h, i);
  h->dirty = 0;
}

static lc_request *lc_heap_top(lc_heap *h) {
  lc_heap_fix(h);
  return h->n > 0 ? h->a[0] : NULL;
}

/* Never allocates: the array holds every request of the multi (lc_multi_reserve). */
static void lc_heap_push(lc_heap *h, lc_request *r) {
  lc_heap_fix(h);
  r->heap = h;
  lc_heap_place(h, h->n++, r);
  lc_heap_up(h, h->n - 1);
}

static void lc_heap_remove(lc_heap *h, lc_request *r) {
  int i = r->heap_at;
  lc_request *last = h->a[--h->n];
  r->heap = NULL;
  r->heap_at = -1;
  if (i == h->n) return;
  lc_heap_place(h, i, last);
  if (h->dirty) return; /* unordered until lc_heap_fix; an expiry walk relies on last landing at i */
  lc_heap_up(h, i);
  lc_heap_down(h, last->heap_at);
}

/* Room in both heaps for one more request than the multi holds; -1 when out of memory. */
static int lc_multi_reserve(lc_multi *m) {
  int need = m->queued.n + m->active.n + m->retry.n + m->ready.n + 1;
  lc_heap *hs[2];
  int i;
  hs[0] = &m->retry;
  hs[1] = &m->ready;
  for (i = 0; i < 2; i++) {
    lc_heap *h = hs[i];
    if (h->cap < need) {
      int cap = h->cap ? h->cap : 16;
      lc_request **p;
      while (cap < need) cap = cap > INT_MAX / 2 ? need : cap * 2;
      if ((p = (lc_request **)realloc(h->a, (size_t)cap * sizeof *p)) == NULL) return -1;
      h->a = p;
      h->cap = cap;
    }
  }
  return 0;
}

/* Takes a queued request out of wherever it waits. */
static void lc_multi_unqueue(lc_multi *m, lc_request *r) {
  if (r->heap != NULL) lc_heap_remove(r->heap, r);
  else lc_list_remove(&m->queued, r);
}

/* Queues a request again after an attempt, due at r->start_at, behind everything queued so far. */
static void lc_multi_requeue(lc_multi *m, lc_request *r) {
  r->seq = ++m->seq;
  lc_heap_push(&m->retry, r);
  if (r->deadline < m->earliest_deadline) m->earliest_deadline = r->deadline;
}

/* The libcurl multi handle, made when a transfer first needs it: curl_multi_init failing (out of
   memory) fails the requests that would start, as nil, err, and the next start tries again. Until
   it exists nothing runs, so every other use of m->m is behind a running transfer or checks it. */
static int lc_multi_on_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp);

static CURLM *lc_multi_handle(lc_multi *m) {
  if (m->m != NULL) return m->m;
  if ((m->m = curl_multi_init()) == NULL) return NULL;
  curl_multi_setopt(m->m, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)m->concurrency);
  curl_multi_setopt(m->m, CURLMOPT_MAXCONNECTS, (long)m->concurrency);
  curl_multi_setopt(m->m, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
  curl_multi_setopt(m->m, CURLMOPT_SOCKETFUNCTION, lc_multi_on_socket);
  curl_multi_setopt(m->m, CURLMOPT_SOCKETDATA, (void *)m);
  return m->m;
}

static int lc_multi_start(lc_multi *m, lc_request *r) {
  lc_transfer *t = m->idle;
  if (r->unbuilt || lc_multi_handle(m) == NULL) return -1;
  if (t != NULL) {
    m->idle = t->next_idle;
  } else if ((t = lc_transfer_new()) == NULL) {
    return -1;
  }
  /* Every option a request depends on is set on each use: a pooled handle may have carried
     another client's request (spec/transport_spec.lua, "a pooled handle"). */
  if (lc_transfer_prepare(t, r->cfg->id, r->cfg->proxy, r->cfg->ca_file, r->cfg->ca_path) != 0) {
    lc_multi_give_back(m, t);
    return -1;
  }
  t->max_body = r->cfg->max_body;
  lc_transfer_set_url(t, r->url.data);
  lc_request_apply(r, t);
  r->attempt_timeout_ms = lc_request_attempt_timeout(r, lc_now());
  curl_easy_setopt(t->easy, CURLOPT_HTTPHEADER, r->headers);
  curl_easy_setopt(t->easy, CURLOPT_TIMEOUT_MS, r->attempt_timeout_ms);
  curl_easy_setopt(t->easy, CURLOPT_CONNECTTIMEOUT_MS, r->attempt_timeout_ms);
  curl_easy_setopt(t->easy, CURLOPT_PRIVATE, r);
  if (curl_multi_add_handle(m->m, t->easy) != CURLM_OK) {
    lc_multi_give_back(m, t);
    return -1;
  }
  r->t = t;
  r->attempts++;
  r->attempt_started = lc_now();
  r->state = LC_ST_RUNNING;
  lc_multi_unqueue(m, r);
  lc_list_push(&m->active, r);
  m->running++;
  return 0;
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

/* Ends the attempts libcurl reports finished; requests that ended for good are appended to the
   table at list_idx (when non-zero) for whoever drives the multi, and the multi lets go of them. */
static void lc_multi_collect(lua_State *L, lc_multi *m, int list_idx) {
  CURLMsg *msg;
  int left;
  if (m->m == NULL) return;
  while ((msg = curl_multi_info_read(m->m, &left)) != NULL) {
    char *priv = NULL;
    if (msg->msg != CURLMSG_DONE) continue;
    curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
    lc_request_attempt_done(L, m, (lc_request *)priv, msg->data.result, list_idx);
  }
}

/* Ends a queued request with the error at the top of the stack (popped): referenced and listed
   first, then taken out of the queue. */
static void lc_multi_end_queued(lua_State *L, lc_multi *m, lc_request *r, int list_idx) {
  int ref;
  /* Listed before it is referenced: if either raises, the list goes with the step that raised
     and the request is still queued, unchanged. */
  if (list_idx) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, r->self_ref);
    lua_rawseti(L, list_idx, (int)lc_rawlen(L, list_idx) + 1);
  }
  ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lc_multi_unqueue(m, r);
  r->ok = 0;
  r->result_ref = ref;
  lc_request_leave(L, r, LC_ST_DONE);
}

/* Ends queued request r, whose deadline has passed before it was sent. */
static void lc_multi_expire_one(lua_State *L, lc_multi *m, lc_request *r, int list_idx) {
  lua_pushliteral(L, "the request's deadline passed before it was sent");
  lc_error_push(L, "APITimeoutError", lua_tostring(L, -1), NULL);
  lua_remove(L, -2);
  lc_error_set_number(L, "attempts", r->attempts);
  lc_multi_end_queued(L, m, r, list_idx);
}

/* The same for every expired request of heap h; the lowest deadline left is folded into *earliest.
   The heap is left dirty while it is walked, so a removal puts the last entry at the walk's index. */
static void lc_multi_expire_heap(lua_State *L, lc_multi *m, lc_heap *h, double now, double *earliest, int list_idx) {
  int i = 0;
  while (i < h->n) {
    lc_request *r = h->a[i];
    if (r->deadline > now) {
      if (r->deadline < *earliest) *earliest = r->deadline;
      i++;
      continue;
    }
    h->dirty = 1; /* set before anything raises: a raise leaves it to be ordered again on next use */
    lc_multi_expire_one(L, m, r, list_idx);
  }
  lc_heap_fix(h);
}

/* Ends the queued requests whose deadline has passed before they were sent: nothing goes out
   (spec/deadline_spec.lua). The walk happens only once the earliest deadline in the queue is due. */
static void lc_multi_expire(lua_State *L, lc_multi *m, double now, int list_idx) {
  lc_request *r, *next;
  double earliest = HUGE_VAL;
  if (now < m->earliest_deadline) return;
  for (r = m->queued.head; r != NULL; r = next) {
    next = r->next;
    if (r->deadline > now) {
      if (r->deadline < earliest) earliest = r->deadline;
      continue;
    }
    lc_multi_expire_one(L, m, r, list_idx);
  }
  lc_multi_expire_heap(L, m, &m->retry, now, &earliest, list_idx);
  lc_multi_expire_heap(L, m, &m->ready, now, &earliest, list_idx);
  m->earliest_deadline = earliest;
}

/* Starts the queued requests that are due, within the concurrency limit: retries whose time has come
   join the due ones, and among those the first queued starts first. */
static void lc_multi_start_due(lua_State *L, lc_multi *m, int list_idx) {
  lc_request *r, *fresh, *due;
  double now = lc_now();
  lc_multi_expire(L, m, now, list_idx);
  if (now < m->pause_until) return;
  while ((r = lc_heap_top(&m->retry)) != NULL && r->start_at <= now) {
    lc_heap_remove(&m->retry, r);
    lc_heap_push(&m->ready, r);
  }
  while (m->running < m->concurrency) {
    fresh = m->queued.head;
    due = lc_heap_top(&m->ready);
    if (fresh == NULL && due == NULL) break;
    r = due != NULL && (fresh == NULL || due->seq < fresh->seq) ? due : fresh;
    /* checked again here, where it goes out: the walk above may have missed it (added by a finalizer
       while the queue was walked; spec/queue_spec.lua, "never sends") */
    if (r->deadline <= now) {
      lc_multi_expire_one(L, m, r, list_idx);
      continue;
    }
    if (lc_multi_start(m, r) != 0) {
      lua_pushliteral(L, "could not start a transfer (out of memory)");
      lc_error_push(L, "APIConnectionError", lua_tostring(L, -1), NULL);
      lua_remove(L, -2);
      lc_multi_end_queued(L, m, r, list_idx);
    }
  }
}

/* Refuses, before anything changes, what would pull requests or transfers out from under a step in
   progress: a finalizer (or any Lua code) that runs while a step builds Lua values and closes the
   multi or its client, cancels or closes a request in it, or steps it again. Raising from a __gc is
   a warning on 5.4; the handle is then closed by its own __gc later (spec/reentry_spec.lua). */
static void lc_multi_check_idle(lua_State *L, const lc_multi *m) {
  if (m->busy)
    luaL_error(L, "llamacloud: the multi is in a step: it cannot be stepped, closed, or have a request "
                  "cancelled from inside that step (a __gc or metamethod running mid-step?)");
}

/* Starts what is due, lets libcurl work (waiting up to wait_s for activity when wait_s > 0), and
   ends finished attempts, listed at list_idx when non-zero. Runs busy (lc_multi_run). */
static void lc_multi_step_busy(lua_State *L, lc_multi *m, double wait_s, int list_idx) {
  int still;
  lc_multi_start_due(L, m, list_idx);
  if (wait_s > 0) { /* NaN is not */
    double ms = ceil(wait_s * 1000.0);
    /* clamped before the cast: an overflowed int was a negative wait, and a busy loop
       (spec/deadline_spec.lua, "a huge wait") */
    if (m->m != NULL) curl_multi_poll(m->m, NULL, 0, ms < (double)INT_MAX ? (int)ms : INT_MAX, NULL);
    else lc_sleep(ms / 1000.0); /* nothing can run yet (lc_multi_handle) */
  }
  if (m->m == NULL) return;
  curl_multi_perform(m->m, &still);
  lc_multi_collect(L, m, list_idx);
}

/* One event-loop step: starts what is due, lets libcurl act on socket fd (events: a
   CURL_CSELECT_* mask) or on its timers (fd < 0), and ends finished attempts. Never blocks. */
static void lc_multi_socket_action_busy(lua_State *L, lc_multi *m, int fd, int events, int list_idx) {
  int still;
  lc_multi_start_due(L, m, list_idx);
  if (m->m == NULL) return; /* nothing runs (lc_multi_handle) */
  curl_multi_socket_action(m->m, fd < 0 ? CURL_SOCKET_TIMEOUT : (curl_socket_t)fd, fd < 0 ? 0 : events, &still);
  lc_multi_collect(L, m, list_idx);
}

typedef struct lc_run {
  lc_multi *m;
  int socket;      /* socket_action rather than step */
  double wait_s;
  int fd, events;
} lc_run;

static char lc_multi_run_key; /* its address keys lc_multi_run_protected in the registry */

/* Argument 2: the list (a table), nil for none, or true to make the list here, while busy, and
   return it: a finalizer the allocation runs is then refused too (spec/reentry_spec.lua, "finalizer"). */
static int lc_multi_run_protected(lua_State *L) {
  lc_run *a = (lc_run *)lua_touserdata(L, 1);
  int make = lua_isboolean(L, 2), list_idx = lua_istable(L, 2) ? 2 : 0;
  if (make) {
    lua_newtable(L);
    list_idx = 3;
  }
  if (a->socket)
    lc_multi_socket_action_busy(L, a->m, a->fd, a->events, list_idx);
  else
    lc_multi_step_busy(L, a->m, a->wait_s, list_idx);
  return make;
}

/* Runs a step with m busy, as a protected call so that busy is cleared whatever the step raises
   (out of memory, a finalizer's error on 5.1), then raises that error again. list_idx < 0: the
   list of finished requests is made inside the step and left pushed. */
static void lc_multi_run(lua_State *L, lc_run *a, int list_idx) {
  int rc;
  lc_multi_check_idle(L, a->m);
  /* Registered when the multi was made: nothing here allocates, so no finalizer can run between
     the check above and busy being set. */
  lua_pushlightuserdata(L, &lc_multi_run_key);
  lua_rawget(L, LUA_REGISTRYINDEX);
  lua_pushlightuserdata(L, a);
  if (list_idx < 0) lua_pushboolean(L, 1); else if (list_idx) lua_pushvalue(L, list_idx); else lua_pushnil(L);
  a->m->busy = 1;
  rc = lua_pcall(L, 2, list_idx < 0 ? 1 : 0, 0);
  a->m->busy = 0;
  if (rc != 0) lua_error(L);
}

static void lc_multi_step(lua_State *L, lc_multi *m, double wait_s, int list_idx) {
  lc_run a;
  memset(&a, 0, sizeof a);
  a.m = m;
  a.wait_s = wait_s;
  lc_multi_run(L, &a, list_idx);
}

static void lc_multi_socket_action(lua_State *L, lc_multi *m, int fd, int events, int list_idx) {
  lc_run a;
  memset(&a, 0, sizeof a);
  a.m = m;
  a.socket = 1;
  a.fd = fd;
  a.events = events;
  lc_multi_run(L, &a, list_idx);
}

/* Seconds until the multi next needs a step: libcurl's own timer, the first queued request that
   can start (at once, at the next retry's time, or when a 429's pause ends), or the earliest
   deadline of a queued request; -1 when nothing is in it. O(1): no walk of the queue. */
static double lc_multi_next_wait(lc_multi *m) {
  long ms = -1;
  double best = -1, now = lc_now(), at = HUGE_VAL;
  lc_request *r;
  if (m->running > 0) {
    curl_multi_timeout(m->m, &ms);
    best = ms < 0 ? 1.0 : (double)ms / 1000.0;
  }
  if (m->running < m->concurrency) {
    if (m->queued.head != NULL || m->ready.n > 0) at = now;
    else if ((r = lc_heap_top(&m->retry)) != NULL) at = r->start_at;
    if (at < m->pause_until) at = m->pause_until;
  }
  if (m->queued.n + m->retry.n + m->ready.n > 0 && m->earliest_deadline < at) at = m->earliest_deadline;
  if (at < HUGE_VAL) {
    double d = at - now;
    if (d < 0) d = 0;
    if (best < 0 || d < best) best = d;
  }
  return best;
}

/* Ends every request still in m cancelled: one kept by the caller must not stay "running" forever. */
static void lc_multi_cancel_all(lua_State *L, lc_multi *m) {
  lc_multi_check_idle(L, m);
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
  while (m->retry.n > 0 || m->ready.n > 0) {
    lc_request *r = m->retry.n > 0 ? m->retry.a[m->retry.n - 1] : m->ready.a[m->ready.n - 1];
    lc_request_detach(L, r);
    r->state = LC_ST_CANCELLED;
  }
}

static void lc_multi_close(lua_State *L, lc_multi *m) {
  lc_transfer *t;
  if (m->closed) return;
  lc_multi_cancel_all(L, m);
  while (m->members) { /* in no state list, yet pointing here: let go all the same */
    lc_request *r = m->members;
    if (r->t != NULL) {
      curl_multi_remove_handle(m->m, r->t->easy);
      lc_transfer_free(r->t);
      r->t = NULL;
    }
    lc_request_set_multi(r, NULL);
    luaL_unref(L, LUA_REGISTRYINDEX, r->self_ref);
    r->self_ref = LUA_NOREF;
    if (r->state != LC_ST_DONE) r->state = LC_ST_CANCELLED;
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
  free(m->retry.a);
  free(m->ready.a);
  memset(&m->retry, 0, sizeof m->retry);
  memset(&m->ready, 0, sizeof m->ready);
  m->socks = NULL;
  m->gone = NULL;
  m->nsocks = m->capsocks = m->ngone = m->capgone = 0;
}

static lc_multi *lc_multi_push_new(lua_State *L, int concurrency) {
  lc_multi *m = (lc_multi *)lua_newuserdata(L, sizeof *m);
  memset(m, 0, sizeof *m);
  m->closed = 1; /* until the handle exists, __gc has nothing to free */
  lc_setmetatable(L, LC_MULTI_MT);
  lua_pushlightuserdata(L, &lc_multi_run_key); /* once per state: lc_multi_run then allocates nothing */
  lua_rawget(L, LUA_REGISTRYINDEX);
  if (lua_isnil(L, -1)) {
    lua_pushlightuserdata(L, &lc_multi_run_key);
    lua_pushcfunction(L, lc_multi_run_protected);
    lua_rawset(L, LUA_REGISTRYINDEX);
  }
  lua_pop(L, 1);
  m->closed = 0;
  m->concurrency = concurrency;
  m->earliest_deadline = HUGE_VAL;
  m->ready.by_seq = 1;
  m->rng = (unsigned long long)(size_t)m ^ (unsigned long long)(lc_now() * 1e9) ^ 0x9E3779B97F4A7C15ULL;
  if (m->rng == 0) m->rng = 1;
  return m;
}

/* Adds the request at index idx to m; the multi holds it until it ends. */
static void lc_multi_add(lua_State *L, lc_multi *m, lc_request *r, int idx) {
  if (lc_multi_reserve(m) != 0) luaL_error(L, "llamacloud: out of memory");
  lua_pushvalue(L, idx);
  r->self_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lc_request_set_multi(r, m);
  r->state = LC_ST_QUEUED;
  r->seq = ++m->seq;
  r->heap = NULL;
  lc_list_push(&m->queued, r);
  if (r->deadline < m->earliest_deadline) m->earliest_deadline = r->deadline;
}

