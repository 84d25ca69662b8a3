// SimGrantSharer: allocates and grants pages on the sim (the stand-in for
// libxengntshr/gntalloc), with gntalloc's per-domain page limit.
// SimGrantSharer is thread-safe; a SharedPages is owned by one thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "common/parse.h"
#include "common/result.h"
#include "platform/grant.h"
#include "platform/sim/sim_grant_table.h"
#include "platform/sim/sim_owner_token.h"

namespace vnvram::sim {

// SimGrantSharer: platform::GrantSharer on the sim, the stand-in for
// libxengntshr/gntalloc. Share() allocates the pages itself, as gntalloc
// does: a new file DIR/grants/<self>/pages/<id> of zeroed pages mapped
// MAP_SHARED, one grant-table entry per page (sim_grant_table.h). The
// SharedPages destructor revokes: it frees the entries (new maps fail at
// once) and unlinks the file; a mapper keeps its existing mapping until it
// unmaps, as the kernel defers freeing a still-mapped gntalloc page.
//
// Limit: like gntalloc's `limit` module parameter, the pages one domain has
// shared at a time are capped (default 1024); beyond it Share() returns
// kResourceExhausted (ENOSPC). The cap comes from the Open() argument, else
// the environment variable VNVRAM_SIM_GNTALLOC_LIMIT (decimal page count),
// else 1024. The count is domain-wide (in the grant table); each process
// enforces the cap it was configured with.
//
// Process death: what a dead process shared stays in the table until some
// Share() of the same domain finds the limit or the table exhausted and
// reclaims entries whose owner token is dead (sim_owner_token.h); mappers
// refuse new maps of a dead owner's refs at once (kNotFound), as on Xen
// where the kernel ends foreign access when the process exits. Known gap:
// a process killed in the middle of Share() (after reserving pages against
// the limit, before publishing every entry) leaks the unpublished part of
// that reservation and its backing file until the sim directory is reset.
//
// Thread-safety: SimGrantSharer is thread-safe. A SharedPages is owned by
// one thread at a time; a copy inherited through fork() does nothing in its
// destructor but unmap.
inline constexpr uint64_t kDefaultGntallocLimit = 1024;
inline constexpr const char* kGntallocLimitEnv = "VNVRAM_SIM_GNTALLOC_LIMIT";

// The limit from VNVRAM_SIM_GNTALLOC_LIMIT, or the default when unset.
// kInvalidArgument for a value that is not a positive decimal.
Result<uint64_t> GntallocLimitFromEnv();

class SimGrantSharer final : public platform::GrantSharer {
 public:
  // `limit`: pages this domain may share at once; nullopt reads the
  // environment (see above).
  static Result<std::unique_ptr<SimGrantSharer>> Open(const std::string& dir, DomId self,
                                                      std::optional<uint64_t> limit = {});

  Result<std::unique_ptr<platform::SharedPages>> Share(
      DomId grantee, size_t pages, bool writable,
      std::optional<platform::UnmapNotify> notify = {}) override;

  uint64_t limit() const { return limit_; }
  // Frees the entries (and page accounting) of owners that have died;
  // returns how many pages were reclaimed.
  size_t ReclaimDead();

 private:
  SimGrantSharer(std::string dir, DomId self, uint64_t limit, std::shared_ptr<GrantTable> table,
                 std::shared_ptr<OwnerToken> token)
      : dir_(std::move(dir)),
        self_(self),
        limit_(limit),
        table_(std::move(table)),
        token_(std::move(token)) {}

  // Constant after construction.
  const std::string dir_;
  const DomId self_;
  const uint64_t limit_;
  const std::shared_ptr<GrantTable> table_;
  const std::shared_ptr<OwnerToken> token_;
  // Where the next ref search starts (a hint; races are harmless).
  std::atomic<uint32_t> hint_{kFirstGrantRef};
};

}  // namespace vnvram::sim
