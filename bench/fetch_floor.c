/* The fetch floor: one reused libcurl easy handle fetching one URL into one reused buffer, as lean as C gets.
   Usage: fetch_floor URL CALLS RUNS; prints "run MS_PER_CALL" per run, then "rss_kb N" (peak RSS). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <curl/curl.h>

#include "floor_common.h"

static int fetch(CURL *e, floor_buf *b) {
  long status = 0;
  CURLcode rc;
  b->len = 0;
  rc = curl_easy_perform(e);
  curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
  if (rc != CURLE_OK || status != 200 || b->len == 0) {
    fprintf(stderr, "fetch_floor: %s, status %ld\n", curl_easy_strerror(rc), status);
    return -1;
  }
  return 0;
}

int main(int argc, char **argv) {
  floor_buf b = {NULL, 0, 0};
  CURL *e;
  long calls, runs, i, r;
  if (argc != 4) {
    fprintf(stderr, "usage: fetch_floor URL CALLS RUNS\n");
    return 2;
  }
  calls = atol(argv[2]);
  runs = atol(argv[3]);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  e = curl_easy_init();
  curl_easy_setopt(e, CURLOPT_URL, argv[1]);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, &b);
  if (fetch(e, &b) != 0) return 1; /* connects, and sizes the buffer */
  for (r = 0; r < runs; r++) {
    double t = now_ms();
    for (i = 0; i < calls; i++)
      if (fetch(e, &b) != 0) return 1;
    printf("run %.6f\n", (now_ms() - t) / (double)calls);
    fflush(stdout);
  }
  printf("rss_kb %ld\n", peak_rss_kb());
  curl_easy_cleanup(e);
  free(b.data);
  curl_global_cleanup();
  return 0;
}
