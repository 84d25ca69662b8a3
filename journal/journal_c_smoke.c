/*
 * vnvram_journal_c_smoke: proves the journal C API is plain C (built with
 * the C compiler, C11, no extensions) and works on a live device:
 *   vnvram_journal_c_smoke PLATFORM DEVID
 * formats a journal in the first 64 KiB, appends single records and a
 * batch, commits, writes from four threads at once (group commit), reopens
 * and checks every replayed record, trims, checks the error returns and
 * closes. Exit 0 on success, 1 on a failed check (message on stderr), 77
 * without arguments.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vnvram/journal.h"
#include "vnvram/vnvram.h"

#define kJournalBytes 65536u
#define kThreads 4
#define kPerThread 50

static int fail(const char* what, int rc) {
  fprintf(stderr, "journal_c_smoke: %s failed (%d): %s\n", what, rc, vnvram_last_error());
  return 1;
}

/* The payload of record `seq`: 24 bytes naming it. */
static size_t payload_of(uint64_t seq, char* out) {
  return (size_t)snprintf(out, 32, "record %016llu", (unsigned long long)seq);
}

struct replay {
  uint64_t count;
  uint64_t first;
  uint64_t last;
  int bad;
};

static void on_record(void* ctx, uint64_t sequence, uint64_t timestamp_ns, const void* payload,
                      size_t length) {
  struct replay* r = ctx;
  char want[32];
  const size_t n = payload_of(sequence, want);
  if (length != n || memcmp(payload, want, n) != 0 || timestamp_ns == 0) r->bad = 1;
  if (r->count == 0) r->first = sequence;
  if (r->count != 0 && sequence != r->last + 1) r->bad = 1;
  r->last = sequence;
  ++r->count;
}

struct writer_arg {
  vnvram_journal* j;
  int rc;
};

/* Records written by the threads carry their sequence, which is only known
 * once written: they write a fixed text and the replay skips the check of
 * those (they are told apart by length). */
static void* writer(void* p) {
  struct writer_arg* a = p;
  for (int i = 0; i < kPerThread && a->rc == 0; ++i) {
    uint64_t seq = 0;
    a->rc = vnvram_journal_write(a->j, "threaded", 8, &seq);
    if (a->rc == 0 && seq == 0) a->rc = -EIO;
  }
  return NULL;
}

static void on_record_mixed(void* ctx, uint64_t sequence, uint64_t timestamp_ns,
                            const void* payload, size_t length) {
  if (length == 8) {
    struct replay* r = ctx;
    if (memcmp(payload, "threaded", 8) != 0) r->bad = 1;
    if (r->count != 0 && sequence != r->last + 1) r->bad = 1;
    if (r->count == 0) r->first = sequence;
    r->last = sequence;
    ++r->count;
    return;
  }
  on_record(ctx, sequence, timestamp_ns, payload, length);
}

