#include "backend/replication/volume_replica.h"

#include <sched.h>

#include <algorithm>
#include <cstring>

#include "backend/vault_file.h"
#include "common/log.h"

namespace vnvram::replication {

std::string_view RoleName(Role r) {
  switch (r) {
    case Role::kReplica: return "replica";
    case Role::kCandidate: return "candidate";
    case Role::kPrimary: return "primary";
    case Role::kFenced: return "fenced";
  }
  return "unknown";
}

VolumeReplica::VolumeReplica(VolumeEntry entry, std::string self,
                             const ReplicationSettings& settings, std::string state_dir,
                             const Clock& clock, std::function<void()> wake)
    : entry_(std::move(entry)),
      self_(std::move(self)),
      settings_(settings),
      state_dir_(std::move(state_dir)),
      clock_(clock),
      wake_(std::move(wake)),
      memory_(entry_.size),
      history_(entry_.size, settings.resync_chunk) {}

Status VolumeReplica::Load() {
  std::lock_guard lock(mu_);
  const std::string key = entry_.uuid.ToString();
  auto state = ReadVolumeState(state_dir_, entry_.uuid);
  if (!state.ok()) return state.status();
  auto header = backend::ReadVaultHeader(state_dir_, entry_.uuid, kMaxVolumeSize);
  bool have_vault = false;
  if (header.ok()) {
    if (header->region_size != entry_.size) {
      return Status::Corruption("vault " + backend::VaultPath(state_dir_, entry_.uuid) + " holds " +
                                std::to_string(header->region_size) +
                                " bytes but the cluster file says volume " + key + " has " +
                                std::to_string(entry_.size));
    }
    if (Status s = backend::ReadVaultData(state_dir_, *header, memory_); !s.ok()) {
      std::fill(memory_.begin(), memory_.end(), std::byte{0});
      return Status::Corruption("vault " + backend::VaultPath(state_dir_, entry_.uuid) +
                                " is corrupt, not used: " + s.message());
    }
    have_vault = true;
  } else if (header.status().code() != Code::kNotFound) {
    return header.status();
  }
  if (state->has_value()) {
    const VolumeState& st = **state;
    promise_ = st.promise;
    // The position is only known when the vault is the one the state
    // describes (a crash between the two writes leaves them apart).
    if (have_vault && header->durable_seq == st.content_seq) {
      content_epoch_ = st.content_epoch;
      content_seq_ = st.content_seq;
    }
    vouch_ = st.clean && have_vault && content_epoch_ == st.content_epoch;
  } else {
    // Never took part: it acknowledged nothing, so it vouches for "nothing".
    // A vault without a state file is an older single-host vault.
    vouch_ = !have_vault;
  }
  epoch_ = promise_;
  SetDurableLocked(content_seq_);
  history_.Reset(content_seq_);
  vaulted_epoch_ = content_epoch_;
  vaulted_seq_ = have_vault ? content_seq_ : UINT64_MAX;
  spdlog::info("volume {} ({}): loaded at epoch {} sequence {}, promise {}, {}", entry_.name, key,
               content_epoch_, content_seq_, promise_,
               vouch_ ? "vouching" : "not vouching (needs a resync)");
  // From now on a crash must not look like a clean shutdown.
  return WriteStateLocked(/*clean=*/false);
}

Status VolumeReplica::WriteStateLocked(bool clean) {
  VolumeState st;
  st.promise = promise_;
  st.content_epoch = vaulted_epoch_ == UINT64_MAX ? 0 : vaulted_epoch_;
  st.content_seq = vaulted_seq_ == UINT64_MAX ? 0 : vaulted_seq_;
  st.clean = clean;
  return WriteVolumeState(state_dir_, entry_.uuid, st);
}

Status VolumeReplica::Vault(bool clean) {
  std::vector<std::byte> copy;
  uint64_t epoch = 0;
  uint64_t seq = 0;
  {
    std::lock_guard lock(mu_);
    copy = memory_;
    // A copy in the middle of a resync is at no position.
    epoch = syncing_epoch_ != 0 ? 0 : content_epoch_;
    seq = syncing_epoch_ != 0 ? 0 : content_seq_;
  }
  VNVRAM_RETURN_IF_ERROR(backend::WriteVault(state_dir_, entry_.uuid, seq, copy));
  std::lock_guard lock(mu_);
  vaulted_epoch_ = epoch;
  vaulted_seq_ = seq;
  // Clean only when nothing moved since the copy (the engine is stopped).
  const bool really_clean = clean && epoch == content_epoch_ && seq == content_seq_ && vouch_;
  VNVRAM_RETURN_IF_ERROR(WriteStateLocked(really_clean));
  spdlog::info("volume {}: vaulted at epoch {} sequence {}{}", entry_.name, epoch, seq,
               really_clean ? " (clean)" : "");
  return Status::Ok();
}

bool VolumeReplica::vault_current() const {
  std::lock_guard lock(mu_);
  return syncing_epoch_ == 0 && vaulted_epoch_ == content_epoch_ && vaulted_seq_ == content_seq_;
}

void VolumeReplica::AttachRegion(std::span<std::byte> region) {
  std::lock_guard lock(mu_);
  region_ = region.first(std::min(region.size(), memory_.size()));
  std::memcpy(region_.data(), memory_.data(), region_.size());
  region_stale_ = false;
}

void VolumeReplica::DetachRegion() {
  std::lock_guard lock(mu_);
  region_ = {};
}

Result<uint64_t> VolumeReplica::PersistBatch(std::span<const backend::ByteRange> ranges,
                                             Nanos timeout, Nanos spin) {
  if (ranges.empty()) return Status::InvalidArgument("empty persist batch");
  // send_mu_ from the first sequence assigned to the last frame queued:
  // every stream carries the frames in sequence order, and a resync chunk
  // (read and queued under send_mu_ too) cannot come between a write and
  // its REPLICATE. mu_ is not held while queuing, so that the I/O thread
  // can take an acknowledgement while this thread is off the CPU.
  std::unique_lock send_lock(send_mu_);
  std::unique_lock lock(mu_);
  if (role_ != Role::kPrimary) {
    return Status::FailedPrecondition("volume " + entry_.name + ": this host is " +
                                      std::string(RoleName(role_)) + " at epoch " +
                                      std::to_string(epoch_) + ", not the primary");
  }
  if (region_.empty()) return Status::FailedPrecondition("volume " + entry_.name + ": no region");
  for (const backend::ByteRange& r : ranges) {
    if (r.length == 0 || !InRange(r.offset, r.length)) {
      return Status::OutOfRange("persist range outside volume " + entry_.name);
    }
  }
  const uint64_t epoch = epoch_;
  const bool standalone = entry_.replicas.size() == 1;
  const Limits limits{settings_.max_data};
  uint64_t frames_left = 0;
  for (const backend::ByteRange& r : ranges) {
    frames_left += (r.length + settings_.max_data - 1) / settings_.max_data;
  }
  uint64_t last = 0;
  std::vector<std::shared_ptr<const Bytes>> frames;  // encoded once, sent to every replica
  for (const backend::ByteRange& r : ranges) {
    for (uint64_t done = 0; done < r.length;) {
      const uint64_t n = std::min<uint64_t>(r.length - done, settings_.max_data);
      const uint64_t off = r.offset + done;
      std::memcpy(memory_.data() + off, region_.data() + off, n);
      last = ++content_seq_;
      history_.Record(last, off, n);
      done += n;
      --frames_left;
      if (standalone) continue;
      // The batch's last frame asks for the (cumulative) acknowledgement.
      const std::span<const std::byte> data(memory_.data() + off, n);
      auto frame = EncodeReplicate(entry_.uuid, epoch, last, off, frames_left == 0, data, limits);
      if (!frame.ok()) return frame.status();  // a bug: the range was checked above
      frames.push_back(std::make_shared<const Bytes>(std::move(frame).value()));
    }
  }
  // Flow control is counted as the frames are handed out; a target that
  // cannot take them is dropped below.
  std::vector<std::pair<std::string, std::shared_ptr<FrameLink>>> links;
  if (!frames.empty()) {
    const uint64_t first = last + 1 - frames.size();
    for (auto it = targets_.begin(); it != targets_.end();) {
      auto next = std::next(it);
      if (AccountLocked(it->second, first, frames)) {
        links.emplace_back(it->first, it->second.link);
      } else {
        DropTargetLocked(it, "too slow: 64 MiB queued and not acknowledged");
      }
      it = next;
    }
  }
  if (!links.empty()) {
    lock.unlock();
    std::vector<std::shared_ptr<FrameLink>> failed;
    for (const auto& [host, link] : links) {
      for (const std::shared_ptr<const Bytes>& f : frames) {
        if (!link->Send(f)) {
          failed.push_back(link);
          break;
        }
      }
    }
    lock.lock();
    for (const auto& link : failed) {
      for (auto it = targets_.begin(); it != targets_.end(); ++it) {
        if (it->second.link == link) {
          DropTargetLocked(it, "cannot queue a frame to it");
          break;
        }
      }
    }
  }
  send_lock.unlock();
  if (standalone || entry_.policy == Policy::kAsync) {
    // Async: durable once queued to the replicas.
    if (role_ == Role::kPrimary && epoch_ == epoch) SetDurableLocked(std::max(durable_, last));
  }
  bool in_sync = false;
  for (const auto& [host, t] : targets_) in_sync = in_sync || t.in_sync;
  if (!standalone && entry_.policy == Policy::kSync && !in_sync) news_.recompute = true;
  if (!news_.dropped.empty() || news_.recompute) {
    lock.unlock();
    wake_();
    lock.lock();
  }
  const Nanos deadline = clock_.Now() + timeout;
  // The acknowledgement usually comes within one network round trip: wait
  // for it first without sleeping (yielding the CPU to whoever needs it),
  // since waking a blocked thread costs about as much as the round trip on
  // an idle virtual CPU; then block. The spin reads the published durable
  // sequence without the mutex, which the I/O thread needs to raise it.
  if (spin.count() > 0 && durable_ < last) {
    lock.unlock();
    spinning_.fetch_add(1, std::memory_order_relaxed);
    const Nanos spin_end = clock_.Now() + std::min(spin, timeout);
    while (durable_pub_.load(std::memory_order_acquire) < last && clock_.Now() < spin_end) {
      sched_yield();
    }
    spinning_.fetch_sub(1, std::memory_order_relaxed);
    lock.lock();
  }
  while (durable_ < last && role_ == Role::kPrimary && epoch_ == epoch) {
    const Nanos left = deadline - clock_.Now();
    if (left.count() <= 0) break;
    cv_.wait_for(lock, std::min<Nanos>(left, std::chrono::milliseconds(100)));
  }
  if (durable_ >= last) return last;
  if (role_ != Role::kPrimary || epoch_ != epoch) {
    return Status::FailedPrecondition("volume " + entry_.name + ": epoch " + std::to_string(epoch) +
                                      " ended before sequence " + std::to_string(last) +
                                      " was acknowledged (this host is now " +
                                      std::string(RoleName(role_)) + ")");
  }
  return Status::Unavailable(
      "volume " + entry_.name + ": replicas did not acknowledge sequence " + std::to_string(last) +
      " within " +
      std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(timeout).count()) +
      " ms");
}

