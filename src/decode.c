/* JSON bytes to Lua tables in one pass, null members dropped; fuzz/decode_fuzz.c holds it equal to lua-cjson. */

/* Choices where the contract leaves room, pinned by the fuzz target:
   - A top-level `null` gives llamacloud.null (a NULL light userdata), as cjson.
   - An integer literal that fits int64 is lc_pushint; `-0` stays the float
     -0.0 (its sign survives, as in cjson); anything else is the correctly
     rounded double, and out-of-range exponents give +-inf or 0 like strtod.
   - `\u0000` decodes to a NUL byte; a high surrogate must be followed at once
     by a `\u` low surrogate and a lone low one is refused, as cjson does.
   - Stricter than cjson: raw bytes < 0x20 in strings, `1.`, `-.5` and bytes
     after a NUL that follows a complete value are refused. */

#include <float.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#define LC_JSON_MAXDEPTH 1000
#define LC_JSON_NKEYS 64 /* power of two */
#define LC_JSON_KEYMAX 40 /* longer keys are not worth the memcmp */
#define LC_JSON_DEPTHSTEP 32 /* containers per lua_checkstack call */
#define LC_JSON_LOCALBUF 256
#define LC_JSON_TOPHINT_MAX 64 /* a remembered top-level size is only a guess: keep it small */
#define LC_JSON_HINT_TRUST 8   /* past this many members, an object's keys are counted again (duplicates) */

enum { LC_JS_PLAIN = 0, LC_JS_QUOTE, LC_JS_ESC, LC_JS_CTRL };

static const unsigned char lc_json_strclass[256] = {
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
};

