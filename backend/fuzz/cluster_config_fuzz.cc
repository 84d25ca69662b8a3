// libFuzzer entry point for ParseClusterConfig, the strict reader of the
// cluster file (cluster_config.h) that every vnvramd and nvram-tool trusts.
// Input: the file's text. What parses must hold every bound the format
// promises (settings ranges, unique and valid host ids, endpoints and keys,
// keys on every host or none, unique volumes of a valid size whose 1..9
// replicas are distinct listed hosts) and must survive a round trip: the
// config written back as canonical JSON parses to an equal config. A
// refusal is kInvalidArgument with one line that starts with the source and
// carries no control bytes. Any disagreement aborts. Built with
// -fsanitize=fuzzer when VNVRAM_FUZZ=ON; otherwise fuzz_replay_test.cc
// replays the seed corpus through it. Pure; thread-safe.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <string_view>

#include "backend/replication/cluster_config.h"
#include "backend/replication/host_id.h"

namespace {

using vnvram::Code;
namespace repl = vnvram::replication;

constexpr std::string_view kSource = "fuzz.json";

[[noreturn]] void Violation(const char* what) {
  std::fprintf(stderr, "cluster_config_fuzz: invariant violated: %s\n", what);
  std::abort();
}

void Check(bool cond, const char* what) {
  if (!cond) Violation(what);
}

bool IsPowerOfTwo(uint64_t v) {
  return v != 0 && (v & (v - 1)) == 0;
}

void CheckConfig(const repl::ClusterConfig& c) {
  const repl::ReplicationSettings& s = c.settings;
  Check(s.heartbeat_interval_ms >= 10 && s.heartbeat_interval_ms <= 60000, "heartbeat range");
  Check(s.peer_expiry_ms <= 600000, "peer expiry range");
  Check(uint64_t{s.peer_expiry_ms} >= 3 * uint64_t{s.heartbeat_interval_ms},
        "peer expiry below 3 heartbeats");
  Check(IsPowerOfTwo(s.max_data) && s.max_data >= 4096 && s.max_data <= (1u << 20),
        "max-data range");
  Check(IsPowerOfTwo(s.resync_chunk) && s.resync_chunk >= 4096 && s.resync_chunk <= s.max_data,
        "resync-chunk range");

  Check(!c.hosts.empty(), "no hosts");
  std::set<std::string> ids, endpoints, keys;
  for (const repl::HostEntry& h : c.hosts) {
    Check(repl::IsValidHostId(h.id), "bad host id accepted");
    Check(ids.insert(h.id).second, "duplicate host id accepted");
    Check(repl::CheckEndpoint(h.endpoint).ok(), "bad endpoint accepted");
    Check(endpoints.insert(h.endpoint).second, "duplicate endpoint accepted");
    Check(h.public_key.has_value() == c.curve_enabled(), "keys on some hosts only");
    if (h.public_key) {
      Check(repl::CheckCurveKey(*h.public_key).ok(), "bad public key accepted");
      Check(keys.insert(*h.public_key).second, "duplicate public key accepted");
    }
    Check(c.FindHost(h.id) == &h, "FindHost does not find a host");
  }

  std::set<std::string> uuids, names;
  for (const repl::VolumeEntry& v : c.volumes) {
    Check(!v.uuid.IsNil(), "nil volume UUID accepted");
    Check(uuids.insert(v.uuid.ToString()).second, "duplicate volume accepted");
    Check(repl::IsValidHostId(v.name), "bad volume name accepted");
    Check(names.insert(v.name).second, "duplicate volume name accepted");
    Check(v.size >= 4096 && v.size <= repl::kMaxVolumeSize && v.size % 4096 == 0, "size range");
    Check(!v.replicas.empty() && v.replicas.size() <= repl::kMaxReplicas, "replica count");
    Check(v.majority() >= 1 && v.majority() <= v.replicas.size(), "majority out of the group");
    std::set<std::string> members;
    for (const std::string& r : v.replicas) {
      Check(c.FindHost(r) != nullptr, "replica not a listed host");
      Check(members.insert(r).second, "replica listed twice");
      Check(v.HasReplica(r), "HasReplica misses a member");
    }
    Check(c.FindVolume(v.uuid) == &v, "FindVolume does not find a volume");
  }
}

// The config as canonical JSON: every setting explicit, sizes in bytes.
std::string Canonical(const repl::ClusterConfig& c) {
  using Json = nlohmann::ordered_json;
  Json root;
  root["version"] = 1;
  root["settings"] = {{"heartbeat-interval-ms", c.settings.heartbeat_interval_ms},
                      {"peer-expiry-ms", c.settings.peer_expiry_ms},
                      {"max-data", c.settings.max_data},
                      {"resync-chunk-size", c.settings.resync_chunk}};
  root["hosts"] = Json::array();
  for (const repl::HostEntry& h : c.hosts) {
    Json e = {{"id", h.id}, {"endpoint", h.endpoint}};
    if (h.public_key) e["public-key"] = *h.public_key;
    root["hosts"].push_back(std::move(e));
  }
  root["volumes"] = Json::array();
  for (const repl::VolumeEntry& v : c.volumes) {
    root["volumes"].push_back({{"uuid", v.uuid.ToString()},
                               {"name", v.name},
                               {"size", v.size},
                               {"replicas", v.replicas},
                               {"policy", std::string(repl::PolicyName(v.policy))}});
  }
  return root.dump(2);
}

bool Equal(const repl::ClusterConfig& a, const repl::ClusterConfig& b) {
  const auto& s = a.settings;
  const auto& t = b.settings;
  if (s.heartbeat_interval_ms != t.heartbeat_interval_ms || s.peer_expiry_ms != t.peer_expiry_ms ||
      s.max_data != t.max_data || s.resync_chunk != t.resync_chunk) {
    return false;
  }
  if (a.hosts.size() != b.hosts.size() || a.volumes.size() != b.volumes.size()) return false;
  for (size_t i = 0; i < a.hosts.size(); ++i) {
    const auto& h = a.hosts[i];
    const auto& k = b.hosts[i];
    if (h.id != k.id || h.endpoint != k.endpoint || h.public_key != k.public_key) return false;
  }
  for (size_t i = 0; i < a.volumes.size(); ++i) {
    const auto& v = a.volumes[i];
    const auto& w = b.volumes[i];
    if (!(v.uuid == w.uuid) || v.name != w.name || v.size != w.size || v.replicas != w.replicas ||
        v.policy != w.policy) {
      return false;
    }
  }
  return true;
}

bool HasNoControlBytes(std::string_view s) {
  return std::none_of(s.begin(), s.end(), [](char ch) {
    const auto c = static_cast<unsigned char>(ch);
    return c < 0x20 || c == 0x7F;
  });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // vnvramd and nvram-tool read at most kMaxClusterFileSize bytes.
  if (size > repl::kMaxClusterFileSize) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto got = repl::ParseClusterConfig(text, kSource);
  if (!got.ok()) {
    Check(got.status().code() == Code::kInvalidArgument, "refused with an undocumented code");
    const std::string& m = got.status().message();
    Check(m.rfind(std::string(kSource) + ":", 0) == 0, "refusal does not start with the source");
    Check(HasNoControlBytes(m), "refusal is not one line without control bytes");
    Check(m.size() < 1024, "refusal is not bounded");
    return 0;
  }
  CheckConfig(*got);
  const auto again = repl::ParseClusterConfig(Canonical(*got), kSource);
  Check(again.ok(), "the canonical form of a parsed config does not parse");
  Check(Equal(*got, *again), "the round trip changed the config");
  return 0;
}