int main(int argc, char** argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: vnvram_journal_c_smoke PLATFORM DEVID\n");
    return 77;
  }
  char* end = NULL;
  unsigned long devid = strtoul(argv[2], &end, 10);
  if (end == argv[2] || *end != '\0') {
    fprintf(stderr, "journal_c_smoke: bad devid '%s'\n", argv[2]);
    return 1;
  }
  vnvram_dev* dev = vnvram_open(argv[1], (uint32_t)devid, 10000);
  if (dev == NULL) return fail("vnvram_open", -errno);

  /* Errors are values. */
  if (vnvram_journal_format(dev, 4, kJournalBytes, NULL) != -EINVAL) {
    return fail("format at an unaligned offset", -EINVAL);
  }
  if (vnvram_journal_open(dev, 0, kJournalBytes, NULL, NULL) != NULL || errno != EBADMSG) {
    fprintf(stderr, "journal_c_smoke: open of an unformatted range: errno %d\n", errno);
    return 1;
  }
  if (vnvram_journal_append(NULL, "x", 1, NULL) != -EINVAL) return fail("NULL handle", -EINVAL);

  const uint8_t uuid[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
  int rc = vnvram_journal_format(dev, 0, kJournalBytes, uuid);
  if (rc != 0) return fail("vnvram_journal_format", rc);
  struct replay r = {0, 0, 0, 0};
  vnvram_journal* j = vnvram_journal_open(dev, 0, kJournalBytes, on_record, &r);
  if (j == NULL) return fail("vnvram_journal_open", -errno);
  if (r.count != 0) return fail("replay of an empty journal", -EIO);

  /* Three single records, then a batch of two, one commit. */
  char buf[5][32];
  for (uint64_t s = 1; s <= 3; ++s) {
    uint64_t seq = 0;
    rc = vnvram_journal_append(j, buf[s - 1], payload_of(s, buf[s - 1]), &seq);
    if (rc != 0 || seq != s) return fail("vnvram_journal_append", rc);
  }
  const void* payloads[2] = {buf[3], buf[4]};
  size_t lengths[2] = {payload_of(4, buf[3]), payload_of(5, buf[4])};
  uint64_t first = 0;
  rc = vnvram_journal_append_batch(j, payloads, lengths, 2, &first);
  if (rc != 0 || first != 4) return fail("vnvram_journal_append_batch", rc);
  struct vnvram_journal_info info;
  if ((rc = vnvram_journal_info(j, &info)) != 0) return fail("vnvram_journal_info", rc);
  if (info.next_sequence != 6 || info.committed_sequence != 0) return fail("info before", -EIO);
  if ((rc = vnvram_journal_commit(j)) != 0) return fail("vnvram_journal_commit", rc);
  if ((rc = vnvram_journal_info(j, &info)) != 0) return fail("vnvram_journal_info", rc);
  if (info.committed_sequence != 5 || info.head_sequence != 1) return fail("info after", -EIO);

  /* Errors: past the committed records, too large, a full log. */
  if ((rc = vnvram_journal_trim(j, 6)) != -ERANGE) return fail("trim past committed", rc);
  static char big[kJournalBytes];
  if ((rc = vnvram_journal_append(j, big, sizeof big, NULL)) != -EINVAL) {
    return fail("append larger than the log", rc);
  }
  const void* many[16];
  size_t many_len[16];
  for (int i = 0; i < 16; ++i) {
    many[i] = big;
    many_len[i] = 8192;
  }
  if ((rc = vnvram_journal_append_batch(j, many, many_len, 16, NULL)) != -ENOSPC) {
    return fail("a batch larger than the free log", rc);
  }

  /* Group commit from four threads. */
  pthread_t threads[kThreads];
  struct writer_arg args[kThreads];
  for (int t = 0; t < kThreads; ++t) {
    args[t].j = j;
    args[t].rc = 0;
    if (pthread_create(&threads[t], NULL, writer, &args[t]) != 0) return fail("pthread", -EIO);
  }
  for (int t = 0; t < kThreads; ++t) {
    pthread_join(threads[t], NULL);
    if (args[t].rc != 0) return fail("vnvram_journal_write", args[t].rc);
  }
  if ((rc = vnvram_journal_info(j, &info)) != 0) return fail("vnvram_journal_info", rc);
  if (info.committed_sequence != 5 + kThreads * kPerThread || info.commits == 0 ||
      info.commits > kThreads * kPerThread) {
    return fail("group commit counters", -EIO);
  }
  const uint64_t commits = info.commits;
  if ((rc = vnvram_journal_close(j)) != 0) return fail("vnvram_journal_close", rc);

  /* Reopen: every record back, in order; then trim the first three. */
  memset(&r, 0, sizeof r);
  j = vnvram_journal_open(dev, 0, kJournalBytes, on_record_mixed, &r);
  if (j == NULL) return fail("vnvram_journal_open again", -errno);
  if (r.bad || r.count != 5 + kThreads * kPerThread || r.first != 1 ||
      r.last != 5 + kThreads * kPerThread) {
    fprintf(stderr, "journal_c_smoke: replayed %llu records %llu..%llu bad=%d\n",
            (unsigned long long)r.count, (unsigned long long)r.first, (unsigned long long)r.last,
            r.bad);
    return 1;
  }
  {
    struct vnvram_journal_replay rep;
    if ((rc = vnvram_journal_replay_report(j, &rep)) != 0) return fail("replay_report", rc);
    if (rep.records != r.count || rep.damaged != 0 || rep.lost_commits != 0 ||
        rep.valid_superblocks != 2) {
      return fail("replay report of a clean journal", -EIO);
    }
    if (vnvram_journal_replay_report(j, NULL) != -EINVAL) return fail("replay_report NULL", -EIO);
  }
  if ((rc = vnvram_journal_trim(j, 3)) != 0) return fail("vnvram_journal_trim", rc);
  vnvram_journal_close(j);
  memset(&r, 0, sizeof r);
  j = vnvram_journal_open(dev, 0, kJournalBytes, on_record_mixed, &r);
  if (j == NULL) return fail("vnvram_journal_open after trim", -errno);
  if (r.bad || r.first != 4 || r.count != 2 + kThreads * kPerThread) {
    return fail("replay after trim", -EIO);
  }
  vnvram_journal_close(j);
  if (vnvram_journal_close(NULL) != 0) return fail("close NULL", -EINVAL);

  rc = vnvram_close(dev);
  if (rc != 0) return fail("vnvram_close", rc);
  printf("journal_c_smoke: ok (%d threads, %d records in %llu commits)\n", kThreads,
         kThreads * kPerThread, (unsigned long long)commits);
  return 0;
}
