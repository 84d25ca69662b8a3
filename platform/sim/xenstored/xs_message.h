// The xenstored wire format of xen/io/xs_wire.h as the sim daemon reads and
// writes it: a 16-byte header (type, req_id, tx_id, len; host byte order,
// as on a local Unix socket) then `len` payload bytes, len never above
// XENSTORE_PAYLOAD_MAX. Argument helpers split payloads the way C
// xenstored does. Pure functions; thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace vnvram::sim {

inline constexpr size_t kXsHeaderSize = 16;
inline constexpr uint32_t kXsPayloadMax = 4096;  // XENSTORE_PAYLOAD_MAX

struct XsHeader {
  uint32_t type = 0;
  uint32_t req_id = 0;
  uint32_t tx_id = 0;
  uint32_t len = 0;
};

XsHeader DecodeXsHeader(std::span<const uint8_t, kXsHeaderSize> raw);
// Header plus payload, ready to send. `payload` must fit kXsPayloadMax.
std::string EncodeXsMessage(const XsHeader& hdr, std::string_view payload);

// The payload as exactly one NUL-terminated string, or nullopt (EINVAL).
std::optional<std::string_view> XsOneArg(std::string_view payload);
// The NUL-terminated strings of the payload, in order; bytes after the last
// NUL are ignored (as C xenstored's get_strings does).
std::vector<std::string_view> XsStrings(std::string_view payload);

// "READ", "WRITE", ... for logs; "UNKNOWN" otherwise.
std::string_view XsTypeName(uint32_t type);

}  // namespace vnvram::sim
