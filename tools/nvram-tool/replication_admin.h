// ReplicationAdmin: what `nvram-tool promote|status|inspect` do. Promote and
// status talk to the local vnvramd through its xenstore directories (the
// schema's replication and daemon trees); inspect asks any host of the
// cluster over ZeroMQ for a range of its copy of a volume. Stateless
// functions; thread-safe as the XenStore handle they are given.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/parse.h"
#include "common/result.h"
#include "platform/xenstore.h"

namespace vnvram::tools {

struct PromoteOutcome {
  uint64_t request = 0;
  std::string result;  // schema repl promote-result value
};

// Writes promote-force and the next promote-request for `volume` on the
// vnvramd of domain `backend`, then waits for promote-completed to reach it.
// kTimeout when vnvramd does not answer in time.
Result<PromoteOutcome> Promote(platform::XenStore& xs, DomId backend, const Uuid& volume,
                               bool force, std::chrono::milliseconds timeout);

struct ReplicaRow {
  std::string host, state, progress, acked;
};
// "replica HOST STATE acked N", with ", resync P%" while syncing (the
// progress of an earlier resync means nothing once the replica is in sync).
std::string ReplicaLine(const ReplicaRow& r);
struct VolumeReplicationStatus {
  std::string uuid, name, size, policy, role, epoch, sequence, content_epoch, promise, vouch,
      serving, risk;
  std::vector<ReplicaRow> replicas;
};
struct PeerRow {
  std::string host, endpoint, state, last_seen_ms;
};
struct ReplicationStatus {
  std::string host_id;
  std::vector<VolumeReplicationStatus> volumes;
  std::vector<PeerRow> peers;
};

// What vnvramd of domain `backend` publishes; kNotFound when it publishes
// no replication state.
Result<ReplicationStatus> ReadReplicationStatus(platform::XenStore& xs, DomId backend);

struct InspectSpec {
  std::string cluster_file;
  std::string host;      // the host to ask (its endpoint comes from the cluster file)
  std::string key_file;  // CurveZMQ key pair, when the cluster has keys
  Uuid volume;
  uint64_t offset = 0;
  uint32_t length = 0;
  std::chrono::milliseconds timeout{5000};
};
struct InspectOutcome {
  uint64_t epoch = 0;
  uint64_t sequence = 0;
  uint32_t crc32c = 0;
  std::vector<std::byte> data;  // empty when the host refused the range
};
Result<InspectOutcome> Inspect(const InspectSpec& spec);

}  // namespace vnvram::tools
