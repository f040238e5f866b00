/* A Lua host that runs one call of llamacloud with a fault armed at every budget N: Lua's allocator
   failing from its N-th allocation on (mode lua) or at its N-th only (lua1: on 5.4 an emergency
   collection runs there and the call goes on), libcurl's allocations failing from the N-th on (curl,
   through curl_global_init_mem), or an unrelated finalizer raising at the N-th point where the collector
   runs (gc, PUC 5.1). Each budget runs in a child process of its own, so a crash, a sanitizer report or a
   leak names its N and the sweep goes on. The calls, and the verdict on each run, are spec/oom/driver.lua's.
   Usage: oom_host URL CALL MODE [--dense D] [--samples S] [--tail T] [--timeout SECONDS] [--only N]
                   [--max-bad B] [--leak-every K]
   Prints one line per call (budgets run, the calibration's count, outcomes) and one per bad run; exits 1
   on any bad run. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

enum { MODE_LUA, MODE_CURL, MODE_GC, MODE_LUA1 };

/* LeakSanitizer's check, when the host is built with it (weak: a plain build runs without). */
extern void __lsan_do_leak_check(void) __attribute__((weak));

/* The fault: counts what it would fail once armed, and fails from fail_at on (0: never). */
static struct {
  int mode;
  int armed;
  long long count, fail_at;
  int triggered;
  size_t live; /* bytes Lua holds: 0 again after lua_close */
} fault;

/* What a child tells its parent, in memory they share. */
typedef struct {
  int finished;       /* the child got to the end of the run */
  long long count;    /* allocations (or finalizer points) the call made while armed */
  int triggered;
  char verdict[64];   /* driver.check's: "raised", "succeeded", "nil, APIConnectionError", ... */
  char problem[1024]; /* what was wrong with the run, or "" */
} report_t;

static report_t *report;

static int fault_fires(void) {
  if (!fault.armed) return 0;
  fault.count++;
  if (fault.mode == MODE_LUA1 ? fault.count == fault.fail_at : fault.fail_at > 0 && fault.count >= fault.fail_at) {
    fault.triggered = 1;
    return 1;
  }
  return 0;
}

/* Lua's allocator: only growth can fail (Lua assumes a shrink succeeds). With ptr NULL, 5.4 passes a
   type tag in osize, so the old size is 0. */
static void *host_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  size_t old = ptr ? osize : 0;
  void *p;
  (void)ud;
  if (nsize == 0) {
    free(ptr);
    fault.live -= old;
    return NULL;
  }
  if (nsize > old && (fault.mode == MODE_LUA || fault.mode == MODE_LUA1) && fault_fires()) return NULL;
  p = realloc(ptr, nsize);
  if (p != NULL) fault.live = fault.live - old + nsize;
  return p;
}

static int curl_fires(void) { return fault.mode == MODE_CURL && fault_fires(); }
static void *curl_w_malloc(size_t n) { return curl_fires() ? NULL : malloc(n); }
static void curl_w_free(void *p) { free(p); }
static void *curl_w_realloc(void *p, size_t n) { return curl_fires() ? NULL : realloc(p, n); }
static char *curl_w_strdup(const char *s) { return curl_fires() ? NULL : strdup(s); }
static void *curl_w_calloc(size_t n, size_t size) { return curl_fires() ? NULL : calloc(n, size); }

/* Finalizers go on leaving garbage from gc_start until the call is over; armed, they count. */
static int gc_streaming;

/* oomhost.gc_tick(): 1 when this finalizer must raise, 0 to go on, -1 once the call is over (the stream
   stops). */
static int host_gc_tick(lua_State *L) {
  if (!fault.armed || fault.mode != MODE_GC) {
    lua_pushinteger(L, gc_streaming ? 0 : -1);
  } else {
    lua_pushinteger(L, fault_fires() ? 1 : 0);
    if (fault.triggered) fault.fail_at = 0; /* once: later finalizers go on */
  }
  return 1;
}

