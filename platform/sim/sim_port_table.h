// PortTable: one sim domain's event-channel ports, the shared file every
// process maps, and its on-disk format. Transitions are atomic; PortTable
// objects are thread-safe and safe across processes.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "common/parse.h"
#include "common/result.h"
#include "platform/grant.h"
#include "platform/sim/sim_shared_table.h"

namespace vnvram::sim {

// PortTable: one domain's event-channel ports on the sim, the file
// DIR/evtchn/<domid>/ports that every process maps MAP_SHARED; the sim's
// stand-in for the hypervisor's per-domain evtchn state. Each entry is one
// port: free, reserved (being set up), unbound (offered to one remote
// domain) or interdomain (connected to a remote port). Every transition is
// an atomic store or compare-and-swap on the entry's state word, so any
// number of processes and threads may use a table at once; PortTable
// objects are thread-safe.
//
// File format (host byte order; the file never leaves the host):
//   header, 64 bytes: magic "VEVT" (u32), version (u16), domid (u16),
//     capacity (u32), entry size (u32), 48 reserved bytes
//   entries[capacity], 16 bytes each: state word (u64, atomic), owner token
//     id (u64; the handle that bound the port, see sim_owner_token.h)
//   state word = state (bits 0-7) | remote domid (bits 8-23)
//                | remote port (bits 24-47) | generation (bits 48-63)
// Port 0 is never allocated, as on Xen.
inline constexpr uint32_t kPortTableMagic = 0x54564556;  // "VEVT" little-endian
inline constexpr uint16_t kPortTableVersion = 1;
// The 2-level event channel ABI's limit for a 64-bit guest.
inline constexpr uint32_t kPortTableCapacity = 4096;

struct PortTableHeader {
  uint32_t magic;
  uint16_t version;
  uint16_t domid;
  uint32_t capacity;
  uint32_t entry_size;
  uint64_t reserved[6];
};
static_assert(sizeof(PortTableHeader) == 64);

struct PortTableEntry {
  uint64_t word;
  uint64_t owner;
};
static_assert(sizeof(PortTableEntry) == 16);

enum class PortState : uint8_t { kFree = 0, kReserved = 1, kUnbound = 2, kInterdomain = 3 };

struct PortSnapshot {
  platform::EvtchnPort port = 0;
  uint64_t word = 0;
  PortState state = PortState::kFree;
  DomId remote = 0;
  platform::EvtchnPort remote_port = 0;
  uint64_t owner = 0;
};

// Decodes a state word (async-signal-safe; used by the unmap notifier).
inline PortState PortWordState(uint64_t w) {
  return static_cast<PortState>(w & 0xFF);
}
inline DomId PortWordRemote(uint64_t w) {
  return static_cast<DomId>(w >> 8);
}
inline platform::EvtchnPort PortWordRemotePort(uint64_t w) {
  return static_cast<platform::EvtchnPort>((w >> 24) & 0xFFFFFF);
}

class PortTable {
 public:
  // Opens the port table of `domid` under `dir`, creating it when missing
  // if `create`; otherwise a missing table is kNotFound (ESRCH).
  static Result<std::shared_ptr<PortTable>> Open(const std::string& dir, DomId domid,
                                                 bool create = true);

  DomId domid() const { return domid_; }

  // free -> reserved for `owner`. When the table is full, first reclaims
  // ports whose owner is dead; kResourceExhausted (ENOSPC) if none.
  Result<platform::EvtchnPort> Reserve(uint64_t owner);
  // By the owner: -> unbound, offered to `remote`.
  void SetUnbound(platform::EvtchnPort port, DomId remote);
  // By the owner: -> interdomain with (remote, remote_port).
  void SetInterdomain(platform::EvtchnPort port, DomId remote, platform::EvtchnPort remote_port);
  // On the remote side of a bind: unbound-offered-to-`me` -> interdomain
  // (me, my_port). As Xen's EVTCHNOP_bind_interdomain: kInvalidArgument
  // (EINVAL) when the port is not unbound or is offered to another domain.
  // An interdomain port whose peer end (in `mine`, the caller's domain
  // table) has died or moved on counts as unbound-offered-to-that-peer: on
  // Xen the peer's close would have returned it to that state.
  Status Connect(platform::EvtchnPort port, DomId me, platform::EvtchnPort my_port,
                 const PortTable& mine);
  // When the peer closes: interdomain(peer, peer_port) -> unbound(peer),
  // as Xen does, if the entry still says so.
  void Disconnect(platform::EvtchnPort port, DomId peer, platform::EvtchnPort peer_port);
  // By the owner: -> free.
  void Free(platform::EvtchnPort port);
  // kInvalidArgument outside the table.
  Result<PortSnapshot> Lookup(platform::EvtchnPort port) const;
  // The state word of `port` for async-signal-safe readers; `port` must be
  // inside the table. Valid while this object lives.
  const uint64_t* WordAddress(platform::EvtchnPort port) const;

 private:
  PortTable(std::string dir, DomId domid, std::unique_ptr<SharedTable> file)
      : dir_(std::move(dir)), domid_(domid), file_(std::move(file)) {}
  PortTableEntry* entry(platform::EvtchnPort port) const;
  bool FreeIf(platform::EvtchnPort port, uint64_t word);
  Result<platform::EvtchnPort> TryReserve(uint64_t owner);

  const std::string dir_;
  const DomId domid_;
  const std::unique_ptr<SharedTable> file_;
};

}  // namespace vnvram::sim
