#include "frontd/nbd_protocol.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "common/endian.h"
#include "common/parse.h"

namespace vnvram::frontd::nbd {
namespace {

void PutU16(std::vector<std::byte>& out, uint16_t v) {
  const size_t at = out.size();
  out.resize(at + 2);
  StoreBE<uint16_t>(out.data() + at, v);
}
void PutU32(std::vector<std::byte>& out, uint32_t v) {
  const size_t at = out.size();
  out.resize(at + 4);
  StoreBE<uint32_t>(out.data() + at, v);
}
void PutU64(std::vector<std::byte>& out, uint64_t v) {
  const size_t at = out.size();
  out.resize(at + 8);
  StoreBE<uint64_t>(out.data() + at, v);
}
void PutBytes(std::vector<std::byte>& out, const void* p, size_t n) {
  if (n == 0) return;
  const size_t at = out.size();
  out.resize(at + n);
  std::memcpy(out.data() + at, p, n);
}
void PutString(std::vector<std::byte>& out, std::string_view s) {
  PutBytes(out, s.data(), s.size());
}

std::string Hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

// A string a client sent: bounded, and no NUL (the protocol forbids it).
Result<std::string> TakeString(std::span<const std::byte> data, std::string_view what) {
  if (data.size() > kMaxStringLength) {
    return Status::InvalidArgument(std::string(what) + " of " + std::to_string(data.size()) +
                                   " bytes (at most " + std::to_string(kMaxStringLength) + ")");
  }
  std::string s(reinterpret_cast<const char*>(data.data()), data.size());
  if (s.find('\0') != std::string::npos) {
    return Status::InvalidArgument(std::string(what) + " " + QuoteForError(s) +
                                   " contains a NUL byte");
  }
  return s;
}

RequestCheck Refuse(uint32_t error, std::string why) {
  return RequestCheck{Verdict::kError, error, std::move(why)};
}

}  // namespace

Result<uint32_t> ParseClientFlags(std::span<const std::byte> bytes) {
  if (bytes.size() != kClientFlagsSize) return Status::InvalidArgument("client flags: short read");
  const uint32_t flags = LoadBE<uint32_t>(bytes.data());
  const uint32_t known = kClientFlagFixedNewstyle | kClientFlagNoZeroes;
  if ((flags & ~known) != 0) {
    return Status::InvalidArgument("client flags " + Hex(flags) + ": unknown bits " +
                                   Hex(flags & ~known));
  }
  return flags;
}

Status ParseOptionHeader(std::span<const std::byte> bytes, OptionHeader* header) {
  if (bytes.size() != kOptionHeaderSize) return Status::InvalidArgument("option header: short");
  const uint64_t magic = LoadBE<uint64_t>(bytes.data());
  header->option = LoadBE<uint32_t>(bytes.data() + 8);
  header->length = LoadBE<uint32_t>(bytes.data() + 12);
  if (magic != kOptionMagic) {
    return Status::InvalidArgument("option magic " + Hex(magic) + " (expected IHAVEOPT)");
  }
  if (header->length > kMaxOptionLength) {
    return Status::ResourceExhausted(OptionName(header->option) + " with " +
                                     std::to_string(header->length) + " bytes of data (at most " +
                                     std::to_string(kMaxOptionLength) + ")");
  }
  return Status::Ok();
}

Result<std::string> ParseExportName(std::span<const std::byte> data) {
  return TakeString(data, "export name");
}

Result<InfoRequest> ParseInfoRequest(std::span<const std::byte> data) {
  if (data.size() < 6) {
    return Status::InvalidArgument("info request of " + std::to_string(data.size()) +
                                   " bytes (at least 6)");
  }
  const uint32_t name_len = LoadBE<uint32_t>(data.data());
  if (name_len > data.size() - 6) {
    return Status::InvalidArgument("info request: name length " + std::to_string(name_len) +
                                   " exceeds the option's " + std::to_string(data.size()) +
                                   " bytes");
  }
  VNVRAM_ASSIGN_OR_RETURN(std::string name, TakeString(data.subspan(4, name_len), "export name"));
  const size_t at = 4 + static_cast<size_t>(name_len);
  const uint16_t count = LoadBE<uint16_t>(data.data() + at);
  const size_t rest = data.size() - at - 2;
  if (rest != 2 * static_cast<size_t>(count)) {
    return Status::InvalidArgument("info request: " + std::to_string(count) + " items but " +
                                   std::to_string(rest) + " bytes follow");
  }
  InfoRequest r;
  r.name = std::move(name);
  r.items.reserve(count);
  for (size_t i = 0; i < count; ++i) {
    r.items.push_back(LoadBE<uint16_t>(data.data() + at + 2 + 2 * i));
  }
  return r;
}

Result<Request> ParseRequest(std::span<const std::byte> bytes) {
  if (bytes.size() != kRequestSize) return Status::InvalidArgument("request: short");
  const uint32_t magic = LoadBE<uint32_t>(bytes.data());
  if (magic != kRequestMagic) {
    return Status::InvalidArgument("request magic " + Hex(magic) + " (expected " +
                                   Hex(kRequestMagic) + ")");
  }
  Request r;
  r.flags = LoadBE<uint16_t>(bytes.data() + 4);
  r.type = LoadBE<uint16_t>(bytes.data() + 6);
  r.cookie = LoadBE<uint64_t>(bytes.data() + 8);
  r.offset = LoadBE<uint64_t>(bytes.data() + 16);
  r.length = LoadBE<uint32_t>(bytes.data() + 24);
  return r;
}

RequestCheck CheckRequest(const Request& r, const ExportShape& shape) {
  const uint16_t tf = shape.transmission_flags;
  const bool read_only = (tf & kFlagReadOnly) != 0;
  const uint16_t fua = (tf & kFlagSendFua) != 0 ? kCmdFlagFua : 0;
  const std::string name = CommandName(r.type);
  // Offset and length against the export, without overflow.
  const bool in_range = r.offset <= shape.size && r.length <= shape.size - r.offset;
  // Built only for an error: valid requests allocate nothing here.
  auto range = [&r] {
    std::string s = "[";
    s.append(std::to_string(r.offset)).append(", +").append(std::to_string(r.length)).append(")");
    return s;
  };
  auto bad_flags = [&](uint16_t allowed) -> bool { return (r.flags & ~allowed) != 0; };
  auto flags_error = [&](uint16_t allowed) {
    return Refuse(kEinval,
                  name + " with flags " + Hex(r.flags) + " (allowed " + Hex(allowed) + ")");
  };

  switch (r.type) {
    case kCmdRead:
      if (bad_flags(fua)) return flags_error(fua);
      if (r.length > shape.max_payload) {
        return Refuse(kEinval, name + " of " + std::to_string(r.length) + " bytes (at most " +
                                   std::to_string(shape.max_payload) + ")");
      }
      if (!in_range) return Refuse(kEinval, name + " " + range() + " beyond the export's end");
      return {};
    case kCmdWrite:
      // The payload follows the header: one we will not read whole cannot
      // be skipped either, so the stream is lost.
      if (r.length > shape.max_payload) {
        return RequestCheck{Verdict::kDisconnect, kEinval,
                            name + " of " + std::to_string(r.length) + " bytes (at most " +
                                std::to_string(shape.max_payload) + ")"};
      }
      if (bad_flags(fua)) return flags_error(fua);
      if (read_only) return Refuse(kEperm, name + " to a read-only export");
      if (!in_range) return Refuse(kEnospc, name + " " + range() + " beyond the export's end");
      return {};
    case kCmdDisc: return {};
    case kCmdFlush:
      if ((tf & kFlagSendFlush) == 0) return Refuse(kEinval, name + " not offered");
      if (bad_flags(fua)) return flags_error(fua);
      return {};
    case kCmdTrim:
      if ((tf & kFlagSendTrim) == 0) return Refuse(kEinval, name + " not offered");
      if (bad_flags(fua)) return flags_error(fua);
      if (read_only) return Refuse(kEperm, name + " on a read-only export");
      if (!in_range) return Refuse(kEinval, name + " " + range() + " beyond the export's end");
      return {};
    case kCmdWriteZeroes: {
      if ((tf & kFlagSendWriteZeroes) == 0) return Refuse(kEinval, name + " not offered");
      const uint16_t allowed = fua | kCmdFlagNoHole;
      if (bad_flags(allowed)) return flags_error(allowed);
      if (read_only) return Refuse(kEperm, name + " on a read-only export");
      if (!in_range) return Refuse(kEnospc, name + " " + range() + " beyond the export's end");
      return {};
    }
    default: return Refuse(kEinval, name + " is not supported");
  }
}

std::array<std::byte, kGreetingSize> EncodeGreeting(uint16_t handshake_flags) {
  std::array<std::byte, kGreetingSize> out{};
  StoreBE<uint64_t>(out.data(), kInitMagic);
  StoreBE<uint64_t>(out.data() + 8, kOptionMagic);
  StoreBE<uint16_t>(out.data() + 16, handshake_flags);
  return out;
}

std::vector<std::byte> EncodeOptionReply(uint32_t option, uint32_t reply_type,
                                         std::span<const std::byte> payload) {
  std::vector<std::byte> out;
  out.reserve(kOptionReplyHeaderSize + payload.size());
  PutU64(out, kOptionReplyMagic);
  PutU32(out, option);
  PutU32(out, reply_type);
  PutU32(out, static_cast<uint32_t>(payload.size()));
  PutBytes(out, payload.data(), payload.size());
  return out;
}

std::vector<std::byte> EncodeOptionError(uint32_t option, uint32_t reply_type,
                                         std::string_view message) {
  std::vector<std::byte> text;
  PutString(text, Printable(message, kMaxStringLength - 3));
  return EncodeOptionReply(option, reply_type, text);
}

std::vector<std::byte> EncodeServerEntry(std::string_view name) {
  std::vector<std::byte> out;
  PutU32(out, static_cast<uint32_t>(name.size()));
  PutString(out, name);
  return out;
}

std::vector<std::byte> EncodeInfoExport(uint64_t size, uint16_t transmission_flags) {
  std::vector<std::byte> out;
  PutU16(out, kInfoExport);
  PutU64(out, size);
  PutU16(out, transmission_flags);
  return out;
}

std::vector<std::byte> EncodeInfoString(uint16_t type, std::string_view value) {
  std::vector<std::byte> out;
  PutU16(out, type);
  PutString(out, value.substr(0, kMaxStringLength));
  return out;
}

std::vector<std::byte> EncodeInfoBlockSize(uint32_t minimum, uint32_t preferred, uint32_t maximum) {
  std::vector<std::byte> out;
  PutU16(out, kInfoBlockSize);
  PutU32(out, minimum);
  PutU32(out, preferred);
  PutU32(out, maximum);
  return out;
}

std::vector<std::byte> EncodeExportNameReply(uint64_t size, uint16_t transmission_flags,
                                             bool no_zeroes) {
  std::vector<std::byte> out;
  PutU64(out, size);
  PutU16(out, transmission_flags);
  if (!no_zeroes) out.resize(out.size() + kExportNameReplyZeroes, std::byte{0});
  return out;
}

std::array<std::byte, kSimpleReplySize> EncodeSimpleReply(uint32_t error, uint64_t cookie) {
  std::array<std::byte, kSimpleReplySize> out{};
  StoreBE<uint32_t>(out.data(), kSimpleReplyMagic);
  StoreBE<uint32_t>(out.data() + 4, error);
  StoreBE<uint64_t>(out.data() + 8, cookie);
  return out;
}

std::string OptionName(uint32_t option) {
  switch (option) {
    case kOptExportName: return "NBD_OPT_EXPORT_NAME";
    case kOptAbort: return "NBD_OPT_ABORT";
    case kOptList: return "NBD_OPT_LIST";
    case kOptStartTls: return "NBD_OPT_STARTTLS";
    case kOptInfo: return "NBD_OPT_INFO";
    case kOptGo: return "NBD_OPT_GO";
    case kOptStructuredReply: return "NBD_OPT_STRUCTURED_REPLY";
    default: return "option " + std::to_string(option);
  }
}

std::string CommandName(uint16_t type) {
  switch (type) {
    case kCmdRead: return "NBD_CMD_READ";
    case kCmdWrite: return "NBD_CMD_WRITE";
    case kCmdDisc: return "NBD_CMD_DISC";
    case kCmdFlush: return "NBD_CMD_FLUSH";
    case kCmdTrim: return "NBD_CMD_TRIM";
    case kCmdCache: return "NBD_CMD_CACHE";
    case kCmdWriteZeroes: return "NBD_CMD_WRITE_ZEROES";
    case kCmdBlockStatus: return "NBD_CMD_BLOCK_STATUS";
    default: return "command " + std::to_string(type);
  }
}

}  // namespace vnvram::frontd::nbd
