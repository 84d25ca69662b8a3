#include "backend/replication/host_id.h"

namespace vnvram::replication {

namespace {

bool IsAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

}  // namespace

bool IsValidHostId(std::string_view id) {
  if (id.empty() || id.size() > kHostIdMaxLength || !IsAlnum(id[0])) return false;
  for (char c : id) {
    if (!IsAlnum(c) && c != '.' && c != '_' && c != '-') return false;
  }
  return true;
}

}  // namespace vnvram::replication
