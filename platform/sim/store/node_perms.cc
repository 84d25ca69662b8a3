#include "platform/sim/store/node_perms.h"

#include <cerrno>

#include "platform/sim/store/xs_errors.h"

namespace vnvram::sim {

std::string FormatNodePerm(const NodePerm& p) {
  char letter = 'n';
  switch (p.access & (kAccessRead | kAccessWrite)) {
    case kAccessRead: letter = 'r'; break;
    case kAccessWrite: letter = 'w'; break;
    case kAccessRead | kAccessWrite: letter = 'b'; break;
    default: letter = 'n'; break;
  }
  return letter + std::to_string(p.domid);
}

Result<NodePerm> ParseNodePerm(std::string_view s) {
  NodePerm p;
  if (s.empty()) return XsError(EINVAL, "permission ''");
  switch (s[0]) {
    case 'n': p.access = kAccessNone; break;
    case 'r': p.access = kAccessRead; break;
    case 'w': p.access = kAccessWrite; break;
    case 'b': p.access = kAccessRead | kAccessWrite; break;
    default: return XsError(EINVAL, "permission '" + std::string(s.substr(0, 16)) + "'");
  }
  auto dom = ParseDomId(s.substr(1), "permission domain");
  if (!dom.ok()) return XsError(EINVAL, dom.status().message());
  p.domid = *dom;
  return p;
}

uint8_t AccessFor(DomId domid, bool privileged, const NodePerms& perms) {
  constexpr uint8_t kAll = kAccessRead | kAccessWrite | kAccessOwner;
  if (privileged || perms.empty() || perms[0].domid == domid) return kAll;
  for (size_t i = 1; i < perms.size(); ++i) {
    if (perms[i].domid == domid) return perms[i].access & (kAccessRead | kAccessWrite);
  }
  return perms[0].access & (kAccessRead | kAccessWrite);
}

}  // namespace vnvram::sim
