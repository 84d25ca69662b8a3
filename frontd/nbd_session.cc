#include "frontd/nbd_session.h"

#include <algorithm>
#include <array>
#include <cstring>

#include "common/parse.h"

namespace vnvram::frontd {

using namespace nbd;  // NOLINT(google-build-using-namespace): the wire's names

uint16_t TransmissionFlags(const BlockExport& exp) {
  uint16_t f = kFlagHasFlags | kFlagSendFlush | kFlagCanMultiConn;
  if (exp.read_only()) {
    f |= kFlagReadOnly;
  } else {
    f |= kFlagSendFua | kFlagSendTrim | kFlagSendWriteZeroes;
  }
  return f;
}

uint32_t ErrorFor(const Status& s) {
  switch (s.code()) {
    case Code::kOk: return 0;
    case Code::kOutOfRange:
    case Code::kInvalidArgument: return kEinval;
    case Code::kPermissionDenied: return kEperm;
    case Code::kResourceExhausted: return kEnospc;
    default: return kEio;
  }
}

NbdSession::NbdSession(ClientSocket& socket, BlockExport& exp, const SessionConfig& config,
                       log::Context log)
    : socket_(socket),
      export_(exp),
      config_(config),
      log_(std::move(log)),
      shape_{exp.size(), config.max_payload, TransmissionFlags(exp)} {}

Deadline NbdSession::FrameDeadline() const {
  return Deadline(SystemClock::Instance(), config_.frame_timeout);
}

bool NbdSession::Matches(const std::string& name) const {
  return name.empty() || name == config_.export_name;
}

std::vector<std::byte>& NbdSession::Buffer() {
  if (buffer_.empty()) buffer_.resize(config_.chunk);
  return buffer_;
}

Status NbdSession::Send(std::span<const std::byte> bytes, const Deadline& deadline) {
  return socket_.WriteAll(bytes, deadline);
}

Status NbdSession::Run() {
  bool transmit = false;
  Status s = Negotiate(&transmit);
  if (s.ok() && transmit) s = Transmit();
  socket_.Shutdown();
  return s;
}

// ---- Negotiation ----------------------------------------------------------

Status NbdSession::Negotiate(bool* transmit) {
  *transmit = false;
  {
    const Deadline d = FrameDeadline();
    const auto greeting = EncodeGreeting(kFlagFixedNewstyle | kFlagNoZeroes);
    VNVRAM_RETURN_IF_ERROR(Send(greeting, d));
    std::array<std::byte, kClientFlagsSize> raw{};
    size_t got = 0;
    if (Status s = socket_.ReadExact(raw, d, &got); !s.ok()) {
      // A client that connects and goes away (a port probe) is no error.
      return s.code() == Code::kUnavailable && got == 0 ? Status::Ok()
                                                        : s.WithContext("client flags");
    }
    VNVRAM_ASSIGN_OR_RETURN(const uint32_t flags, ParseClientFlags(raw));
    fixed_newstyle_ = (flags & kClientFlagFixedNewstyle) != 0;
    no_zeroes_ = (flags & kClientFlagNoZeroes) != 0;
  }
  std::array<std::byte, kOptionHeaderSize> raw{};
  std::vector<std::byte> data;
  for (uint32_t n = 0;; ++n) {
    // Negotiation has a deadline per option, the wait for it included: a
    // client holding a half-negotiated connection open is cut off.
    const Deadline d = FrameDeadline();
    size_t got = 0;
    if (Status s = socket_.ReadExact(raw, d, &got); !s.ok()) {
      if (s.code() == Code::kUnavailable && got == 0) return Status::Ok();  // between options
      return s.WithContext("option header");
    }
    if (n == config_.max_options) {
      return Status::ResourceExhausted("more than " + std::to_string(config_.max_options) +
                                       " options in one negotiation");
    }
    OptionHeader h;
    VNVRAM_RETURN_IF_ERROR(ParseOptionHeader(raw, &h));
    data.resize(h.length);
    VNVRAM_RETURN_IF_ERROR(socket_.ReadExact(data, d).WithContext(OptionName(h.option) + " data"));
    ++stats_.options;
    if (!fixed_newstyle_ && h.option != kOptExportName) {
      return Status::InvalidArgument(OptionName(h.option) +
                                     " from a client that did not ask for fixed newstyle");
    }
    VNVRAM_ASSIGN_OR_RETURN(const Next next, HandleOption(h, data));
    if (next == Next::kTransmit) {
      *transmit = true;
      return Status::Ok();
    }
    if (next == Next::kEnd) return Status::Ok();
  }
}

Result<NbdSession::Next> NbdSession::HandleOption(const OptionHeader& h,
                                                  std::span<const std::byte> data) {
  const Deadline d = FrameDeadline();
  auto reply = [&](uint32_t type, std::span<const std::byte> payload = {}) {
    return Send(EncodeOptionReply(h.option, type, payload), d);
  };
  auto error = [&](uint32_t type, const std::string& why) -> Result<Next> {
    // Clients probe for options routinely (qemu asks for structured
    // replies on every connection): those refusals are not news.
    if (type == kRepErrUnsup) {
      log_.Debug("{}: {}", OptionName(h.option), why);
    } else {
      log_.Info("{}: {}", OptionName(h.option), why);
    }
    VNVRAM_RETURN_IF_ERROR(Send(EncodeOptionError(h.option, type, why), d));
    return Next::kContinue;
  };

  switch (h.option) {
    case kOptExportName: {
      // No error reply exists for this option: a bad name ends the session.
      VNVRAM_ASSIGN_OR_RETURN(const std::string name, ParseExportName(data));
      if (!Matches(name)) {
        return Status::NotFound("NBD_OPT_EXPORT_NAME: no export " + QuoteForError(name));
      }
      VNVRAM_RETURN_IF_ERROR(
          Send(EncodeExportNameReply(shape_.size, shape_.transmission_flags, no_zeroes_), d));
      log_.Info("export {} selected (NBD_OPT_EXPORT_NAME)", QuoteForError(config_.export_name));
      return Next::kTransmit;
    }
    case kOptAbort:
      // The client may already be gone; the reply is a courtesy.
      (void)reply(kRepAck);
      log_.Info("client aborted the negotiation");
      return Next::kEnd;
    case kOptList:
      if (!data.empty()) return error(kRepErrInvalid, "NBD_OPT_LIST carries no data");
      VNVRAM_RETURN_IF_ERROR(reply(kRepServer, EncodeServerEntry(config_.export_name)));
      VNVRAM_RETURN_IF_ERROR(reply(kRepAck));
      return Next::kContinue;
    case kOptInfo:
    case kOptGo: {
      auto req = ParseInfoRequest(data);
      if (!req.ok()) return error(kRepErrInvalid, req.status().message());
      if (!Matches(req->name)) {
        return error(kRepErrUnknown, "no export " + QuoteForError(req->name) +
                                         " (this server has " + QuoteForError(config_.export_name) +
                                         ")");
      }
      VNVRAM_RETURN_IF_ERROR(SendInfo(h.option, *req));
      VNVRAM_RETURN_IF_ERROR(reply(kRepAck));
      if (h.option == kOptInfo) return Next::kContinue;
      log_.Info("export {} selected (NBD_OPT_GO)", QuoteForError(config_.export_name));
      return Next::kTransmit;
    }
    default:
      return error(kRepErrUnsup, OptionName(h.option) + " is not supported by vnvram-frontd");
  }
}

Status NbdSession::SendInfo(uint32_t option, const InfoRequest& req) {
  const Deadline d = FrameDeadline();
  VNVRAM_RETURN_IF_ERROR(Send(
      EncodeOptionReply(option, kRepInfo, EncodeInfoExport(shape_.size, shape_.transmission_flags)),
      d));
  // Each item once, whatever the client repeated; unknown items are ignored.
  bool sent_name = false, sent_description = false, sent_block = false;
  for (const uint16_t item : req.items) {
    std::vector<std::byte> payload;
    if (item == kInfoName && !sent_name) {
      payload = EncodeInfoString(kInfoName, config_.export_name);
      sent_name = true;
    } else if (item == kInfoDescription && !sent_description) {
      payload = EncodeInfoString(kInfoDescription, config_.description);
      sent_description = true;
    } else if (item == kInfoBlockSize && !sent_block) {
      payload =
          EncodeInfoBlockSize(config_.min_block, config_.preferred_block, config_.max_payload);
      sent_block = true;
    } else {
      continue;
    }
    VNVRAM_RETURN_IF_ERROR(Send(EncodeOptionReply(option, kRepInfo, payload), d));
  }
  return Status::Ok();
}

// ---- Transmission ---------------------------------------------------------

Status NbdSession::Transmit() {
  std::array<std::byte, kRequestSize> raw{};
  for (;;) {
    if (Status s = socket_.WaitIdle(); !s.ok()) {
      if (s.code() == Code::kAborted) return Status::Ok();  // the daemon stops
      return s;
    }
    const Deadline d = FrameDeadline();
    size_t got = 0;
    if (Status s = socket_.ReadExact(raw, d, &got); !s.ok()) {
      if (s.code() == Code::kUnavailable && got == 0) {
        log_.Info("client closed the connection without NBD_CMD_DISC");
        return Status::Ok();
      }
      return s.WithContext("request header");
    }
    VNVRAM_ASSIGN_OR_RETURN(const Request r, ParseRequest(raw));
    ++stats_.requests;
    const RequestCheck check = CheckRequest(r, shape_);
    switch (check.verdict) {
      case Verdict::kDisconnect: return Status::InvalidArgument(check.why);
      case Verdict::kError:
        ++stats_.error_replies;
        log_.Info("request {:#x}: {} -> error {}", r.cookie, check.why, check.error);
        if (r.type == kCmdWrite) {
          VNVRAM_RETURN_IF_ERROR(
              socket_.Discard(r.length, d).WithContext("payload of a refused NBD_CMD_WRITE"));
        }
        VNVRAM_RETURN_IF_ERROR(Reply(r.cookie, check.error, d));
        continue;
      case Verdict::kServe: break;
    }
    if (r.type == kCmdDisc) {
      log_.Info("client disconnected (NBD_CMD_DISC)");
      return Status::Ok();
    }
    VNVRAM_RETURN_IF_ERROR(Serve(r, d));
  }
}

Status NbdSession::Reply(uint64_t cookie, uint32_t error, const Deadline& deadline) {
  return Send(EncodeSimpleReply(error, cookie), deadline);
}

Status NbdSession::Serve(const Request& r, const Deadline& deadline) {
  const bool fua = (r.flags & kCmdFlagFua) != 0;
  Status s;
  switch (r.type) {
    case kCmdRead: return ServeRead(r, deadline);
    case kCmdWrite: return ServeWrite(r, deadline);
    case kCmdFlush:
      ++stats_.flushes;
      s = export_.Flush();
      break;
    case kCmdTrim:
    case kCmdWriteZeroes:
      s = ServeZero(r);
      if (s.ok() && fua) s = export_.Persist(r.offset, r.length);
      break;
    default: return Status::Internal("CheckRequest let " + CommandName(r.type) + " through");
  }
  if (!s.ok()) {
    ++stats_.error_replies;
    log_.Warn("{} [{}, +{}): {}", CommandName(r.type), r.offset, r.length, s.ToString());
  }
  return Reply(r.cookie, ErrorFor(s), deadline);
}

Status NbdSession::ServeZero(const Request& r) {
  // Bounded steps, so that other connections get the export in between.
  const uint64_t step = uint64_t{config_.chunk} * 16;
  for (uint64_t done = 0; done < r.length;) {
    const uint64_t n = std::min<uint64_t>(step, r.length - done);
    VNVRAM_RETURN_IF_ERROR(export_.Zero(r.offset + done, n));
    done += n;
  }
  return Status::Ok();
}

Status NbdSession::ServeRead(const Request& r, const Deadline& deadline) {
  std::vector<std::byte>& buf = Buffer();
  // The first chunk is read before the reply header goes out, so a failing
  // export gets an error reply; a failure after that can only end the
  // connection (the header promised the data).
  bool header_sent = false;
  uint64_t done = 0;
  do {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), r.length - done));
    const std::span<std::byte> chunk(buf.data(), n);
    if (Status s = export_.Read(r.offset + done, chunk); !s.ok()) {
      if (header_sent) return s.WithContext("NBD_CMD_READ failed after its reply began");
      ++stats_.error_replies;
      log_.Warn("NBD_CMD_READ [{}, +{}): {}", r.offset, r.length, s.ToString());
      return Reply(r.cookie, ErrorFor(s), deadline);
    }
    if (!header_sent) {
      VNVRAM_RETURN_IF_ERROR(Reply(r.cookie, 0, deadline));
      header_sent = true;
    }
    VNVRAM_RETURN_IF_ERROR(Send(chunk, deadline));
    done += n;
  } while (done < r.length);
  stats_.bytes_read += r.length;
  return Status::Ok();
}

Status NbdSession::ServeWrite(const Request& r, const Deadline& deadline) {
  std::vector<std::byte>& buf = Buffer();
  Status failed;
  for (uint64_t done = 0; done < r.length;) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), r.length - done));
    const std::span<std::byte> chunk(buf.data(), n);
    // A client that stops mid-payload leaves the chunks already stored in
    // place (unacknowledged, as a torn write on a disk); nothing else.
    VNVRAM_RETURN_IF_ERROR(socket_.ReadExact(chunk, deadline).WithContext("NBD_CMD_WRITE payload"));
    if (failed.ok()) failed = export_.Write(r.offset + done, chunk);
    done += n;
  }
  if (failed.ok() && (r.flags & kCmdFlagFua) != 0) failed = export_.Persist(r.offset, r.length);
  if (failed.ok()) {
    stats_.bytes_written += r.length;
  } else {
    ++stats_.error_replies;
    log_.Warn("NBD_CMD_WRITE [{}, +{}): {}", r.offset, r.length, failed.ToString());
  }
  return Reply(r.cookie, ErrorFor(failed), deadline);
}

}  // namespace vnvram::frontd