bool VolumeReplica::AccountLocked(FanOutTarget& t, uint64_t first,
                                  std::span<const std::shared_ptr<const Bytes>> frames) {
  if (!t.in_sync)
    return true;  // a syncing replica acknowledges nothing before RESYNC_DONE;
                  // its queue is bounded by the socket's high-water mark
  uint64_t bytes = 0;
  for (const auto& f : frames) bytes += f->size();
  if (t.unacked_bytes + bytes > kMaxUnackedBytes) return false;
  for (size_t i = 0; i < frames.size(); ++i) {
    t.unacked.emplace_back(first + i, frames[i]->size());
  }
  t.unacked_bytes += bytes;
  if (t.ack_wait_seq == 0) {
    // The batch's last frame asks for the acknowledgement.
    t.ack_wait_seq = first + frames.size() - 1;
    t.ack_wait_since = clock_.Now();
  }
  return true;
}

void VolumeReplica::DropTargetLocked(std::map<std::string, FanOutTarget>::iterator it,
                                     std::string why) {
  // Nothing more goes to it: the frames after a lost one would only be
  // refused (GAP). The engine marks it outdated and resyncs it.
  news_.dropped.emplace_back(it->first, std::move(why));
  targets_.erase(it);
}

void VolumeReplica::SetFanOut(const std::string& host, std::shared_ptr<FrameLink> link,
                              bool in_sync) {
  std::lock_guard lock(mu_);
  if (role_ != Role::kPrimary || link == nullptr) return;
  FanOutTarget& t = targets_[host];
  if (t.link != link || t.in_sync != in_sync) {
    t.unacked.clear();
    t.unacked_bytes = 0;
    t.ack_wait_seq = 0;
  }
  t.link = std::move(link);
  t.in_sync = in_sync;
}

