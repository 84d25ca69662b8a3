#include "platform/sim/sim_grant_table.h"

#include <atomic>
#include <cstring>

#include "platform/sim/sim_layout.h"

namespace vnvram::sim {

namespace {

using platform::GrantRef;
using Atomic64 = std::atomic_ref<uint64_t>;
static_assert(Atomic64::is_always_lock_free, "shared-memory atomics must be lock-free");

constexpr uint64_t kStateMask = 0x3;
constexpr uint64_t kReadOnlyBit = 0x4;
constexpr size_t kTableSize =
    sizeof(GrantTableHeader) + size_t{kGrantTableCapacity} * sizeof(GrantTableEntry);

uint32_t Generation(uint64_t control) {
  return static_cast<uint32_t>(control >> 32);
}

uint64_t Encode(GrantState state, bool readonly, DomId grantee, uint32_t generation) {
  return static_cast<uint64_t>(state) | (readonly ? kReadOnlyBit : 0) |
         (static_cast<uint64_t>(grantee) << 16) | (static_cast<uint64_t>(generation) << 32);
}

}  // namespace

Result<std::shared_ptr<GrantTable>> GrantTable::Open(const std::string& dir, DomId granter) {
  VNVRAM_RETURN_IF_ERROR(MakeDirs(GrantPagesDir(dir, granter)));
  auto init = [granter](std::byte* p) {
    GrantTableHeader h{};
    h.magic = kGrantTableMagic;
    h.version = kGrantTableVersion;
    h.domid = granter;
    h.capacity = kGrantTableCapacity;
    h.entry_size = sizeof(GrantTableEntry);
    h.next_file_id = 1;
    std::memcpy(p, &h, sizeof h);
  };
  auto check = [granter](const std::byte* p) -> Status {
    GrantTableHeader h{};
    std::memcpy(&h, p, sizeof h);
    if (h.magic != kGrantTableMagic) return Status::Corruption("grant table: bad magic");
    if (h.version != kGrantTableVersion) {
      return Status::Corruption("grant table: version " + std::to_string(h.version) +
                                ", expected " + std::to_string(kGrantTableVersion));
    }
    if (h.domid != granter || h.capacity != kGrantTableCapacity ||
        h.entry_size != sizeof(GrantTableEntry)) {
      return Status::Corruption("grant table: header does not match domain " +
                                std::to_string(granter));
    }
    return Status::Ok();
  };
  VNVRAM_ASSIGN_OR_RETURN(auto file,
                          SharedTable::Open(GrantTablePath(dir, granter), kTableSize, init, check));
  return std::shared_ptr<GrantTable>(new GrantTable(dir, granter, std::move(file)));
}

GrantTableHeader* GrantTable::header() const {
  return reinterpret_cast<GrantTableHeader*>(file_->data());
}

GrantTableEntry* GrantTable::entry(GrantRef ref) const {
  return reinterpret_cast<GrantTableEntry*>(file_->data() + sizeof(GrantTableHeader)) + ref;
}

Result<GrantRef> GrantTable::Claim(uint64_t owner, uint32_t hint) {
  const uint32_t span = kGrantTableCapacity - kFirstGrantRef;
  const uint32_t start =
      hint >= kFirstGrantRef && hint < kGrantTableCapacity ? hint - kFirstGrantRef : 0;
  for (uint32_t i = 0; i < span; ++i) {
    const GrantRef ref = kFirstGrantRef + (start + i) % span;
    GrantTableEntry* e = entry(ref);
    Atomic64 control(e->control);
    uint64_t c = control.load(std::memory_order_acquire);
    if ((c & kStateMask) != static_cast<uint64_t>(GrantState::kFree)) continue;
    const uint64_t claimed = Encode(GrantState::kClaimed, false, 0, Generation(c) + 1);
    if (control.compare_exchange_strong(c, claimed, std::memory_order_acq_rel)) {
      Atomic64(e->owner).store(owner, std::memory_order_relaxed);
      return ref;
    }
  }
  return Status::ResourceExhausted("grant table of domain " + std::to_string(granter_) +
                                   " is full (" + std::to_string(span) + " refs)");
}

void GrantTable::Publish(GrantRef ref, DomId grantee, bool readonly, uint64_t file_id,
                         uint32_t page) {
  GrantTableEntry* e = entry(ref);
  Atomic64 control(e->control);
  const uint64_t c = control.load(std::memory_order_relaxed);
  Atomic64(e->file_id).store(file_id, std::memory_order_relaxed);
  std::atomic_ref<uint32_t>(e->page).store(page, std::memory_order_relaxed);
  control.store(Encode(GrantState::kGranted, readonly, grantee, Generation(c)),
                std::memory_order_release);
}

void GrantTable::Release(GrantRef ref) {
  if (ref < kFirstGrantRef || ref >= kGrantTableCapacity) return;
  GrantTableEntry* e = entry(ref);
  Atomic64 control(e->control);
  Atomic64(e->owner).store(0, std::memory_order_relaxed);
  uint64_t c = control.load(std::memory_order_relaxed);
  while (!control.compare_exchange_weak(c, Encode(GrantState::kFree, false, 0, Generation(c) + 1),
                                        std::memory_order_acq_rel)) {
  }
}

bool GrantTable::ReleaseIf(GrantRef ref, uint64_t expected) {
  if (ref < kFirstGrantRef || ref >= kGrantTableCapacity) return false;
  GrantTableEntry* e = entry(ref);
  Atomic64 control(e->control);
  // Claim it first (same generation trick) so the owner field can be reset
  // before the entry becomes free again.
  const uint64_t claimed = Encode(GrantState::kClaimed, false, 0, Generation(expected) + 1);
  uint64_t c = expected;
  if (!control.compare_exchange_strong(c, claimed, std::memory_order_acq_rel)) return false;
  Atomic64(e->owner).store(0, std::memory_order_relaxed);
  control.store(Encode(GrantState::kFree, false, 0, Generation(expected) + 2),
                std::memory_order_release);
  return true;
}

Result<GrantSnapshot> GrantTable::Lookup(GrantRef ref) const {
  if (ref < kFirstGrantRef || ref >= kGrantTableCapacity) {
    return Status::InvalidArgument("grant ref " + std::to_string(ref) + " of domain " +
                                   std::to_string(granter_) + ": outside the grant table");
  }
  GrantTableEntry* e = entry(ref);
  Atomic64 control(e->control);
  for (;;) {
    GrantSnapshot s;
    s.ref = ref;
    s.control = control.load(std::memory_order_acquire);
    s.file_id = Atomic64(e->file_id).load(std::memory_order_relaxed);
    s.page = std::atomic_ref<uint32_t>(e->page).load(std::memory_order_relaxed);
    s.owner = Atomic64(e->owner).load(std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_acquire);
    if (control.load(std::memory_order_relaxed) != s.control) continue;
    s.state = static_cast<GrantState>(s.control & kStateMask);
    s.readonly = (s.control & kReadOnlyBit) != 0;
    s.grantee = static_cast<DomId>(s.control >> 16);
    s.generation = Generation(s.control);
    return s;
  }
}

bool GrantTable::Unchanged(const GrantSnapshot& snap) const {
  return Atomic64(entry(snap.ref)->control).load(std::memory_order_acquire) == snap.control;
}

bool GrantTable::ReservePages(uint64_t n, uint64_t limit) {
  Atomic64 used(header()->pages_in_use);
  uint64_t cur = used.load(std::memory_order_relaxed);
  do {
    if (cur + n > limit || cur + n < cur) return false;
  } while (!used.compare_exchange_weak(cur, cur + n, std::memory_order_acq_rel));
  return true;
}

void GrantTable::UnreservePages(uint64_t n) {
  Atomic64(header()->pages_in_use).fetch_sub(n, std::memory_order_acq_rel);
}

uint64_t GrantTable::PagesInUse() const {
  return Atomic64(header()->pages_in_use).load(std::memory_order_acquire);
}

uint64_t GrantTable::NextFileId() {
  return Atomic64(header()->next_file_id).fetch_add(1, std::memory_order_acq_rel);
}

}  // namespace vnvram::sim
