#include "platform/platform.h"

#include <cstdlib>
#include <string>

namespace vnvram::platform {

std::string FormatPerm(const PermEntry& e) {
  char letter = 'n';
  switch (e.perm) {
    case Perm::kNone: letter = 'n'; break;
    case Perm::kRead: letter = 'r'; break;
    case Perm::kWrite: letter = 'w'; break;
    case Perm::kBoth: letter = 'b'; break;
  }
  return letter + std::to_string(e.domid);
}

Result<PermEntry> ParsePerm(std::string_view s) {
  if (s.empty()) return Status::InvalidArgument("permission '': empty");
  PermEntry e;
  switch (s[0]) {
    case 'n': e.perm = Perm::kNone; break;
    case 'r': e.perm = Perm::kRead; break;
    case 'w': e.perm = Perm::kWrite; break;
    case 'b': e.perm = Perm::kBoth; break;
    default:
      return Status::InvalidArgument("permission '" + std::string(s) +
                                     "': must start with n, r, w or b");
  }
  auto dom = ParseDomId(s.substr(1), "permission domain");
  if (!dom.ok()) return dom.status().WithContext("permission '" + std::string(s) + "'");
  e.domid = *dom;
  return e;
}

Status RunTransaction(XenStore& xs, const std::function<Status(TxId)>& body, int max_attempts) {
  Status last = Status::Aborted("transaction not attempted");
  for (int attempt = 0; attempt < max_attempts; ++attempt) {
    auto tx = xs.TransactionStart();
    if (!tx.ok()) return tx.status();
    Status s = body(*tx);
    if (!s.ok()) {
      (void)xs.TransactionEnd(*tx, /*commit=*/false);
      if (s.code() == Code::kAborted) {
        last = s;
        continue;
      }
      return s;
    }
    s = xs.TransactionEnd(*tx, /*commit=*/true);
    if (s.ok()) return s;
    if (s.code() != Code::kAborted) return s;
    last = s;
  }
  return last.WithContext("transaction still conflicting after " + std::to_string(max_attempts) +
                          " attempts");
}

Result<std::unique_ptr<Platform>> OpenPlatform(std::string_view spec) {
  std::string s(spec);
  if (s.empty()) {
    const char* env = std::getenv("VNVRAM_PLATFORM");
    if (env != nullptr) s = env;
  }
  if (s.empty() || s == "xen") return OpenXenPlatform();
  if (s.rfind("sim:", 0) == 0) {
    const std::string rest = s.substr(4);
    const size_t colon = rest.rfind(':');
    if (colon == std::string::npos || colon == 0) {
      return Status::InvalidArgument("platform '" + s + "': expected sim:<dir>:<domid>");
    }
    auto domid = ParseDomId(std::string_view(rest).substr(colon + 1), "platform domain id");
    if (!domid.ok()) return domid.status().WithContext("platform '" + s + "'");
    return OpenSimPlatform(SimOptions{rest.substr(0, colon), *domid});
  }
  return Status::InvalidArgument("platform '" + s + "': expected 'xen' or 'sim:<dir>:<domid>'");
}

}  // namespace vnvram::platform