void VolumeReplica::RemoveFanOut(const std::string& host) {
  std::lock_guard lock(mu_);
  targets_.erase(host);
}

void VolumeReplica::ClearFanOut() {
  std::lock_guard lock(mu_);
  targets_.clear();
}

void VolumeReplica::FanOutAcked(const std::string& host, uint64_t seq) {
  std::lock_guard lock(mu_);
  auto it = targets_.find(host);
  if (it == targets_.end()) return;
  FanOutTarget& t = it->second;
  while (!t.unacked.empty() && t.unacked.front().first <= seq) {
    t.unacked_bytes -= t.unacked.front().second;
    t.unacked.pop_front();
  }
  if (t.ack_wait_seq != 0 && seq >= t.ack_wait_seq) t.ack_wait_seq = 0;
}

FanOutNews VolumeReplica::TakeFanOutNews() {
  std::lock_guard lock(mu_);
  FanOutNews out;
  std::swap(out, news_);
  return out;
}

std::vector<std::string> VolumeReplica::FanOutOverdue(Nanos limit) const {
  std::lock_guard lock(mu_);
  std::vector<std::string> out;
  const Nanos now = clock_.Now();
  for (const auto& [host, t] : targets_) {
    if (t.in_sync && t.ack_wait_seq != 0 && now - t.ack_wait_since > limit) out.push_back(host);
  }
  return out;
}