static const double lc_json_pow10[23] = {
    1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

typedef struct {
  const char *p; /* bytes of the Lua string held in this entry's stack slot */
  size_t len;
} lc_json_keyent;

typedef struct {
  lua_State *L;
  const char *end;
  const char *err;
  const char *errp;
  int keybase; /* stack index of key cache slot 0 */
  int scratch; /* stack index of the scratch userdata (or nil) */
  char *buf;   /* contents of that userdata */
  size_t bufsize;
  lc_json_keyent keys[LC_JSON_NKEYS];
  unsigned int *top_hint; /* NULL, or in: members guessed for a top-level object; out: its members */
  /* Per depth: open container kind and members stored so far, and the size of the last
     finished array/object there, the guess that presizes its next sibling. What holds
     (spec/decode_spec.lua, fuzz/decode_fuzz.c's memory invariant):
     - a guess never exceeds what the rest of the input could fill (an object member takes
       at least 5 bytes, an array element 2);
     - an object's guess counts its distinct keys, not its members: past LC_JSON_HINT_TRUST
       members the finished table is walked, so duplicate keys cannot inflate it;
     - each finished container seeds one guess, which the next sibling replaces. */
  unsigned char isobj[LC_JSON_MAXDEPTH + 1];
  unsigned int count[LC_JSON_MAXDEPTH + 1];
  unsigned int hint_arr[LC_JSON_MAXDEPTH + 1];
  unsigned int hint_obj[LC_JSON_MAXDEPTH + 1];
} lc_json;

static int lc_json_fail(lc_json *j, const char *msg, const char *at) {
  j->err = msg;
  j->errp = at;
  return 0;
}

/* Scratch lives in a userdata anchored in a stack slot, so a memory error
   raised mid-decode leaks nothing. */
static char *lc_json_scratch(lc_json *j, size_t need) {
  if (need > j->bufsize) {
    size_t n = need < 4096 ? 4096 : need + need / 2;
    if (n < need) n = need;
    j->buf = (char *)lua_newuserdata(j->L, n);
    j->bufsize = n;
    lua_replace(j->L, j->scratch);
  }
  return j->buf;
}

static int lc_json_hex4(const unsigned char *p) {
  int i, v = 0;
  for (i = 0; i < 4; i++) {
    int c = p[i], d;
    if (c >= '0' && c <= '9') d = c - '0';
    else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') d = (c | 0x20) - 'a' + 10;
    else return -1;
    v = (v << 4) | d;
  }
  return v;
}

static unsigned int lc_json_keyhash(const unsigned char *p, size_t len) {
  if (len == 0) return 0;
  return ((unsigned int)len * 131u ^ (unsigned int)p[0] * 33u ^
          (unsigned int)p[len - 1] * 7u ^ (unsigned int)p[len >> 1]) &
         (LC_JSON_NKEYS - 1);
}

/* memcmp for the cache's short keys, inline and by words (overlapping at the end): the libc
   call cost as much as the compare itself (docs/performance.md). */
static int lc_json_same(const char *a, const char *b, size_t n) {
  uint64_t x, y;
  uint32_t u, v;
  if (n >= 8) {
    size_t i;
    for (i = 0; i + 8 < n; i += 8) {
      memcpy(&x, a + i, 8);
      memcpy(&y, b + i, 8);
      if (x != y) return 0;
    }
    memcpy(&x, a + n - 8, 8); /* the last 8, overlapping what was compared */
    memcpy(&y, b + n - 8, 8);
    return x == y;
  }
  if (n >= 4) {
    memcpy(&u, a, 4);
    memcpy(&v, b, 4);
    if (u != v) return 0;
    memcpy(&u, a + n - 4, 4);
    memcpy(&v, b + n - 4, 4);
    return u == v;
  }
  while (n > 0) {
    if (*a++ != *b++) return 0;
    n--;
  }
  return 1;
}

static void lc_json_pushkey(lc_json *j, const char *p, size_t len) {
  lua_State *L = j->L;
  unsigned int h;
  lc_json_keyent *k;
  if (len > LC_JSON_KEYMAX) {
    lua_pushlstring(L, p, len);
    return;
  }
  h = lc_json_keyhash((const unsigned char *)p, len);
  k = &j->keys[h];
  if (k->p != NULL && k->len == len && lc_json_same(k->p, p, len)) {
    lua_pushvalue(L, j->keybase + (int)h);
    return;
  }
  lua_pushlstring(L, p, len);
  lua_pushvalue(L, -1);
  lua_replace(L, j->keybase + (int)h);
  k->p = lua_tostring(L, -1);
  k->len = len;
}

/* Slow path for a string holding escapes; esc is the first backslash. */
static int lc_json_escaped(lc_json *j, const char *p, const char *esc,
                           const char **pp, int iskey) {
  const unsigned char *q = (const unsigned char *)esc;
  const unsigned char *end = (const unsigned char *)j->end;
  const unsigned char *r;
  char local[LC_JSON_LOCALBUF];
  char *out, *w;
  size_t raw;
  for (;;) {
    unsigned char c;
    if (q >= end) return lc_json_fail(j, "unterminated string", (const char *)q);
    c = lc_json_strclass[*q];
    if (c == LC_JS_PLAIN) q++;
    else if (c == LC_JS_QUOTE) break;
    else if (c == LC_JS_ESC) {
      if (end - q < 2) return lc_json_fail(j, "unterminated string", (const char *)end);
      q += 2;
    } else return lc_json_fail(j, "control character in string", (const char *)q);
  }
  /* every escape shrinks, so the raw length bounds the decoded one */
  raw = (size_t)((const char *)q - p);
  out = raw <= sizeof local ? local : lc_json_scratch(j, raw);
  memcpy(out, p, (size_t)(esc - p));
  w = out + (esc - p);
  r = (const unsigned char *)esc;
  while (r < q) {
    const unsigned char *at;
    unsigned int cp;
    int lo;
    if (*r != '\\') {
      *w++ = (char)*r++;
      continue;
    }
    at = r;
    r += 2;
    switch (at[1]) {
      case '"': *w++ = '"'; continue;
      case '\\': *w++ = '\\'; continue;
      case '/': *w++ = '/'; continue;
      case 'b': *w++ = '\b'; continue;
      case 'f': *w++ = '\f'; continue;
      case 'n': *w++ = '\n'; continue;
      case 'r': *w++ = '\r'; continue;
      case 't': *w++ = '\t'; continue;
      case 'u': break;
      default: return lc_json_fail(j, "invalid escape", (const char *)at);
    }
    if (q - r < 4 || (lo = lc_json_hex4(r)) < 0)
      return lc_json_fail(j, "invalid \\u escape", (const char *)at);
    cp = (unsigned int)lo;
    r += 4;
    if ((cp & 0xF800) == 0xD800) {
      if (cp & 0x400) return lc_json_fail(j, "lone low surrogate", (const char *)at);
      if (q - r < 6 || r[0] != '\\' || r[1] != 'u' || (lo = lc_json_hex4(r + 2)) < 0 ||
          (lo & 0xFC00) != 0xDC00)
        return lc_json_fail(j, "unpaired high surrogate", (const char *)at);
      cp = 0x10000 + (((cp & 0x3FF) << 10) | ((unsigned int)lo & 0x3FF));
      r += 6;
    }
    if (cp < 0x80) {
      *w++ = (char)cp;
    } else if (cp < 0x800) {
      *w++ = (char)(0xC0 | (cp >> 6));
      *w++ = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      *w++ = (char)(0xE0 | (cp >> 12));
      *w++ = (char)(0x80 | ((cp >> 6) & 0x3F));
      *w++ = (char)(0x80 | (cp & 0x3F));
    } else {
      *w++ = (char)(0xF0 | (cp >> 18));
      *w++ = (char)(0x80 | ((cp >> 12) & 0x3F));
      *w++ = (char)(0x80 | ((cp >> 6) & 0x3F));
      *w++ = (char)(0x80 | (cp & 0x3F));
    }
  }
  if (iskey) lc_json_pushkey(j, out, (size_t)(w - out));
  else lua_pushlstring(j->L, out, (size_t)(w - out));
  *pp = (const char *)q + 1;
  return 1;
}

/* Nonzero when one of the 8 bytes is '"', '\\' or below 0x20; exact, never a false hit. */
static int lc_json_special8(uint64_t v) {
  const uint64_t ones = 0x0101010101010101ULL, high = 0x8080808080808080ULL;
  uint64_t q = v ^ (ones * '"'), b = v ^ (ones * '\\');
  return (((q - ones) & ~q) | ((b - ones) & ~b) | ((v - ones * 0x20) & ~v)) & high ? 1 : 0;
}

/* *pp is just past the opening quote; pushes the string, leaves *pp past the closing one. */
static int lc_json_string(lc_json *j, const char **pp, int iskey) {
  const unsigned char *p = (const unsigned char *)*pp;
  const unsigned char *q = p;
  const unsigned char *end = (const unsigned char *)j->end;
  unsigned char c;
  uint64_t v;
#ifdef __SSE2__
  /* 16 bytes a step, and the first quote, backslash or byte < 0x20 is found exactly, with
     no byte loop after (docs/performance.md). */
  {
    const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\'), ctrl = _mm_set1_epi8(0x1f);
    while (end - q >= 16) {
      __m128i x = _mm_loadu_si128((const __m128i *)(const void *)q);
      __m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, quote), _mm_cmpeq_epi8(x, bslash)),
                                 _mm_cmpeq_epi8(_mm_max_epu8(x, ctrl), ctrl));
      int mask = _mm_movemask_epi8(hit);
      if (mask != 0) {
        q += __builtin_ctz((unsigned int)mask);
        goto found;
      }
      q += 16;
    }
  }
