// libFuzzer entry point for the NBD parsers of vnvram-frontd
// (nbd_protocol.h): a whole client byte stream walked the way NbdSession
// walks it. Input: 16 bytes of export shape (size u64, max_payload u32,
// transmission flags u16, 2 unused; big-endian), then what a client sends:
// client flags, options (header + data: EXPORT_NAME, INFO, GO parsed;
// ABORT ends), and after EXPORT_NAME or a good GO, request headers, a
// WRITE's payload skipped as the session skips it, until DISC or the end.
// Checks: every parsed field equals the wire bytes and re-encodes to them;
// a served request is a known, advertised command with documented flags
// whose offset + length lies inside the export (READ/WRITE within
// max_payload, nothing written to a read-only export); a refusal carries an
// NBD error and a reason; only an oversize WRITE disconnects; replies built
// from hostile strings stay bounded and printable. Any disagreement aborts.
// Built with -fsanitize=fuzzer when VNVRAM_FUZZ=ON; otherwise
// backend/fuzz/fuzz_replay_test.cc replays the seed corpus through it.
// Pure; thread-safe.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>
#include <string>

#include "common/endian.h"
#include "frontd/nbd_protocol.h"

namespace {

using vnvram::Code;
using vnvram::LoadBE;
using vnvram::StoreBE;
namespace nbd = vnvram::frontd::nbd;

[[noreturn]] void Violation(const char* what) {
  std::fprintf(stderr, "nbd_protocol_fuzz: invariant violated: %s\n", what);
  std::abort();
}

void Check(bool cond, const char* what) {
  if (!cond) Violation(what);
}

bool IsPrintable(std::span<const std::byte> s) {
  return std::all_of(s.begin(), s.end(), [](std::byte b) {
    const auto c = static_cast<unsigned char>(b);
    return c >= 0x20 && c < 0x7F;
  });
}

// The rest of the stream, consumed from the front.
struct Stream {
  std::span<const std::byte> rest;
  // The next n bytes, or fewer at the end of the input.
  std::span<const std::byte> Take(size_t n) {
    const size_t k = std::min(n, rest.size());
    const auto out = rest.first(k);
    rest = rest.subspan(k);
    return out;
  }
};

void CheckRefusal(const vnvram::Status& s) {
  Check(!s.ok(), "refusal without an error");
  Check(!s.message().empty(), "refusal without a reason");
}

void CheckOptionError(uint32_t option, const std::string& why) {
  const auto reply = nbd::EncodeOptionError(option, nbd::kRepErrInvalid, why);
  Check(reply.size() >= nbd::kOptionReplyHeaderSize, "option error shorter than its header");
  const auto payload = std::span(reply).subspan(nbd::kOptionReplyHeaderSize);
  Check(LoadBE<uint64_t>(reply.data()) == nbd::kOptionReplyMagic, "option reply magic");
  Check(LoadBE<uint32_t>(reply.data() + 8) == option, "option reply names another option");
  Check(LoadBE<uint32_t>(reply.data() + 16) == payload.size(), "option reply length");
  Check(payload.size() <= nbd::kMaxStringLength, "option error message above the limit");
  Check(IsPrintable(payload), "option error message not printable");
}

// One request header: parsed, re-encoded, validated against the shape.
// Returns false when the session would stop reading (DISC, disconnect or a
// header it cannot parse).
bool Request(Stream& in, const nbd::ExportShape& shape) {
  const auto raw = in.Take(nbd::kRequestSize);
  const auto r = nbd::ParseRequest(raw);
  if (!r.ok()) {
    CheckRefusal(r.status());
    Check(raw.size() != nbd::kRequestSize || LoadBE<uint32_t>(raw.data()) != nbd::kRequestMagic,
          "a whole request with the right magic was refused");
    return false;
  }
  Check(raw.size() == nbd::kRequestSize, "a short request parsed");
  std::byte again[nbd::kRequestSize];
  StoreBE<uint32_t>(again, nbd::kRequestMagic);
  StoreBE<uint16_t>(again + 4, r->flags);
  StoreBE<uint16_t>(again + 6, r->type);
  StoreBE<uint64_t>(again + 8, r->cookie);
  StoreBE<uint64_t>(again + 16, r->offset);
  StoreBE<uint32_t>(again + 24, r->length);
  Check(std::memcmp(again, raw.data(), sizeof again) == 0, "request fields differ from the wire");

  const nbd::RequestCheck c = nbd::CheckRequest(*r, shape);
  const uint16_t tf = shape.transmission_flags;
  const bool ro = (tf & nbd::kFlagReadOnly) != 0;
  const uint16_t fua = (tf & nbd::kFlagSendFua) != 0 ? nbd::kCmdFlagFua : 0;
  const bool in_export = static_cast<unsigned __int128>(r->offset) + r->length <= shape.size;
  const bool data_cmd = r->type == nbd::kCmdRead || r->type == nbd::kCmdWrite;
  switch (c.verdict) {
    case nbd::Verdict::kServe: {
      Check(c.why.empty() && c.error == 0, "a served request carries an error");
      uint16_t allowed = 0;
      switch (r->type) {
        case nbd::kCmdRead:
        case nbd::kCmdWrite: allowed = fua; break;
        case nbd::kCmdDisc: allowed = 0xFFFF; break;
        case nbd::kCmdFlush:
          Check((tf & nbd::kFlagSendFlush) != 0, "FLUSH served but not offered");
          allowed = fua;
          break;
        case nbd::kCmdTrim:
          Check((tf & nbd::kFlagSendTrim) != 0, "TRIM served but not offered");
          allowed = fua;
          break;
        case nbd::kCmdWriteZeroes:
          Check((tf & nbd::kFlagSendWriteZeroes) != 0, "WRITE_ZEROES served but not offered");
          allowed = fua | nbd::kCmdFlagNoHole;
          break;
        default: Violation("an unknown command was served");
      }
      Check((r->flags & ~allowed) == 0, "a served request has undocumented flags");
      if (r->type != nbd::kCmdDisc && r->type != nbd::kCmdFlush) {
        Check(in_export, "a served request reaches beyond the export");
      }
      if (data_cmd) Check(r->length <= shape.max_payload, "a served READ/WRITE above max_payload");
      if (r->type == nbd::kCmdWrite || r->type == nbd::kCmdTrim ||
          r->type == nbd::kCmdWriteZeroes) {
        Check(!ro, "a read-only export was written");
      }
      break;
    }
    case nbd::Verdict::kError:
      Check(c.error != 0 && !c.why.empty(), "a refusal without an error or a reason");
      Check(c.error == nbd::kEinval || c.error == nbd::kEperm || c.error == nbd::kEnospc,
            "a refusal with an undocumented error");
      break;
    case nbd::Verdict::kDisconnect:
      Check(r->type == nbd::kCmdWrite && r->length > shape.max_payload,
            "a disconnect for anything but an oversize WRITE");
      return false;
  }
  const auto reply = nbd::EncodeSimpleReply(c.error, r->cookie);
  Check(LoadBE<uint32_t>(reply.data()) == nbd::kSimpleReplyMagic, "reply magic");
  Check(LoadBE<uint32_t>(reply.data() + 4) == c.error, "reply error");
  Check(LoadBE<uint64_t>(reply.data() + 8) == r->cookie, "reply cookie");
  if (r->type == nbd::kCmdWrite) in.Take(r->length);  // the payload, read or skipped
  return r->type != nbd::kCmdDisc;
}

// The option phase; true when the client moved to transmission.
bool Negotiate(Stream& in) {
  const auto flags_raw = in.Take(nbd::kClientFlagsSize);
  const auto flags = nbd::ParseClientFlags(flags_raw);
  if (!flags.ok()) {
    CheckRefusal(flags.status());
    return false;
  }
  Check((*flags & ~(nbd::kClientFlagFixedNewstyle | nbd::kClientFlagNoZeroes)) == 0,
        "unknown client flags accepted");
  Check(*flags == LoadBE<uint32_t>(flags_raw.data()), "client flags differ from the wire");

  for (int n = 0; n < 256; ++n) {
    const auto raw = in.Take(nbd::kOptionHeaderSize);
    nbd::OptionHeader h;
    const vnvram::Status s = nbd::ParseOptionHeader(raw, &h);
    if (!s.ok()) {
      CheckRefusal(s);
      if (s.code() == Code::kResourceExhausted) {
        Check(h.length > nbd::kMaxOptionLength, "a bounded option length was refused");
      }
      return false;
    }
    Check(raw.size() == nbd::kOptionHeaderSize, "a short option header parsed");
    Check(LoadBE<uint64_t>(raw.data()) == nbd::kOptionMagic, "a wrong option magic accepted");
    Check(h.option == LoadBE<uint32_t>(raw.data() + 8), "option differs from the wire");
    Check(h.length == LoadBE<uint32_t>(raw.data() + 12), "length differs from the wire");
    Check(h.length <= nbd::kMaxOptionLength, "an oversize option accepted");
    const auto data = in.Take(h.length);
    if (data.size() != h.length) return false;  // the client hung up mid-option

    switch (h.option) {
      case nbd::kOptExportName: {
        const auto name = nbd::ParseExportName(data);
        if (!name.ok()) {
          CheckRefusal(name.status());
          return false;
        }
        Check(name->size() == data.size() && name->size() <= nbd::kMaxStringLength,
              "export name length");
        Check(std::memcmp(name->data(), data.data(), data.size()) == 0, "export name bytes");
        Check(name->find('\0') == std::string::npos, "export name with a NUL");
        const auto reply =
            nbd::EncodeExportNameReply(1, 0, (*flags & nbd::kClientFlagNoZeroes) != 0);
        Check(reply.size() == 10 || reply.size() == 10 + nbd::kExportNameReplyZeroes,
              "export name reply length");
        return true;
      }
      case nbd::kOptInfo:
      case nbd::kOptGo: {
        const auto info = nbd::ParseInfoRequest(data);
        if (!info.ok()) {
          CheckRefusal(info.status());
          CheckOptionError(h.option, info.status().message());
          break;
        }
        Check(4 + info->name.size() + 2 + 2 * info->items.size() == data.size(),
              "info request lengths do not add up");
        Check(LoadBE<uint32_t>(data.data()) == info->name.size(), "info name length");
        Check(info->name.size() <= nbd::kMaxStringLength, "info name above the limit");
        Check(info->name.find('\0') == std::string::npos, "info name with a NUL");
        Check(std::memcmp(info->name.data(), data.data() + 4, info->name.size()) == 0,
              "info name bytes");
        for (size_t i = 0; i < info->items.size(); ++i) {
          Check(info->items[i] == LoadBE<uint16_t>(data.data() + 4 + info->name.size() + 2 + 2 * i),
                "info item differs from the wire");
        }
        const auto entry = nbd::EncodeInfoString(nbd::kInfoName, info->name);
        Check(entry.size() == 2 + info->name.size(), "info name reply length");
        if (h.option == nbd::kOptGo) return true;
        break;
      }
      case nbd::kOptAbort: return false;
      default: {
        // Unknown or unsupported: an error reply whose message shows the
        // client's bytes, bounded and printable.
        const std::string shown(reinterpret_cast<const char*>(data.data()), data.size());
        CheckOptionError(h.option, nbd::OptionName(h.option) + " " + shown);
        break;
      }
    }
  }
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Stream in{std::span(reinterpret_cast<const std::byte*>(data), size)};
  const auto shape_raw = in.Take(16);
  if (shape_raw.size() < 16) return 0;
  nbd::ExportShape shape;
  shape.size = LoadBE<uint64_t>(shape_raw.data());
  shape.max_payload = LoadBE<uint32_t>(shape_raw.data() + 8);
  shape.transmission_flags = LoadBE<uint16_t>(shape_raw.data() + 12) | nbd::kFlagHasFlags;

  if (!Negotiate(in)) return 0;
  while (!in.rest.empty() && Request(in, shape)) {
  }
  return 0;
}
