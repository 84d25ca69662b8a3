#include "tools/nvram-tool/cluster_view.h"

#include <cstdlib>

#include "tools/nvram-tool/cli_support.h"

namespace vnvram::tools {

std::string DefaultClusterFile() {
  const char* env = std::getenv("VNVRAM_CLUSTER");
  return env != nullptr && *env != '\0' ? std::string(env) : "/etc/vnvram/cluster.json";
}

std::string_view LocalVolumeStateName(LocalVolumeState s) {
  switch (s) {
    case LocalVolumeState::kPublished: return "published";
    case LocalVolumeState::kNotPublished: return "not-published";
    case LocalVolumeState::kNotAReplica: return "not-a-replica";
    case LocalVolumeState::kUnknown: return "unknown";
  }
  return "unknown";
}

const VolumeReplicationStatus* ClusterView::Published(const Uuid& volume) const {
  if (!repl) return nullptr;
  const std::string u = volume.ToString();
  for (const auto& v : repl->volumes) {
    if (v.uuid == u) return &v;
  }
  return nullptr;
}

const PeerRow* ClusterView::Peer(const std::string& host) const {
  if (!repl) return nullptr;
  for (const auto& p : repl->peers) {
    if (p.host == host) return &p;
  }
  return nullptr;
}

LocalVolumeState ClusterView::StateOf(const replication::VolumeEntry& v) const {
  if (Published(v.uuid) != nullptr) return LocalVolumeState::kPublished;
  const auto host = local_host();
  if (!no_local_view.empty() || !host || config.FindHost(*host) == nullptr) {
    return LocalVolumeState::kUnknown;
  }
  return v.HasReplica(*host) ? LocalVolumeState::kNotPublished : LocalVolumeState::kNotAReplica;
}

std::vector<std::string> ClusterView::Drift() const {
  std::vector<std::string> out;
  if (!no_local_view.empty()) return out;
  const auto host = local_host();
  if (host && config.FindHost(*host) == nullptr) {
    out.push_back("the local vnvramd's host id " + QuoteForError(*host) + " is not a host of " +
                  cluster_file);
    return out;
  }
  if (!repl) return out;
  for (const auto& v : config.volumes) {
    if (StateOf(v) == LocalVolumeState::kNotPublished) {
      out.push_back("volume " + v.name + " (" + v.uuid.ToString() +
                    ") is in the file but not in the running vnvramd: restart vnvramd to load it");
    }
  }
  for (const auto& v : repl->volumes) {
    auto u = ParseUuid(v.uuid);
    if (!u.ok() || config.FindVolume(*u) == nullptr) {
      out.push_back("vnvramd still replicates volume " + v.uuid +
                    ", which the file no longer lists: restart vnvramd to drop it");
    }
  }
  for (const auto& p : repl->peers) {
    const auto* h = config.FindHost(p.host);
    if (h == nullptr) {
      out.push_back("vnvramd still has peer " + QuoteForError(p.host) +
                    ", which the file no longer lists: restart vnvramd");
    } else if (p.endpoint != "-" && p.endpoint != h->endpoint) {
      out.push_back("peer " + p.host + ": vnvramd uses endpoint " + QuoteForError(p.endpoint) +
                    ", the file says " + h->endpoint + ": restart vnvramd");
    }
  }
  return out;
}

Result<ClusterView> LoadClusterView(const std::string& cluster_file,
                                    const std::string& platform_spec,
                                    std::optional<DomId> backend) {
  ClusterView view;
  view.cluster_file = cluster_file;
  view.backend = backend.value_or(0);
  auto c = replication::LoadClusterConfig(cluster_file);
  if (!c.ok()) return c.status();
  view.config = std::move(c).value();
  auto session = OpenXenStoreSession(platform_spec);
  if (!session.ok()) {
    view.no_local_view = session.status().ToString();
    return view;
  }
  view.backend = backend.value_or(session->platform->self_domid());
  view.daemon = ReadDaemonInfo(*session->xs, view.backend);
  auto repl = ReadReplicationStatus(*session->xs, view.backend);
  if (repl.ok()) {
    view.repl = std::move(repl).value();
  } else if (repl.status().code() != Code::kNotFound) {
    view.no_local_view = repl.status().ToString();
  } else if (!view.daemon.present()) {
    view.no_local_view = "domain " + std::to_string(view.backend) + " runs no vnvramd";
  }
  return view;
}

}  // namespace vnvram::tools