bool VolumeReplica::BeginResync(const std::string& host, std::shared_ptr<FrameLink> link,
                                uint64_t epoch, uint32_t chunk_size, uint32_t index, bool last) {
  std::lock_guard send_lock(send_mu_);
  ResyncChunk c;
  {
    std::lock_guard lock(mu_);
    if (role_ != Role::kPrimary || epoch_ != epoch || link == nullptr) {
      targets_.erase(host);
      return false;
    }
    FanOutTarget& t = targets_[host];
    t.unacked.clear();
    t.unacked_bytes = 0;
    t.ack_wait_seq = 0;
    t.link = link;
    t.in_sync = false;
    c = ReadChunkLocked(epoch, chunk_size, index);
  }
  c.first = true;
  c.last = last;
  auto frame = Encode(c, Limits{settings_.max_data});
  if (frame.ok() && link->Send(*frame)) return true;
  if (!frame.ok()) {
    spdlog::error("volume {}: cannot encode a resync chunk: {}", entry_.name,
                  frame.status().ToString());
  }
  std::lock_guard lock(mu_);
  targets_.erase(host);
  return false;
}

bool VolumeReplica::SendResyncChunk(const std::string& host, uint64_t epoch, uint32_t chunk_size,
                                    uint32_t index, bool last) {
  std::lock_guard send_lock(send_mu_);
  std::shared_ptr<FrameLink> link;
  ResyncChunk c;
  {
    std::lock_guard lock(mu_);
    auto it = targets_.find(host);
    if (role_ != Role::kPrimary || epoch_ != epoch || it == targets_.end()) return false;
    link = it->second.link;
    c = ReadChunkLocked(epoch, chunk_size, index);
  }
  c.last = last;
  auto frame = Encode(c, Limits{settings_.max_data});
  if (!frame.ok()) {
    spdlog::error("volume {}: cannot encode a resync chunk: {}", entry_.name,
                  frame.status().ToString());
    return false;
  }
  return link->Send(*frame);
}

std::optional<uint64_t> VolumeReplica::SendResyncDone(const std::string& host, uint64_t epoch,
                                                      uint32_t chunks_sent) {
  std::lock_guard send_lock(send_mu_);
  std::shared_ptr<FrameLink> link;
  uint64_t seq = 0;
  {
    std::lock_guard lock(mu_);
    auto it = targets_.find(host);
    if (role_ != Role::kPrimary || epoch_ != epoch || it == targets_.end()) return std::nullopt;
    link = it->second.link;
    // Every REPLICATE since the resync started went to this replica (it is
    // still in the fan-out), and every one up to content_seq_ is queued
    // (send_mu_), so it holds everything through content_seq_.
    seq = content_seq_;
  }
  auto frame = Encode(ResyncDone{entry_.uuid, epoch, seq, chunks_sent}, Limits{settings_.max_data});
  if (!frame.ok() || !link->Send(*frame)) return std::nullopt;
  return seq;
}

uint64_t VolumeReplica::DurableSeq() const {
  std::lock_guard lock(mu_);
  return durable_;
}

VolumeView VolumeReplica::View() const {
  std::lock_guard lock(mu_);
  VolumeView v;
  v.role = role_;
  v.serving = serving_;
  v.vouch = vouch_;
  v.forced = forced_;
  v.epoch = epoch_;
  v.promise = promise_;
  v.content_epoch = content_epoch_;
  v.content_seq = content_seq_;
  v.durable_seq = durable_;
  v.syncing_epoch = syncing_epoch_;
  return v;
}

void VolumeReplica::SetDurable(uint64_t seq) {
  {
    std::lock_guard lock(mu_);
    if (seq <= durable_ || role_ != Role::kPrimary) return;
    SetDurableLocked(std::min(seq, content_seq_));
  }
  cv_.notify_all();
  // A persist polling for this (PersistBatch's spin) may be waiting for a
  // CPU, this one when the host has few: let it run now rather than after
  // the rest of the engine's round.
  if (spinning_.load(std::memory_order_relaxed) > 0) sched_yield();
}

