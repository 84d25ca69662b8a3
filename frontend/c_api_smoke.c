/*
 * vnvram_c_api_smoke: proves the C API is plain C (built with the C
 * compiler, C11, no extensions) and works against a live device:
 *   vnvram_c_api_smoke PLATFORM DEVID
 * opens the device, stores and persists a pattern through the mapped
 * region, reads it back in copy mode, writes in copy mode and reads the
 * bytes through the mapping, checks error returns, closes. Exit 0 on
 * success, 1 on a failed check (message on stderr), 77 without arguments.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vnvram/vnvram.h"

static int fail(const char* what, int rc) {
  fprintf(stderr, "c_api_smoke: %s failed (%d): %s\n", what, rc, vnvram_last_error());
  return 1;
}

int main(int argc, char** argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: vnvram_c_api_smoke PLATFORM DEVID\n");
    return 77;
  }
  char* end = NULL;
  unsigned long devid = strtoul(argv[2], &end, 10);
  if (end == argv[2] || *end != '\0') {
    fprintf(stderr, "c_api_smoke: bad devid '%s'\n", argv[2]);
    return 1;
  }
  vnvram_dev* dev = vnvram_open(argv[1], (uint32_t)devid, 10000);
  if (dev == NULL) return fail("vnvram_open", -errno);

  size_t size = 0;
  uint64_t gen = 0;
  unsigned char* region = vnvram_region(dev, &size, &gen);
  if (region == NULL || size < 32768 || gen != 1) return fail("vnvram_region", -EINVAL);

  /* Work in the last 16 KiB, away from what other programs keep. */
  const uint64_t base = size - 16384;
  region += base - 8192; /* so that the offsets below land in [base, size) */

  /* Direct stores + persist. */
  for (size_t i = 0; i < 4096; ++i) region[8192 + i] = (unsigned char)(i * 7 + 1);
  int rc = vnvram_persist(dev, base, 4096);
  if (rc != 0) return fail("vnvram_persist", rc);

  /* Copy-mode read of what was stored directly. */
  unsigned char buf[4096];
  rc = vnvram_read(dev, base, buf, sizeof buf);
  if (rc != 0) return fail("vnvram_read", rc);
  if (memcmp(buf, region + 8192, sizeof buf) != 0) return fail("read-back compare", -EIO);

  /* Copy-mode write, seen through the mapping. */
  memset(buf, 0xA5, sizeof buf);
  rc = vnvram_write(dev, base + 4096 + 100, buf, 1000);
  if (rc != 0) return fail("vnvram_write", rc);
  if (region[12288 + 100] != 0xA5 || region[12288 + 1099] != 0xA5) {
    return fail("write visible in the mapping", -EIO);
  }

  /* Batching. */
  for (int i = 0; i < 16; ++i) {
    rc = vnvram_persist_async(dev, base + (uint64_t)i * 64, 64);
    if (rc != 0) return fail("vnvram_persist_async", rc);
  }
  if ((rc = vnvram_barrier(dev)) != 0) return fail("vnvram_barrier", rc);
  if ((rc = vnvram_flush(dev)) != 0) return fail("vnvram_flush", rc);
  if ((rc = vnvram_drain(dev)) != 0) return fail("vnvram_drain", rc);
  if ((rc = vnvram_memcpy_persist(dev, base + 8192, "hello", 5)) != 0) {
    return fail("vnvram_memcpy_persist", rc);
  }

  /* Errors are values. */
  rc = vnvram_persist(dev, size - 1, 2);
  if (rc != -ERANGE || vnvram_last_error()[0] == '\0') {
    fprintf(stderr, "c_api_smoke: out-of-range persist returned %d\n", rc);
    return 1;
  }
  if (vnvram_persist(NULL, 0, 1) != -EINVAL) return fail("NULL handle check", -EINVAL);
  if (vnvram_durable_seq(dev) == 0) return fail("vnvram_durable_seq", -EIO);

  rc = vnvram_close(dev);
  if (rc != 0) return fail("vnvram_close", rc);
  if (vnvram_open_volume(argv[1], "not-a-uuid", 1000) != NULL || errno != EINVAL) {
    return fail("vnvram_open_volume with a bad UUID", -errno);
  }
  printf("c_api_smoke: ok (%zu-byte region)\n", size);
  return 0;
}
