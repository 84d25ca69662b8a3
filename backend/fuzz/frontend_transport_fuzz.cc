// libFuzzer entry point for ReadFrontendTransport, the backend's reading of
// the transport keys a (hostile) frontend wrote: ring-page-order, ring-ref /
// ring-ref<i>, event-channel, protocol.
//
// Input format (text, so that the seed corpus is readable):
//   * The first line: its first byte, modulo 8, is the backend's
//     max-ring-page-order (the ASCII digits '0'..'7' read as themselves;
//     5..7 lie above VNVRAMIF_MAX_RING_PAGE_ORDER and must be capped).
//   * Every further line is either `key=value` (the frontend wrote `value`
//     to `key`) or `key!` (reading `key` fails with kPermissionDenied, as
//     xenstore answers for a node the backend may not read). A later line
//     for a key replaces an earlier one; other lines are ignored.
//   * In keys and values, `%HH` (two hex digits) stands for the byte 0xHH,
//     so NUL, newline and '%' itself can be written; every other byte is
//     taken as it is.
//
// The result is checked against an independent oracle that restates the
// rules of frontend_transport.h (same order of checks, so the same first
// bad key), and against what a caller relies on: only the keys of the
// announced ring order are read, each at most once; a refusal is one
// printable, bounded line that names the bad key; Printable() is printable
// and bounded. Any disagreement aborts. Built with -fsanitize=fuzzer when
// VNVRAM_FUZZ=ON; otherwise fuzz_replay_test.cc replays the seed corpus
// through it. Pure; thread-safe.
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "backend/frontend_transport.h"
#include "vnvram/vnvramif.h"
#include "xenstore-schema/schema.h"

