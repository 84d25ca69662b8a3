#include "backend/replication_control.h"

#include "backend/replication/curve.h"
#include "common/log.h"
#include "xenstore-schema/schema.h"

namespace vnvram::backend {

namespace {

constexpr std::string_view kPromoteTokenPrefix = "vnvramd-promote:";

std::string_view RoleValue(replication::Role r) {
  namespace rk = schema::repl;
  switch (r) {
    case replication::Role::kPrimary: return rk::kRolePrimary;
    case replication::Role::kFenced: return rk::kRoleFenced;
    case replication::Role::kReplica:
    case replication::Role::kCandidate: return rk::kRoleReplica;
  }
  return rk::kRoleReplica;
}

}  // namespace

Result<std::unique_ptr<ReplicationControl>> ReplicationControl::Start(const DaemonConfig& config,
                                                                      platform::XenStore& xs,
                                                                      DomId self,
                                                                      std::function<void()> wake) {
  auto cluster = replication::LoadClusterConfig(config.cluster_file);
  if (!cluster.ok()) return cluster.status();
  replication::EngineOptions o;
  o.host_id = config.host_id;
  o.cluster = std::move(cluster).value();
  o.state_dir = config.vault_dir;
  o.persist_timeout = config.persist_timeout;
  o.persist_spin = config.persist_spin;
  o.on_change = std::move(wake);
  if (!config.key_file.empty()) {
    auto keys = replication::LoadKeyFile(config.key_file);
    if (!keys.ok()) return keys.status();
    o.keys = std::move(keys).value();
  }
  std::unique_ptr<ReplicationControl> c(new ReplicationControl(xs, self));
  auto engine = replication::Engine::Start(std::move(o));
  if (!engine.ok()) return engine.status();
  c->engine_ = std::move(engine).value();
  return c;
}

ReplicationControl::~ReplicationControl() {
  (void)Shutdown();
}

std::optional<uint64_t> ReplicationControl::ReplicatedSize(const Uuid& volume) const {
  auto v = engine_->Find(volume);
  if (!v) return std::nullopt;
  return v->entry().size;
}

Result<std::unique_ptr<PersistSink>> ReplicationControl::Attach(const Uuid& volume,
                                                                std::span<std::byte> region) {
  return engine_->AttachRegion(volume, region);
}

bool ReplicationControl::Activate(const Uuid& volume, bool force, ActivationDone done) {
  if (!engine_->Find(volume)) return false;
  engine_->Activate(volume, force, [done = std::move(done)](const replication::ActivateOutcome& o) {
    using R = ActivationOutcome::Result;
    ActivationOutcome out;
    out.message = o.message;
    if (!o.final) {
      out.result = R::kWaitingResync;
    } else if (o.result == replication::PromoteResult::kOk) {
      out.result = R::kOk;
    } else if (o.result == replication::PromoteResult::kNoMajority) {
      out.result = R::kNoMajority;
    } else {
      out.result = R::kFailed;
      if (out.message.empty()) out.message = std::string(replication::PromoteResultName(o.result));
    }
    done(out);
  });
  return true;
}

Status ReplicationControl::WatchRequests() {
  for (const replication::VolumeStatus& v : engine_->GetStatus().volumes) {
    const std::string token = std::string(kPromoteTokenPrefix) + v.entry.uuid.ToString();
    VNVRAM_RETURN_IF_ERROR(xs_.Watch(
        schema::ReplicationKey(self_, v.entry.uuid, schema::repl::kPromoteRequest), token));
    // Requests finished by an earlier instance are not redone.
    auto done = xs_.Read(platform::kNoTx, schema::ReplicationKey(self_, v.entry.uuid,
                                                                 schema::repl::kPromoteCompleted));
    if (done.ok()) promote_handled_[v.entry.uuid.ToString()] = ParseU64(*done).value_or(0);
  }
  return Status::Ok();
}

bool ReplicationControl::HandleWatch(std::string_view token) {
  if (token.rfind(kPromoteTokenPrefix, 0) != 0) return false;
  auto uuid = ParseUuid(token.substr(kPromoteTokenPrefix.size()));
  if (uuid.ok()) HandlePromote(*uuid);
  return true;
}

void ReplicationControl::HandlePromote(const Uuid& volume) {
  namespace rk = schema::repl;
  auto v = xs_.Read(platform::kNoTx, schema::ReplicationKey(self_, volume, rk::kPromoteRequest));
  if (!v.ok()) return;
  auto req =
      ParseU64InRange(*v, rk::kPromoteRequestMin, rk::kPromoteRequestMax, rk::kPromoteRequest);
  if (!req.ok()) {
    spdlog::warn("volume {}: ignoring promote request: {}", volume.ToString(),
                 req.status().message());
    return;
  }
  uint64_t& handled = promote_handled_[volume.ToString()];
  if (*req <= handled) return;
  handled = *req;
  bool force = false;
  if (auto f = xs_.Read(platform::kNoTx, schema::ReplicationKey(self_, volume, rk::kPromoteForce));
      f.ok()) {
    auto b = ParseBool01(*f, rk::kPromoteForce);
    if (!b.ok()) {
      spdlog::warn("volume {}: ignoring promote request {}: {}", volume.ToString(), *req,
                   b.status().message());
      return;
    }
    force = *b;
  }
  spdlog::info("volume {}: promote request {}{}", volume.ToString(), *req, force ? " (force)" : "");
  engine_->Promote(volume, force, *req);
}

void ReplicationControl::Put(std::map<std::string, std::string>* batch, const std::string& path,
                             std::string value, bool force) {
  auto it = published_.find(path);
  if (!force && it != published_.end() && it->second == value) return;
  (*batch)[path] = std::move(value);
}

void ReplicationControl::Publish(bool force) {
  namespace rk = schema::repl;
  namespace dk = schema::daemon;
  const replication::EngineStatus st = engine_->GetStatus();
  const Nanos now = SystemClock::Instance().Now();
  const bool counters = force || counters_at_ < Nanos{0} || now - counters_at_ >= kCounterInterval;
  if (counters) counters_at_ = now;
  std::map<std::string, std::string> batch;
  for (const replication::VolumeStatus& v : st.volumes) {
    const Uuid& u = v.entry.uuid;
    auto key = [&](std::string_view k) { return schema::ReplicationKey(self_, u, k); };
    Put(&batch, key(rk::kName), v.entry.name, force);
    Put(&batch, key(rk::kSize), std::to_string(v.entry.size), force);
    Put(&batch, key(rk::kPolicy),
        std::string(v.entry.policy == replication::Policy::kSync ? rk::kPolicySync
                                                                 : rk::kPolicyAsync),
        force);
    Put(&batch, key(rk::kRisk),
        v.entry.policy == replication::Policy::kSync
            ? "none from one failure: a persist is acknowledged once a majority holds it"
            : "async: persists acknowledged but not yet applied by a replica are lost if the "
              "primary fails",
        force);
    Put(&batch, key(rk::kRole), std::string(RoleValue(v.view.role)), force);
    Put(&batch, key(rk::kEpoch), std::to_string(v.view.epoch), force);
    if (counters) Put(&batch, key(rk::kSequence), std::to_string(v.view.content_seq), force);
    Put(&batch, key(rk::kContentEpoch), std::to_string(v.view.content_epoch), force);
    Put(&batch, key(rk::kPromise), std::to_string(v.view.promise), force);
    Put(&batch, key(rk::kVouch), v.view.vouch ? "1" : "0", force);
    Put(&batch, key(rk::kServing), v.view.serving ? "1" : "0", force);
    for (const replication::ReplicaStatus& r : v.replicas) {
      Put(&batch, key(rk::ReplicaState(r.host)),
          std::string(replication::ReplicaLinkStateName(r.state)), force);
      if (counters) {
        Put(&batch, key(rk::ReplicaProgress(r.host)), std::to_string(r.progress), force);
        Put(&batch, key(rk::ReplicaAckedSequence(r.host)), std::to_string(r.acked), force);
      }
    }
    if (v.promote_completed != 0) {
      // The result first: waiters watch promote-completed.
      Put(&batch, key(rk::kPromoteResult),
          std::string(replication::PromoteResultName(v.promote_result)), force);
    }
  }
  for (const replication::PeerStatus& p : st.peers) {
    Put(&batch, schema::DaemonKey(self_, dk::PeerEndpoint(p.host)), p.endpoint, force);
    Put(&batch, schema::DaemonKey(self_, dk::PeerState(p.host)), p.state, force);
    if (counters && p.last_seen_ms != 0) {
      Put(&batch, schema::DaemonKey(self_, dk::PeerLastSeenMs(p.host)),
          std::to_string(p.last_seen_ms), force);
    }
  }
  // promote-completed goes in a second transaction, after its result.
  std::map<std::string, std::string> completed;
  for (const replication::VolumeStatus& v : st.volumes) {
    if (v.promote_completed == 0) continue;
    Put(&completed, schema::ReplicationKey(self_, v.entry.uuid, rk::kPromoteCompleted),
        std::to_string(v.promote_completed), force);
  }
  for (auto* b : {&batch, &completed}) {
    if (b->empty()) continue;
    Status s = platform::RunTransaction(xs_, [&](platform::TxId tx) -> Status {
      for (const auto& [path, value] : *b) VNVRAM_RETURN_IF_ERROR(xs_.Write(tx, path, value));
      return Status::Ok();
    });
    if (!s.ok()) {
      spdlog::warn("cannot publish replication state: {}", s.ToString());
      return;
    }
    for (auto& [path, value] : *b) published_[path] = value;
  }
}

Status ReplicationControl::Shutdown() {
  if (!engine_) return Status::Ok();
  Status s = engine_->Shutdown();
  return s;
}

}  // namespace vnvram::backend
