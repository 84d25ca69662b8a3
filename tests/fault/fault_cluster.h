// FaultCluster: the fault harness's system under test, as real processes on
// the sim platform. Sim host A runs a vnvram-xenstored, the guest (domain
// 1) and two members of the volume's replica group: "a0" (dom0, path 0)
// and "a1" (driver domain 2, path 1). Sim host W runs its own
// vnvram-xenstored and the third member "w" (dom0, no path). Every
// replication link between two members goes through a LinkProxy, so that
// links can be cut (partition) or slowed; each member reads its own
// cluster file naming the proxies as its peers' endpoints. The harness
// reads copies directly (INSPECT, not through the proxies). Errors as
// values; one object per harness; not thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "backend/testing/vnvramd_harness.h"
#include "common/parse.h"
#include "common/result.h"
#include "platform/platform.h"
#include "platform/sim/xenstored/testing/xenstored_process.h"
#include "tests/child_process.h"
#include "tests/fault/link_proxy.h"

namespace vnvram::testing {

struct FaultClusterOptions {
  std::string bin_dir;                  // vnvramd, vnvram-xenstored, nvram-tool, vnvram-guest-demo
  uint64_t volume_size = 8u << 20;      // bytes
  uint32_t heartbeat_interval_ms = 50;  // cluster settings
  uint32_t peer_expiry_ms = 500;
  uint32_t persist_timeout_ms = 3000;  // vnvramd --persist-timeout-ms
  uint32_t guest_timeout_ms = 20000;   // vnvram-guest-demo --timeout-ms
  bool keep_dir = false;               // keep the scratch directory
};

class FaultCluster {
 public:
  struct Member {
    std::string id;
    int host = 0;  // 0: sim host A, 1: sim host W
    DomId domid = 0;
    int path = -1;  // the guest's device id served by this member, -1: none
    uint16_t port = 0;
    std::string dir, vault_dir, log_path, cluster_file;
    std::unique_ptr<backend::testing::VnvramdProcess> daemon;
  };

  static Result<std::unique_ptr<FaultCluster>> Create(FaultClusterOptions options);
  ~FaultCluster();
  FaultCluster(const FaultCluster&) = delete;
  FaultCluster& operator=(const FaultCluster&) = delete;

  const std::string& scratch() const { return scratch_; }
  const std::string& volume() const { return volume_; }
  uint64_t volume_size() const { return options_.volume_size; }
  const std::vector<std::string>& ids() const { return ids_; }
  Member& member(const std::string& id) { return *members_.at(id); }

  // Daemons.
  Status Start(const std::string& id);
  Status StartAll();
  Status Kill(const std::string& id);  // SIGKILL
  Status Stop(const std::string& id);  // SIGTERM, waits for the exit
  bool Running(const std::string& id);
  // The sim xenstored of host W: SIGKILL, and a fresh one in its place.
  Status KillXenstoredW();
  Status RestartXenstoredW();
  bool XenstoredWRunning();

  // The guest's two paths, attached with nvram-tool on host A.
  Status AttachPaths();
  // vnvram-guest-demo write in the guest, its records tagged `tag` (the
  // ledger's pass).
  Result<std::unique_ptr<ChildProcess>> SpawnWriter(uint64_t from, uint64_t count, uint32_t tag,
                                                    uint64_t pause_every);

  // Replication keys of a member (empty when absent or unreadable), and
  // the guest's multipath keys.
  std::string Repl(const std::string& id, std::string_view key);
  std::string Mp(std::string_view key);
  // The member that is primary, serving, with every other member in sync;
  // empty when there is none.
  std::string HealthyPrimary();
  // (id, epoch) of every member that says it is primary.
  std::vector<std::pair<std::string, uint64_t>> Primaries();

  // Links. `id`'s links to and from every other member.
  void Partition(const std::string& id, bool cut);
  void Slow(const std::string& id, std::chrono::milliseconds delay);
  void HealAll();

  struct Copy {
    uint64_t epoch = 0, sequence = 0;
    std::vector<uint32_t> crcs;  // per 1 MiB piece
    std::vector<std::byte> bytes;
  };
  // The whole copy of the volume held by `id`, over INSPECT.
  Result<Copy> ReadCopy(const std::string& id);

  std::string Logs(size_t tail_bytes = 4000);

 private:
  FaultCluster() = default;
  Status WriteClusterFiles();
  platform::XenStore* Xs(int host);
  std::string PlatformSpec(int host, DomId domid) const;

  FaultClusterOptions options_;
  std::string scratch_;
  std::string volume_;
  std::string admin_cluster_file_;  // real endpoints, for INSPECT
  std::vector<std::string> ids_;
  std::map<std::string, std::unique_ptr<Member>> members_;
  std::unique_ptr<sim::testing::XenstoredProcess> xenstored_[2];
  std::unique_ptr<platform::Platform> dom0_[2];
  std::unique_ptr<platform::XenStore> xs_[2];
  // (from, to) -> the proxy `from` dials to reach `to`.
  std::map<std::pair<std::string, std::string>, std::unique_ptr<LinkProxy>> proxies_;
};

}  // namespace vnvram::testing
