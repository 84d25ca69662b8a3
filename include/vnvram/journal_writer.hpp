// vnvram::JournalWriter: group commit on a vnvram::Journal. Any number of
// threads call write(); the first one in line becomes the leader, appends
// the records of every thread waiting behind it and commits them all with
// one persist; each caller returns when its own record is durable (or with
// the error that stopped it). A slow persist thus carries the records that
// queued while it ran, and the commit rate follows the device's latency
// instead of the number of threads. docs/journal.md, "Group commit".
//
// Thread-safety: every method may be called from any thread. While a
// JournalWriter exists, the Journal is used only through it (write(),
// trim(), with_journal()); the Journal must outlive it.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <span>
#include <vector>

#include "common/result.h"
#include "common/status.h"
#include "vnvram/journal.hpp"

namespace vnvram {

class JournalWriter {
 public:
  struct Stats {
    uint64_t records = 0;        // appended through write()
    uint64_t commits = 0;        // commits the leaders ran
    uint64_t largest_group = 0;  // most write() calls one commit carried
  };

  // `max_group`: at most this many write() calls share one commit (> 0).
  explicit JournalWriter(Journal& journal, size_t max_group = 256);
  // Callers still inside write() must have returned.
  ~JournalWriter();
  JournalWriter(const JournalWriter&) = delete;
  JournalWriter& operator=(const JournalWriter&) = delete;

  // Appends `payload` as one record and returns its sequence number once
  // it is durable. Errors as Journal::append() and Journal::commit(); a
  // commit error means the record's outcome is unknown (a later commit may
  // still make it durable).
  Result<uint64_t> write(std::span<const std::byte> payload);
  // The same for several records, consecutive in the log and durable
  // together (all or none after a crash); returns the first's sequence.
  Result<uint64_t> write_batch(std::span<const std::span<const std::byte>> payloads);
  // Journal::trim() under the writer's lock.
  Status trim(uint64_t sequence);
  // Runs `fn` on the journal under the writer's lock, for what the writer
  // does not wrap (the accessors, a plain append()). Records `fn` appends
  // without committing are committed by the next group's commit.
  Status with_journal(const std::function<Status(Journal&)>& fn);
  Stats stats() const;

 private:
  struct Waiter {
    std::span<const std::span<const std::byte>> payloads;
    Result<uint64_t> result = Status::Internal("journal writer: not written");
    bool done = false;
    std::condition_variable cv;
  };
  // The leader's work: appends and commits `group` (journal_mu_ held).
  void WriteGroup(const std::vector<Waiter*>& group);

  Journal& journal_;
  const size_t max_group_;

  // Guarded by queue_mu_: the callers waiting, the leader first.
  mutable std::mutex queue_mu_;
  std::deque<Waiter*> queue_;

  // Guarded by journal_mu_: the journal and the statistics.
  mutable std::mutex journal_mu_;
  Stats stats_;
};

}  // namespace vnvram
