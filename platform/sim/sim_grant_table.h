// GrantTable: one sim domain's grant table, the shared file every process
// maps, and its on-disk format. Entries change only by atomic operations;
// GrantTable objects are thread-safe and safe across processes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "common/parse.h"
#include "common/result.h"
#include "platform/grant.h"
#include "platform/sim/sim_shared_table.h"

namespace vnvram::sim {

// GrantTable: one granting domain's grant table on the sim, the file
// DIR/grants/<granter>/table that every process maps MAP_SHARED. It is the
// sim's stand-in for Xen's grant table: each entry says whether the ref is
// in use, which domain may map it, read-only or not, and where its page is
// (backing file id + page index under DIR/grants/<granter>/pages/). Entries
// change only through atomic operations on their control word (a seqlock
// with a generation), so any number of processes and threads may use one
// table at once; GrantTable objects are thread-safe.
//
// File format (host byte order; the file never leaves the host):
//   header, 64 bytes: magic "VGNT" (u32), version (u16), granter (u16),
//     capacity (u32), entry size (u32), next backing-file id (u64, atomic),
//     pages in use by the domain (u64, atomic; gntalloc's `limit` counts it),
//     32 reserved bytes
//   entries[capacity], 32 bytes each: control (u64, atomic), backing file id
//     (u64), owner token id (u64), page index in the file (u32), reserved (u32)
//   control = state (bits 0-1: free, claimed, granted) | read-only (bit 2)
//             | grantee domid (bits 16-31) | generation (bits 32-63)
// The generation changes on every claim and release, so a reader that saw
// the same control word before and after reading the other fields has a
// consistent entry, and a mapper can tell that a ref was revoked (even if
// reused) while it was mapping.
inline constexpr uint32_t kGrantTableMagic = 0x544E4756;  // "VGNT" little-endian
inline constexpr uint16_t kGrantTableVersion = 1;
// gnttab_max_frames (64) x 512 v1 entries per 4 KiB frame.
inline constexpr uint32_t kGrantTableCapacity = 32768;
// Xen reserves refs 0-7 (GNTTAB_NR_RESERVED_ENTRIES); the sim does too.
inline constexpr uint32_t kFirstGrantRef = 8;

struct GrantTableHeader {
  uint32_t magic;
  uint16_t version;
  uint16_t domid;
  uint32_t capacity;
  uint32_t entry_size;
  uint64_t next_file_id;
  uint64_t pages_in_use;
  uint64_t reserved[4];
};
static_assert(sizeof(GrantTableHeader) == 64);

struct GrantTableEntry {
  uint64_t control;
  uint64_t file_id;
  uint64_t owner;
  uint32_t page;
  uint32_t reserved;
};
static_assert(sizeof(GrantTableEntry) == 32);

enum class GrantState : uint8_t { kFree = 0, kClaimed = 1, kGranted = 2 };

// A consistent copy of one entry.
struct GrantSnapshot {
  platform::GrantRef ref = 0;
  uint64_t control = 0;
  GrantState state = GrantState::kFree;
  bool readonly = false;
  DomId grantee = 0;
  uint32_t generation = 0;
  uint64_t file_id = 0;
  uint32_t page = 0;
  uint64_t owner = 0;
};

class GrantTable {
 public:
  // Opens (creating when missing) the table of `granter` under `dir`.
  static Result<std::shared_ptr<GrantTable>> Open(const std::string& dir, DomId granter);

  DomId granter() const { return granter_; }
  const std::string& dir() const { return dir_; }

  // free -> claimed, recording `owner`; searches from `hint`.
  // kResourceExhausted when every entry is in use.
  Result<platform::GrantRef> Claim(uint64_t owner, uint32_t hint);
  // claimed -> granted. Only the claimer calls it.
  void Publish(platform::GrantRef ref, DomId grantee, bool readonly, uint64_t file_id,
               uint32_t page);
  // Any state -> free, by the claimer (revoke).
  void Release(platform::GrantRef ref);
  // -> free only if the control word still equals `control` (reclaiming
  // what a dead process left). True when this call freed it.
  bool ReleaseIf(platform::GrantRef ref, uint64_t control);
  // kInvalidArgument for a ref outside the table.
  Result<GrantSnapshot> Lookup(platform::GrantRef ref) const;
  // Whether the entry still has the control word of `snap`.
  bool Unchanged(const GrantSnapshot& snap) const;

  // The domain-wide page count against gntalloc's `limit`: adds `n` unless
  // that would exceed `limit`.
  bool ReservePages(uint64_t n, uint64_t limit);
  void UnreservePages(uint64_t n);
  uint64_t PagesInUse() const;
  uint64_t NextFileId();

 private:
  GrantTable(std::string dir, DomId granter, std::unique_ptr<SharedTable> file)
      : dir_(std::move(dir)), granter_(granter), file_(std::move(file)) {}
  GrantTableHeader* header() const;
  GrantTableEntry* entry(platform::GrantRef ref) const;

  const std::string dir_;
  const DomId granter_;
  const std::unique_ptr<SharedTable> file_;
};

}  // namespace vnvram::sim