#endif
  while (end - q >= 8) {
    memcpy(&v, q, 8);
    if (lc_json_special8(v)) break;
    q += 8;
  }
  while (q < end && lc_json_strclass[*q] == LC_JS_PLAIN) q++;
#ifdef __SSE2__
found:
#endif
  if (q >= end) return lc_json_fail(j, "unterminated string", (const char *)q);
  c = lc_json_strclass[*q];
  if (c == LC_JS_ESC) return lc_json_escaped(j, (const char *)p, (const char *)q, pp, iskey);
  if (c == LC_JS_CTRL) return lc_json_fail(j, "control character in string", (const char *)q);
  if (iskey) lc_json_pushkey(j, (const char *)p, (size_t)(q - p));
  else lua_pushlstring(j->L, (const char *)p, (size_t)(q - p));
  *pp = (const char *)q + 1;
  return 1;
}

/* The digits alone with an integer exponent: no decimal point, so strtod's
   answer cannot depend on LC_NUMERIC. */
static double lc_json_strtod(lc_json *j, int neg, const char *ip, const char *ie,
                             const char *fp, const char *fe, long long e10) {
  char local[LC_JSON_LOCALBUF];
  size_t n = (size_t)(ie - ip) + (size_t)(fe - fp) + 32;
  char *buf = n <= sizeof local ? local : lc_json_scratch(j, n);
  char *w = buf;
  if (neg) *w++ = '-';
  memcpy(w, ip, (size_t)(ie - ip));
  w += ie - ip;
  memcpy(w, fp, (size_t)(fe - fp));
  w += fe - fp;
  snprintf(w, 24, "e%lld", e10);
  return strtod(buf, NULL);
}

