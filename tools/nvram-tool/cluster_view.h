// ClusterView: a cluster file joined with what the local vnvramd publishes
// in xenstore (its host id and daemon keys, each replicated volume's role,
// epoch and sequence, its replicas and its peers' link states), for
// `nvram-tool volume list` and `nvram-tool cluster status`. vnvramd reads
// its cluster file once, at start; the view says where the file and the
// running daemon disagree (a volume one has and the other not, an endpoint
// that changed), which a restart of vnvramd resolves. Immutable once
// loaded; safe to share between threads.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "backend/replication/cluster_config.h"
#include "common/result.h"
#include "tools/nvram-tool/replication_admin.h"
#include "tools/nvram-tool/served_devices.h"

namespace vnvram::tools {

// The default cluster file: $VNVRAM_CLUSTER, else /etc/vnvram/cluster.json.
std::string DefaultClusterFile();

// What this host's vnvramd publishes about one volume of the file.
enum class LocalVolumeState {
  kPublished,     // vnvramd holds it: role, epoch, ... below
  kNotPublished,  // this host is a replica but vnvramd publishes nothing for it
  kNotAReplica,   // this host is not in the volume's replica group
  kUnknown,       // no local view (no xenstore, or no vnvramd, or its host id is not in the file)
};
std::string_view LocalVolumeStateName(LocalVolumeState s);

struct ClusterView {
  std::string cluster_file;
  replication::ClusterConfig config;
  DomId backend = 0;
  // Why there is no local view ("" when there is one).
  std::string no_local_view;
  DaemonInfo daemon;
  std::optional<ReplicationStatus> repl;  // when vnvramd publishes replication state

  // The local host id (the daemon's), when known.
  std::optional<std::string> local_host() const { return daemon.host_id; }
  LocalVolumeState StateOf(const replication::VolumeEntry& v) const;
  const VolumeReplicationStatus* Published(const Uuid& volume) const;
  const PeerRow* Peer(const std::string& host) const;
  // One line each: where the running vnvramd and the file disagree.
  std::vector<std::string> Drift() const;
};

// Loads and validates `cluster_file`; then, best effort, reads the local
// view through `platform_spec` (a failure there is recorded in
// no_local_view, not returned) from the vnvramd of domain `backend`, this
// domain when nullopt. Errors: the cluster file's.
Result<ClusterView> LoadClusterView(const std::string& cluster_file,
                                    const std::string& platform_spec, std::optional<DomId> backend);

}  // namespace vnvram::tools