void VolumeReplica::RaisePromiseLocked(uint64_t e) {
  if (e <= promise_) return;
  promise_ = e;
  if (role_ == Role::kReplica || role_ == Role::kFenced) epoch_ = e;
  if (Status s = WriteStateLocked(false); !s.ok()) {
    spdlog::error("volume {}: cannot record promise {}: {}", entry_.name, e, s.ToString());
  }
}

bool VolumeReplica::FenceIfNewerLocked(uint64_t epoch) {
  if ((role_ != Role::kPrimary && role_ != Role::kCandidate) || epoch <= epoch_) return false;
  StepDownLocked(/*fenced=*/true);
  cv_.notify_all();  // persists waiting on the old epoch fail now
  return true;
}

void VolumeReplica::StepDownLocked(bool fenced) {
  if (role_ == Role::kPrimary || role_ == Role::kCandidate) {
    spdlog::warn("volume {}: {} of epoch {} steps down{}", entry_.name, RoleName(role_), epoch_,
                 fenced ? " (fenced by a newer epoch)" : "");
    role_ = fenced && role_ == Role::kPrimary ? Role::kFenced : Role::kReplica;
  }
  serving_ = false;
  forced_ = false;
  epoch_ = promise_;
  targets_.clear();
}

void VolumeReplica::BreakSyncLocked(uint64_t received, ReplicaAnswer& out) {
  spdlog::warn(
      "volume {}: resync run of epoch {} lost frames (expected sequence {}, got {}): "
      "asking for a new run",
      entry_.name, syncing_epoch_, sync_high_ + 1, received);
  sync_broken_ = true;
  gap_reported_ = sync_high_ + 1;
  // GAP names a sequence past the expected one (the wire's rule); a chunk
  // or RESYNC_DONE that gave the loss away may carry the expected one.
  out.reply = Gap{entry_.uuid, syncing_epoch_, sync_high_ + 1, std::max(received, sync_high_ + 2)};
}

ReplicaAnswer VolumeReplica::OnReplicate(const Replicate& m) {
  ReplicaAnswer out;
  std::lock_guard lock(mu_);
  auto ack = [&](wire::AckStatus st, uint64_t seq) {
    out.reply = Ack{m.volume, std::max(promise_, m.epoch), seq, st};
  };
  if (m.epoch < promise_) {
    out.reply = Ack{m.volume, promise_, 0, wire::AckStatus::kStaleEpoch};
    return out;
  }
  if (m.epoch > promise_) {
    RaisePromiseLocked(m.epoch);
    out.changed = true;
  }
  if (FenceIfNewerLocked(m.epoch)) out.changed = true;
  if (role_ == Role::kPrimary && m.epoch == epoch_) {
    // Two primaries of one epoch cannot exist; refuse rather than corrupt.
    ack(wire::AckStatus::kNotReplica, 0);
    return out;
  }
  if (!InRange(m.offset, m.data.size())) {
    ack(wire::AckStatus::kOutOfRange, content_seq_);
    return out;
  }
  if (syncing_epoch_ == m.epoch) {
    // Mid-resync: every later range lands on top of the chunks. A REPLICATE
    // follows on the stream every chunk read before its write and every
    // earlier REPLICATE, so one at or below what the stream already carried
    // is a replay: applied, it would roll bytes back, and RESYNC_DONE would
    // vouch for them. One past the next sequence means the stream lost
    // frames: the run is broken.
    if (sync_broken_ || m.sequence <= sync_high_) return out;
    if (m.sequence != sync_high_ + 1) {
      BreakSyncLocked(m.sequence, out);
      return out;
    }
    sync_high_ = m.sequence;
    std::memcpy(memory_.data() + m.offset, m.data.data(), m.data.size());
    region_stale_ = true;
    return out;
  }
  if (content_epoch_ == m.epoch && m.sequence == content_seq_ + 1) {
    std::memcpy(memory_.data() + m.offset, m.data.data(), m.data.size());
    region_stale_ = true;
    content_seq_ = m.sequence;
    gap_reported_ = 0;
    if (m.ack_requested) ack(wire::AckStatus::kOk, content_seq_);
    out.changed = true;
    return out;
  }
  if (content_epoch_ == m.epoch && m.sequence <= content_seq_) {
    // A replay: already applied.
    if (m.ack_requested) ack(wire::AckStatus::kOk, content_seq_);
    return out;
  }
  const uint64_t expected = content_epoch_ == m.epoch ? content_seq_ + 1 : 0;
  if (gap_reported_ != expected + 1) {
    gap_reported_ = expected + 1;
    out.reply = Gap{m.volume, m.epoch, expected, m.sequence};
  }
  return out;
}

