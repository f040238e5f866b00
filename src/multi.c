/* The multi that drives many requests: starting what is due within its concurrency, stepping
   libcurl (blocking up to a wait, or one socket event for an event-loop host), collecting what
   finished. Whoever drives it decides how to wait for its next step. */

static int lc_multi_start(lc_multi *m, lc_request *r) {
  lc_transfer *t = m->idle;
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
  lc_list_remove(&m->queued, r);
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
  lc_list_remove(&m->queued, r);
  r->ok = 0;
  r->result_ref = ref;
  lc_request_leave(L, r, LC_ST_DONE);
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
    lua_pushliteral(L, "the request's deadline passed before it was sent");
    lc_error_push(L, "APITimeoutError", lua_tostring(L, -1), NULL);
    lua_remove(L, -2);
    lc_error_set_number(L, "attempts", r->attempts);
    lc_multi_end_queued(L, m, r, list_idx);
  }
  m->earliest_deadline = earliest;
}

/* Starts the queued requests that are due, within the concurrency limit. */
static void lc_multi_start_due(lua_State *L, lc_multi *m, int list_idx) {
  lc_request *r, *next;
  double now = lc_now();
  lc_multi_expire(L, m, now, list_idx);
  if (now < m->pause_until) return;
  for (r = m->queued.head; r != NULL && m->running < m->concurrency; r = next) {
    next = r->next;
    if (r->start_at <= now && lc_multi_start(m, r) != 0) {
      lua_pushliteral(L, "could not start a transfer (out of memory)");
      lc_error_push(L, "APIConnectionError", lua_tostring(L, -1), NULL);
      lua_remove(L, -2);
      lc_multi_end_queued(L, m, r, list_idx);
    }
  }
}

/* Starts what is due, lets libcurl work (waiting up to wait_s for activity when
   wait_s > 0), and ends finished attempts, listed at list_idx when non-zero. */
static void lc_multi_step(lua_State *L, lc_multi *m, double wait_s, int list_idx) {
  int still;
  lc_multi_start_due(L, m, list_idx);
  if (wait_s > 0) { /* NaN is not */
    double ms = ceil(wait_s * 1000.0);
    /* clamped before the cast: an overflowed int was a negative wait, and a busy loop
       (spec/deadline_spec.lua, "a huge wait") */
    curl_multi_poll(m->m, NULL, 0, ms < (double)INT_MAX ? (int)ms : INT_MAX, NULL);
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

/* Ends every request still in m cancelled: one kept by the caller must not stay "running" forever. */
static void lc_multi_cancel_all(lua_State *L, lc_multi *m) {
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
}

static void lc_multi_close(lua_State *L, lc_multi *m) {
  lc_transfer *t;
  if (m->closed) return;
  lc_multi_cancel_all(L, m);
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
  m->earliest_deadline = HUGE_VAL;
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
  if (r->deadline < m->earliest_deadline) m->earliest_deadline = r->deadline;
}

