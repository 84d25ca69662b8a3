#include "platform/sim/sim_port_table.h"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <unordered_map>

#include "platform/sim/sim_layout.h"
#include "platform/sim/sim_owner_token.h"

namespace vnvram::sim {

namespace {

using platform::EvtchnPort;
using Atomic64 = std::atomic_ref<uint64_t>;
static_assert(Atomic64::is_always_lock_free, "shared-memory atomics must be lock-free");

constexpr size_t kTableSize =
    sizeof(PortTableHeader) + size_t{kPortTableCapacity} * sizeof(PortTableEntry);

uint16_t Generation(uint64_t w) {
  return static_cast<uint16_t>(w >> 48);
}

uint64_t Encode(PortState state, DomId remote, EvtchnPort remote_port, uint16_t generation) {
  return static_cast<uint64_t>(state) | (static_cast<uint64_t>(remote) << 8) |
         (static_cast<uint64_t>(remote_port & 0xFFFFFF) << 24) |
         (static_cast<uint64_t>(generation) << 48);
}

}  // namespace

Result<std::shared_ptr<PortTable>> PortTable::Open(const std::string& dir, DomId domid,
                                                   bool create) {
  if (!create && ::access(PortTablePath(dir, domid).c_str(), F_OK) != 0) {
    return Status(Code::kNotFound,
                  "event channels: no such domain " + std::to_string(domid) +
                      " (none of its processes has opened event channels)",
                  ESRCH);
  }
  VNVRAM_RETURN_IF_ERROR(MakeDirs(EvtchnDir(dir, domid)));
  auto init = [domid](std::byte* p) {
    PortTableHeader h{};
    h.magic = kPortTableMagic;
    h.version = kPortTableVersion;
    h.domid = domid;
    h.capacity = kPortTableCapacity;
    h.entry_size = sizeof(PortTableEntry);
    std::memcpy(p, &h, sizeof h);
  };
  auto check = [domid](const std::byte* p) -> Status {
    PortTableHeader h{};
    std::memcpy(&h, p, sizeof h);
    if (h.magic != kPortTableMagic) return Status::Corruption("port table: bad magic");
    if (h.version != kPortTableVersion) {
      return Status::Corruption("port table: version " + std::to_string(h.version) + ", expected " +
                                std::to_string(kPortTableVersion));
    }
    if (h.domid != domid || h.capacity != kPortTableCapacity ||
        h.entry_size != sizeof(PortTableEntry)) {
      return Status::Corruption("port table: header does not match domain " +
                                std::to_string(domid));
    }
    return Status::Ok();
  };
  VNVRAM_ASSIGN_OR_RETURN(auto file,
                          SharedTable::Open(PortTablePath(dir, domid), kTableSize, init, check));
  return std::shared_ptr<PortTable>(new PortTable(dir, domid, std::move(file)));
}

PortTableEntry* PortTable::entry(EvtchnPort port) const {
  return reinterpret_cast<PortTableEntry*>(file_->data() + sizeof(PortTableHeader)) + port;
}

const uint64_t* PortTable::WordAddress(EvtchnPort port) const {
  return &entry(port)->word;
}

Result<EvtchnPort> PortTable::TryReserve(uint64_t owner) {
  for (EvtchnPort port = 1; port < kPortTableCapacity; ++port) {
    PortTableEntry* e = entry(port);
    Atomic64 word(e->word);
    uint64_t w = word.load(std::memory_order_acquire);
    if (PortWordState(w) != PortState::kFree) continue;
    if (word.compare_exchange_strong(w, Encode(PortState::kReserved, 0, 0, Generation(w) + 1),
                                     std::memory_order_acq_rel)) {
      Atomic64(e->owner).store(owner, std::memory_order_relaxed);
      return port;
    }
  }
  return Status(Code::kResourceExhausted,
                "event channel ports of domain " + std::to_string(domid_) + " exhausted", ENOSPC);
}

Result<EvtchnPort> PortTable::Reserve(uint64_t owner) {
  auto port = TryReserve(owner);
  if (port.ok()) return port;
  // Reclaim what dead handles left behind, then try once more.
  std::unordered_map<uint64_t, bool> alive;
  for (EvtchnPort p = 1; p < kPortTableCapacity; ++p) {
    auto snap = Lookup(p);
    if (!snap.ok() || snap->state == PortState::kFree || snap->owner == 0) continue;
    auto it = alive.find(snap->owner);
    if (it == alive.end()) it = alive.emplace(snap->owner, OwnerAlive(dir_, snap->owner)).first;
    if (!it->second) FreeIf(p, snap->word);
  }
  return TryReserve(owner);
}

void PortTable::SetUnbound(EvtchnPort port, DomId remote) {
  Atomic64 word(entry(port)->word);
  const uint64_t w = word.load(std::memory_order_relaxed);
  word.store(Encode(PortState::kUnbound, remote, 0, Generation(w)), std::memory_order_release);
}

void PortTable::SetInterdomain(EvtchnPort port, DomId remote, EvtchnPort remote_port) {
  Atomic64 word(entry(port)->word);
  const uint64_t w = word.load(std::memory_order_relaxed);
  word.store(Encode(PortState::kInterdomain, remote, remote_port, Generation(w)),
             std::memory_order_release);
}

Status PortTable::Connect(EvtchnPort port, DomId me, EvtchnPort my_port, const PortTable& mine) {
  const std::string what = "port " + std::to_string(port) + " of domain " + std::to_string(domid_);
  if (port == 0 || port >= kPortTableCapacity) {
    return Status(Code::kInvalidArgument, what + ": no such port", EINVAL);
  }
  PortTableEntry* e = entry(port);
  Atomic64 word(e->word);
  uint64_t w = word.load(std::memory_order_acquire);
  for (;;) {
    const PortState state = PortWordState(w);
    if (state == PortState::kInterdomain && PortWordRemote(w) == me) {
      if (PortWordRemotePort(w) == my_port) return Status::Ok();  // already ours
      // Connected to a port of our domain: still live only if that port
      // points back here and its owner is alive.
      auto peer = mine.Lookup(PortWordRemotePort(w));
      const bool live = peer.ok() && peer->state == PortState::kInterdomain &&
                        peer->remote == domid_ && peer->remote_port == port &&
                        OwnerAlive(dir_, peer->owner);
      if (live) return Status(Code::kInvalidArgument, what + ": already connected", EINVAL);
    } else if (state != PortState::kUnbound) {
      return Status(Code::kInvalidArgument, what + ": not an unbound port", EINVAL);
    } else if (PortWordRemote(w) != me) {
      return Status(Code::kInvalidArgument,
                    what + ": offered to domain " + std::to_string(PortWordRemote(w)) +
                        ", not to " + std::to_string(me),
                    EINVAL);
    }
    const uint64_t owner = Atomic64(e->owner).load(std::memory_order_relaxed);
    if (!OwnerAlive(dir_, owner)) {
      FreeIf(port, w);
      return Status(Code::kInvalidArgument, what + ": its owner has gone", EINVAL);
    }
    if (word.compare_exchange_weak(w, Encode(PortState::kInterdomain, me, my_port, Generation(w)),
                                   std::memory_order_acq_rel)) {
      return Status::Ok();
    }
  }
}

void PortTable::Disconnect(EvtchnPort port, DomId peer, EvtchnPort peer_port) {
  if (port == 0 || port >= kPortTableCapacity) return;
  Atomic64 word(entry(port)->word);
  uint64_t w = word.load(std::memory_order_acquire);
  if (PortWordState(w) != PortState::kInterdomain || PortWordRemote(w) != peer ||
      PortWordRemotePort(w) != peer_port) {
    return;
  }
  (void)word.compare_exchange_strong(w, Encode(PortState::kUnbound, peer, 0, Generation(w)),
                                     std::memory_order_acq_rel);
}

void PortTable::Free(EvtchnPort port) {
  if (port == 0 || port >= kPortTableCapacity) return;
  PortTableEntry* e = entry(port);
  Atomic64 word(e->word);
  Atomic64(e->owner).store(0, std::memory_order_relaxed);
  uint64_t w = word.load(std::memory_order_relaxed);
  while (!word.compare_exchange_weak(w, Encode(PortState::kFree, 0, 0, Generation(w) + 1),
                                     std::memory_order_acq_rel)) {
  }
}

bool PortTable::FreeIf(EvtchnPort port, uint64_t expected) {
  PortTableEntry* e = entry(port);
  Atomic64 word(e->word);
  uint64_t w = expected;
  if (!word.compare_exchange_strong(w, Encode(PortState::kReserved, 0, 0, Generation(w) + 1),
                                    std::memory_order_acq_rel)) {
    return false;
  }
  Atomic64(e->owner).store(0, std::memory_order_relaxed);
  word.store(Encode(PortState::kFree, 0, 0, Generation(expected) + 2), std::memory_order_release);
  return true;
}

Result<PortSnapshot> PortTable::Lookup(EvtchnPort port) const {
  if (port == 0 || port >= kPortTableCapacity) {
    return Status(
        Code::kInvalidArgument,
        "port " + std::to_string(port) + " of domain " + std::to_string(domid_) + ": no such port",
        EINVAL);
  }
  PortTableEntry* e = entry(port);
  Atomic64 word(e->word);
  for (;;) {
    PortSnapshot s;
    s.port = port;
    s.word = word.load(std::memory_order_acquire);
    s.owner = Atomic64(e->owner).load(std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_acquire);
    if (word.load(std::memory_order_relaxed) != s.word) continue;
    s.state = PortWordState(s.word);
    s.remote = PortWordRemote(s.word);
    s.remote_port = PortWordRemotePort(s.word);
    return s;
  }
}

}  // namespace vnvram::sim
