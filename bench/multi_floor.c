/* The multi floor: N fetches of distinct ids through one libcurl multi, at most CONC in flight, as lean as C gets.
   Each run is one whole job on a fresh multi (fresh connections), as one get_many call is.
   Usage: multi_floor URL_PREFIX N CONC RUNS; prints "run WALL_MS" per run, then "rss_kb N" (peak RSS). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <curl/curl.h>

#include "floor_common.h"

typedef struct {
  CURL *e;
  floor_buf body;
  char url[512];
} slot;

static void start(CURLM *m, slot *s, const char *prefix, long id) {
  snprintf(s->url, sizeof s->url, "%s%06ld", prefix, id);
  s->body.len = 0;
  curl_easy_setopt(s->e, CURLOPT_URL, s->url);
  curl_multi_add_handle(m, s->e);
}

/* One job: returns the number of 200 responses. */
static long job(const char *prefix, long n, long conc) {
  CURLM *m = curl_multi_init();
  slot *slots = (slot *)calloc((size_t)conc, sizeof *slots);
  long next = 0, ok = 0, done = 0, i;
  curl_multi_setopt(m, CURLMOPT_MAX_TOTAL_CONNECTIONS, conc);
  curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, conc);
  for (i = 0; i < conc; i++) {
    slots[i].e = curl_easy_init();
    curl_easy_setopt(slots[i].e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(slots[i].e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(slots[i].e, CURLOPT_WRITEDATA, &slots[i].body);
    curl_easy_setopt(slots[i].e, CURLOPT_PRIVATE, &slots[i]);
    if (next < n) start(m, &slots[i], prefix, next++);
  }
  while (done < n) {
    int still, left;
    CURLMsg *msg;
    curl_multi_perform(m, &still);
    while ((msg = curl_multi_info_read(m, &left)) != NULL) {
      slot *s;
      long status = 0;
      if (msg->msg != CURLMSG_DONE) continue;
      curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&s);
      curl_easy_getinfo(s->e, CURLINFO_RESPONSE_CODE, &status);
      if (msg->data.result == CURLE_OK && status == 200 && s->body.len > 0) ok++;
      done++;
      curl_multi_remove_handle(m, s->e);
      if (next < n) start(m, s, prefix, next++);
    }
    if (done < n) curl_multi_poll(m, NULL, 0, 1000, NULL);
  }
  for (i = 0; i < conc; i++) {
    curl_easy_cleanup(slots[i].e);
    free(slots[i].body.data);
  }
  free(slots);
  curl_multi_cleanup(m);
  return ok;
}

int main(int argc, char **argv) {
  long n, conc, runs, r;
  if (argc != 5) {
    fprintf(stderr, "usage: multi_floor URL_PREFIX N CONC RUNS\n");
    return 2;
  }
  n = atol(argv[2]);
  conc = atol(argv[3]);
  runs = atol(argv[4]);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  for (r = 0; r < runs; r++) {
    double t = now_ms();
    long ok = job(argv[1], n, conc);
    t = now_ms() - t;
    if (ok != n) {
      fprintf(stderr, "multi_floor: %ld of %ld fetches failed\n", n - ok, n);
      return 1;
    }
    printf("run %.3f\n", t);
    fflush(stdout);
  }
  printf("rss_kb %ld\n", peak_rss_kb());
  curl_global_cleanup();
  return 0;
}
