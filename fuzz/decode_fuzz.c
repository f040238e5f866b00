/* libFuzzer target: src/decode.c must accept what lua-cjson accepts and build equal values, and its
   size guesses must not make it hold much more memory than cjson does for the same input. */

/* Build (decode-fuzz):
     clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
       $(pkg-config --cflags lua5.4) -Wl,-E fuzz/decode_fuzz.c \
       $(pkg-config --libs lua5.4) -lm -o fuzz/decode_fuzz
   Run (corpus dir is read, new inputs go to the first dir):
     mkdir -p /tmp/decode_corpus && \
     ./fuzz/decode_fuzz -max_total_time=300 -max_len=8192 -artifact_prefix=/tmp/ \
       /tmp/decode_corpus fuzz/corpus/decode
   With a comma decimal point (our numbers must not change; cjson copes by itself):
     localedef -i de_DE -f UTF-8 /tmp/locales/de_DE.UTF-8 && \
     LOCPATH=/tmp/locales DECODE_FUZZ_LOCALE=de_DE.UTF-8 ./fuzz/decode_fuzz ...

   Deliberate differences, where cjson accepts and we refuse (RFC 8259 is the
   rule). Each is undone by rewriting the input the way cjson read it, then the
   whole check runs again on the rewritten input:
   - a raw byte 0x01..0x1f inside a string: rewritten as \u00XX;
   - a fraction without digits (`1.`, `1.e5`, `-.5`): a `0` is inserted;
   - a NUL after a complete value (cjson stops reading at NUL): cut there.
   Anything else that one side accepts and the other refuses aborts.

   Memory invariant: in a second Lua state whose allocator counts bytes (collector stopped),
   our decode's peak may not exceed twice cjson's peak for the same input plus 16 KiB. cjson
   presizes nothing, so a size guess the input did not earn (duplicate keys inflating the next
   object, a guess larger than the rest of the input could fill) shows up here; guesses earned
   by a real sibling are paid for in cjson's peak too. Seeds: fuzz/corpus/decode/hint-*. */

#include <locale.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "../src/compat.h"
#include "../src/decode.c"

#define FUZZ_NAME "decode_fuzz"
#include "fuzz_common.h"

static int cjson_decode_ref;
static unsigned long runs;

/* The counting state of the memory invariant. */
static lua_State *MEM;
static int mem_cjson_ref;
static size_t mem_now, mem_peak;

static void *lc_fuzz_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  void *p;
  (void)ud;
  if (ptr == NULL) osize = 0; /* 5.4 passes a type tag there */
  if (nsize == 0) {
    free(ptr);
    mem_now -= osize;
    return NULL;
  }
  if ((p = realloc(ptr, nsize)) == NULL) return NULL;
  mem_now = mem_now - osize + nsize;
  if (mem_now > mem_peak) mem_peak = mem_now;
  return p;
}

/* Peak bytes (above where it started) that decoding buf takes in MEM: ours, or cjson's; the
   input string itself is not counted. -1 when that decoder refused it. */
static long lc_fuzz_peak(int ours, const uint8_t *buf, size_t size) {
  int top = lua_gettop(MEM), ok;
  size_t base;
  lua_gc(MEM, LUA_GCCOLLECT, 0);
  lua_gc(MEM, LUA_GCSTOP, 0);
  if (!ours) {
    lua_rawgeti(MEM, LUA_REGISTRYINDEX, mem_cjson_ref);
    lua_pushlstring(MEM, (const char *)buf, size);
  }
  base = mem_peak = mem_now;
  if (ours) {
    const char *err;
    size_t pos;
    ok = lc_json_decode(MEM, (const char *)buf, size, &err, &pos);
  } else {
    ok = lua_pcall(MEM, 1, 1, 0) == 0;
  }
  lua_settop(MEM, top);
  lua_gc(MEM, LUA_GCRESTART, 0);
  return ok ? (long)(mem_peak - base) : -1;
}

/* cjson's buffers are freed by its __gc; LeakSanitizer runs after atexit */
static void lc_fuzz_close(void) {
  lua_close(G);
  G = NULL;
  if (MEM) lua_close(MEM);
  MEM = NULL;
}

