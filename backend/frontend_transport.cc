#include "backend/frontend_transport.h"

#include <algorithm>

#include "common/parse.h"
#include "vnvram/vnvramif.h"
#include "xenstore-schema/schema.h"

namespace vnvram::backend {

namespace fe = schema::fe;

namespace {

// A parse error that shows the value safely (the parsers quote it raw).
Status Bad(std::string_view key, std::string_view value, std::string_view why) {
  return Status::InvalidArgument(std::string(key) + " '" + Printable(value) +
                                 "': " + std::string(why));
}

// The reason part of a parser's message ("... : reason").
std::string Reason(const Status& s) {
  const std::string& m = s.message();
  const size_t colon = m.rfind(": ");
  return colon == std::string::npos ? m : m.substr(colon + 2);
}

}  // namespace

Result<FrontendTransport> ReadFrontendTransport(const FrontendKeyReader& read, uint32_t max_order) {
  FrontendTransport t;
  // 1 << order pages: never trust the caller's maximum past the protocol's.
  const uint32_t max = std::min<uint32_t>(max_order, VNVRAMIF_MAX_RING_PAGE_ORDER);
  auto order_s = read(fe::kRingPageOrder);
  if (order_s.ok()) {
    auto order = ParseU64InRange(*order_s, 0, max, fe::kRingPageOrder);
    if (!order.ok()) return Bad(fe::kRingPageOrder, *order_s, Reason(order.status()));
    t.ring_order = static_cast<uint32_t>(*order);
  } else if (order_s.status().code() != Code::kNotFound) {
    return order_s.status().WithContext("read ring-page-order");
  }
  const uint32_t pages = 1u << t.ring_order;
  for (uint32_t i = 0; i < pages; ++i) {
    const std::string key = t.ring_order == 0 ? std::string(fe::kRingRef) : fe::RingRefN(i);
    auto ref_s = read(key);
    if (!ref_s.ok()) return ref_s.status().WithContext("read " + key);
    auto ref = ParseU32(*ref_s, key);
    if (!ref.ok()) return Bad(key, *ref_s, Reason(ref.status()));
    t.ring_refs.push_back(*ref);
  }
  auto port_s = read(fe::kEventChannel);
  if (!port_s.ok()) return port_s.status().WithContext("read event-channel");
  auto port = ParseU32(*port_s, fe::kEventChannel);
  if (!port.ok()) return Bad(fe::kEventChannel, *port_s, Reason(port.status()));
  if (*port == 0) return Bad(fe::kEventChannel, *port_s, "port 0 is never valid");
  t.port = *port;
  auto proto = read(fe::kProtocol);
  if (proto.ok()) {
    const auto& values = fe::kProtocolValues;
    if (std::find(values.begin(), values.end(), *proto) == values.end()) {
      return Bad(fe::kProtocol, *proto, "not a supported ABI");
    }
  } else if (proto.status().code() != Code::kNotFound) {
    return proto.status().WithContext("read protocol");
  }
  return t;
}

}  // namespace vnvram::backend
