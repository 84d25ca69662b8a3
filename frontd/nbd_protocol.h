// The NBD wire protocol as vnvram-frontd speaks it: constants of the fixed
// newstyle handshake and of the transmission phase, plain structs for what a
// client sends, bounded parsers for them and serialisers for what the server
// sends. Everything on this wire is big-endian. Pure functions over byte
// spans; no I/O, no allocation beyond the values returned; thread-safe.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace vnvram::frontd::nbd {

// ---- Handshake ------------------------------------------------------------
inline constexpr uint64_t kInitMagic = 0x4e42444d41474943ULL;    // "NBDMAGIC"
inline constexpr uint64_t kOptionMagic = 0x49484156454F5054ULL;  // "IHAVEOPT"
inline constexpr uint64_t kOptionReplyMagic = 0x3e889045565a9ULL;

// Handshake flags (server, 16 bits) and client flags (32 bits).
inline constexpr uint16_t kFlagFixedNewstyle = 1u << 0;
inline constexpr uint16_t kFlagNoZeroes = 1u << 1;
inline constexpr uint32_t kClientFlagFixedNewstyle = 1u << 0;
inline constexpr uint32_t kClientFlagNoZeroes = 1u << 1;

// Options.
inline constexpr uint32_t kOptExportName = 1;
inline constexpr uint32_t kOptAbort = 2;
inline constexpr uint32_t kOptList = 3;
inline constexpr uint32_t kOptStartTls = 5;
inline constexpr uint32_t kOptInfo = 6;
inline constexpr uint32_t kOptGo = 7;
inline constexpr uint32_t kOptStructuredReply = 8;

// Option replies.
inline constexpr uint32_t kRepAck = 1;
inline constexpr uint32_t kRepServer = 2;
inline constexpr uint32_t kRepInfo = 3;
inline constexpr uint32_t kRepErrBit = 1u << 31;
inline constexpr uint32_t kRepErrUnsup = kRepErrBit | 1;
inline constexpr uint32_t kRepErrPolicy = kRepErrBit | 2;
inline constexpr uint32_t kRepErrInvalid = kRepErrBit | 3;
inline constexpr uint32_t kRepErrUnknown = kRepErrBit | 6;
inline constexpr uint32_t kRepErrShutdown = kRepErrBit | 7;
inline constexpr uint32_t kRepErrTooBig = kRepErrBit | 9;

// NBD_REP_INFO item types.
inline constexpr uint16_t kInfoExport = 0;
inline constexpr uint16_t kInfoName = 1;
inline constexpr uint16_t kInfoDescription = 2;
inline constexpr uint16_t kInfoBlockSize = 3;

// Transmission flags (per export, 16 bits).
inline constexpr uint16_t kFlagHasFlags = 1u << 0;
inline constexpr uint16_t kFlagReadOnly = 1u << 1;
inline constexpr uint16_t kFlagSendFlush = 1u << 2;
inline constexpr uint16_t kFlagSendFua = 1u << 3;
inline constexpr uint16_t kFlagRotational = 1u << 4;
inline constexpr uint16_t kFlagSendTrim = 1u << 5;
inline constexpr uint16_t kFlagSendWriteZeroes = 1u << 6;
inline constexpr uint16_t kFlagCanMultiConn = 1u << 8;

// ---- Transmission ---------------------------------------------------------
inline constexpr uint32_t kRequestMagic = 0x25609513;
inline constexpr uint32_t kSimpleReplyMagic = 0x67446698;

// Commands.
inline constexpr uint16_t kCmdRead = 0;
inline constexpr uint16_t kCmdWrite = 1;
inline constexpr uint16_t kCmdDisc = 2;
inline constexpr uint16_t kCmdFlush = 3;
inline constexpr uint16_t kCmdTrim = 4;
inline constexpr uint16_t kCmdCache = 5;
inline constexpr uint16_t kCmdWriteZeroes = 6;
inline constexpr uint16_t kCmdBlockStatus = 7;

// Command flags.
inline constexpr uint16_t kCmdFlagFua = 1u << 0;
inline constexpr uint16_t kCmdFlagNoHole = 1u << 1;
inline constexpr uint16_t kCmdFlagDf = 1u << 2;
inline constexpr uint16_t kCmdFlagReqOne = 1u << 3;
inline constexpr uint16_t kCmdFlagFastZero = 1u << 4;

// Error values of a reply (the protocol's own numbering, not the host's).
inline constexpr uint32_t kEperm = 1;
inline constexpr uint32_t kEio = 5;
inline constexpr uint32_t kEnomem = 12;
inline constexpr uint32_t kEinval = 22;
inline constexpr uint32_t kEnospc = 28;
inline constexpr uint32_t kEoverflow = 75;
inline constexpr uint32_t kEnotsup = 95;
inline constexpr uint32_t kEshutdown = 108;