namespace {

namespace fe = vnvram::schema::fe;
using vnvram::Code;
using vnvram::Result;
using vnvram::Status;
using vnvram::backend::FrontendTransport;

[[noreturn]] void Violation(const char* what) {
  std::fprintf(stderr, "frontend_transport_fuzz: invariant violated: %s\n", what);
  std::abort();
}

void Check(bool cond, const char* what) {
  if (!cond) Violation(what);
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// %HH unescaping; a '%' without two hex digits is itself.
std::string Unescape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && HexDigit(s[i + 1]) >= 0 && HexDigit(s[i + 2]) >= 0) {
      out += static_cast<char>(HexDigit(s[i + 1]) * 16 + HexDigit(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

// What the frontend directory holds for one key: a value, or a read that
// fails (nullopt).
using Store = std::map<std::string, std::optional<std::string>, std::less<>>;

struct Input {
  uint32_t max_order = 0;
  Store store;
};

Input Decode(std::string_view in) {
  Input out;
  size_t nl = in.find('\n');
  const std::string_view first = in.substr(0, nl);
  out.max_order = first.empty() ? 0 : static_cast<uint8_t>(first[0]) % 8;
  while (nl != std::string_view::npos) {
    const size_t start = nl + 1;
    nl = in.find('\n', start);
    const std::string_view line =
        in.substr(start, nl == std::string_view::npos ? std::string_view::npos : nl - start);
    const size_t eq = line.find('=');
    if (eq != std::string_view::npos) {
      out.store[Unescape(line.substr(0, eq))] = Unescape(line.substr(eq + 1));
    } else if (!line.empty() && line.back() == '!') {
      out.store[Unescape(line.substr(0, line.size() - 1))] = std::nullopt;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------
// The oracle: the documented rules, restated without the product's parsers.

// Strict decimal: non-empty, digits only, no sign or space; nullopt when it
// is not one or does not fit in 64 bits.
std::optional<unsigned __int128> Decimal(std::string_view s) {
  if (s.empty()) return std::nullopt;
  unsigned __int128 v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<unsigned>(c - '0');
    if (v > UINT64_MAX) return std::nullopt;
  }
  return v;
}

struct Expected {
  Code code = Code::kOk;
  std::string key;  // the first bad key, when !ok
  FrontendTransport t;
};

Expected Oracle(const Input& in) {
  const uint64_t max = std::min<uint64_t>(in.max_order, VNVRAMIF_MAX_RING_PAGE_ORDER);
  Expected e;
  auto fail = [&](Code c, std::string_view key) {
    e.code = c;
    e.key = std::string(key);
    return e;
  };
  // Absent: kNotFound; denied: kPermissionDenied; else the value.
  auto lookup = [&](std::string_view key) -> Result<std::string> {
    auto it = in.store.find(key);
    if (it == in.store.end()) return Status::NotFound("absent");
    if (!it->second) return Status::PermissionDenied("denied");
    return *it->second;
  };

  auto order_s = lookup(fe::kRingPageOrder);
  if (order_s.ok()) {
    auto v = Decimal(*order_s);
    if (!v || *v > max) return fail(Code::kInvalidArgument, fe::kRingPageOrder);
    e.t.ring_order = static_cast<uint32_t>(*v);
  } else if (order_s.status().code() != Code::kNotFound) {
    return fail(order_s.status().code(), fe::kRingPageOrder);
  }
  for (uint32_t i = 0; i < (1u << e.t.ring_order); ++i) {
    const std::string key = e.t.ring_order == 0
                                ? std::string(fe::kRingRef)
                                : std::string(fe::kRingRefNPrefix) + std::to_string(i);
    auto ref_s = lookup(key);
    if (!ref_s.ok()) return fail(ref_s.status().code(), key);
    auto v = Decimal(*ref_s);
    if (!v || *v > UINT32_MAX) return fail(Code::kInvalidArgument, key);
    e.t.ring_refs.push_back(static_cast<uint32_t>(*v));
  }
  auto port_s = lookup(fe::kEventChannel);
  if (!port_s.ok()) return fail(port_s.status().code(), fe::kEventChannel);
  auto port = Decimal(*port_s);
  if (!port || *port == 0 || *port > UINT32_MAX) {
    return fail(Code::kInvalidArgument, fe::kEventChannel);
  }
  e.t.port = static_cast<uint32_t>(*port);
  auto proto = lookup(fe::kProtocol);
  if (proto.ok()) {
    if (*proto != "x86_32-abi" && *proto != "x86_64-abi" && *proto != "arm-abi") {
      return fail(Code::kInvalidArgument, fe::kProtocol);
    }
  } else if (proto.status().code() != Code::kNotFound) {
    return fail(proto.status().code(), fe::kProtocol);
  }
  return e;
}

bool IsPrintableLine(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char ch) {
    const auto c = static_cast<unsigned char>(ch);
    return c >= 0x20 && c < 0x7F;
  });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view raw(reinterpret_cast<const char*>(data), size);
  const Input in = Decode(raw);

  std::set<std::string, std::less<>> asked;
  size_t reads = 0;
  auto reader = [&](std::string_view key) -> Result<std::string> {
    Check(asked.insert(std::string(key)).second, "a key was read twice");
    ++reads;
    auto it = in.store.find(key);
    if (it == in.store.end()) return Status::NotFound(std::string(key));
    if (!it->second) return Status::PermissionDenied(std::string(key) + ": permission denied");
    return *it->second;
  };
  const Result<FrontendTransport> got =
      vnvram::backend::ReadFrontendTransport(reader, in.max_order);
  const Expected want = Oracle(in);

  // Only the keys of the ring order the frontend announced are read.
  Check(reads <= 3 + (size_t{1} << VNVRAMIF_MAX_RING_PAGE_ORDER), "too many reads");
  for (const std::string& key : asked) {
    const bool known = key == fe::kRingPageOrder || key == fe::kEventChannel ||
                       key == fe::kProtocol || key == fe::kRingRef;
    bool indexed = false;
    for (uint32_t i = 0; i < (1u << VNVRAMIF_MAX_RING_PAGE_ORDER) && !indexed; ++i) {
      indexed = key == fe::RingRefN(i);
    }
    Check(known || indexed, "read a key outside the transport keys");
  }

  if (want.code == Code::kOk) {
    Check(got.ok(), "valid transport keys were refused");
    Check(*got == want.t, "parsed values differ from the oracle's");
    Check(got->ring_order <= VNVRAMIF_MAX_RING_PAGE_ORDER, "ring order above the protocol's");
    Check(got->ring_order <= in.max_order, "ring order above the backend's maximum");
    Check(got->ring_refs.size() == (size_t{1} << got->ring_order), "ref count != 1 << order");
    Check(got->port != 0, "port 0 accepted");
    if (got->ring_order == 0) {
      Check(asked.count(std::string(fe::kRingRef)) == 1, "order 0 without ring-ref");
    } else {
      Check(asked.count(std::string(fe::kRingRef)) == 0, "ring-ref read for a multi-page ring");
      Check(asked.count(fe::RingRefN(got->ring_refs.size() - 1)) == 1, "last page ref not read");
      Check(asked.count(fe::RingRefN(got->ring_refs.size())) == 0, "read past the last page ref");
    }
  } else {
    Check(!got.ok(), "invalid transport keys were accepted");
    Check(got.status().code() == want.code, "refused with the wrong code");
    const std::string& m = got.status().message();
    Check(!m.empty(), "refusal without a message");
    Check(m.find(want.key) != std::string::npos, "refusal does not name the first bad key");
    if (want.code == Code::kInvalidArgument) {
      // The value is shown printable and shortened: one bounded line, fit
      // for the device's error node.
      Check(IsPrintableLine(m), "refusal message is not one printable line");
      Check(m.size() < 200, "refusal message is not bounded");
    }
  }

  // Printable() on every value: printable, and at most max + 3 bytes.
  for (const auto& [key, value] : in.store) {
    if (!value) continue;
    for (size_t max : {size_t{0}, size_t{1}, size_t{64}}) {
      const std::string p = vnvram::Printable(*value, max);
      Check(IsPrintableLine(p), "Printable() output not printable");
      Check(p.size() <= max + 3, "Printable() output too long");
      Check(p.size() == std::min(value->size(), max) + (value->size() > max ? 3 : 0),
            "Printable() length");
    }
  }
  return 0;
}
