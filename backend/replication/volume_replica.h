// VolumeReplica: one replicated volume on one host: this host's copy of the
// region (the "engine copy"), its position (content epoch and sequence), its
// promise, its role, and on the primary the fan-out set (the replicas every
// REPLICATE goes to, with their flow-control accounting) and the durable
// sequence persists wait for. The replica-side rules (apply in order, fence
// older epochs, report gaps, resync chunks) live here as pure logic; the
// engine (engine.h) owns the sockets and lends one FrameLink per peer.
// Thread-safe: ring workers call PersistBatch(), which queues its frames to
// the links itself, while the engine's I/O thread calls the rest. Two
// mutexes: send_mu_ orders everything queued to the links (persists, resync
// chunks), mu_ guards the state; lock order send_mu_, mu_, a link's own
// (FrameLink::Send), and no link is used under mu_.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "backend/persist_sink.h"
#include "backend/replication/cluster_config.h"
#include "backend/replication/dirty_history.h"
#include "backend/replication/message.h"
#include "backend/replication/volume_state_file.h"
#include "common/clock.h"
#include "common/result.h"

namespace vnvram::replication {

enum class Role : uint8_t {
  kReplica,    // holds a copy; applies what the primary sends
  kCandidate,  // asked the group for a new epoch; not serving yet
  kPrimary,    // primary of epoch(); serving() once a majority holds its content
  kFenced,     // was primary, saw a newer epoch; refuses persists
};
std::string_view RoleName(Role r);

// A replica that has this many bytes queued and unacknowledged is slow: it
// is dropped from the fan-out (the engine marks it outdated and resyncs it)
// rather than queued more.
inline constexpr uint64_t kMaxUnackedBytes = 64u << 20;

// The ordered stream of frames from this host to one peer (the engine's data
// DEALER to it). Thread-safe.
class FrameLink {
 public:
  virtual ~FrameLink() = default;
  // Queues `frame` without blocking; false when it cannot be queued (not
  // connected, high-water mark, closed). Never takes a volume's mutex.
  virtual bool Send(std::span<const std::byte> frame) = 0;
  // The same for a frame shared by several links: an implementation may
  // send it without copying, keeping `frame` alive until it is on the wire.
  virtual bool Send(const std::shared_ptr<const Bytes>& frame) {
    return Send(std::span<const std::byte>(*frame));
  }
};

// What the persisting threads left for the engine since it last looked.
struct FanOutNews {
  // Replicas dropped from the fan-out, with why (a frame could not be
  // queued, or too much is unacknowledged): the engine marks them outdated.
  std::vector<std::pair<std::string, std::string>> dropped;
  // A persist went out with no in-sync replica to acknowledge it: the
  // durable sequence may follow from the majority rule alone.
  bool recompute = false;
};

// What the replica side answers to one frame (nothing, an ACK or a GAP).
struct ReplicaAnswer {
  std::optional<Message> reply;
  bool changed = false;  // position or promise moved (publish status)
};

// A snapshot for status publishing.
struct VolumeView {
  Role role = Role::kReplica;
  bool serving = false;
  bool vouch = false;
  bool forced = false;
  uint64_t epoch = 0;  // the epoch this host serves or follows (its promise)
  uint64_t promise = 0;
  uint64_t content_epoch = 0;
  uint64_t content_seq = 0;
  uint64_t durable_seq = 0;
  uint64_t syncing_epoch = 0;  // non-zero while receiving a resync
};

class VolumeReplica {
 public:
  // `state_dir` holds the vault and the state file; `wake` tells the engine
  // that there is FanOutNews (called without the lock held).
  VolumeReplica(VolumeEntry entry, std::string self, const ReplicationSettings& settings,
                std::string state_dir, const Clock& clock, std::function<void()> wake);
  VolumeReplica(const VolumeReplica&) = delete;
  VolumeReplica& operator=(const VolumeReplica&) = delete;

  const VolumeEntry& entry() const { return entry_; }
  const Uuid& uuid() const { return entry_.uuid; }

  // Start-up: restores the copy from the vault and the position, promise and
  // vouching from the state file (docs/replication.md "Vouching"), then
  // marks the state file not-clean. kCorruption for a bad vault or state.
  Status Load();
  // Writes the vault of the copy and the state file (`clean` on shutdown).
  Status Vault(bool clean);
  bool vault_current() const;

  // ---- ring worker side (any thread) ----

  // The guest's region: the copy is written into it now, and persists copy
  // from it. Cleared by DetachRegion (the region is being freed).
  void AttachRegion(std::span<std::byte> region);
  void DetachRegion();
  // Group commit of `ranges` of the attached region: copies them into the
  // copy under new sequences and queues their REPLICATE frames to every
  // replica of the fan-out (under send_mu_ throughout, so each stream
  // carries them in sequence order), then waits per policy until durable
  // (sync) or sent (async). kFailedPrecondition when this host is not the
  // serving primary (fenced, replica), kUnavailable when the replicas do not
  // answer within `timeout`. The wait spins (yielding) for up to `spin`
  // before it blocks.
  Result<uint64_t> PersistBatch(std::span<const backend::ByteRange> ranges, Nanos timeout,
                                Nanos spin = Nanos{0});
  uint64_t DurableSeq() const;

