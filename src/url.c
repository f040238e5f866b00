/* Percent-encoding of the batch id path segment and of query keys and values (RFC 3986 unreserved kept). */

static int lc_url_unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
         c == '-' || c == '.' || c == '_' || c == '~';
}

/* Appends s[0..n) with every byte outside the unreserved set written as %XX. */
static int lc_url_encode(lc_buf *b, const char *s, size_t n) {
  static const char hex[] = "0123456789ABCDEF";
  size_t i;
  if (n > ((size_t)-1) / 3) return -1; /* n * 3 would wrap (a 32-bit size_t, a 1.4 GB string) */
  if (lc_buf_reserve(b, n * 3) != 0) return -1;
  for (i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (lc_url_unreserved(c)) {
      b->data[b->len++] = (char)c;
    } else {
      b->data[b->len++] = '%';
      b->data[b->len++] = hex[c >> 4];
      b->data[b->len++] = hex[c & 15];
    }
  }
  b->data[b->len] = '\0';
  return 0;
}

/* An id is one path segment: never empty, never a dot segment that a server could resolve. */
static const char *lc_url_check_id(const char *id, size_t n) {
  if (n == 0) return "batch_id must not be empty";
  if ((n == 1 && id[0] == '.') || (n == 2 && id[0] == '.' && id[1] == '.'))
    return "batch_id must not be '.' or '..'";
  return NULL;
}

/* Appends "?k=v" or "&k=v", both encoded. */
static int lc_url_add_query(lc_buf *b, int *first, const char *k, size_t kn, const char *v, size_t vn) {
  if (lc_buf_add(b, *first ? "?" : "&", 1) != 0) return -1;
  *first = 0;
  if (lc_url_encode(b, k, kn) != 0 || lc_buf_add(b, "=", 1) != 0) return -1;
  return lc_url_encode(b, v, vn);
}
