/* libFuzzer target: src/webhook.c, which reads a delivery's LC-Signature header and raw body as a server
   sent them. */

/* Build and run: scripts/fuzz.sh webhook (or make fuzz FUZZ_TARGETS=webhook FUZZ_SECONDS=600).
   Input: byte 0 steers the checks; the rest, split at the first two 0xFF bytes, is a signature, a secret
   and a body (missing parts are empty). Checked on every input:
   - lc_sig_parse accepts exactly "sha256=" and 64 hex digits (either case), decodes them, says missing
     only for an empty value;
   - lc_sig_verify says OK only when the decoded digest is the HMAC-SHA256 of the body under the secret, as
     an oracle computes it from libcrypto's SHA-256 (EVP_Digest) with the RFC 2104 construction;
   - the oracle's own digest in lower, upper or mixed case verifies; one changed digit is a mismatch, one
     digit fewer or more is malformed;
   - hmac_sha256_hex and verify through Lua agree with the C verdicts and raise for a non-string argument. */

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/compat.h"
#include "../src/webhook.c"

#define FUZZ_NAME "webhook_fuzz"
#include "fuzz_common.h"

#define FUZZ_BLOCK 64

static void fuzz_sha256(const unsigned char *a, size_t an, const unsigned char *b, size_t bn, unsigned char out[32],
                        const uint8_t *data, size_t size) {
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  unsigned int len = 0;
  if (ctx == NULL || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) || !EVP_DigestUpdate(ctx, a, an) ||
      !EVP_DigestUpdate(ctx, b, bn) || !EVP_DigestFinal_ex(ctx, out, &len) || len != 32)
    fuzz_fail("EVP SHA-256 failed", data, size);
  EVP_MD_CTX_free(ctx);
}

/* HMAC(K, m) = H((K' ^ opad) || H((K' ^ ipad) || m)), K' the key (hashed first when longer than a block)
   padded with zeros to a block. */
static void fuzz_oracle(const char *key, size_t kn, const char *msg, size_t n, unsigned char out[32],
                        const uint8_t *data, size_t size) {
  unsigned char k[FUZZ_BLOCK], ipad[FUZZ_BLOCK], opad[FUZZ_BLOCK], inner[32];
  size_t i;
  memset(k, 0, sizeof k);
  if (kn > FUZZ_BLOCK) fuzz_sha256((const unsigned char *)key, kn, NULL, 0, k, data, size);
  else if (kn > 0) memcpy(k, key, kn);
  for (i = 0; i < FUZZ_BLOCK; i++) {
    ipad[i] = k[i] ^ 0x36;
    opad[i] = k[i] ^ 0x5c;
  }
  fuzz_sha256(ipad, sizeof ipad, (const unsigned char *)msg, n, inner, data, size);
  fuzz_sha256(opad, sizeof opad, inner, sizeof inner, out, data, size);
}

static int fuzz_grammar(const char *s, size_t n) {
  size_t i;
  if (n != 71 || memcmp(s, "sha256=", 7) != 0) return 0;
  for (i = 7; i < n; i++)
    if (!strchr("0123456789abcdefABCDEF", s[i]) || s[i] == '\0') return 0;
  return 1;
}

/* Splits at the next 0xFF from *p: the part's start and length; *p moves past the separator. */
static const char *fuzz_part(const uint8_t **p, const uint8_t *end, size_t *n) {
  const uint8_t *start = *p, *q = start;
  while (q < end && *q != 0xFF) q++;
  *n = (size_t)(q - start);
  *p = q < end ? q + 1 : q;
  return (const char *)start;
}

