// PersistSink: where the ring server sends "make these bytes durable". The
// local sink only advances a sequence number (the region already lives in
// this daemon's memory); the replication engine implements the same
// interface later. Implementations must be thread-safe: vnvramd may read
// DurableSeq() from its status publisher while a ring worker persists.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <span>

#include "common/result.h"

namespace vnvram::backend {

// A byte range of the region, already validated against its size.
struct ByteRange {
  uint64_t offset = 0;
  uint64_t length = 0;
};

// What a replicated volume's sink tells the device about replication (the
// backend device keys role, epoch and replication-state).
struct SinkReplication {
  enum class Role : uint8_t { kPrimary, kReplica, kFenced };
  enum class Summary : uint8_t { kInSync, kDegraded, kSyncing, kStandalone };
  Role role = Role::kPrimary;
  uint64_t epoch = 0;
  Summary summary = Summary::kStandalone;
  bool primary_link = true;  // the primary of `epoch` is reachable (or is us)
  bool operator==(const SinkReplication&) const = default;
};

class PersistSink {
 public:
  virtual ~PersistSink() = default;

  // Makes [offset, offset + length) durable (the caller guarantees it is
  // inside the region) and returns a sequence number that covers it; once
  // returned, DurableSeq() >= that number. An error (kIoError,
  // kUnavailable, ...) means the range is not known to be durable.
  virtual Result<uint64_t> Persist(uint64_t offset, uint64_t length) = 0;

  // Group commit: makes every range durable in one step and returns one
  // sequence number covering all of them. `ranges` is non-empty. The
  // default calls Persist() per range and returns the last sequence; a
  // replicating sink overrides it to ship the batch as one message.
  virtual Result<uint64_t> PersistBatch(std::span<const ByteRange> ranges);

  // The highest sequence number known durable; never decreases.
  virtual uint64_t DurableSeq() const = 0;

  // Replication state for a replicated volume; nullopt for a local one.
  virtual std::optional<SinkReplication> Replication() const { return std::nullopt; }
};

// The sink of a volume with no replicas: every Persist() is one more
// sequence number. Thread-safe (one atomic).
class LocalPersistSink final : public PersistSink {
 public:
  explicit LocalPersistSink(uint64_t start_seq = 0) : seq_(start_seq) {}
  Result<uint64_t> Persist(uint64_t offset, uint64_t length) override;
  Result<uint64_t> PersistBatch(std::span<const ByteRange> ranges) override;
  uint64_t DurableSeq() const override { return seq_.load(std::memory_order_acquire); }

 private:
  std::atomic<uint64_t> seq_;
};

}  // namespace vnvram::backend
