// libFuzzer entry point for the replication message decoder, the first code
// that touches bytes from a peer host. Input: one frame. Decodes it under the
// protocol's limits and under a small configured max_data; whatever decodes
// must re-encode to exactly the same bytes (the encoding is canonical) and
// decode again to an equal message; whatever fails must fail with one of the
// documented codes and a one-line reason. Any disagreement aborts.
// Built with -fsanitize=fuzzer when VNVRAM_FUZZ=ON; otherwise
// fuzz_replay_test.cc replays the seed corpus through it. Pure; thread-safe.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>

#include "backend/replication/message.h"

namespace {

using vnvram::Code;
using vnvram::replication::Decode;
using vnvram::replication::Encode;
using vnvram::replication::Limits;

[[noreturn]] void Violation(const char* what) {
  std::fprintf(stderr, "replication_message_fuzz: invariant violated: %s\n", what);
  std::abort();
}

void Check(bool cond, const char* what) {
  if (!cond) Violation(what);
}

void RoundTrip(std::span<const std::byte> frame, const Limits& limits) {
  auto m = Decode(frame, limits);
  if (!m.ok()) {
    const Code c = m.status().code();
    Check(c == Code::kInvalidArgument || c == Code::kNotSupported ||
              c == Code::kResourceExhausted || c == Code::kCorruption,
          "rejected with an undocumented code");
    const std::string& msg = m.status().message();
    Check(!msg.empty() && msg.find('\n') == std::string::npos, "reason is not one line");
    return;
  }
  auto bytes = Encode(*m, limits);
  Check(bytes.ok(), "a decoded message does not encode");
  Check(
      bytes->size() == frame.size() && std::memcmp(bytes->data(), frame.data(), frame.size()) == 0,
      "re-encoding differs from the frame");
  auto again = Decode(*bytes, limits);
  Check(again.ok(), "a re-encoded message does not decode");
  Check(*again == *m, "decode(encode(m)) != m");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const std::byte> frame(reinterpret_cast<const std::byte*>(data), size);
  RoundTrip(frame, Limits{});
  RoundTrip(frame, Limits{.max_data = 4096});
  return 0;
}
