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
  durable_ = content_seq_;
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
}

void VolumeReplica::DetachRegion() {
  std::lock_guard lock(mu_);
  region_ = {};
}

Result<uint64_t> VolumeReplica::PersistBatch(std::span<const backend::ByteRange> ranges,
                                             Nanos timeout, Nanos spin) {
  if (ranges.empty()) return Status::InvalidArgument("empty persist batch");
  std::unique_lock lock(mu_);
  if (role_ != Role::kPrimary) {
    return Status::FailedPrecondition("volume " + entry_.name + ": this host is " +
                                      std::string(RoleName(role_)) + " at epoch " +
                                      std::to_string(epoch_) + ", not the primary");
  }
  if (region_.empty()) return Status::FailedPrecondition("volume " + entry_.name + ": no region");
  const uint64_t epoch = epoch_;
  const bool standalone = entry_.replicas.size() == 1;
  uint64_t last = 0;
  std::vector<Replicate> frames;
  for (const backend::ByteRange& r : ranges) {
    if (r.length == 0 || !InRange(r.offset, r.length)) {
      return Status::OutOfRange("persist range outside volume " + entry_.name);
    }
    for (uint64_t done = 0; done < r.length;) {
      const uint64_t n = std::min<uint64_t>(r.length - done, settings_.max_data);
      const uint64_t off = r.offset + done;
      std::memcpy(memory_.data() + off, region_.data() + off, n);
      last = ++content_seq_;
      history_.Record(last, off, n);
      done += n;
      if (standalone) continue;
      Replicate& m = frames.emplace_back();
      m.volume = entry_.uuid;
      m.epoch = epoch;
      m.sequence = last;
      m.offset = off;
      m.data.assign(memory_.begin() + static_cast<ptrdiff_t>(off),
                    memory_.begin() + static_cast<ptrdiff_t>(off + n));
    }
  }
  if (standalone) {
    durable_ = last;
    return last;
  }
  // The batch's last frame asks for the (cumulative) acknowledgement.
  frames.back().ack_requested = true;
  for (const Replicate& m : frames) {
    auto frame = Encode(m, Limits{settings_.max_data});
    if (!frame.ok()) return frame.status();  // a bug: the model was checked above
    outbox_.push_back(
        Outgoing{m.sequence, std::make_shared<const Bytes>(std::move(frame).value())});
  }
  lock.unlock();
  wake_();
  lock.lock();
  const Nanos deadline = clock_.Now() + timeout;
  // The acknowledgement usually comes within one network round trip: wait
  // for it first without sleeping (yielding the CPU to whoever needs it),
  // since waking a blocked thread costs about as much as the round trip on
  // an idle virtual CPU; then block.
  if (spin.count() > 0) {
    const Nanos spin_end = clock_.Now() + std::min(spin, timeout);
    while (durable_ < last && role_ == Role::kPrimary && epoch_ == epoch &&
           clock_.Now() < spin_end) {
      lock.unlock();
      sched_yield();
      lock.lock();
    }
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

std::deque<Outgoing> VolumeReplica::TakeOutbox() {
  std::lock_guard lock(mu_);
  std::deque<Outgoing> out;
  out.swap(outbox_);
  return out;
}

void VolumeReplica::SetDurable(uint64_t seq) {
  {
    std::lock_guard lock(mu_);
    if (seq <= durable_ || role_ != Role::kPrimary) return;
    durable_ = std::min(seq, content_seq_);
  }
  cv_.notify_all();
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
  outbox_.clear();
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
    // Mid-resync: every later range lands on top of the chunks.
    std::memcpy(memory_.data() + m.offset, m.data.data(), m.data.size());
    return out;
  }
  if (content_epoch_ == m.epoch && m.sequence == content_seq_ + 1) {
    std::memcpy(memory_.data() + m.offset, m.data.data(), m.data.size());
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
  if (syncing_epoch_ != m.epoch) {
    syncing_epoch_ = m.epoch;
    content_epoch_ = 0;
    content_seq_ = 0;
    vouch_ = false;
    gap_reported_ = 0;
    out.changed = true;
  }
  std::memcpy(memory_.data() + off, m.data.data(), m.data.size());
  return out;
}

ReplicaAnswer VolumeReplica::OnResyncDone(const ResyncDone& m) {
  ReplicaAnswer out;
  std::lock_guard lock(mu_);
  if (m.epoch < promise_) {
    out.reply = Ack{m.volume, promise_, 0, wire::AckStatus::kStaleEpoch};
    return out;
  }
  if (syncing_epoch_ != m.epoch && !(m.chunks_sent == 0 && content_epoch_ == m.epoch)) {
    // Not the resync we are in (a duplicate or a lost start): ask again.
    out.reply = Gap{m.volume, m.epoch, 0, std::max<uint64_t>(m.sequence, 1)};
    return out;
  }
  syncing_epoch_ = 0;
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
    durable_ = base;
    vouch_ = true;
    history_.Reset(base);
    outbox_.clear();
    if (!region_.empty()) std::memcpy(region_.data(), memory_.data(), region_.size());
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