static int lc_json_number(lc_json *j, const char **pp) {
  const char *p = *pp, *end = j->end;
  const char *ip, *ie, *fp = NULL, *fe = NULL;
  unsigned long long m = 0;
  int neg = 0, sig = 0, isfloat = 0;
  long long fracdigits = 0, ev = 0, e10;
  if (*p == '-') {
    neg = 1;
    p++;
  }
  ip = p;
  if (p < end && *p == '0') {
    p++;
    if (p < end && *p >= '0' && *p <= '9')
      return lc_json_fail(j, "leading zero in number", ip);
  } else if (p < end && *p >= '1' && *p <= '9') {
    do {
      if (++sig <= 19) m = m * 10 + (unsigned)(*p - '0');
      p++;
    } while (p < end && *p >= '0' && *p <= '9');
  } else {
    return lc_json_fail(j, "invalid number", p);
  }
  ie = p;
  if (p < end && *p == '.') {
    isfloat = 1;
    p++;
    fp = p;
    if (p == end || *p < '0' || *p > '9')
      return lc_json_fail(j, "digit expected after '.'", p);
    do {
      unsigned d = (unsigned)(*p - '0');
      fracdigits++;
      if (sig > 0 || d != 0) {
        if (++sig <= 19) m = m * 10 + d;
      }
      p++;
    } while (p < end && *p >= '0' && *p <= '9');
    fe = p;
  }
  if (p < end && (*p == 'e' || *p == 'E')) {
    int eneg = 0;
    isfloat = 1;
    p++;
    if (p < end && (*p == '+' || *p == '-')) eneg = *p++ == '-';
    if (p == end || *p < '0' || *p > '9')
      return lc_json_fail(j, "digit expected in exponent", p);
    do {
      if (ev < 1000000000LL) ev = ev * 10 + (*p - '0');
      p++;
    } while (p < end && *p >= '0' && *p <= '9');
    if (eneg) ev = -ev;
  }
  *pp = p;
  if (fp == NULL) fp = fe = ie;
  if (sig == 0) {
    /* all digits zero: 0 is an integer, -0 keeps its sign as a float */
    if (!isfloat && !neg) lc_pushint(j->L, 0);
    else lua_pushnumber(j->L, neg ? -0.0 : 0.0);
    return 1;
  }
  if (!isfloat && sig <= 19) {
    if (m <= 9223372036854775807ULL) {
      lc_pushint(j->L, neg ? -(long long)m : (long long)m);
      return 1;
    }
    if (neg && m == 9223372036854775808ULL) {
      lc_pushint(j->L, LLONG_MIN);
      return 1;
    }
    /* a 19-digit value is exact in m; the conversion rounds once */
    lua_pushnumber(j->L, (lua_Number)(neg ? -(double)m : (double)m));
    return 1;
  }
  e10 = ev - fracdigits;
#if defined(FLT_EVAL_METHOD) && FLT_EVAL_METHOD == 0
  /* Clinger's fast path: both operands exact, so one rounding */
  if (sig <= 19 && m <= (1ULL << 53) && e10 >= -22 && e10 <= 22) {
    double d = (double)m;
    d = e10 < 0 ? d / lc_json_pow10[-e10] : d * lc_json_pow10[e10];
    lua_pushnumber(j->L, (lua_Number)(neg ? -d : d));
    return 1;
  }
#endif
  lua_pushnumber(j->L, (lua_Number)lc_json_strtod(j, neg, ip, ie, fp, fe, e10));
  return 1;
}

