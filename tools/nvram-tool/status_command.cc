#include "tools/nvram-tool/status_command.h"

#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "tools/nvram-tool/replication_admin.h"
#include "tools/nvram-tool/served_devices.h"

namespace vnvram::tools {

namespace {

using Json = nlohmann::json;

template <typename T>
Json OrNull(const std::optional<T>& v) {
  return v ? Json(*v) : Json(nullptr);
}

Json OrNull(const std::string& v) {
  return v.empty() ? Json(nullptr) : Json(v);
}

std::string Opt(const std::optional<uint64_t>& v) {
  return v ? std::to_string(*v) : "-";
}

std::string Opt(const std::string& v) {
  return v.empty() ? "-" : v;
}

Json StatisticsJson(const DeviceStatistics& s) {
  return {{"requests", OrNull(s.requests)},
          {"bytes", OrNull(s.bytes)},
          {"errors", OrNull(s.errors)},
          {"persist_latency_p50_ns", OrNull(s.persist_latency_p50_ns)},
          {"persist_latency_p99_ns", OrNull(s.persist_latency_p99_ns)},
          {"persist_latency_max_ns", OrNull(s.persist_latency_max_ns)},
          {"durable_sequence", OrNull(s.durable_sequence)}};
}

Json DeviceJson(const ServedDevice& d) {
  return {{"frontend_domid", d.frontend},
          {"devid", d.dev},
          {"volume", OrNull(d.volume)},
          {"backend_state", d.backend_state},
          {"frontend_state", d.frontend_state},
          {"online", d.online.empty() ? Json(nullptr) : Json(d.online == "1")},
          {"region_size", OrNull(d.region_size)},
          {"role", OrNull(d.role)},
          {"epoch", OrNull(d.epoch)},
          {"replication_state", OrNull(d.replication_state)},
          {"primary_link", OrNull(d.primary_link)},
          {"path_role", OrNull(d.path_role)},
          {"error", OrNull(d.error)},
          {"statistics", StatisticsJson(d.stats)}};
}

struct StatusReport {
  DomId backend = 0;
  DaemonInfo daemon;
  bool replicated = false;
  ReplicationStatus repl;
  std::vector<ServedDevice> devices;
};

Json ReportJson(const StatusReport& r) {
  Json j;
  j["backend_domid"] = r.backend;
  j["host_id"] = r.repl.host_id;
  j["daemon"] = {{"host_id", OrNull(r.daemon.host_id)},
                 {"pid", OrNull(r.daemon.pid)},
                 {"status", OrNull(r.daemon.status)},
                 {"version", OrNull(r.daemon.version)}};
  j["replicated"] = r.replicated;
  j["volumes"] = Json::array();
  for (const auto& v : r.repl.volumes) {
    Json jv = {{"uuid", v.uuid},
               {"name", v.name},
               {"size", v.size},
               {"policy", v.policy},
               {"role", v.role},
               {"epoch", v.epoch},
               {"sequence", v.sequence},
               {"content_epoch", v.content_epoch},
               {"promise", v.promise},
               {"vouch", v.vouch == "1"},
               {"serving", v.serving == "1"},
               {"risk", v.risk}};
    jv["replicas"] = Json::array();
    for (const auto& rr : v.replicas) {
      jv["replicas"].push_back(
          {{"host", rr.host}, {"state", rr.state}, {"progress", rr.progress}, {"acked", rr.acked}});
    }
    jv["paths"] = Json::array();
    for (const auto& d : r.devices) {
      if (d.volume == v.uuid)
        jv["paths"].push_back({{"frontend_domid", d.frontend}, {"devid", d.dev}});
    }
    j["volumes"].push_back(std::move(jv));
  }
  j["peers"] = Json::array();
  for (const auto& p : r.repl.peers) {
    j["peers"].push_back({{"host", p.host},
                          {"endpoint", p.endpoint},
                          {"state", p.state},
                          {"last_seen_ms", p.last_seen_ms}});
  }
  j["devices"] = Json::array();
  for (const auto& d : r.devices) j["devices"].push_back(DeviceJson(d));
  return j;
}

void PrintText(const StatusReport& r) {
  std::printf("host %s, backend domain %u, vnvramd %s (pid %s, version %s)\n",
              r.repl.host_id.c_str(), unsigned{r.backend},
              r.daemon.status ? r.daemon.status->c_str() : "-", Opt(r.daemon.pid).c_str(),
              r.daemon.version ? r.daemon.version->c_str() : "-");
  if (!r.replicated) std::printf("no replication (vnvramd runs without --cluster)\n");
  for (const auto& v : r.repl.volumes) {
    std::printf("volume %s (%s) %s bytes, policy %s\n", v.name.c_str(), v.uuid.c_str(),
                v.size.c_str(), v.policy.c_str());
    std::printf("  role %s, epoch %s, sequence %s, serving %s, vouch %s\n", v.role.c_str(),
                v.epoch.c_str(), v.sequence.c_str(), v.serving.c_str(), v.vouch.c_str());
    std::printf("  risk: %s\n", v.risk.c_str());
    for (const auto& rr : v.replicas) {
      std::printf("  %s\n", ReplicaLine(rr).c_str());
    }
    for (const auto& d : r.devices) {
      if (d.volume == v.uuid)
        std::printf("  path domain %u devid %u\n", unsigned{d.frontend}, d.dev);
    }
  }
  for (const auto& p : r.repl.peers) {
    std::printf("peer %-16s %-8s %s\n", p.host.c_str(), p.state.c_str(), p.endpoint.c_str());
  }
  for (const auto& d : r.devices) {
    std::printf("device %u/%u volume %s: backend %s, frontend %s, online %s, %s\n",
                unsigned{d.frontend}, d.dev, Opt(d.volume).c_str(), d.backend_state.c_str(),
                d.frontend_state.c_str(), Opt(d.online).c_str(),
                d.region_size ? FormatSize(*d.region_size).c_str() : "-");
    std::printf("  role %s, epoch %s, replication %s, primary-link %s, path-role %s\n",
                Opt(d.role).c_str(), Opt(d.epoch).c_str(), Opt(d.replication_state).c_str(),
                Opt(d.primary_link).c_str(), Opt(d.path_role).c_str());
    std::printf(
        "  requests %s, bytes %s, errors %s, durable-sequence %s, persist p50/p99/max %s/%s/%s "
        "ns\n",
        Opt(d.stats.requests).c_str(), Opt(d.stats.bytes).c_str(), Opt(d.stats.errors).c_str(),
        Opt(d.stats.durable_sequence).c_str(), Opt(d.stats.persist_latency_p50_ns).c_str(),
        Opt(d.stats.persist_latency_p99_ns).c_str(), Opt(d.stats.persist_latency_max_ns).c_str());
    if (!d.error.empty()) std::printf("  error: %s\n", Printable(d.error, 256).c_str());
  }
}

class StatusCommand : public Command {
 public:
  explicit StatusCommand(CLI::App& app) {
    sub_ = app.add_subcommand(
        "status",
        "everything the local vnvramd publishes: daemon, replicated volumes with their paths, "
        "replicas and epochs, peers, and each device with its statistics");
    sub_->allow_extras();
    sub_->add_option("--backend", backend_, "domain running vnvramd (default: this domain)");
    domain_opt_ = sub_->add_option(
        "--domain", domain_, "only the devices of this guest domain and the volumes they lead to");
    sub_->add_flag("--json", json_, "machine-readable output (schema: docs/nvram-tool.md)");
  }

