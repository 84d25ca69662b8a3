// vnvram::Journal (include/vnvram/journal.hpp): the journal core
// (journal/journal.h) on a range of a libvnvram Device. Before every
// operation it takes the Device's current mapping, so that no store lands
// in a mapping the Device has left (docs/journal.md, "Moving mappings").
// Not thread-safe, as the class.
#include <string>
#include <vector>

#include "common/clock.h"
#include "journal/journal.h"
#include "vnvram/journal.hpp"

namespace vnvram {
namespace {

static_assert(Journal::kMaxPayload == journal::kMaxPayload);
static_assert(Journal::kMinLength == 2 * journal::kLogOffset);

Status CheckRange(const Device& device, uint64_t offset, uint64_t length) {
  const uint64_t size = device.size();
  if (offset % 8 != 0 || length % 8 != 0) {
    return Status::InvalidArgument("journal: offset " + std::to_string(offset) + " and length " +
                                   std::to_string(length) + " must be multiples of 8");
  }
  if (length < Journal::kMinLength) {
    return Status::InvalidArgument("journal: length " + std::to_string(length) +
                                   " is under the minimum of " +
                                   std::to_string(Journal::kMinLength));
  }
  if (offset > size || length > size - offset) {
    return Status::InvalidArgument("journal: [" + std::to_string(offset) + ", +" +
                                   std::to_string(length) + ") is outside the region of " +
                                   std::to_string(size) + " bytes");
  }
  return Status::Ok();
}

// The journal's bytes in the device's current mapping. region() may itself
// move the mapping (a failover the background thread prepared), so the
// generation is read around it until it is stable.
Result<std::span<std::byte>> Mapped(Device& device, uint64_t offset, uint64_t length) {
  for (int attempt = 0; attempt < 4; ++attempt) {
    const uint64_t g = device.generation();
    const std::span<std::byte> region = device.region();
    if (device.generation() != g) continue;
    if (region.size() < offset + length) {
      const Status why = device.error();
      return Status::Unavailable(
          "journal: the device has no mapping" +
          (why.ok() ? std::string(" (closed or detached)") : ": " + why.ToString()));
    }
    return region.subspan(offset, length);
  }
  return Status::Unavailable("journal: the device's mapping kept moving");
}

journal::PersistFn PersistOn(Device& device, uint64_t offset) {
  return
      [&device, offset](uint64_t off, uint64_t len) { return device.persist(offset + off, len); };
}

uint64_t WallNs() {
  return static_cast<uint64_t>(SystemClock::Instance().WallNow().count());
}

}  // namespace

Journal::Journal(Device& device, uint64_t offset, uint64_t length)
    : device_(&device), offset_(offset), length_(length) {}

Journal::~Journal() = default;

Status Journal::Format(Device& device, uint64_t offset, uint64_t length, const JournalUuid& uuid) {
  VNVRAM_RETURN_IF_ERROR(CheckRange(device, offset, length));
  VNVRAM_ASSIGN_OR_RETURN(std::span<std::byte> bytes, Mapped(device, offset, length));
  return journal::Journal::Format(bytes, PersistOn(device, offset), uuid);
}

Result<std::unique_ptr<Journal>> Journal::Open(Device& device, uint64_t offset, uint64_t length,
                                               const JournalRecordFn& on_record) {
  VNVRAM_RETURN_IF_ERROR(CheckRange(device, offset, length));
  std::unique_ptr<Journal> j(new Journal(device, offset, length));
  VNVRAM_ASSIGN_OR_RETURN(std::span<std::byte> bytes, Mapped(device, offset, length));
  j->base_ = bytes.data();
  journal::RecordFn replay;
  if (on_record) {
    replay = [&on_record](const journal::Record& r) {
      on_record(JournalRecord{r.sequence, r.timestamp_ns, r.payload});
    };
  }
  VNVRAM_ASSIGN_OR_RETURN(j->core_,
                          journal::Journal::Open(bytes, PersistOn(device, offset), replay));
  return j;
}

JournalReplayReport Journal::replay_report() const {
  const journal::ReplayStats& s = core_->replay_stats();
  JournalReplayReport r;
  r.records = s.records;
  r.uncommitted = s.uncommitted;
  r.damaged = s.end == journal::ReplayStats::End::kDamaged;
  r.lost_commits = s.lost_commits();
  r.valid_superblocks = s.valid_slots;
  r.detail = s.end_detail;
  return r;
}

Status Journal::Follow() {
  VNVRAM_ASSIGN_OR_RETURN(std::span<std::byte> bytes, Mapped(*device_, offset_, length_));
  if (bytes.data() != base_) {
    VNVRAM_RETURN_IF_ERROR(core_->Rebind(bytes));
    base_ = bytes.data();
  }
  return Status::Ok();
}

Result<uint64_t> Journal::append(std::span<const std::byte> payload) {
  VNVRAM_RETURN_IF_ERROR(Follow());
  return core_->Append(payload, WallNs());
}

Result<uint64_t> Journal::append_batch(std::span<const std::span<const std::byte>> payloads) {
  if (payloads.empty()) return Status::InvalidArgument("journal: an empty batch");
  VNVRAM_RETURN_IF_ERROR(Follow());
  std::vector<size_t> sizes;
  sizes.reserve(payloads.size());
  for (const auto& p : payloads) {
    if (p.size() > kMaxPayload || (journal::kHeaderSize + p.size() + 7) / 8 * 8 > log_size()) {
      return Status::InvalidArgument("journal: a record of " + std::to_string(p.size()) +
                                     " bytes does not fit in the log");
    }
    sizes.push_back(p.size());
  }
  if (!core_->Fits(sizes)) {
    return Status(Code::kResourceExhausted, "journal full: " + std::to_string(core_->free_bytes()) +
                                                " bytes free, a batch of " +
                                                std::to_string(payloads.size()) +
                                                " records does not fit");
  }
  const uint64_t now = WallNs();
  const uint64_t first = core_->next_sequence();
  for (const auto& p : payloads) {
    // Fits() said every one succeeds; a failure here is a bug, reported.
    auto seq = core_->Append(p, now);
    if (!seq.ok()) return seq.status().WithContext("journal: batch append after Fits()");
  }
  return first;
}

Status Journal::commit() {
  VNVRAM_RETURN_IF_ERROR(Follow());
  return core_->Commit();
}

Status Journal::trim(uint64_t sequence) {
  VNVRAM_RETURN_IF_ERROR(Follow());
  return core_->Trim(sequence);
}

uint64_t Journal::head_sequence() const {
  return core_->head_sequence();
}
uint64_t Journal::next_sequence() const {
  return core_->next_sequence();
}
uint64_t Journal::committed_sequence() const {
  return core_->committed_sequence();
}
uint64_t Journal::free_bytes() const {
  return core_->free_bytes();
}
uint64_t Journal::log_size() const {
  return core_->log_size();
}

}  // namespace vnvram
