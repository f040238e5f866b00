/* Times src/decode.c against cjson.decode on a 100,000-result batch body (best of 5). */

/* Build and run (decode-bench), Lua 5.4:
     gcc -O2 -Wall -Wextra $(pkg-config --cflags lua5.4) -Wl,-E fuzz/decode_bench.c \
       $(pkg-config --libs lua5.4) -lm -o fuzz/decode_bench && ./fuzz/decode_bench
   LuaJIT (loads Debian's 5.1 cjson.so):
     gcc -O2 -Wall -Wextra $(pkg-config --cflags luajit) -Wl,-E fuzz/decode_bench.c \
       $(pkg-config --libs luajit) -lm -o fuzz/decode_bench_jit && ./fuzz/decode_bench_jit
   An optional argument sets the number of results. */

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "../src/compat.h"
#include "../src/decode.c"

#define LC_BENCH_RUNS 5

static double lc_bench_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* The API's example batch, results repeated with distinct ids; freed by the caller. */
static char *lc_bench_body(long n, size_t *len) {
  size_t cap = 1024 + (size_t)n * 256, off = 0;
  char *b = (char *)malloc(cap);
  long i;
  if (b == NULL) return NULL;
  off += (size_t)snprintf(
      b + off, cap - off,
      "{\"id\": \"bat-6f1c2a0e-8d4b-4c47-9a51-3e2f7b9d0c11\", "
      "\"project_id\": \"prj-2b7e1516-28ae-4d2a-a6ab-f7158809cf4f\", "
      "\"source_directory_id\": \"dir-3243f6a8-885a-408d-8131-98a2e0370734\", "
      "\"config\": {\"job\": {\"type\": \"parse_v2\", "
      "\"configuration_id\": \"cfg-13198a2e-0370-4473-8a2e-0370734a4093\"}}, "
      "\"status\": \"COMPLETED\", \"created_at\": \"2019-12-27T18:11:19.117Z\", "
      "\"updated_at\": \"2019-12-27T18:42:07.503Z\", \"results\": [");
  for (i = 0; i < n; i++) {
    unsigned long a = 2654435761UL * (unsigned long)(i + 1);
    off += (size_t)snprintf(
        b + off, cap - off,
        "%s{\"source_directory_file_id\": \"dfl-%08lx-%04lx-4%03lx-a%03lx-%012lx\", "
        "\"job_reference\": {\"type\": \"%s\", \"id\": \"pjb-%08lx-%04lx-4%03lx-b%03lx-%012lx\"}, "
        "\"error_message\": null}",
        i ? ", " : "", a & 0xffffffffUL, (a >> 7) & 0xffff, (a >> 3) & 0xfff,
        (a >> 11) & 0xfff, (unsigned long)i, i % 7 ? "parse_v2" : "extract_v2",
        (a * 31) & 0xffffffffUL, (a >> 5) & 0xffff, (a >> 9) & 0xfff, (a >> 13) & 0xfff,
        (unsigned long)(n - i));
  }
  off += (size_t)snprintf(b + off, cap - off, "]}");
  *len = off;
  return b;
}

int main(int argc, char **argv) {
  long n = argc > 1 ? atol(argv[1]) : 100000;
  size_t len;
  char *body = lc_bench_body(n, &len);
  lua_State *L = luaL_newstate();
  double best_ours = 1e30, best_cjson = 1e30;
  int run;
  if (body == NULL || L == NULL) return 1;
  luaL_openlibs(L);
  if (luaL_dostring(L, "return require('cjson').new().decode") != 0) {
    fprintf(stderr, "decode_bench: %s\n", lua_tostring(L, -1));
    return 1;
  }
  lua_pushlstring(L, body, len); /* [1] decode, [2] body */

  for (run = 0; run < LC_BENCH_RUNS; run++) {
    const char *err;
    size_t errpos;
    double t;
    lua_gc(L, LUA_GCCOLLECT, 0);
    t = lc_bench_now();
    if (!lc_json_decode(L, body, len, &err, &errpos)) {
      fprintf(stderr, "decode_bench: %s at %zu\n", err, errpos);
      return 1;
    }
    t = lc_bench_now() - t;
    if (t < best_ours) best_ours = t;
    if (lc_rawlen(L, -1) != 0) return 1;
    lua_getfield(L, -1, "results");
    if ((long)lc_rawlen(L, -1) != n) return 1;
    lua_pop(L, 2);

    lua_gc(L, LUA_GCCOLLECT, 0);
    lua_pushvalue(L, 1);
    lua_pushvalue(L, 2);
    t = lc_bench_now();
    lua_call(L, 1, 1);
    t = lc_bench_now() - t;
    if (t < best_cjson) best_cjson = t;
    lua_pop(L, 1);
  }
  printf("%s, %ld results, %.1f MB: ours %.1f ms, cjson.decode %.1f ms, ratio %.2f\n",
         lc_lua_version(), n, (double)len / 1e6, best_ours, best_cjson,
         best_ours / best_cjson);
  lua_close(L);
  free(body);
  return 0;
}