  bool Parsed() const override { return sub_->parsed(); }

  int Run(const std::string& platform_spec) override {
    if (Status s = RejectExtras(sub_); !s.ok()) return UsageError(s.message());
    auto b = ParseLocalBackend(sub_, backend_);
    if (!b.ok()) return UsageError(b.status().message());
    std::optional<DomId> domain;
    if (domain_opt_->count() != 0) {
      auto d = ParseDomId(domain_, "--domain");
      if (!d.ok()) return UsageError(d.status().message());
      domain = *d;
    }
    auto session = OpenXenStoreSession(platform_spec);
    if (!session.ok()) return Failure(session.status());
    platform::XenStore& xs = *session->xs;

    StatusReport r;
    r.backend = b->value_or(session->platform->self_domid());
    r.daemon = ReadDaemonInfo(xs, r.backend);
    auto repl = ReadReplicationStatus(xs, r.backend);
    if (repl.ok()) {
      r.replicated = true;
      r.repl = std::move(repl).value();
    } else if (repl.status().code() != Code::kNotFound) {
      return Failure(repl.status());
    } else {
      r.repl.host_id = r.daemon.host_id.value_or("-");
    }
    auto devices = ReadServedDevices(xs, r.backend);
    if (!devices.ok()) return Failure(devices.status());
    r.devices = std::move(devices).value();
    if (!r.daemon.present() && !r.replicated && r.devices.empty()) {
      return Failure(Status::NotFound("domain " + std::to_string(r.backend) +
                                      " runs no vnvramd: no daemon keys, no replication state, "
                                      "no devices"));
    }
    if (domain) {
      std::set<std::string> used;
      std::erase_if(r.devices, [&](const ServedDevice& d) { return d.frontend != *domain; });
      for (const auto& d : r.devices) used.insert(d.volume);
      std::erase_if(r.repl.volumes,
                    [&](const VolumeReplicationStatus& v) { return used.count(v.uuid) == 0; });
    }
    if (json_) {
      std::printf("%s\n", ReportJson(r).dump(2).c_str());
    } else {
      PrintText(r);
    }
    return kExitOk;
  }

 private:
  CLI::App* sub_ = nullptr;
  CLI::Option* domain_opt_ = nullptr;
  std::string backend_;
  std::string domain_;
  bool json_ = false;
};

}  // namespace

std::unique_ptr<Command> AddStatusCommand(CLI::App& app) {
  return std::make_unique<StatusCommand>(app);
}

}  // namespace vnvram::tools
