// XenStore: the platform seam for the xenstore tree. One object is one
// connection (libxenstore handle on Xen; the same library against the sim
// daemon's socket on the sim platform). Implementations are thread-safe:
// libxenstore serialises requests on a handle. Watch events are queued by
// the connection and announced through WatchFd(), which becomes readable
// while ReadWatch() has something to return.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/parse.h"
#include "common/result.h"

namespace vnvram::platform {

// 0 means "not in a transaction" (XBT_NULL).
using TxId = uint32_t;
inline constexpr TxId kNoTx = 0;

// The special watch paths xenstored fires on domain birth and death.
inline constexpr std::string_view kIntroduceDomainWatch = "@introduceDomain";
inline constexpr std::string_view kReleaseDomainWatch = "@releaseDomain";

// xenstored's permission letters: n(one), r(ead), w(rite), b(oth).
enum class Perm : uint8_t { kNone, kRead, kWrite, kBoth };

// The first entry of a node's list names its owner and the access every
// domain not listed gets; later entries grant access to one domain each.
struct PermEntry {
  DomId domid = 0;
  Perm perm = Perm::kNone;
  bool operator==(const PermEntry&) const = default;
};

// "r3", "n0", ... and back; parsing is strict.
std::string FormatPerm(const PermEntry& e);
Result<PermEntry> ParsePerm(std::string_view s);

struct WatchEvent {
  std::string path;   // the node that changed (or the special watch path)
  std::string token;  // the token given to Watch()
};

class XenStore {
 public:
  virtual ~XenStore() = default;

  // kNotFound when the node does not exist; kPermissionDenied without read
  // access. Values are bytes (may hold NULs).
  virtual Result<std::string> Read(TxId tx, std::string_view path) = 0;
  // Creates missing parents as xenstored does.
  virtual Status Write(TxId tx, std::string_view path, std::string_view value) = 0;
  virtual Status Mkdir(TxId tx, std::string_view path) = 0;
  // Removes the node and its subtree; removing a missing node is OK.
  virtual Status Remove(TxId tx, std::string_view path) = 0;
  // Child names (not paths).
  virtual Result<std::vector<std::string>> Directory(TxId tx, std::string_view path) = 0;
  virtual Result<std::vector<PermEntry>> GetPermissions(TxId tx, std::string_view path) = 0;
  virtual Status SetPermissions(TxId tx, std::string_view path,
                                std::span<const PermEntry> perms) = 0;

  virtual Result<TxId> TransactionStart() = 0;
  // commit=false aborts. A conflicting commit returns kAborted (EAGAIN):
  // the caller retries the whole transaction (see RunTransaction).
  virtual Status TransactionEnd(TxId tx, bool commit) = 0;

  // Registers a watch on `path` (a node and its subtree, or a special
  // "@..." path). xenstored fires once at registration.
  virtual Status Watch(std::string_view path, std::string_view token) = 0;
  virtual Status Unwatch(std::string_view path, std::string_view token) = 0;
  // Readable while watch events are queued; never closed by the caller.
  virtual int WatchFd() = 0;
  // Returns the next queued event without blocking, or nullopt.
  virtual Result<std::optional<WatchEvent>> ReadWatch() = 0;

  // "/local/domain/<domid>".
  virtual Result<std::string> GetDomainPath(DomId domid) = 0;
  // Whether xenstored knows the domain (dom0 connections only).
  virtual Result<bool> IsDomainIntroduced(DomId domid) = 0;
};

// Runs `body` inside a transaction and commits it; when the commit (or any
// step of the body) fails with kAborted, starts again, up to `max_attempts`
// times. A body error other than kAborted aborts the transaction and is
// returned as is.
Status RunTransaction(XenStore& xs, const std::function<Status(TxId)>& body, int max_attempts = 32);

}  // namespace vnvram::platform
