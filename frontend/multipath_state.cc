#include "frontend/multipath_state.h"

#include <utility>

namespace vnvram::frontend {
namespace {

namespace mp = schema::mp;

constexpr std::string_view kWatchToken = "vnvram:mp";

}  // namespace

MultipathState::MultipathState(DomId self, const Uuid& volume,
                               std::unique_ptr<platform::XenStore> xs)
    : self_(self),
      volume_(volume),
      xs_(std::move(xs)),
      log_("dom " + std::to_string(self) + " volume " + volume.ToString()) {}

MultipathState::~MultipathState() {
  if (watching_) (void)xs_->Unwatch(Key(mp::kFailoverRequest), kWatchToken);
}

Result<std::unique_ptr<MultipathState>> MultipathState::Open(platform::Platform& platform,
                                                             const Uuid& volume) {
  VNVRAM_ASSIGN_OR_RETURN(auto xs, platform.OpenXenStore());
  std::unique_ptr<MultipathState> m(
      new MultipathState(platform.self_domid(), volume, std::move(xs)));
  auto dir = m->xs_->Read(platform::kNoTx, schema::MultipathDir(m->self_, volume));
  if (!dir.ok()) {
    if (dir.status().code() != Code::kNotFound && dir.status().code() != Code::kPermissionDenied) {
      return dir.status().WithContext("reading the multipath directory");
    }
    m->log_.Info("no multipath directory {}: failover state is not published",
                 schema::MultipathDir(m->self_, volume));
    return m;
  }
  m->enabled_ = true;
  if (auto c = m->xs_->Read(platform::kNoTx, m->Key(mp::kFailoverCompleted)); c.ok()) {
    m->taken_ = ParseU64(*c).value_or(0);
  }
  // A request already present at open belongs to an earlier opener (which
  // did not complete it); it is not acted on.
  if (auto r = m->xs_->Read(platform::kNoTx, m->Key(mp::kFailoverRequest)); r.ok()) {
    m->taken_ = std::max(m->taken_, ParseU64(*r).value_or(0));
  }
  VNVRAM_RETURN_IF_ERROR(m->xs_->Watch(m->Key(mp::kFailoverRequest), kWatchToken));
  m->watching_ = true;
  return m;
}

Result<bool> MultipathState::Drain() {
  bool fired = false;
  for (;;) {
    auto ev = xs_->ReadWatch();
    if (!ev.ok()) return ev.status().WithContext("reading multipath watch events");
    if (!ev->has_value()) return fired;
    fired = true;
  }
}

std::optional<FailoverRequest> MultipathState::TakeRequest() {
  if (!enabled_) return std::nullopt;
  auto v = xs_->Read(platform::kNoTx, Key(mp::kFailoverRequest));
  if (!v.ok()) return std::nullopt;
  auto n =
      ParseU64InRange(*v, mp::kFailoverRequestMin, mp::kFailoverRequestMax, mp::kFailoverRequest);
  if (!n.ok()) {
    log_.Warn("ignoring a failover request: {}", n.status().message());
    return std::nullopt;
  }
  if (*n <= taken_) return std::nullopt;
  taken_ = *n;
  FailoverRequest r;
  r.number = *n;
  Status bad;
  if (auto t = xs_->Read(platform::kNoTx, Key(mp::kFailoverTarget)); t.ok()) {
    auto d = ParseDevId(*t, mp::kFailoverTarget);
    if (d.ok()) {
      r.target = *d;
    } else {
      bad = d.status();
    }
  }
  if (auto f = xs_->Read(platform::kNoTx, Key(mp::kFailoverForce)); f.ok() && bad.ok()) {
    auto b = ParseBool01(*f, mp::kFailoverForce);
    if (b.ok()) {
      r.force = *b;
    } else {
      bad = b.status();
    }
  }
  if (auto t = xs_->Read(platform::kNoTx, Key(mp::kFailoverTimeoutMs)); t.ok() && bad.ok()) {
    auto ms = ParseU64InRange(*t, mp::kFailoverTimeoutMsMin, mp::kFailoverTimeoutMsMax,
                              mp::kFailoverTimeoutMs);
    if (ms.ok()) {
      r.timeout = std::chrono::milliseconds(*ms);
    } else {
      bad = ms.status();
    }
  }
  if (!bad.ok()) {
    FailoverOutcome o;
    o.request = r.number;
    o.result = mp::kFailoverResultError;
    o.reason = mp::kFailoverReasonOperator;
    o.message = "bad request: " + bad.message();
    Report(o, mp::kFailoverStateFailed);
    return std::nullopt;
  }
  return r;
}

Status MultipathState::Write(const std::map<std::string, std::optional<std::string>>& kv) {
  if (!enabled_ || kv.empty()) return Status::Ok();
  const std::string dir = schema::MultipathDir(self_, volume_);
  Status s = platform::RunTransaction(*xs_, [&](platform::TxId tx) -> Status {
    auto present = xs_->Read(tx, dir);
    if (!present.ok()) return present.status();
    for (const auto& [k, v] : kv) {
      if (v) {
        VNVRAM_RETURN_IF_ERROR(xs_->Write(tx, k, *v));
      } else {
        VNVRAM_RETURN_IF_ERROR(xs_->Remove(tx, k));
      }
    }
    return Status::Ok();
  });
  if (!s.ok()) {
    if (s.code() == Code::kNotFound) {
      enabled_ = false;  // the toolstack removed it: stop publishing
      return Status::Ok();
    }
    log_.Warn("cannot write the multipath state: {}", s.ToString());
  }
  return s;
}

void MultipathState::Publish(std::optional<DevId> active, std::string_view status, uint64_t epoch) {
  std::map<std::string, std::optional<std::string>> want = {
      {Key(mp::kActivePath),
       active ? std::optional<std::string>(std::to_string(*active)) : std::nullopt},
      {Key(mp::kStatus), std::string(status)},
      {Key(mp::kEpoch), std::to_string(epoch)},
  };
  std::map<std::string, std::optional<std::string>> changed;
  for (auto& [k, v] : want) {
    auto it = published_.find(k);
    if (it == published_.end() || it->second != v) changed.emplace(k, v);
  }
  if (Write(changed).ok()) {
    for (auto& [k, v] : changed) published_[k] = v;
  }
}

void MultipathState::SetFailoverState(std::string_view state) {
  (void)Write({{Key(mp::kFailoverState), std::string(state)}});
}

void MultipathState::Report(const FailoverOutcome& o, std::string_view final_state) {
  auto dev = [](std::optional<DevId> d) {
    return d ? std::optional<std::string>(std::to_string(*d)) : std::nullopt;
  };
  std::string msg = Printable(o.message, mp::kFailoverMessageMaxLen - 3);
  Status s = Write({
      {Key(mp::kFailoverState), std::string(final_state)},
      {Key(mp::kFailoverResult), std::string(o.result)},
      {Key(mp::kFailoverReason), std::string(o.reason)},
      {Key(mp::kFailoverFrom), dev(o.from)},
      {Key(mp::kFailoverTo), dev(o.to)},
      {Key(mp::kFailoverDurationUs), std::to_string(o.duration_us)},
      {Key(mp::kFailoverMessage), std::move(msg)},
  });
  if (!s.ok()) return;
  // Written last, on its own: waiters watch it.
  (void)Write({{Key(mp::kFailoverCompleted), std::to_string(o.request)}});
  if (o.request > taken_) taken_ = o.request;
}

}  // namespace vnvram::frontend