static const char *lc_json_skipws(const char *p, const char *end) {
  while (p < end && (unsigned char)*p <= ' ' &&
         (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
    p++;
  return p;
}

/* The keys of the table at idx (a finished object): its real size, duplicates counted once. */
static unsigned int lc_json_keys_in(lua_State *L, int idx) {
  unsigned int n = 0;
  idx = lc_absindex(L, idx);
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    lua_pop(L, 1);
    n++;
  }
  return n;
}

static int lc_json_parse(lc_json *j, const char *p) {
  lua_State *L = j->L;
  const char *end = j->end;
  int depth = 0, seen = 0, reserved = 0, isnull;

value:
  p = lc_json_skipws(p, end);
  if (p == end) return lc_json_fail(j, "unexpected end of input", p);
  isnull = 0;
  switch (*p) {
    case '{':
    case '[':
      if (depth == LC_JSON_MAXDEPTH) return lc_json_fail(j, "too deeply nested", p);
      depth++;
      if (depth > reserved) {
        /* each open container holds its table and at most a key; 4 spare for values */
        if (!lua_checkstack(L, 2 * LC_JSON_DEPTHSTEP + 4))
          return lc_json_fail(j, "too deeply nested", p);
        reserved += LC_JSON_DEPTHSTEP;
      }
      if (depth > seen) {
        j->hint_arr[depth] = j->hint_obj[depth] = 0;
        if (depth == 1 && j->top_hint != NULL) j->hint_obj[1] = *j->top_hint;
        seen = depth;
      }
      j->count[depth] = 0;
      if (*p++ == '{') {
        size_t most = ((size_t)(end - p) + 1) / 5; /* "k":0, per member */
        j->isobj[depth] = 1;
        lua_createtable(L, 0, (int)(j->hint_obj[depth] < most ? j->hint_obj[depth] : most));
        p = lc_json_skipws(p, end);
        if (p < end && *p == '}') {
          p++;
          goto close;
        }
        goto key;
      }
      j->isobj[depth] = 0;
      {
        size_t most = ((size_t)(end - p) + 1) / 2; /* 0, per element */
        lua_createtable(L, (int)(j->hint_arr[depth] < most ? j->hint_arr[depth] : most), 0);
      }
      p = lc_json_skipws(p, end);
      if (p < end && *p == ']') {
        p++;
        goto close;
      }
      goto value;
    case '"':
      p++;
      if (!lc_json_string(j, &p, 0)) return 0;
      goto store;
    case 't':
      if (end - p < 4 || memcmp(p, "true", 4) != 0) break;
      lua_pushboolean(L, 1);
      p += 4;
      goto store;
    case 'f':
      if (end - p < 5 || memcmp(p, "false", 5) != 0) break;
      lua_pushboolean(L, 0);
      p += 5;
      goto store;
    case 'n':
      if (end - p < 4 || memcmp(p, "null", 4) != 0) break;
      p += 4;
      if (depth > 0 && j->isobj[depth]) isnull = 1;
      else lua_pushlightuserdata(L, NULL);
      goto store;
    case '-': case '0': case '1': case '2': case '3': case '4':
    case '5': case '6': case '7': case '8': case '9':
      if (!lc_json_number(j, &p)) return 0;
      goto store;
    default:
      break;
  }
  return lc_json_fail(j, "unexpected character", p);

key:
  if (p == end) return lc_json_fail(j, "unexpected end of input", p);
  if (*p != '"') return lc_json_fail(j, "object key expected", p);
  p++;
  if (!lc_json_string(j, &p, 1)) return 0;
  p = lc_json_skipws(p, end);
  if (p == end) return lc_json_fail(j, "unexpected end of input", p);
  if (*p != ':') return lc_json_fail(j, "':' expected", p);
  p++;
  goto value;

close:
  if (j->isobj[depth]) {
    unsigned int n = j->count[depth];
    if (n > LC_JSON_HINT_TRUST) n = lc_json_keys_in(L, -1);
    j->hint_obj[depth] = n;
    if (depth == 1 && j->top_hint != NULL) *j->top_hint = n < LC_JSON_TOPHINT_MAX ? n : LC_JSON_TOPHINT_MAX;
  } else {
    j->hint_arr[depth] = j->count[depth];
  }
  depth--;
  isnull = 0;

store:
  if (depth == 0) {
    j->errp = p;
    return 1;
  }
  if (j->isobj[depth]) {
    if (!isnull) {
      if (j->count[depth] == (unsigned int)INT_MAX)
        return lc_json_fail(j, "object too large", p);
      lua_rawset(L, -3);
      j->count[depth]++;
    } else {
      /* a null member clears an earlier duplicate of its key: last wins */
      lua_pushvalue(L, -1);
      lua_rawget(L, -3);
      if (lua_isnil(L, -1)) {
        lua_pop(L, 2);
      } else {
        lua_pop(L, 1);
        lua_pushnil(L);
        lua_rawset(L, -3);
        j->count[depth]--;
      }
    }
    p = lc_json_skipws(p, end);
    if (p == end) return lc_json_fail(j, "unexpected end of input", p);
    if (*p == ',') {
      p = lc_json_skipws(p + 1, end);
      goto key;
    }
    if (*p == '}') {
      p++;
      goto close;
    }
    return lc_json_fail(j, "',' or '}' expected", p);
  }
  if (j->count[depth] == (unsigned int)INT_MAX)
    return lc_json_fail(j, "array too large", p);
  lua_rawseti(L, -2, (int)++j->count[depth]);
  p = lc_json_skipws(p, end);
  if (p == end) return lc_json_fail(j, "unexpected end of input", p);
  if (*p == ',') {
    p++;
    goto value;
  }
  if (*p == ']') {
    p++;
    goto close;
  }
  return lc_json_fail(j, "',' or ']' expected", p);
}

/* Decodes JSON text s[0..len). On success pushes one value and returns 1.
   On invalid input pushes nothing, returns 0, sets *err to a static message
   and *errpos to the byte offset where it went wrong. Never raises for bad input
   (only Lua's own memory error may raise). top_hint, when not NULL, is a size guess
   for a top-level object, read before and set after: a caller decoding one kind of
   body again and again (a polled batch) presizes it. Only preallocation depends on it. */
static int lc_json_decode_hinted(lua_State *L, const char *s, size_t len, unsigned int *top_hint,
                                 const char **err, size_t *errpos) {
  lc_json j;
  int top = lua_gettop(L), i;
  const char *p;
  if (s == NULL) { /* an empty body may come without a buffer */
    s = "";
    len = 0;
  }
  if (!lua_checkstack(L, LC_JSON_NKEYS + 8)) {
    *err = "too deeply nested";
    *errpos = 0;
    return 0;
  }
  j.L = L;
  j.end = s + len;
  j.err = NULL;
  j.errp = s;
  j.keybase = top + 1;
  j.scratch = top + LC_JSON_NKEYS + 1;
  j.buf = NULL;
  j.bufsize = 0;
  j.top_hint = top_hint;
  for (i = 0; i < LC_JSON_NKEYS; i++) j.keys[i].p = NULL;
  lua_settop(L, j.scratch);
  if (lc_json_parse(&j, s)) {
    p = lc_json_skipws(j.errp, j.end);
    if (p == j.end) {
      lua_replace(L, top + 1);
      lua_settop(L, top + 1);
      return 1;
    }
    j.err = "trailing characters after the value";
    j.errp = p;
  }
  lua_settop(L, top);
  *err = j.err;
  *errpos = (size_t)(j.errp - s);
  return 0;
}

/* The same without a size guess. */
static int lc_json_decode(lua_State *L, const char *s, size_t len, const char **err,
                          size_t *errpos) {
  return lc_json_decode_hinted(L, s, len, NULL, err, errpos);
}