static void problem(const char *fmt, const char *what) {
  snprintf(report->problem, sizeof report->problem, fmt, what);
}

/* Pushes driver[name]. */
static void get_driver_fn(lua_State *L, const char *name) {
  lua_getglobal(L, "oomdriver");
  lua_getfield(L, -1, name);
  lua_remove(L, -2);
}

/* One run at budget fail_at (0: no fault), in the child. Fills *report. */
static void run_once(const char *url, const char *call, const char *mode, long long fail_at) {
  static const char *modes[] = {"lua", "curl", "gc", "lua1"};
  lua_State *L = lua_newstate(host_alloc, NULL);
  char tag[96];
  int base, status, nres, i;
  if (L == NULL) {
    problem("%s", "lua_newstate failed");
    return;
  }
  luaL_openlibs(L);
  lua_getglobal(L, "package");
  lua_pushstring(L, getenv("OOM_LUA_PATH") ? getenv("OOM_LUA_PATH") : "lua/?.lua;lua/?/init.lua;./?.lua");
  lua_setfield(L, -2, "path");
  lua_pushstring(L, getenv("OOM_LUA_CPATH") ? getenv("OOM_LUA_CPATH") : "build/5.4/?.so");
  lua_setfield(L, -2, "cpath");
  lua_pop(L, 1);
  lua_newtable(L);
  lua_pushcfunction(L, host_gc_tick);
  lua_setfield(L, -2, "gc_tick");
  lua_setglobal(L, "oomhost");

  lua_getglobal(L, "require");
  lua_pushliteral(L, "spec.oom.driver");
  if (lua_pcall(L, 1, 1, 0) != 0) goto setup_failed;
  lua_setglobal(L, "oomdriver");
  snprintf(tag, sizeof tag, "%s-%s-%s-%lld-%ld", call, mode, LUA_VERSION, fail_at, (long)getpid());
  for (i = 0; tag[i]; i++)
    if (tag[i] == ' ') tag[i] = '_';
  get_driver_fn(L, "setup");
  lua_pushstring(L, url);
  lua_pushstring(L, call);
  lua_pushstring(L, tag);
  lua_pushstring(L, mode);
  if (lua_pcall(L, 4, 1, 0) != 0) goto setup_failed;
  if (fault.mode == MODE_GC) {
    gc_streaming = 1;
    get_driver_fn(L, "gc_start");
    lua_getglobal(L, "oomhost");
    lua_getfield(L, -1, "gc_tick");
    lua_remove(L, -2);
    if (lua_pcall(L, 1, 0, 0) != 0) goto setup_failed;
  }
  base = lua_gettop(L); /* the call */

  fault.count = 0;
  fault.triggered = 0;
  fault.fail_at = fail_at;
  fault.armed = 1;
  status = lua_pcall(L, 0, LUA_MULTRET, 0);
  fault.armed = 0;
  gc_streaming = 0;
  report->count = fault.count;
  report->triggered = fault.triggered;

  if (fault.mode == MODE_GC) {
    get_driver_fn(L, "gc_stop");
    if (lua_pcall(L, 0, 0, 0) != 0) goto setup_failed;
  }
  /* check(name, mode, triggered, ok, results...) */
  nres = lua_gettop(L) - base + 1;
  get_driver_fn(L, "check");
  lua_pushstring(L, call);
  lua_pushstring(L, modes[fault.mode]);
  lua_pushboolean(L, fault.triggered);
  lua_pushboolean(L, status == 0);
  for (i = 0; i < nres && i < 2; i++) lua_pushvalue(L, base + i);
  for (; i < 2; i++) lua_pushnil(L);
  if (lua_pcall(L, 6, 1, 0) != 0) {
    problem("%s", lua_tostring(L, -1) ? lua_tostring(L, -1) : "(error object is not a string)");
  } else {
    snprintf(report->verdict, sizeof report->verdict, "%s", lua_tostring(L, -1) ? lua_tostring(L, -1) : "?");
  }
  lua_close(L);
  if (fault.live != 0 && report->problem[0] == '\0') {
    char n[32];
    snprintf(n, sizeof n, "%zu", fault.live);
    problem("lua_close left %s bytes of Lua's allocated", n);
  }
  report->finished = 1;
  return;
setup_failed:
  problem("setup failed: %s", lua_tostring(L, -1) ? lua_tostring(L, -1) : "?");
  lua_close(L);
}