static void lc_fuzz_init(void) {
  const char *loc = getenv("DECODE_FUZZ_LOCALE");
  if (loc != NULL) {
    if (setlocale(LC_NUMERIC, loc) == NULL) {
      fprintf(stderr, "decode_fuzz: locale %s not available\n", loc);
      exit(2);
    }
    fprintf(stderr, "decode_fuzz: LC_NUMERIC=%s, decimal point '%s'\n", loc,
            localeconv()->decimal_point);
  }
  fuzz_open_state();
  if (luaL_dostring(G,
                    "local c = require('cjson').new()\n"
                    "c.decode_invalid_numbers(false)\n"
                    "c.decode_max_depth(1000)\n"
                    "return c.decode") != 0) {
    fprintf(stderr, "decode_fuzz: %s\n", lua_tostring(G, -1));
    exit(2);
  }
  cjson_decode_ref = luaL_ref(G, LUA_REGISTRYINDEX);
  MEM = lua_newstate(lc_fuzz_alloc, NULL);
  luaL_openlibs(MEM);
  if (luaL_dostring(MEM, "local c = require('cjson').new() c.decode_max_depth(1000) return c.decode") != 0) {
    fprintf(stderr, "decode_fuzz: %s\n", lua_tostring(MEM, -1));
    exit(2);
  }
  mem_cjson_ref = luaL_ref(MEM, LUA_REGISTRYINDEX);
  atexit(lc_fuzz_close);
}

/* a is ours, b is cjson's; both absolute indices. */
static int lc_fuzz_same(lua_State *L, int a, int b, int level) {
  int ta = lua_type(L, a), tb = lua_type(L, b);
  if (!lua_checkstack(L, 8) || level > LC_JSON_MAXDEPTH + 1) return 0;
  if (tb == LUA_TLIGHTUSERDATA)
    return ta == LUA_TLIGHTUSERDATA && lua_touserdata(L, a) == NULL &&
           lua_touserdata(L, b) == NULL;
  if (ta != tb) return 0;
  switch (tb) {
    case LUA_TBOOLEAN:
      return lua_toboolean(L, a) == lua_toboolean(L, b);
    case LUA_TSTRING: {
      size_t la, lb;
      const char *sa = lua_tolstring(L, a, &la), *sb = lua_tolstring(L, b, &lb);
      return la == lb && memcmp(sa, sb, la) == 0;
    }
    case LUA_TNUMBER: {
      double c = (double)lua_tonumber(L, b);
#if LC_HAS_INTEGERS
      if (lua_isinteger(L, a)) {
        lua_Integer v = lua_tointeger(L, a);
        /* beyond 2^53 cjson's double was rounded once from the same digits */
        if (v == 0 && signbit(c)) return 0;
        return (double)v == c;
      }
#endif
      {
        double d = (double)lua_tonumber(L, a);
        return d == c && !signbit(d) == !signbit(c);
      }
    }
    case LUA_TTABLE: {
      long expected = 0, have = 0;
      lua_pushnil(L);
      while (lua_next(L, b) != 0) {
        int kt = lua_type(L, -2);
        if (kt == LUA_TSTRING && lua_type(L, -1) == LUA_TLIGHTUSERDATA) {
          /* a null member: the key must be absent in ours */
          lua_pushvalue(L, -2);
          lua_rawget(L, a);
          if (!lua_isnil(L, -1)) return 0;
          lua_pop(L, 1);
        } else {
          if (kt != LUA_TSTRING && kt != LUA_TNUMBER) return 0;
          expected++;
          lua_pushvalue(L, -2);
          lua_rawget(L, a);
          if (!lc_fuzz_same(L, lua_gettop(L), lua_gettop(L) - 1, level + 1)) return 0;
          lua_pop(L, 1);
        }
        lua_pop(L, 1);
      }
      lua_pushnil(L);
      while (lua_next(L, a) != 0) {
        have++;
        lua_pop(L, 1);
      }
      return have == expected;
    }
    default:
      return 0;
  }
}