ReplicaAnswer VolumeReplica::OnResyncChunk(const ResyncChunk& m) {
  ReplicaAnswer out;
  std::lock_guard lock(mu_);
  if (m.epoch < promise_) {
    out.reply = Ack{m.volume, promise_, 0, wire::AckStatus::kStaleEpoch};
    return out;
  }
  if (m.epoch > promise_) RaisePromiseLocked(m.epoch);
  // A newer epoch's primary is resyncing us: fenced, then a replica taking its copy.
  if (FenceIfNewerLocked(m.epoch)) out.changed = true;
  if (role_ == Role::kPrimary) {
    out.reply = Ack{m.volume, promise_, 0, wire::AckStatus::kNotReplica};
    return out;
  }
  const uint64_t off = uint64_t{m.chunk_index} * m.chunk_size;
  if (!InRange(off, m.data.size())) {
    out.reply = Ack{m.volume, promise_, 0, wire::AckStatus::kOutOfRange};
    return out;
  }
  // Replays (docs/replication.md "Resync"): a chunk is read after every
  // write the stream carried before it, so one older than what this copy
  // holds of its epoch, or than what the resync already carried, is a
  // chunk delivered again. It would roll bytes back; it is dropped.
  if (syncing_epoch_ != m.epoch && content_epoch_ == m.epoch && m.as_of_sequence < content_seq_) {
    return out;
  }
  if (syncing_epoch_ == m.epoch && m.as_of_sequence < sync_high_) return out;
  if (m.first) {
    // A run starts (the first of this epoch, or one after a broken or
    // interrupted run): everything the primary sends from here on reaches
    // us in order, or the run is broken.
    if (syncing_epoch_ != m.epoch) {
      content_epoch_ = 0;
      content_seq_ = 0;
      vouch_ = false;
      out.changed = true;
    }
    syncing_epoch_ = m.epoch;
    sync_high_ = m.as_of_sequence;
    sync_chunks_ = 0;
    sync_broken_ = false;
    gap_reported_ = 0;
  } else if (syncing_epoch_ != m.epoch) {
    // The run's first chunk never came (lost with a dropped connection):
    // nothing of the run can be trusted.
    if (gap_reported_ != 1) {
      gap_reported_ = 1;
      out.reply = Gap{m.volume, m.epoch, 0, std::max<uint64_t>(m.as_of_sequence, 1)};
    }
    return out;
  } else if (sync_broken_) {
    return out;
  } else if (m.as_of_sequence != sync_high_) {
    // A chunk is read after every REPLICATE at or below its sequence went
    // out on this stream: a higher one means some of them were lost.
    BreakSyncLocked(m.as_of_sequence, out);
    return out;
  }
  ++sync_chunks_;
  std::memcpy(memory_.data() + off, m.data.data(), m.data.size());
  region_stale_ = true;
  return out;
}

ReplicaAnswer VolumeReplica::OnResyncDone(const ResyncDone& m) {
  ReplicaAnswer out;
  std::lock_guard lock(mu_);
  if (m.epoch < promise_) {
    out.reply = Ack{m.volume, promise_, 0, wire::AckStatus::kStaleEpoch};
    return out;
  }
  if (role_ == Role::kPrimary) {
    // Only a primary sends RESYNC_DONE of its epoch; it never moves ours.
    out.reply = Ack{m.volume, promise_, 0, wire::AckStatus::kNotReplica};
    return out;
  }
  if (syncing_epoch_ != m.epoch && content_epoch_ == m.epoch && m.sequence <= content_seq_) {
    // This copy already holds the epoch through m.sequence or later (a
    // replayed RESYNC_DONE): acknowledged, the position does not go back.
    out.reply = Ack{m.volume, promise_, content_seq_, wire::AckStatus::kOk};
    return out;
  }
  if (syncing_epoch_ != m.epoch && !(m.chunks_sent == 0 && content_epoch_ == m.epoch)) {
    // Not the resync we are in (a duplicate or a lost start): ask again.
    out.reply = Gap{m.volume, m.epoch, 0, std::max<uint64_t>(m.sequence, 1)};
    return out;
  }
  // The stream carried a chunk or a REPLICATE past it: a replay of an
  // earlier resync's end, not this one's.
  if (syncing_epoch_ == m.epoch && m.sequence < sync_high_) return out;
  if (syncing_epoch_ == m.epoch &&
      (sync_broken_ || m.sequence != sync_high_ || m.chunks_sent != sync_chunks_)) {
    // Frames of this run were lost (REPLICATEs before the end, or chunks):
    // the copy is not what the primary vouches for. Ask for a new run.
    if (!sync_broken_) {
      spdlog::warn(
          "volume {}: resync run of epoch {} ends at sequence {} after {} chunk(s), "
          "but this copy got sequence {} and {} chunk(s): asking for a new run",
          entry_.name, m.epoch, m.sequence, m.chunks_sent, sync_high_, sync_chunks_);
    }
    sync_broken_ = true;
    out.reply = Gap{m.volume, m.epoch, sync_high_ + 1, std::max(m.sequence, sync_high_ + 2)};
    return out;
  }
  syncing_epoch_ = 0;
  sync_broken_ = false;
  sync_chunks_ = 0;
  content_epoch_ = m.epoch;
  content_seq_ = m.sequence;
  vouch_ = true;
  if (role_ == Role::kFenced) role_ = Role::kReplica;  // resynchronised: a replica again
  gap_reported_ = 0;
  history_.Reset(m.sequence);
  out.changed = true;
  out.reply = Ack{m.volume, promise_, m.sequence, wire::AckStatus::kOk};
  spdlog::info("volume {}: in sync at epoch {} sequence {}", entry_.name, m.epoch, m.sequence);
  return out;
}