  // ---- engine I/O thread ----

  VolumeView View() const;
  // Raises the durable sequence (sync: acknowledged per the majority rule)
  // and wakes waiting persists (yielding the CPU to one that spins).
  void SetDurable(uint64_t seq);

  // The primary's fan-out. Frames go to `host` over `link` from now on
  // (every later REPLICATE, and the resync's chunks); `in_sync` replicas
  // count their unacknowledged bytes against kMaxUnackedBytes and their
  // requested acks against the engine's timeout, syncing ones do not (they
  // acknowledge nothing before RESYNC_DONE). Changing a replica to in-sync
  // keeps its link and starts its accounting empty.
  void SetFanOut(const std::string& host, std::shared_ptr<FrameLink> link, bool in_sync);
  void RemoveFanOut(const std::string& host);
  void ClearFanOut();
  // `host` applied everything through `seq` (a cumulative ACK).
  void FanOutAcked(const std::string& host, uint64_t seq);
  FanOutNews TakeFanOutNews();
  // In-sync replicas with a requested ack outstanding for longer than `limit`.
  std::vector<std::string> FanOutOverdue(Nanos limit) const;
  // Starts a resync run of `host` (docs/replication.md "Resync"): under
  // send_mu_, adds it to the fan-out as syncing and queues chunk `index`
  // as the run's first, so that nothing of the run precedes that chunk on
  // the stream and every REPLICATE after it follows. False, with `host`
  // out of the fan-out, when this host is not epoch's primary or the frame
  // cannot be queued (the caller retries the run later).
  bool BeginResync(const std::string& host, std::shared_ptr<FrameLink> link, uint64_t epoch,
                   uint32_t chunk_size, uint32_t index, bool last);
  // Reads chunk `index` of the copy, stamped with the current sequence, and
  // queues it to `host`, both under send_mu_: a REPLICATE of a later write
  // follows it on the stream. False when `host` is not in the fan-out
  // or the frame cannot be queued now (try again later).
  bool SendResyncChunk(const std::string& host, uint64_t epoch, uint32_t chunk_size, uint32_t index,
                       bool last);
  // Queues RESYNC_DONE(the current sequence) to `host`, which has received
  // every REPLICATE since its resync started; the sequence, or nullopt as
  // for SendResyncChunk.
  std::optional<uint64_t> SendResyncDone(const std::string& host, uint64_t epoch,
                                         uint32_t chunks_sent);

  // Replica side of REPLICATE, RESYNC_CHUNK, RESYNC_DONE.
  ReplicaAnswer OnReplicate(const Replicate& m);
  ReplicaAnswer OnResyncChunk(const ResyncChunk& m);
  ReplicaAnswer OnResyncDone(const ResyncDone& m);
  // A read of the copy for INSPECT (data empty when out of range).
  InspectReply Inspect(const Inspect& m) const;
  // A chunk of the copy for a resync, stamped with the current sequence.
  ResyncChunk ReadChunk(uint64_t epoch, uint32_t chunk_size, uint32_t index) const;
  // Chunks written since `since` in the current epoch, or nullopt.
  std::optional<std::vector<uint32_t>> ChunksSince(uint64_t since) const;
  uint32_t ChunkCount(uint32_t chunk_size) const;

  // Elections. BeginCandidacy promises promise+1 (state file, fsync) and
  // returns the epoch; kIoError when the state cannot be written.
  Result<uint64_t> BeginCandidacy();
  // Gives up candidacy `e` that no voter took (a takeover refused because
  // the primary is alive): back to replica with the promise from before it,
  // so that the live primary's frames are not refused as stale.
  void AbandonCandidacy(uint64_t e);
  // A voter's side of EPOCH_PROPOSE: accept or reject (and step down).
  Message OnPropose(const EpochPropose& m, std::string_view from);
  // The candidate won epoch `e` with content adopted: becomes primary at
  // the copy's current sequence (or above the durable sequence); `forced`
  // lowers the majority to one (operator's decision).
  void BecomePrimary(uint64_t e, bool forced);
  // Gives up a candidacy or steps down; `fenced` marks a primary that saw a
  // newer epoch (then persists fail until it is resynchronised).
  void StepDown(bool fenced, uint64_t newer_epoch);
  void SetServing(bool serving);
  // The candidate of epoch `e` this host accepted (for adoption resync).
  std::optional<std::string> AcceptedCandidate(uint64_t e) const;
  // The engine's one-word summary of the group (published per device).
  void SetSummary(backend::SinkReplication::Summary s) { summary_.store(s); }
  backend::SinkReplication::Summary summary() const { return summary_.load(); }
  // Whether the primary this host follows is reachable (set by the engine).
  void SetPrimaryLink(bool up) { primary_link_.store(up); }
  bool primary_link() const { return primary_link_.load(); }

