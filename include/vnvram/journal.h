/*
 * libvnvram journal C API: a thin layer over vnvram::Journal and
 * vnvram::JournalWriter (journal.hpp, journal_writer.hpp) for C programs.
 * A vnvram_journal handle owns one open journal in a range of an open
 * vnvram_dev (which must stay open while the journal is). Thread-safety:
 * calls on one handle may come from any thread (they are serialised
 * inside); vnvram_journal_write() from several threads shares commits
 * (group commit). Functions return 0 or a negative errno value, as
 * vnvram.h: -EINVAL (bad argument), -ENOSPC (the log is full: trim),
 * -ERANGE (trim past the committed records), -EBADMSG (no valid journal
 * in the range), -ENODEV (the device has no mapping), -ETIMEDOUT/-EIO
 * (a persist failed); a one-line message is left for vnvram_last_error().
 * docs/journal.md describes the journal; docs/journal-format.md its format.
 */
#ifndef VNVRAM_JOURNAL_H
#define VNVRAM_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

#include "vnvram/vnvram.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct vnvram_journal vnvram_journal;

/* Gets each replayed record at open, in order: its sequence number, its
 * append time (ns since the Unix epoch) and its payload (valid during the
 * call only). It must not call the device or the journal. */
typedef void (*vnvram_journal_record_fn)(void* ctx, uint64_t sequence, uint64_t timestamp_ns,
                                         const void* payload, size_t length);

struct vnvram_journal_info {
  uint64_t head_sequence;      /* first live record (== next when none) */
  uint64_t next_sequence;      /* what the next append gets */
  uint64_t committed_sequence; /* last committed record (head - 1 when none) */
  uint64_t free_bytes;         /* log bytes no live record holds */
  uint64_t log_size;           /* bytes of the circular log */
  uint64_t commits;            /* commits vnvram_journal_write() ran */
};

/* What the replay at open found where it stopped. */
struct vnvram_journal_replay {
  uint64_t records;      /* committed records replayed */
  uint64_t uncommitted;  /* whole records after the last commit, dropped */
  int damaged;           /* 1: stopped at a record failing its checks */
  int lost_commits;      /* 1: committed records were lost there: corrupt */
  int valid_superblocks; /* 1 or 2 */
};

/* Writes an empty journal over [offset, offset + length) of the device and
 * persists it. offset and length are multiples of 8, length >= 8192.
 * `uuid` (16 bytes) names the journal; NULL: a random one. */
int vnvram_journal_format(vnvram_dev* dev, uint64_t offset, uint64_t length, const uint8_t* uuid);

/* Opens the journal in [offset, offset + length) and replays its committed
 * records through `on_record` (may be NULL) with `ctx`. Returns NULL on
 * error with errno set (positive) and vnvram_last_error(). */
vnvram_journal* vnvram_journal_open(vnvram_dev* dev, uint64_t offset, uint64_t length,
                                    vnvram_journal_record_fn on_record, void* ctx);

/* Stores one record after the tail (not durable until a commit); its
 * sequence number goes to *sequence (may be NULL). */
int vnvram_journal_append(vnvram_journal* j, const void* payload, size_t length,
                          uint64_t* sequence);
/* Stores `count` records as consecutive records, or none of them; the first
 * one's sequence number goes to *first_sequence (may be NULL). */
int vnvram_journal_append_batch(vnvram_journal* j, const void* const* payloads,
                                const size_t* lengths, size_t count, uint64_t* first_sequence);
/* Makes every record appended so far durable (one persist). */
int vnvram_journal_commit(vnvram_journal* j);
/* Appends one record and returns once it is durable: group commit, so that
 * threads calling it at once share one persist. */
int vnvram_journal_write(vnvram_journal* j, const void* payload, size_t length, uint64_t* sequence);
/* Drops the committed records up to and including `sequence`. */
int vnvram_journal_trim(vnvram_journal* j, uint64_t sequence);
/* The journal's counters. */
int vnvram_journal_info(vnvram_journal* j, struct vnvram_journal_info* out);
/* What the replay at open found. */
int vnvram_journal_replay_report(vnvram_journal* j, struct vnvram_journal_replay* out);

/* Frees the handle (appended, uncommitted records are not committed). The
 * device stays open. NULL is accepted. */
int vnvram_journal_close(vnvram_journal* j);

#ifdef __cplusplus
}
#endif

#endif /* VNVRAM_JOURNAL_H */
