/* A growable byte buffer for bodies, header blocks and URLs; freed by its owner with lc_buf_free. */
#include <stdlib.h>
#include <string.h>

typedef struct lc_buf {
  char *data;
  size_t len;
  size_t cap;
} lc_buf;

static int lc_buf_reserve(lc_buf *b, size_t extra) {
  size_t need, cap;
  char *p;
  if (extra > (size_t)-1 - b->len - 1) return -1;
  need = b->len + extra + 1; /* +1 keeps room for a terminating NUL */
  if (need <= b->cap) return 0;
  cap = b->cap ? b->cap : 256;
  while (cap < need) cap = cap > ((size_t)-1) / 2 ? need : cap * 2;
  p = (char *)realloc(b->data, cap);
  if (p == NULL) return -1;
  b->data = p;
  b->cap = cap;
  return 0;
}

/* Grows b's capacity to exactly cap bytes (nothing when it has that much). */
static int lc_buf_grow_to(lc_buf *b, size_t cap) {
  char *p;
  if (cap <= b->cap) return 0;
  if ((p = (char *)realloc(b->data, cap)) == NULL) return -1;
  b->data = p;
  b->cap = cap;
  return 0;
}

static int lc_buf_add(lc_buf *b, const char *s, size_t n) {
  if (lc_buf_reserve(b, n) != 0) return -1;
  if (n) memcpy(b->data + b->len, s, n);
  b->len += n;
  b->data[b->len] = '\0';
  return 0;
}

static int lc_buf_adds(lc_buf *b, const char *s) { return lc_buf_add(b, s, strlen(s)); }

static void lc_buf_clear(lc_buf *b) {
  b->len = 0;
  if (b->data) b->data[0] = '\0';
}

/* Empties b and gives back its memory beyond cap bytes (kept as it is if realloc fails). */
static void lc_buf_shrink(lc_buf *b, size_t cap) {
  char *p;
  lc_buf_clear(b);
  if (b->cap <= cap || cap == 0) return;
  if ((p = (char *)realloc(b->data, cap)) == NULL) return;
  b->data = p;
  b->cap = cap;
}

static void lc_buf_free(lc_buf *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}