/* verify through Lua: its verdict, or -1 when it raised. */
static int fuzz_lua_verify(const char *body, size_t n, const char *sig, size_t sn, int sig_nil, const char *key,
                           size_t kn, const uint8_t *data, size_t size) {
  int v = -1;
  lua_settop(G, 0);
  lua_pushcfunction(G, lc_webhook_verify);
  lua_pushlstring(G, body, n);
  if (sig_nil) lua_pushnil(G);
  else lua_pushlstring(G, sig, sn);
  lua_pushlstring(G, key, kn);
  if (lua_pcall(G, 3, 2, 0) != 0) return -1;
  if (lua_toboolean(G, 1)) {
    if (!lua_isnil(G, 2)) fuzz_fail("verify returned true and a reason", data, size);
    v = LC_SIG_OK;
  } else {
    const char *why = lua_tostring(G, 2);
    if (why == NULL) fuzz_fail("verify returned false without a reason", data, size);
    else if (strcmp(why, "missing") == 0) v = LC_SIG_MISSING;
    else if (strcmp(why, "malformed") == 0) v = LC_SIG_MALFORMED;
    else if (strcmp(why, "mismatch") == 0) v = LC_SIG_MISMATCH;
    else fuzz_fail("verify gave an unknown reason", data, size);
  }
  lua_settop(G, 0);
  return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const uint8_t *p, *end = data + size;
  const char *sig, *key, *body;
  size_t sn, kn, bn, i;
  unsigned char got[32], want[32];
  char good[71];
  enum lc_sig_verdict v;
  int accepted;

  if (size < 1) return 0;
  if (G == NULL) fuzz_open_state();
  p = data + 1;
  sig = fuzz_part(&p, end, &sn);
  key = fuzz_part(&p, end, &kn);
  body = (const char *)p;
  bn = (size_t)(end - p);

  v = lc_sig_parse(sig, sn, got);
  accepted = fuzz_grammar(sig, sn);
  if (sn == 0 ? v != LC_SIG_MISSING : (v == LC_SIG_OK) != accepted)
    fuzz_fail("lc_sig_parse disagrees with the grammar", data, size);
  if (v == LC_SIG_OK)
    for (i = 0; i < 32; i++) {
      char byte[3] = {sig[7 + 2 * i], sig[8 + 2 * i], '\0'};
      if (got[i] != (unsigned char)strtoul(byte, NULL, 16)) fuzz_fail("lc_sig_parse decoded wrong", data, size);
    }
  if (lc_sig_parse(NULL, 0, got) != LC_SIG_MISSING) fuzz_fail("NULL signature is not missing", data, size);

  fuzz_oracle(key, kn, body, bn, want, data, size);
  v = lc_sig_verify(body, bn, sig, sn, key, kn);
  if (v == LC_SIG_FAILED) fuzz_fail("lc_sig_verify failed in libcrypto", data, size);
  if (v == LC_SIG_OK && (!accepted || memcmp(got, want, 32) != 0)) fuzz_fail("verified a wrong digest", data, size);
  if (accepted && v != LC_SIG_OK && memcmp(got, want, 32) == 0) fuzz_fail("turned down the right digest", data, size);
  /* Through Lua an empty secret raises (spec/webhooks_spec.lua, "an empty secret"); any other agrees. */
  if (fuzz_lua_verify(body, bn, sig, sn, 0, key, kn, data, size) != (kn == 0 ? -1 : (int)v))
    fuzz_fail("verify through Lua disagrees with lc_sig_verify", data, size);

  /* The right signature, in a case byte 0 picks, then damaged. */
  memcpy(good, "sha256=", 7);
  lc_hex_lower(want, 32, good + 7);
  for (i = 7; i < 71; i++)
    if ((data[0] & 1) || ((data[0] & 2) && (i & 1))) good[i] = (char)toupper((unsigned char)good[i]);
  if (lc_sig_verify(body, bn, good, 71, key, kn) != LC_SIG_OK) fuzz_fail("the oracle's digest did not verify", data, size);
  if (lc_sig_verify(body, bn, good, 70, key, kn) != LC_SIG_MALFORMED) fuzz_fail("a short digest is not malformed", data, size);
  i = 7 + (size_t)(data[0] >> 2) % 64;
  good[i] = good[i] == '0' ? '1' : '0';
  if (lc_sig_verify(body, bn, good, 71, key, kn) != LC_SIG_MISMATCH) fuzz_fail("one changed digit verified", data, size);

  {
    char hex[64];
    const char *h;
    size_t hn;
    lua_settop(G, 0);
    lua_pushcfunction(G, lc_core_hmac_sha256_hex);
    lua_pushlstring(G, key, kn);
    lua_pushlstring(G, body, bn);
    if (lua_pcall(G, 2, 1, 0) != 0) fuzz_fail("hmac_sha256_hex raised", data, size);
    lc_hex_lower(want, 32, hex);
    h = lua_tolstring(G, 1, &hn);
    if (h == NULL || hn != 64 || memcmp(h, hex, 64) != 0)
      fuzz_fail("hmac_sha256_hex differs from the oracle", data, size);
    lua_settop(G, 0);
  }
  if (fuzz_lua_verify(body, bn, NULL, 0, 1, key, kn, data, size) != (kn == 0 ? -1 : LC_SIG_MISSING))
    fuzz_fail("a nil signature is not missing", data, size);
  /* A non-string argument raises. */
  lua_pushcfunction(G, lc_webhook_verify);
  lua_pushlstring(G, body, bn);
  lua_pushnumber(G, (lua_Number)data[0]);
  lua_pushlstring(G, key, kn);
  if (lua_pcall(G, 3, 2, 0) == 0) fuzz_fail("a number signature did not raise", data, size);
  lua_settop(G, 0);
  return 0;
}
