// SimGrantMapper: maps other sim domains' granted pages (the stand-in for
// libxengnttab/gntdev), checking each ref against the granter's grant table.
// SimGrantMapper is thread-safe; a GrantMapping is owned by one thread.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "common/parse.h"
#include "common/result.h"
#include "platform/grant.h"
#include "platform/sim/sim_grant_table.h"

namespace vnvram::sim {

// SimGrantMapper: platform::GrantMapper on the sim, the stand-in for
// libxengnttab/gntdev. Map() checks every ref in the granter's grant table
// (sim_grant_table.h) the way Xen checks a map request: in use, granted to
// this domain (a third domain gets kPermissionDenied), not read-only when a
// writable map is asked (kPermissionDenied), granter's handle still alive.
// It reserves the address range with PROT_NONE and maps each page over it
// with MAP_FIXED from the granter's backing file (opened read-only for a
// read-only map, so the mapping cannot be made writable), then checks that
// no ref changed meanwhile. The GrantMapping destructor unmaps; with an
// UnmapNotify it first clears the byte and afterwards sends the event, as
// gntdev does, and a watchdog does both if the process dies (see
// sim_unmap_notifier.h).
//
// The sim is not a security boundary: every simulated domain runs as the
// same Unix user and could open the backing files itself; the checks make
// code that obeys Xen's rules behave here as it will on Xen.
//
// Thread-safety: SimGrantMapper is thread-safe. A GrantMapping is owned by
// one thread at a time.
class SimGrantMapper final : public platform::GrantMapper {
 public:
  static Result<std::unique_ptr<SimGrantMapper>> Open(const std::string& dir, DomId self);

  // Errors: kInvalidArgument (no refs, ref outside the table, reserved
  // granter, notify port not bound, notify byte on a read-only map),
  // kNotSupported (notify on several pages), kOutOfRange (notify byte
  // outside the page), kNotFound (ref not in use, revoked while mapping,
  // granter gone; real Xen cannot tell these from the next case and the xen
  // implementation reports kPermissionDenied for them), kPermissionDenied
  // (granted to another domain; read-only ref asked writable).
  Result<std::unique_ptr<platform::GrantMapping>> Map(
      DomId granter, std::span<const platform::GrantRef> refs, bool writable,
      std::optional<platform::UnmapNotify> notify = {}) override;

 private:
  SimGrantMapper(std::string dir, DomId self) : dir_(std::move(dir)), self_(self) {}
  Result<std::shared_ptr<GrantTable>> TableOf(DomId granter);

  // Constant after construction.
  const std::string dir_;
  const DomId self_;

  std::mutex mu_;
  // Granter -> its table, opened on first use. Guarded by mu_.
  std::map<DomId, std::shared_ptr<GrantTable>> tables_;
};

}  // namespace vnvram::sim
