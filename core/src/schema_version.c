/* Schema version strings: rs/xid ids, as Permify mints them. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "schema.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int ready;
static uint8_t machine[3];
static uint32_t counter; /* 24 bits used */
static uint32_t last_seconds;

static uint32_t fnv1a(const uint8_t *p, size_t n, uint32_t h) {
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 16777619u;
  return h;
}

/* Fills buf from path; returns the byte count (0 if unreadable). */
static size_t read_file(const char *path, uint8_t *buf, size_t size) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) return 0;
  size_t n = fread(buf, 1, size, f);
  fclose(f);
  return n;
}

/* xid takes its machine bytes from a hash of the host's machine id and starts
 * its counter at a random value. */
static void init_once(void) {
  uint8_t buf[256];
  size_t n = read_file("/etc/machine-id", buf, sizeof buf);
  if (n == 0 && gethostname((char *)buf, sizeof buf - 1) == 0)
    n = strnlen((char *)buf, sizeof buf - 1);
  uint32_t h = fnv1a(buf, n, 2166136261u);
  machine[0] = (uint8_t)(h >> 16);
  machine[1] = (uint8_t)(h >> 8);
  machine[2] = (uint8_t)h;
  uint8_t seed[4] = {0};
  if (read_file("/dev/urandom", seed, sizeof seed) != sizeof seed) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    memcpy(seed, &ts.tv_nsec, sizeof seed);
  }
  /* Start in the lower half of the 24-bit range so the counter does not wrap
   * (which would break ordering within a second) before 2^23 versions. */
  counter = (uint32_t)(seed[0] | seed[1] << 8 | seed[2] << 16) & 0x7fffffu;
  ready = 1;
}

void tc_schema_version_new(char out[21]) {
  static const char alphabet[] = "0123456789abcdefghijklmnopqrstuv";
  uint8_t id[12];
  pthread_mutex_lock(&lock);
  if (!ready) init_once();
  uint32_t now = (uint32_t)time(NULL);
  /* A clock stepping back must not make a later version sort earlier. */
  if (now < last_seconds) now = last_seconds;
  last_seconds = now;
  uint32_t c = counter;
  counter = (counter + 1) & 0xffffffu;
  pthread_mutex_unlock(&lock);
  uint32_t pid = (uint32_t)getpid();
  id[0] = (uint8_t)(now >> 24);
  id[1] = (uint8_t)(now >> 16);
  id[2] = (uint8_t)(now >> 8);
  id[3] = (uint8_t)now;
  memcpy(id + 4, machine, 3);
  id[7] = (uint8_t)(pid >> 8);
  id[8] = (uint8_t)pid;
  id[9] = (uint8_t)(c >> 16);
  id[10] = (uint8_t)(c >> 8);
  id[11] = (uint8_t)c;
  /* base32hex without padding: 96 bits in twenty 5-bit digits, the last one
   * padded with zero bits. */
  for (int i = 0; i < 20; i++) {
    int bit = i * 5, v = 0;
    for (int k = 0; k < 5; k++, bit++)
      v = v << 1 | (bit < 96 ? (id[bit / 8] >> (7 - bit % 8)) & 1 : 0);
    out[i] = alphabet[v];
  }
  out[20] = '\0';
}
