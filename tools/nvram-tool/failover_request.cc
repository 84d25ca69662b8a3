#include "tools/nvram-tool/failover_request.h"

#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <limits>
#include <nlohmann/json.hpp>
#include <vector>

#include "tools/nvram-tool/toolstack.h"
#include "xenstore-schema/schema.h"

namespace vnvram::tools {
namespace {

namespace fe = schema::fe;
namespace mp = schema::mp;

constexpr std::string_view kWatchToken = "nvram-tool:failover";
// How much longer than the frontend's own timeout the tool waits for its
// answer: the frontend reports its timeout as an outcome.
constexpr std::chrono::seconds kAnswerGrace{2};

std::string Dom(DomId d) {
  return "domain " + std::to_string(d);
}

// Guest-written text made safe to print on one line: printable ASCII kept,
// anything else '?', cut at `max_len`.
std::string Printable(std::string_view s, size_t max_len) {
  std::string out;
  for (size_t i = 0; i < s.size() && i < max_len; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    out += (c >= 0x20 && c < 0x7f) ? static_cast<char>(c) : '?';
  }
  return out;
}

Status CheckDomainExists(platform::XenStore& xs, DomId d) {
  auto introduced = xs.IsDomainIntroduced(d);
  if (introduced.ok()) {
    if (*introduced) return Status::Ok();
    return Status::NotFound(Dom(d) + " does not exist");
  }
  // A connection that cannot ask: the domain's home tells.
  auto home = xs.GetDomainPath(d);
  if (!home.ok()) return home.status();
  auto r = xs.Read(platform::kNoTx, *home);
  if (r.ok()) return Status::Ok();
  if (r.status().code() == Code::kNotFound) return Status::NotFound(Dom(d) + " does not exist");
  return r.status();
}

// The volume a path of `d` leads to; kNotFound when there is no such path.
Result<Uuid> VolumeOfPath(platform::XenStore& xs, DomId d, DevId dev) {
  auto v = xs.Read(platform::kNoTx, schema::FrontendKey(d, dev, fe::kVolume));
  if (!v.ok()) {
    if (v.status().code() == Code::kNotFound) {
      return Status::NotFound("no vnvram device " + std::to_string(dev) + " in " + Dom(d));
    }
    return v.status();
  }
  auto u = ParseUuid(*v, fe::kVolume);
  if (!u.ok()) {
    return u.status().WithContext("device " + std::to_string(dev) + " of " + Dom(d));
  }
  return *u;
}

enum class Answer { kPending, kAnswered, kSuperseded, kGone };

// Reads failover/completed and, when it names `request`, the outcome keys,
// in one transaction so that an automatic failover cannot mix its outcome
// into ours.
Result<Answer> ReadAnswer(platform::XenStore& xs, DomId d, const Uuid& vol, uint64_t request,
                          FailoverOutcome* out, uint64_t* completed_seen) {
  auto key = [&](std::string_view k) { return schema::MultipathKey(d, vol, k); };
  Answer answer = Answer::kPending;
  Status s = platform::RunTransaction(xs, [&](platform::TxId tx) -> Status {
    answer = Answer::kPending;
    auto c = xs.Read(tx, key(mp::kFailoverCompleted));
    if (!c.ok()) {
      if (c.status().code() != Code::kNotFound) return c.status();
      auto dir = xs.Read(tx, schema::MultipathDir(d, vol));
      if (!dir.ok() && dir.status().code() == Code::kNotFound) answer = Answer::kGone;
      return dir.ok() || dir.status().code() == Code::kNotFound ? Status::Ok() : dir.status();
    }
    auto n = ParseU64(*c);
    if (!n.ok() || *n < request) return Status::Ok();  // not ours (0: automatic)
    *completed_seen = *n;
    if (*n > request) {
      answer = Answer::kSuperseded;
      return Status::Ok();
    }
    auto text = [&](std::string_view k) {
      auto v = xs.Read(tx, key(k));
      return v.ok() ? Printable(*v, mp::kFailoverMessageMaxLen) : std::string();
    };
    auto devid = [&](std::string_view k) -> std::optional<DevId> {
      auto v = xs.Read(tx, key(k));
      if (!v.ok()) return std::nullopt;
      auto dev = ParseDevId(*v);
      return dev.ok() ? std::optional<DevId>(*dev) : std::nullopt;
    };
    out->result = text(mp::kFailoverResult);
    out->reason = text(mp::kFailoverReason);
    out->message = text(mp::kFailoverMessage);
    out->from = devid(mp::kFailoverFrom);
    out->to = devid(mp::kFailoverTo);
    out->duration_us.reset();
    if (auto v = xs.Read(tx, key(mp::kFailoverDurationUs)); v.ok()) {
      if (auto us = ParseU64(*v); us.ok()) out->duration_us = *us;
    }
    answer = Answer::kAnswered;
    return Status::Ok();
  });
  if (!s.ok()) return s;
  return answer;
}

// Sends the request; returns its number.
Result<uint64_t> WriteRequest(platform::XenStore& xs, const FailoverSpec& spec, const Uuid& vol) {
  const DomId d = spec.domain;
  auto key = [&](std::string_view k) { return schema::MultipathKey(d, vol, k); };
  // The multipath tree belongs to the guest: every node we create is F's.
  const std::vector<platform::PermEntry> perms = {{d, platform::Perm::kNone}};
  uint64_t request = 0;
  Status s = platform::RunTransaction(xs, [&](platform::TxId tx) -> Status {
    auto dir = xs.Read(tx, schema::MultipathDir(d, vol));
    if (!dir.ok()) {
      if (dir.status().code() == Code::kNotFound) {
        return Status::NotFound("volume " + vol.ToString() + " has no multipath directory in " +
                                Dom(d));
      }
      return dir.status();
    }
    uint64_t last = 0;
    for (std::string_view k : {mp::kFailoverRequest, mp::kFailoverCompleted}) {
      if (auto v = xs.Read(tx, key(k)); v.ok()) last = std::max(last, ParseU64(*v).value_or(0));
    }
    if (last == std::numeric_limits<uint64_t>::max()) {
      return Status::ResourceExhausted("failover request numbers of volume " + vol.ToString() +
                                       " in " + Dom(d) + " are exhausted");
    }
    request = last + 1;
    const std::string fdir = key(mp::kFailoverDir);
    if (auto v = xs.Read(tx, fdir); !v.ok()) {
      if (v.status().code() != Code::kNotFound) return v.status();
      VNVRAM_RETURN_IF_ERROR(xs.Mkdir(tx, fdir));
      VNVRAM_RETURN_IF_ERROR(xs.SetPermissions(tx, fdir, perms));
    }
    auto put = [&](std::string_view k, const std::string& v) -> Status {
      VNVRAM_RETURN_IF_ERROR(xs.Write(tx, key(k), v));
      return xs.SetPermissions(tx, key(k), perms);
    };
    if (spec.to) {
      VNVRAM_RETURN_IF_ERROR(put(mp::kFailoverTarget, std::to_string(*spec.to)));
    } else {
      VNVRAM_RETURN_IF_ERROR(xs.Remove(tx, key(mp::kFailoverTarget)));
    }
    VNVRAM_RETURN_IF_ERROR(put(mp::kFailoverForce, spec.force ? "1" : "0"));
    VNVRAM_RETURN_IF_ERROR(
        put(mp::kFailoverTimeoutMs, std::to_string(spec.timeout.count() * 1000)));
    // Last: writing the request starts the failover.
    return put(mp::kFailoverRequest, std::to_string(request));
  });
  if (!s.ok()) return s;
  return request;
}

}  // namespace

bool FailoverOutcome::ok() const {
  return answered && result == mp::kFailoverResultOk;
}

Result<FailoverOutcome> RequestFailover(platform::XenStore& xs, const FailoverSpec& spec,
                                        const Clock& clock) {
  const DomId d = spec.domain;
  const auto max_timeout = std::chrono::seconds(mp::kFailoverTimeoutMsMax / 1000);
  if (spec.timeout.count() < 1 || spec.timeout > max_timeout) {
    return Status::InvalidArgument("timeout " + std::to_string(spec.timeout.count()) +
                                   " s: expected 1.." + std::to_string(max_timeout.count()));
  }
  VNVRAM_RETURN_IF_ERROR(CheckDomainExists(xs, d));
  Uuid vol;
  if (const Uuid* u = std::get_if<Uuid>(&spec.volume)) {
    vol = *u;
  } else {
    VNVRAM_ASSIGN_OR_RETURN(vol, VolumeOfPath(xs, d, std::get<DevId>(spec.volume)));
  }
  if (spec.to) {
    auto target = VolumeOfPath(xs, d, *spec.to);
    if (!target.ok() && target.status().code() != Code::kNotFound) return target.status();
    if (!target.ok() || !(*target == vol)) {
      return Status::InvalidArgument(
          "--to " + std::to_string(*spec.to) + ": device " + std::to_string(*spec.to) + " of " +
          Dom(d) + " is not a path of volume " + vol.ToString() +
          (target.ok() ? " (it leads to volume " + target->ToString() + ")" : " (no such device)"));
    }
  }
  if (auto dir = xs.Read(platform::kNoTx, schema::MultipathDir(d, vol)); !dir.ok()) {
    if (dir.status().code() == Code::kNotFound) {
      return Status::NotFound("volume " + vol.ToString() + " has no multipath directory in " +
                              Dom(d) + " (" + schema::MultipathDir(d, vol) +
                              "): is it attached there?");
    }
    return dir.status();
  }

  const std::string completed = schema::MultipathKey(d, vol, mp::kFailoverCompleted);
  // Watch first, so that an answer between the write and the wait is seen.
  VNVRAM_RETURN_IF_ERROR(xs.Watch(completed, kWatchToken));
  auto request = WriteRequest(xs, spec, vol);
  if (!request.ok()) {
    (void)xs.Unwatch(completed, kWatchToken);
    return request.status();
  }
  FailoverOutcome out;
  out.domain = d;
  out.volume = vol;
  out.request = *request;
  const Deadline dl(clock, spec.timeout + kAnswerGrace);
  Status failed;
  for (;;) {
    uint64_t seen = 0;
    auto answer = ReadAnswer(xs, d, vol, out.request, &out, &seen);
    if (!answer.ok()) {
      failed = answer.status();
      break;
    }
    if (*answer == Answer::kAnswered) {
      out.answered = true;
      break;
    }
    if (*answer == Answer::kSuperseded) {
      failed = Status::Aborted("failover request " + std::to_string(out.request) +
                               " was superseded by request " + std::to_string(seen) +
                               " (another nvram-tool failover?)");
      break;
    }
    if (*answer == Answer::kGone) {
      failed = Status::Unavailable("the multipath directory of volume " + vol.ToString() + " in " +
                                   Dom(d) + " was removed while waiting (detached?)");
      break;
    }
    if (dl.Expired()) {
      out.message = "no answer from the frontend of " + Dom(d) + " within " +
                    std::to_string(spec.timeout.count()) + " s: is a process using the volume?";
      break;
    }
    pollfd pfd{xs.WatchFd(), POLLIN, 0};
    if (::poll(&pfd, 1, dl.RemainingMillisForPoll()) < 0 && errno != EINTR) {
      failed = Status::FromErrno(errno, "poll");
      break;
    }
    for (;;) {  // drain; the answer is re-read anyway
      auto ev = xs.ReadWatch();
      if (!ev.ok()) {
        failed = ev.status();
        break;
      }
      if (!ev->has_value()) break;
    }
    if (!failed.ok()) break;
  }
  (void)xs.Unwatch(completed, kWatchToken);
  if (!failed.ok()) return failed;
  return out;
}

std::string FormatFailoverLine(const FailoverOutcome& o) {
  std::string line = "failover of volume " + o.volume.ToString() + " (" + Dom(o.domain) + "): ";
  if (!o.answered) return line + o.message;
  line += o.result.empty() ? std::string("no result") : o.result;
  if (o.from || o.to) {
    line += ", path ";
    line += o.from ? std::to_string(*o.from) : std::string("?");
    line += " -> ";
    line += o.to ? std::to_string(*o.to) : std::string("?");
  }
  if (o.duration_us) {
    char ms[48];
    std::snprintf(ms, sizeof ms, " in %.1f ms", static_cast<double>(*o.duration_us) / 1000.0);
    line += ms;
  }
  if (!o.ok() && !o.message.empty()) line += ": " + o.message;
  return line;
}

std::string FormatFailoverJson(const FailoverOutcome& o) {
  auto opt = [](const auto& v) { return v ? nlohmann::json(*v) : nlohmann::json(nullptr); };
  auto str = [](const std::string& s) {
    return s.empty() ? nlohmann::json(nullptr) : nlohmann::json(s);
  };
  nlohmann::json j = {{"domain", o.domain},
                      {"volume", o.volume.ToString()},
                      {"request", o.request},
                      {"answered", o.answered},
                      {"result", o.answered ? str(o.result) : nlohmann::json("no-answer")},
                      {"reason", str(o.reason)},
                      {"from", opt(o.from)},
                      {"to", opt(o.to)},
                      {"duration_us", opt(o.duration_us)},
                      {"message", o.message}};
  return j.dump();
}

}  // namespace vnvram::tools
