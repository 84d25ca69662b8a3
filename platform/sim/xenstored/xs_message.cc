#include "platform/sim/xenstored/xs_message.h"

#include <cerrno>
#include <cstdint>
#include <cstring>

#include "platform/sim/store/xen_xs_wire.h"

namespace vnvram::sim {

static_assert(sizeof(xsd_sockmsg) == kXsHeaderSize, "xsd_sockmsg layout");
static_assert(XENSTORE_PAYLOAD_MAX == kXsPayloadMax, "payload limit");

XsHeader DecodeXsHeader(std::span<const uint8_t, kXsHeaderSize> raw) {
  xsd_sockmsg m;
  std::memcpy(&m, raw.data(), sizeof(m));
  return XsHeader{m.type, m.req_id, m.tx_id, m.len};
}

std::string EncodeXsMessage(const XsHeader& hdr, std::string_view payload) {
  xsd_sockmsg m{};
  m.type = hdr.type;
  m.req_id = hdr.req_id;
  m.tx_id = hdr.tx_id;
  m.len = static_cast<uint32_t>(payload.size());
  std::string out(sizeof(m) + payload.size(), '\0');
  std::memcpy(out.data(), &m, sizeof(m));
  if (!payload.empty()) std::memcpy(out.data() + sizeof(m), payload.data(), payload.size());
  return out;
}

std::optional<std::string_view> XsOneArg(std::string_view payload) {
  if (payload.empty() || payload.find('\0') != payload.size() - 1) return std::nullopt;
  return payload.substr(0, payload.size() - 1);
}

std::vector<std::string_view> XsStrings(std::string_view payload) {
  std::vector<std::string_view> out;
  size_t pos = 0;
  while (pos < payload.size()) {
    const size_t nul = payload.find('\0', pos);
    if (nul == std::string_view::npos) break;
    out.push_back(payload.substr(pos, nul - pos));
    pos = nul + 1;
  }
  return out;
}

std::string_view XsTypeName(uint32_t type) {
  switch (type) {
    case XS_CONTROL: return "CONTROL";
    case XS_DIRECTORY: return "DIRECTORY";
    case XS_READ: return "READ";
    case XS_GET_PERMS: return "GET_PERMS";
    case XS_WATCH: return "WATCH";
    case XS_UNWATCH: return "UNWATCH";
    case XS_TRANSACTION_START: return "TRANSACTION_START";
    case XS_TRANSACTION_END: return "TRANSACTION_END";
    case XS_INTRODUCE: return "INTRODUCE";
    case XS_RELEASE: return "RELEASE";
    case XS_GET_DOMAIN_PATH: return "GET_DOMAIN_PATH";
    case XS_WRITE: return "WRITE";
    case XS_MKDIR: return "MKDIR";
    case XS_RM: return "RM";
    case XS_SET_PERMS: return "SET_PERMS";
    case XS_WATCH_EVENT: return "WATCH_EVENT";
    case XS_ERROR: return "ERROR";
    case XS_IS_DOMAIN_INTRODUCED: return "IS_DOMAIN_INTRODUCED";
    case XS_RESUME: return "RESUME";
    case XS_SET_TARGET: return "SET_TARGET";
    case XS_RESET_WATCHES: return "RESET_WATCHES";
    case XS_DIRECTORY_PART: return "DIRECTORY_PART";
    default: return "UNKNOWN";
  }
}

}  // namespace vnvram::sim