 private:
  Status WriteStateLocked(bool clean);
  void RaisePromiseLocked(uint64_t e);
  void StepDownLocked(bool fenced);
  // Steps down as fenced when `epoch` is newer than the one this host leads.
  bool FenceIfNewerLocked(uint64_t epoch);
  // The primary's view of one replica it sends to (guarded by mu_).
  struct FanOutTarget {
    std::shared_ptr<FrameLink> link;
    bool in_sync = false;
    // (sequence, bytes) queued and not yet covered by an acknowledgement.
    std::deque<std::pair<uint64_t, uint64_t>> unacked;
    uint64_t unacked_bytes = 0;
    uint64_t ack_wait_seq = 0;  // oldest requested ack outstanding
    Nanos ack_wait_since{0};
  };
  // Counts a batch's frames (sequences first..) against an in-sync target's
  // budget; false when they do not fit.
  bool AccountLocked(FanOutTarget& t, uint64_t first,
                     std::span<const std::shared_ptr<const Bytes>> frames);
  void DropTargetLocked(std::map<std::string, FanOutTarget>::iterator it, std::string why);
  ResyncChunk ReadChunkLocked(uint64_t epoch, uint32_t chunk_size, uint32_t index) const;
  // The current resync run lost frames (`received` came out of order):
  // marks it broken and answers GAP.
  void BreakSyncLocked(uint64_t received, ReplicaAnswer& out);
  void SetDurableLocked(uint64_t seq) {
    durable_ = seq;
    durable_pub_.store(seq, std::memory_order_release);
  }
  bool InRange(uint64_t offset, uint64_t length) const {
    return length <= memory_.size() && offset <= memory_.size() - length;
  }

  const VolumeEntry entry_;
  const std::string self_;
  const ReplicationSettings settings_;
  const std::string state_dir_;
  const Clock& clock_;
  const std::function<void()> wake_;

  // Held by whoever queues frames to the fan-out (persists, resync chunks),
  // from reading the copy to queuing: the streams' order. Taken before mu_.
  std::mutex send_mu_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::byte> memory_;
  std::span<std::byte> region_;  // the guest's region when attached here
  Role role_ = Role::kReplica;
  bool serving_ = false;
  bool forced_ = false;
  bool vouch_ = false;
  uint64_t promise_ = 0;
  uint64_t epoch_ = 0;  // epoch of role_ (primary/candidate), else promise_
  uint64_t content_epoch_ = 0;
  uint64_t content_seq_ = 0;
  uint64_t syncing_epoch_ = 0;
  // While syncing: the highest sequence the resync's stream carried so far
  // (a chunk's as_of_sequence, a REPLICATE's sequence). On one primary's
  // stream these never go back, so a frame below it is a replay.
  uint64_t sync_high_ = 0;
  // Chunks the current run carried, its first included; RESYNC_DONE must
  // name the same number.
  uint32_t sync_chunks_ = 0;
  // The current run lost a frame (a sequence or chunk count skipped): GAP
  // was sent, nothing more of the run is applied and its RESYNC_DONE is
  // refused; the primary starts a new run.
  bool sync_broken_ = false;
  // memory_ changed by another primary's frames (replicate, resync,
  // adoption) since the region last took it: the region is behind.
  bool region_stale_ = false;
  uint64_t durable_ = 0;
  // durable_, readable without the mutex (a persist polls it while it spins).
  std::atomic<uint64_t> durable_pub_{0};
  std::atomic<int> spinning_{0};  // persists polling durable_pub_
  uint64_t gap_reported_ = 0;     // the expected sequence last reported (no GAP storms)
  uint64_t accepted_epoch_ = 0;
  std::string accepted_candidate_;
  uint64_t candidacy_prev_promise_ = 0;          // the promise before BeginCandidacy
  std::map<std::string, FanOutTarget> targets_;  // primary only; guarded by mu_
  FanOutNews news_;                              // guarded by mu_
  DirtyHistory history_;
  std::atomic<backend::SinkReplication::Summary> summary_{
      backend::SinkReplication::Summary::kSyncing};
  std::atomic<bool> primary_link_{false};
  uint64_t vaulted_epoch_ = UINT64_MAX;
  uint64_t vaulted_seq_ = UINT64_MAX;
};

// The PersistSink of a replicated volume's region: persists go through the
// VolumeReplica. Thread-safe (the replica is).
class ReplicatingPersistSink final : public backend::PersistSink {
 public:
  ReplicatingPersistSink(std::shared_ptr<VolumeReplica> replica, std::span<std::byte> region,
                         Nanos timeout, Nanos spin = Nanos{0});
  ~ReplicatingPersistSink() override;
  Result<uint64_t> Persist(uint64_t offset, uint64_t length) override;
  Result<uint64_t> PersistBatch(std::span<const backend::ByteRange> ranges) override;
  uint64_t DurableSeq() const override { return replica_->DurableSeq(); }
  std::optional<backend::SinkReplication> Replication() const override;

 private:
  const std::shared_ptr<VolumeReplica> replica_;
  const Nanos timeout_;
  const Nanos spin_;
};

}  // namespace vnvram::replication
