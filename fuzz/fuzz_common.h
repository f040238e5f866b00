/* Shared by the libFuzzer targets (fuzz/<name>_fuzz.c): the failure report and the Lua state a target keeps.
   A target defines FUZZ_NAME ("retry_fuzz") and includes this after ../src/compat.h and the sources. */
#ifndef FUZZ_COMMON_H
#define FUZZ_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h> /* abort */

/* Says why and shows the input (printable ASCII as it is, other bytes as \xNN, the first 512), then
   aborts, so libFuzzer saves the input as a crash. */
static void fuzz_fail(const char *why, const uint8_t *data, size_t size) __attribute__((unused));
static void fuzz_fail(const char *why, const uint8_t *data, size_t size) {
  size_t i;
  fprintf(stderr, FUZZ_NAME ": %s\ninput (%zu bytes): ", why, size);
  for (i = 0; i < size && i < 512; i++) {
    unsigned char c = data[i];
    if (c >= 0x20 && c < 0x7f && c != '\\') fputc(c, stderr);
    else fprintf(stderr, "\\x%02x", c);
  }
  fputc('\n', stderr);
  abort();
}

/* The one Lua state of a target that needs one, kept across inputs: made on the first input by
   fuzz_open_state, with the standard libraries open. */
static lua_State *G __attribute__((unused));

static void fuzz_open_state(void) __attribute__((unused));
static void fuzz_open_state(void) {
  G = luaL_newstate();
  luaL_openlibs(G);
}

#endif
