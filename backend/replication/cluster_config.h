// ClusterConfig: the cluster file (hosts, volumes and their replica sets,
// replication settings) as parsed and strictly validated from JSON. The
// format is documented in docs/replication.md ("Cluster file"). Every error
// is one line naming the source, the JSON path and the bad value.
// Immutable value type after parsing; safe to share between threads.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/parse.h"
#include "common/result.h"

namespace vnvram::replication {

enum class Policy : uint8_t {
  kSync,   // acknowledge when every in-sync replica applied (protocol C)
  kAsync,  // acknowledge when queued to the replicas (protocol A)
};
std::string_view PolicyName(Policy p);

struct HostEntry {
  std::string id;                         // host id (see host_id.h)
  std::string endpoint;                   // tcp://host:port the host binds and peers connect to
  std::optional<std::string> public_key;  // CurveZMQ public key, Z85, 40 chars
};

struct VolumeEntry {
  Uuid uuid;
  std::string name;
  uint64_t size = 0;                  // 4096..1 GiB, a multiple of 4096
  std::vector<std::string> replicas;  // host ids, the initial primary first
  Policy policy = Policy::kSync;

  // Members that form a majority of the replica group.
  size_t majority() const { return replicas.size() / 2 + 1; }
  bool HasReplica(std::string_view host) const;
};

struct ReplicationSettings {
  uint32_t heartbeat_interval_ms = 100;  // 10..60000
  uint32_t peer_expiry_ms = 1000;        // >= 3 heartbeats, <= 600000
  uint32_t max_data = 1u << 20;          // largest data per frame, power of two 4K..1M
  uint32_t resync_chunk = 64u << 10;     // power of two 4K..max_data
};

struct ClusterConfig {
  ReplicationSettings settings;
  std::vector<HostEntry> hosts;
  std::vector<VolumeEntry> volumes;

  const HostEntry* FindHost(std::string_view id) const;
  const VolumeEntry* FindVolume(const Uuid& uuid) const;
  // True when the hosts carry public keys (then every host does).
  bool curve_enabled() const { return !hosts.empty() && hosts.front().public_key.has_value(); }
};

inline constexpr size_t kMaxReplicas = 9;
inline constexpr uint64_t kMaxVolumeSize = uint64_t{1} << 30;
inline constexpr size_t kMaxClusterFileSize = 1 << 20;

// Parses the text of a cluster file. `source` names it in errors.
// kInvalidArgument with one line on any error.
Result<ClusterConfig> ParseClusterConfig(std::string_view text,
                                         std::string_view source = "cluster file");
// Reads and parses a file (at most kMaxClusterFileSize bytes).
Result<ClusterConfig> LoadClusterConfig(const std::string& path);

// The checks behind the parser, for other callers (nvram-tool, tests). Each
// returns OK or a message (without the value) saying what is wrong.
// tcp://HOST:PORT where HOST is a dotted IPv4 address, a bracketed IPv6
// address or a DNS name, and PORT is 1..65535; no wildcard.
Status CheckEndpoint(std::string_view endpoint);
// 40 characters of the Z85 alphabet encoding 32 bytes.
Status CheckCurveKey(std::string_view z85);

}  // namespace vnvram::replication