InspectReply VolumeReplica::Inspect(const replication::Inspect& m) const {
  std::lock_guard lock(mu_);
  InspectReply r;
  r.volume = m.volume;
  r.epoch = content_epoch_;
  r.sequence = content_seq_;
  r.offset = m.offset;
  if (InRange(m.offset, m.length)) {
    r.data.assign(memory_.begin() + static_cast<ptrdiff_t>(m.offset),
                  memory_.begin() + static_cast<ptrdiff_t>(m.offset + m.length));
  }
  return r;
}

ResyncChunk VolumeReplica::ReadChunk(uint64_t epoch, uint32_t chunk_size, uint32_t index) const {
  std::lock_guard lock(mu_);
  return ReadChunkLocked(epoch, chunk_size, index);
}

ResyncChunk VolumeReplica::ReadChunkLocked(uint64_t epoch, uint32_t chunk_size,
                                           uint32_t index) const {
  ResyncChunk c;
  c.volume = entry_.uuid;
  c.epoch = epoch;
  c.as_of_sequence = content_seq_;
  c.chunk_size = chunk_size;
  c.chunk_index = index;
  const uint64_t off = uint64_t{index} * chunk_size;
  const uint64_t n = std::min<uint64_t>(chunk_size, memory_.size() - off);
  c.data.assign(memory_.begin() + static_cast<ptrdiff_t>(off),
                memory_.begin() + static_cast<ptrdiff_t>(off + n));
  return c;
}

std::optional<std::vector<uint32_t>> VolumeReplica::ChunksSince(uint64_t since) const {
  std::lock_guard lock(mu_);
  return history_.ChunksSince(since);
}

uint32_t VolumeReplica::ChunkCount(uint32_t chunk_size) const {
  return static_cast<uint32_t>((entry_.size + chunk_size - 1) / chunk_size);
}

Result<uint64_t> VolumeReplica::BeginCandidacy() {
  std::lock_guard lock(mu_);
  const uint64_t e = promise_ + 1;
  candidacy_prev_promise_ = promise_;
  promise_ = e;
  if (Status s = WriteStateLocked(false); !s.ok()) {
    promise_ = e - 1;
    return s.WithContext("record the promise of epoch " + std::to_string(e));
  }
  if (role_ == Role::kPrimary) StepDownLocked(false);
  role_ = Role::kCandidate;
  epoch_ = e;
  serving_ = false;
  accepted_epoch_ = e;
  accepted_candidate_ = self_;
  cv_.notify_all();
  return e;
}

void VolumeReplica::AbandonCandidacy(uint64_t e) {
  {
    std::lock_guard lock(mu_);
    if (role_ != Role::kCandidate || epoch_ != e) return;
    StepDownLocked(false);
    if (promise_ == e && candidacy_prev_promise_ < e) {
      promise_ = candidacy_prev_promise_;
      epoch_ = promise_;
      accepted_epoch_ = 0;
      accepted_candidate_.clear();
      if (Status s = WriteStateLocked(false); !s.ok()) {
        spdlog::error("volume {}: cannot record promise {}: {}", entry_.name, promise_,
                      s.ToString());
      }
    }
  }
  cv_.notify_all();
}