typedef struct {
  const char *url, *call, *mode;
  int timeout;
  long long leak_every; /* LeakSanitizer checks the child of every budget that is a multiple of this */
} run_args;

/* Runs budget fail_at in a child; returns 0 for a clean run, 1 for a bad one (described on stdout). */
static int run_child(const run_args *a, long long fail_at) {
  pid_t pid;
  int st;
  memset(report, 0, sizeof *report);
  fflush(stdout);
  fflush(stderr);
  pid = fork();
  if (pid < 0) {
    perror("oom_host: fork");
    exit(2);
  }
  if (pid == 0) {
    alarm((unsigned)a->timeout);
    run_once(a->url, a->call, a->mode, fail_at);
    /* A leak found here ends the child with LeakSanitizer's exit code and its report on stderr. */
    if (__lsan_do_leak_check && (a->leak_every <= 1 || fail_at % a->leak_every == 0)) __lsan_do_leak_check();
    fflush(stdout);
    _exit(report->problem[0] ? 3 : 0);
  }
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
  if (WIFSIGNALED(st)) {
    printf("BAD %s %s %s N=%lld: killed by signal %d (%s)%s\n", LUA_VERSION, a->mode, a->call, fail_at,
           WTERMSIG(st), strsignal(WTERMSIG(st)), WTERMSIG(st) == SIGALRM ? ": the run hung" : "");
    return 1;
  }
  if (WEXITSTATUS(st) == 3 || report->problem[0]) {
    printf("BAD %s %s %s N=%lld: %s\n", LUA_VERSION, a->mode, a->call, fail_at, report->problem);
    return 1;
  }
  if (WEXITSTATUS(st) != 0 || !report->finished) {
    printf("BAD %s %s %s N=%lld: exit %d (a sanitizer report or a leak: see above)\n", LUA_VERSION, a->mode,
           a->call, fail_at, WEXITSTATUS(st));
    return 1;
  }
  return 0;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Outcome names and how often each came. */
#define MAX_OUTCOMES 16
static struct {
  char name[64];
  long n;
} outcomes[MAX_OUTCOMES];

static void count_outcome(const char *v) {
  int i;
  for (i = 0; i < MAX_OUTCOMES && outcomes[i].name[0]; i++)
    if (strcmp(outcomes[i].name, v) == 0) break;
  if (i == MAX_OUTCOMES) return;
  snprintf(outcomes[i].name, sizeof outcomes[i].name, "%s", v);
  outcomes[i].n++;
}

int main(int argc, char **argv) {
  run_args a;
  long long dense = 3000, samples = 150, tail = 150, only = -1, n, total, step, last_bad = 0;
  int i, bad = 0, max_bad = 5;
  long runs = 0;
  double t0;
  if (argc < 4) {
    fprintf(stderr, "usage: oom_host URL CALL lua|curl|gc [--dense D] [--samples S] [--tail T] "
                    "[--timeout SECONDS] [--only N] [--max-bad B] [--leak-every K]\n");
    return 2;
  }
  a.url = argv[1];
  a.call = argv[2];
  a.mode = argv[3];
  a.timeout = 60;
  a.leak_every = 1;
  for (i = 4; i + 1 < argc; i += 2) {
    long long v = atoll(argv[i + 1]);
    if (strcmp(argv[i], "--dense") == 0) dense = v;
    else if (strcmp(argv[i], "--samples") == 0) samples = v;
    else if (strcmp(argv[i], "--tail") == 0) tail = v;
    else if (strcmp(argv[i], "--timeout") == 0) a.timeout = (int)v;
    else if (strcmp(argv[i], "--only") == 0) only = v;
    else if (strcmp(argv[i], "--max-bad") == 0) max_bad = (int)v;
    else if (strcmp(argv[i], "--leak-every") == 0) a.leak_every = v;
    else {
      fprintf(stderr, "oom_host: unknown option %s\n", argv[i]);
      return 2;
    }
  }
  if (strcmp(a.mode, "lua") == 0) fault.mode = MODE_LUA;
  else if (strcmp(a.mode, "curl") == 0) fault.mode = MODE_CURL;
  else if (strcmp(a.mode, "gc") == 0) fault.mode = MODE_GC;
  else if (strcmp(a.mode, "lua1") == 0) fault.mode = MODE_LUA1;
  else {
    fprintf(stderr, "oom_host: mode must be lua, lua1, curl or gc\n");
    return 2;
  }
  /* Before the module loads: its own curl_global_init is then only a reference count. */
  if (curl_global_init_mem(CURL_GLOBAL_DEFAULT, curl_w_malloc, curl_w_free, curl_w_realloc, curl_w_strdup,
                           curl_w_calloc) != CURLE_OK) {
    fprintf(stderr, "oom_host: curl_global_init_mem failed\n");
    return 2;
  }
  report = mmap(NULL, sizeof *report, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (report == MAP_FAILED) {
    perror("oom_host: mmap");
    return 2;
  }
  setvbuf(stdout, NULL, _IOLBF, 0);
  t0 = now_s();

  if (only >= 0) {
    a.leak_every = 1;
    bad = run_child(&a, only);
    printf("%s %s %s N=%lld: %s, count %lld, fault %s\n", LUA_VERSION, a.mode, a.call, only,
           bad ? "bad" : report->verdict, report->count, report->triggered ? "fired" : "not fired");
    return bad;
  }
  /* Calibration: the call with no fault, which must succeed, gives how many budgets there are. */
  if (run_child(&a, 0) != 0) return 1;
  total = report->count;
  runs++;
  if (strcmp(report->verdict, "succeeded") != 0) {
    printf("BAD %s %s %s: with no fault the call gave %s\n", LUA_VERSION, a.mode, a.call, report->verdict);
    return 1;
  }
  /* Every budget up to dense; past it a sample of S spread evenly, then every budget of the last T. */
  step = total <= dense ? 1 : (total - tail) / samples;
  if (step < 1) step = 1;
  for (n = 1;; n += (n < total - tail ? step : 1)) {
    runs++;
    if (run_child(&a, n) != 0) {
      bad++;
      last_bad = n;
      if (bad >= max_bad) {
        printf("BAD %s %s %s: stopped after %d bad runs\n", LUA_VERSION, a.mode, a.call, bad);
        break;
      }
      continue;
    }
    count_outcome(report->verdict);
    if (!report->triggered) break; /* the call ran to its end within the budget */
    if (n > 2 * total + 1000) {
      printf("BAD %s %s %s: still failing at N=%lld, past twice the %lld of the calibration\n", LUA_VERSION,
             a.mode, a.call, n, total);
      bad++;
      break;
    }
  }
  printf("%s %-5s %-14s %6ld budgets (calibration %lld%s) in %5.1f s:", LUA_VERSION, a.mode, a.call, runs - 1,
         total, step > 1 ? ", sampled" : ", every N", now_s() - t0);
  for (i = 0; i < MAX_OUTCOMES && outcomes[i].name[0]; i++) printf(" %s %ld%s", outcomes[i].name, outcomes[i].n,
                                                                   i + 1 < MAX_OUTCOMES && outcomes[i + 1].name[0] ? "," : "");
  if (bad) printf(" BAD %d (last N=%lld)", bad, last_bad);
  printf("\n");
  return bad ? 1 : 0;
}