/* Rewrites buf so that cjson reads it as before and we no longer refuse it for a
   deliberate reason; returns 0 when the refusal is not one of those. */
static int lc_fuzz_undo(uint8_t **buf, size_t *size, const char *err, size_t pos) {
  uint8_t *b = *buf, *nb;
  size_t n = *size;
  if (pos > n) return 0;
  if (strcmp(err, "control character in string") == 0 && pos < n && b[pos] != 0) {
    nb = (uint8_t *)malloc(n + 6);
    memcpy(nb, b, pos);
    snprintf((char *)nb + pos, 7, "\\u%04x", b[pos]);
    memcpy(nb + pos + 6, b + pos + 1, n - pos - 1);
    *size = n + 5;
  } else if ((strcmp(err, "digit expected after '.'") == 0 && pos > 0 && b[pos - 1] == '.') ||
             (strcmp(err, "invalid number") == 0 && pos < n && b[pos] == '.' && pos > 0 &&
              b[pos - 1] == '-')) {
    nb = (uint8_t *)malloc(n + 1);
    memcpy(nb, b, pos);
    nb[pos] = '0';
    memcpy(nb + pos + 1, b + pos, n - pos);
    *size = n + 1;
  } else if (strcmp(err, "trailing characters after the value") == 0 && pos < n &&
             b[pos] == 0) {
    nb = (uint8_t *)malloc(pos ? pos : 1);
    memcpy(nb, b, pos);
    *size = pos;
  } else {
    return 0;
  }
  free(b);
  *buf = nb;
  return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static unsigned int top_hint;
  lua_State *L;
  uint8_t *buf;
  int rounds;
  if (G == NULL) lc_fuzz_init();
  L = G;
  buf = (uint8_t *)malloc(size ? size : 1);
  memcpy(buf, data, size);
  for (rounds = 0;; rounds++) {
    const char *err = NULL;
    size_t errpos = 0;
    int top = lua_gettop(L), ours, theirs;
    /* an exactly sized heap copy, so ASan sees any read past the end */
    uint8_t *exact = (uint8_t *)malloc(size ? size : 1);
    memcpy(exact, buf, size);
    /* the size guess carries over from input to input, as it does between polls */
    ours = lc_json_decode_hinted(L, (const char *)exact, size, &top_hint, &err, &errpos);
    free(exact);
    if (lua_gettop(L) != top + ours) fuzz_fail("stack not balanced", buf, size);
    if (!ours && (err == NULL || errpos > size)) fuzz_fail("bad error report", buf, size);
    lua_rawgeti(L, LUA_REGISTRYINDEX, cjson_decode_ref);
    lua_pushlstring(L, (const char *)buf, size);
    theirs = lua_pcall(L, 1, 1, 0) == 0;
    if (ours && !theirs) {
      fprintf(stderr, "cjson: %s\n", lua_tostring(L, -1));
      fuzz_fail("we accept what cjson refuses", buf, size);
    }
    if (!ours && theirs) {
      if (rounds < 100000 && lc_fuzz_undo(&buf, &size, err, errpos)) {
        lua_settop(L, top);
        continue;
      }
      fprintf(stderr, "ours: %s at %zu\n", err, errpos);
      fuzz_fail("we refuse what cjson accepts", buf, size);
    }
    if (ours && theirs && !lc_fuzz_same(L, top + 1, top + 2, 0))
      fuzz_fail("values differ", buf, size);
    if (ours && theirs) {
      long mine = lc_fuzz_peak(1, buf, size), cj = lc_fuzz_peak(0, buf, size);
      if (mine >= 0 && cj >= 0 && mine > 2 * cj + 16384) {
        fprintf(stderr, "peak: ours %ld bytes, cjson %ld bytes\n", mine, cj);
        fuzz_fail("a size guess costs more than the input earned", buf, size);
      }
    }
    lua_settop(L, top);
    break;
  }
  free(buf);
  /* keeps RSS flat over millions of runs; the incremental collector lags */
  if (++runs % 1024 == 0) lua_gc(L, LUA_GCCOLLECT, 0);
  return 0;
}