Message VolumeReplica::OnPropose(const EpochPropose& m, std::string_view from) {
  std::lock_guard lock(mu_);
  auto reject = [&](wire::RejectReason why) -> Message {
    return EpochReject{m.volume, m.proposed_epoch, promise_, content_epoch_, content_seq_, why};
  };
  if (!entry_.HasReplica(m.candidate) || m.candidate != from) {
    return reject(wire::RejectReason::kNotReplica);
  }
  if (m.proposed_epoch <= promise_) return reject(wire::RejectReason::kStaleEpoch);
  if (!vouch_) {
    // Raise the promise anyway (the candidate is alive and asking), but do
    // not vote: this copy may lack acknowledged writes.
    RaisePromiseLocked(m.proposed_epoch);
    StepDownLocked(false);
    cv_.notify_all();
    return EpochReject{m.volume,       m.proposed_epoch, promise_ - 1,
                       content_epoch_, content_seq_,     wire::RejectReason::kStaleEpoch};
  }
  RaisePromiseLocked(m.proposed_epoch);
  StepDownLocked(false);
  accepted_epoch_ = m.proposed_epoch;
  accepted_candidate_ = m.candidate;
  cv_.notify_all();
  return EpochAccept{m.volume, m.proposed_epoch, content_epoch_, content_seq_};
}

void VolumeReplica::BecomePrimary(uint64_t e, bool forced) {
  {
    std::lock_guard lock(mu_);
    role_ = Role::kPrimary;
    epoch_ = e;
    forced_ = forced;
    serving_ = false;
    syncing_epoch_ = 0;
    // Sequences go on from the adopted content, never below what this
    // host's sink already reported durable.
    const uint64_t base = std::max(content_seq_, durable_);
    content_epoch_ = e;
    content_seq_ = base;
    SetDurableLocked(base);
    vouch_ = true;
    history_.Reset(base);
    targets_.clear();
    // The region takes the copy only when the copy changed under it (this
    // host applied another primary's writes or adopted a copy). Otherwise
    // the region holds every persisted byte already, and the guest's
    // stores not yet persisted: a persist in flight when this host was
    // fenced, re-issued here, must find them (a primary fenced by a
    // candidacy that never served, then elected again).
    if (!region_.empty() && region_stale_) {
      std::memcpy(region_.data(), memory_.data(), region_.size());
      region_stale_ = false;
    }
    spdlog::info("volume {}: primary of epoch {} at sequence {}{}", entry_.name, e, base,
                 forced ? " (forced)" : "");
  }
  cv_.notify_all();
}

void VolumeReplica::StepDown(bool fenced, uint64_t newer_epoch) {
  {
    std::lock_guard lock(mu_);
    RaisePromiseLocked(newer_epoch);
    StepDownLocked(fenced);
  }
  cv_.notify_all();
}

void VolumeReplica::SetServing(bool serving) {
  std::lock_guard lock(mu_);
  if (role_ == Role::kPrimary) serving_ = serving;
}

std::optional<std::string> VolumeReplica::AcceptedCandidate(uint64_t e) const {
  std::lock_guard lock(mu_);
  if (accepted_epoch_ != e) return std::nullopt;
  return accepted_candidate_;
}

ReplicatingPersistSink::ReplicatingPersistSink(std::shared_ptr<VolumeReplica> replica,
                                               std::span<std::byte> region, Nanos timeout,
                                               Nanos spin)
    : replica_(std::move(replica)), timeout_(timeout), spin_(spin) {
  replica_->AttachRegion(region);
}

ReplicatingPersistSink::~ReplicatingPersistSink() {
  replica_->DetachRegion();
}

Result<uint64_t> ReplicatingPersistSink::Persist(uint64_t offset, uint64_t length) {
  const backend::ByteRange r{offset, length};
  return replica_->PersistBatch(std::span<const backend::ByteRange>(&r, 1), timeout_, spin_);
}

std::optional<backend::SinkReplication> ReplicatingPersistSink::Replication() const {
  const VolumeView v = replica_->View();
  backend::SinkReplication r;
  using R = backend::SinkReplication::Role;
  r.role = v.role == Role::kPrimary  ? R::kPrimary
           : v.role == Role::kFenced ? R::kFenced
                                     : R::kReplica;
  r.epoch = v.epoch;
  r.summary = replica_->summary();
  r.primary_link = replica_->primary_link();
  return r;
}

Result<uint64_t> ReplicatingPersistSink::PersistBatch(std::span<const backend::ByteRange> ranges) {
  return replica_->PersistBatch(ranges, timeout_, spin_);
}

}  // namespace vnvram::replication
