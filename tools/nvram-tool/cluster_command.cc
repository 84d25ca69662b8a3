#include "tools/nvram-tool/cluster_command.h"

#include <nlohmann/json.hpp>

#include "tools/nvram-tool/cluster_view.h"
#include "xenstore-schema/schema.h"

namespace vnvram::tools {

namespace {

using Json = nlohmann::json;

Json U64OrNull(const std::string& text) {
  auto n = ParseU64(text);
  return n.ok() ? Json(*n) : Json(nullptr);
}

// The link to `host` as the local vnvramd sees it: "self", a published
// peer state ("up", "down", "refused"), or "unknown".
std::string LinkOf(const ClusterView& view, const std::string& host) {
  if (view.local_host() && *view.local_host() == host) return "self";
  if (const auto* p = view.Peer(host)) return p->state;
  return "unknown";
}

// The primary of `v` as far as this host knows: itself when it is the
// primary; otherwise unknown here (a replica is not told who leads).
Json PrimaryOf(const ClusterView& view, const VolumeReplicationStatus* p) {
  if (p != nullptr && p->role == schema::repl::kRolePrimary && view.local_host()) {
    return *view.local_host();
  }
  return nullptr;
}

Json ClusterJson(const ClusterView& view) {
  const auto& c = view.config;
  Json j;
  j["cluster_file"] = view.cluster_file;
  j["local_host"] = view.local_host() ? Json(*view.local_host()) : Json(nullptr);
  j["daemon_status"] = view.daemon.status ? Json(*view.daemon.status) : Json(nullptr);
  j["local_view_error"] = view.no_local_view.empty() ? Json(nullptr) : Json(view.no_local_view);
  j["curve"] = c.curve_enabled();
  j["settings"] = {{"heartbeat_interval_ms", c.settings.heartbeat_interval_ms},
                   {"peer_expiry_ms", c.settings.peer_expiry_ms},
                   {"max_data", c.settings.max_data},
                   {"resync_chunk", c.settings.resync_chunk}};
  j["hosts"] = Json::array();
  for (const auto& h : c.hosts) {
    const PeerRow* p = view.Peer(h.id);
    j["hosts"].push_back(
        {{"id", h.id},
         {"endpoint", h.endpoint},
         {"public_key", h.public_key ? Json(*h.public_key) : Json(nullptr)},
         {"self", view.local_host() && *view.local_host() == h.id},
         {"link", LinkOf(view, h.id)},
         {"last_seen_ms", p != nullptr ? U64OrNull(p->last_seen_ms) : Json(nullptr)},
         {"published_endpoint",
          p != nullptr && p->endpoint != "-" ? Json(p->endpoint) : Json(nullptr)}});
  }
  j["volumes"] = Json::array();
  for (const auto& v : c.volumes) {
    const VolumeReplicationStatus* p = view.Published(v.uuid);
    Json jv = {{"uuid", v.uuid.ToString()},
               {"name", v.name},
               {"size", v.size},
               {"policy", std::string(replication::PolicyName(v.policy))},
               {"replicas", v.replicas},
               {"initial_primary", v.replicas.front()},
               {"local_state", std::string(LocalVolumeStateName(view.StateOf(v)))},
               {"primary", PrimaryOf(view, p)}};
    if (p != nullptr) {
      jv["local"] = {{"role", p->role},
                     {"epoch", U64OrNull(p->epoch)},
                     {"sequence", U64OrNull(p->sequence)},
                     {"serving", p->serving == "1"},
                     {"vouch", p->vouch == "1"}};
      jv["replica_states"] = Json::array();
      for (const auto& r : p->replicas) {
        jv["replica_states"].push_back({{"host", r.host},
                                        {"state", r.state},
                                        {"progress", U64OrNull(r.progress)},
                                        {"acked_sequence", U64OrNull(r.acked)}});
      }
    } else {
      jv["local"] = nullptr;
      jv["replica_states"] = Json::array();
    }
    j["volumes"].push_back(std::move(jv));
  }
  j["drift"] = view.Drift();
  return j;
}

void PrintCluster(const ClusterView& view) {
  const auto& c = view.config;
  std::printf("cluster %s: %zu host%s, %zu volume%s, CurveZMQ %s\n", view.cluster_file.c_str(),
              c.hosts.size(), c.hosts.size() == 1 ? "" : "s", c.volumes.size(),
              c.volumes.size() == 1 ? "" : "s", c.curve_enabled() ? "on" : "off");
  if (view.no_local_view.empty()) {
    std::printf("this host: %s (vnvramd %s)\n", view.local_host().value_or("-").c_str(),
                view.daemon.status.value_or("-").c_str());
  } else {
    std::printf("this host: no local view (%s)\n", view.no_local_view.c_str());
  }
  for (const auto& h : c.hosts) {
    std::printf("host %-16s %-32s %s\n", h.id.c_str(), h.endpoint.c_str(),
                LinkOf(view, h.id).c_str());
  }
  for (const auto& v : c.volumes) {
    std::string replicas;
    for (const auto& r : v.replicas) replicas += (replicas.empty() ? "" : ",") + r;
    std::printf("volume %s (%s) %s %s, replicas %s\n", v.name.c_str(), v.uuid.ToString().c_str(),
                FormatSize(v.size).c_str(), std::string(replication::PolicyName(v.policy)).c_str(),
                replicas.c_str());
    const VolumeReplicationStatus* p = view.Published(v.uuid);
    if (p == nullptr) {
      std::printf("  here: %s\n", std::string(LocalVolumeStateName(view.StateOf(v))).c_str());
      continue;
    }
    std::printf("  here: %s, epoch %s, sequence %s%s\n", p->role.c_str(), p->epoch.c_str(),
                p->sequence.c_str(), p->serving == "1" ? ", serving" : "");
    for (const auto& r : p->replicas) {
      std::printf("  %s\n", ReplicaLine(r).c_str());
    }
  }
  for (const auto& d : view.Drift()) std::printf("note: %s\n", d.c_str());
}

class ClusterCommand : public Command {
 public:
  explicit ClusterCommand(CLI::App& app) {
    sub_ = app.add_subcommand("cluster", "the cluster as the cluster file and this host see it");
    sub_->require_subcommand(1);
    status_ = sub_->add_subcommand(
        "status",
        "every host with its endpoint and link state, every volume with its primary and epochs");
    status_->allow_extras();
    status_->add_option("--cluster", cluster_,
                        "cluster file (default $VNVRAM_CLUSTER, else /etc/vnvram/cluster.json)");
    status_->add_option("--backend", backend_,
                        "domain running the local vnvramd (default: this domain)");
    status_->add_flag("--json", json_, "machine-readable output (schema: docs/nvram-tool.md)");
  }

  bool Parsed() const override { return sub_->parsed(); }

  int Run(const std::string& platform_spec) override {
    if (Status s = RejectExtras(status_); !s.ok()) return UsageError(s.message());
    auto file = ParseClusterFile(status_, cluster_);
    if (!file.ok()) return UsageError(file.status().message());
    auto b = ParseLocalBackend(status_, backend_);
    if (!b.ok()) return UsageError(b.status().message());
    auto view = LoadClusterView(*file, platform_spec, *b);
    if (!view.ok()) return Failure(view.status());
    if (json_) {
      std::printf("%s\n", ClusterJson(*view).dump(2).c_str());
    } else {
      PrintCluster(*view);
    }
    return kExitOk;
  }

 private:
  CLI::App* sub_ = nullptr;
  CLI::App* status_ = nullptr;
  std::string cluster_, backend_;
  bool json_ = false;
};

}  // namespace

std::unique_ptr<Command> AddClusterCommand(CLI::App& app) {
  return std::make_unique<ClusterCommand>(app);
}

}  // namespace vnvram::tools