// ---- Sizes and bounds -----------------------------------------------------
inline constexpr size_t kGreetingSize = 18;  // magic, magic, handshake flags
inline constexpr size_t kClientFlagsSize = 4;
inline constexpr size_t kOptionHeaderSize = 16;  // magic, option, length
inline constexpr size_t kOptionReplyHeaderSize = 20;
inline constexpr size_t kRequestSize = 28;
inline constexpr size_t kSimpleReplySize = 16;
inline constexpr size_t kExportNameReplyZeroes = 124;
// A string (export name, message) is at most this long (the protocol's MUST).
inline constexpr size_t kMaxStringLength = 4096;
// Option data beyond this is refused before it is read: the largest option
// we parse is INFO/GO (4 + name + 2 + 2 per info item).
inline constexpr uint32_t kMaxOptionLength = 16384;

// ---- Client messages as plain structs -------------------------------------
struct OptionHeader {
  uint32_t option = 0;
  uint32_t length = 0;  // <= kMaxOptionLength once parsed
};

// The data of NBD_OPT_INFO and NBD_OPT_GO.
struct InfoRequest {
  std::string name;
  std::vector<uint16_t> items;
};

struct Request {
  uint16_t flags = 0;
  uint16_t type = 0;
  uint64_t cookie = 0;
  uint64_t offset = 0;
  uint32_t length = 0;
};

// What the server knows of its export, for checking requests.
struct ExportShape {
  uint64_t size = 0;
  uint32_t max_payload = 0;  // largest READ/WRITE length
  uint16_t transmission_flags = 0;
};

// ---- Parsers (each takes exactly the bytes of its message) ----------------
// Client flags; kInvalidArgument for a flag we do not know or did not offer.
Result<uint32_t> ParseClientFlags(std::span<const std::byte> bytes);
// Magic checked; kInvalidArgument for a wrong magic, kResourceExhausted for
// a length above kMaxOptionLength (the header is still reported through
// `header` so the caller can name the option).
Status ParseOptionHeader(std::span<const std::byte> bytes, OptionHeader* header);
// NBD_OPT_EXPORT_NAME data: at most kMaxStringLength bytes, no NUL.
Result<std::string> ParseExportName(std::span<const std::byte> data);
// NBD_OPT_INFO / NBD_OPT_GO data: name length, name, item count, items; the
// lengths must add up to exactly data.size().
Result<InfoRequest> ParseInfoRequest(std::span<const std::byte> data);
// Magic checked (kInvalidArgument otherwise).
Result<Request> ParseRequest(std::span<const std::byte> bytes);

// ---- Request validation ---------------------------------------------------
enum class Verdict {
  kServe,       // valid: execute it
  kError,       // answer with `error` (after consuming a WRITE's payload)
  kDisconnect,  // cannot be answered safely (a WRITE payload too large to skip)
};
struct RequestCheck {
  Verdict verdict = Verdict::kServe;
  uint32_t error = 0;
  std::string why;  // for the log; empty when served
};
// Type known and advertised, flags documented for the type and negotiated,
// offset + length inside the export, READ/WRITE length <= max_payload, no
// write to a read-only export. NBD_CMD_DISC is kServe.
RequestCheck CheckRequest(const Request& r, const ExportShape& shape);

// ---- Serialisers ----------------------------------------------------------
std::array<std::byte, kGreetingSize> EncodeGreeting(uint16_t handshake_flags);
// Option reply header followed by `payload`.
std::vector<std::byte> EncodeOptionReply(uint32_t option, uint32_t reply_type,
                                         std::span<const std::byte> payload = {});
// An error reply carrying a human-readable message (cut to kMaxStringLength).
std::vector<std::byte> EncodeOptionError(uint32_t option, uint32_t reply_type,
                                         std::string_view message);
// NBD_REP_SERVER payload: name length, name.
std::vector<std::byte> EncodeServerEntry(std::string_view name);
// NBD_REP_INFO payloads.
std::vector<std::byte> EncodeInfoExport(uint64_t size, uint16_t transmission_flags);
std::vector<std::byte> EncodeInfoString(uint16_t type, std::string_view value);
std::vector<std::byte> EncodeInfoBlockSize(uint32_t minimum, uint32_t preferred, uint32_t maximum);
// The answer to NBD_OPT_EXPORT_NAME: size, flags, and 124 zeroes unless the
// client negotiated NO_ZEROES.
std::vector<std::byte> EncodeExportNameReply(uint64_t size, uint16_t transmission_flags,
                                             bool no_zeroes);
std::array<std::byte, kSimpleReplySize> EncodeSimpleReply(uint32_t error, uint64_t cookie);

// Names for logs ("NBD_OPT_GO", "NBD_CMD_WRITE", "option 42").
std::string OptionName(uint32_t option);
std::string CommandName(uint16_t type);

}  // namespace vnvram::frontd::nbd
