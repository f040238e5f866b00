/* Webhook signatures: llamacloud.webhooks.verify and core.hmac_sha256_hex, HMAC-SHA256 through libcrypto.
   Built without libcrypto (LC_NO_CRYPTO, set by the Makefile when pkg-config finds none) both raise at call
   time, so require still works (spec/webhooks_spec.lua, "without libcrypto"). */
#ifndef LC_NO_CRYPTO
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/opensslv.h>

#define LC_SIG_PREFIX "sha256="
#define LC_SIG_PREFIX_LEN 7
#define LC_SHA256_LEN 32
#define LC_SIG_LEN (LC_SIG_PREFIX_LEN + 2 * LC_SHA256_LEN)

enum lc_sig_verdict { LC_SIG_OK, LC_SIG_MISSING, LC_SIG_MALFORMED, LC_SIG_MISMATCH, LC_SIG_FAILED };

static const char *const lc_sig_reasons[] = {NULL, "missing", "malformed", "mismatch", NULL};

static int lc_hex_digit(unsigned char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* The LC-Signature value's digest into out: LC_SIG_OK, LC_SIG_MISSING (NULL or empty) or LC_SIG_MALFORMED
   (anything but "sha256=" and 64 hex digits in either case). Branches only on the caller's bytes. */
static enum lc_sig_verdict lc_sig_parse(const char *sig, size_t n, unsigned char out[LC_SHA256_LEN]) {
  size_t i;
  if (sig == NULL || n == 0) return LC_SIG_MISSING;
  if (n != LC_SIG_LEN || memcmp(sig, LC_SIG_PREFIX, LC_SIG_PREFIX_LEN) != 0) return LC_SIG_MALFORMED;
  for (i = 0; i < LC_SHA256_LEN; i++) {
    int hi = lc_hex_digit((unsigned char)sig[LC_SIG_PREFIX_LEN + 2 * i]);
    int lo = lc_hex_digit((unsigned char)sig[LC_SIG_PREFIX_LEN + 2 * i + 1]);
    if (hi < 0 || lo < 0) return LC_SIG_MALFORMED;
    out[i] = (unsigned char)(hi << 4 | lo);
  }
  return LC_SIG_OK;
}

static void lc_hex_lower(const unsigned char *in, size_t n, char *out) {
  static const char digits[] = "0123456789abcdef";
  size_t i;
  for (i = 0; i < n; i++) {
    out[2 * i] = digits[in[i] >> 4];
    out[2 * i + 1] = digits[in[i] & 15];
  }
}

/* HMAC-SHA256 of msg keyed with key into out; 0, or -1 when libcrypto refuses (out of memory, or a FIPS
   provider turning down a short key). key is never NULL: to libcrypto 3 a NULL key means "no new key", which
   fails on a fresh context, while "" is the empty key HMAC defines. */
static int lc_hmac_sha256(const char *key, size_t keylen, const char *msg, size_t n, unsigned char out[LC_SHA256_LEN]) {
  unsigned int len = 0;
  if (key == NULL) key = "";
  if (keylen > INT_MAX) return -1;
  if (HMAC(EVP_sha256(), key, (int)keylen, (const unsigned char *)msg, n, out, &len) == NULL) return -1;
  return len == LC_SHA256_LEN ? 0 : -1;
}

/* The verdict on a delivery: the signature's shape first (cheap, and says nothing about the secret), then
   the HMAC of the raw body, compared with CRYPTO_memcmp so the time taken does not depend on how many
   leading bytes match. The body is only hashed, never read as anything else. */
static enum lc_sig_verdict lc_sig_verify(const char *body, size_t n, const char *sig, size_t siglen,
                                         const char *key, size_t keylen) {
  unsigned char given[LC_SHA256_LEN], want[LC_SHA256_LEN];
  enum lc_sig_verdict v = lc_sig_parse(sig, siglen, given);
  if (v != LC_SIG_OK) return v;
  if (lc_hmac_sha256(key, keylen, body, n, want) != 0) return LC_SIG_FAILED;
  v = CRYPTO_memcmp(given, want, LC_SHA256_LEN) == 0 ? LC_SIG_OK : LC_SIG_MISMATCH;
  OPENSSL_cleanse(want, sizeof want);
  return v;
}

#endif

/* A string argument, or an argerror naming it. */
static const char *lc_webhook_string(lua_State *L, int idx, const char *name, size_t *n) {
  if (lua_type(L, idx) != LUA_TSTRING)
    luaL_argerror(L, idx, lua_pushfstring(L, "%s must be a string (got %s)", name, luaL_typename(L, idx)));
  return lua_tolstring(L, idx, n);
}

/* ok, why = verify(raw_body, signature, secret): the arguments are checked before libcrypto is asked for. */
static int lc_webhook_verify(lua_State *L) {
  size_t n, siglen = 0, keylen;
  const char *body, *sig = NULL, *key;
  body = lc_webhook_string(L, 1, "raw_body", &n);
  if (!lua_isnoneornil(L, 2) && lua_type(L, 2) != LUA_TSTRING)
    luaL_argerror(L, 2, lua_pushfstring(L, "signature must be a string or nil (got %s)", luaL_typename(L, 2)));
  if (!lua_isnoneornil(L, 2)) sig = lua_tolstring(L, 2, &siglen);
  key = lc_webhook_string(L, 3, "secret", &keylen);
  /* An unset secret read as "" would let anyone sign (spec/webhooks_spec.lua, "an empty secret"). */
  if (keylen == 0) luaL_argerror(L, 3, "secret must not be empty");
#ifdef LC_NO_CRYPTO
  (void)body, (void)sig, (void)key;
  return luaL_error(L, "llamacloud: webhooks.verify needs libcrypto, and this build has none: "
                       "rebuild with libssl-dev installed (pkg-config libcrypto)");
#else
  {
    enum lc_sig_verdict v = lc_sig_verify(body, n, sig, siglen, key, keylen);
    if (v == LC_SIG_FAILED) return luaL_error(L, "llamacloud: webhooks.verify: HMAC-SHA256 failed in libcrypto");
    lua_pushboolean(L, v == LC_SIG_OK);
    if (v == LC_SIG_OK) return 1;
    lua_pushstring(L, lc_sig_reasons[v]);
    return 2;
  }
#endif
}

/* hex = core.hmac_sha256_hex(key, msg): lower-case hex, for whoever signs deliveries (the fake server). */
static int lc_core_hmac_sha256_hex(lua_State *L) {
  size_t keylen, n;
  const char *key = lc_webhook_string(L, 1, "key", &keylen);
  const char *msg = lc_webhook_string(L, 2, "msg", &n);
#ifdef LC_NO_CRYPTO
  (void)key, (void)msg;
  return luaL_error(L, "llamacloud: hmac_sha256_hex needs libcrypto, and this build has none: "
                       "rebuild with libssl-dev installed (pkg-config libcrypto)");
#else
  unsigned char mac[LC_SHA256_LEN];
  char hex[2 * LC_SHA256_LEN];
  if (lc_hmac_sha256(key, keylen, msg, n, mac) != 0)
    return luaL_error(L, "llamacloud: hmac_sha256_hex: HMAC-SHA256 failed in libcrypto");
  lc_hex_lower(mac, LC_SHA256_LEN, hex);
  lua_pushlstring(L, hex, sizeof hex);
  return 1;
#endif
}

/* Sets webhook_verify, hmac_sha256_hex and crypto_version (libcrypto's version, or false) on the table on top. */
static void lc_webhook_open(lua_State *L) {
  lua_pushcfunction(L, lc_webhook_verify);
  lua_setfield(L, -2, "webhook_verify");
  lua_pushcfunction(L, lc_core_hmac_sha256_hex);
  lua_setfield(L, -2, "hmac_sha256_hex");
#ifdef LC_NO_CRYPTO
  lua_pushboolean(L, 0);
#else
  lua_pushstring(L, OpenSSL_version(OPENSSL_VERSION));
#endif
  lua_setfield(L, -2, "crypto_version");
}
