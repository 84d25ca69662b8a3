// ServedDevices: what `nvram-tool status` shows of the devices (paths) one
// backend domain serves and of the vnvramd instance there: per device its
// guest, volume, both ends' states, the backend's role, epoch, replication
// summary and primary link, the guest's path role, and the statistics
// vnvramd publishes (backend directory statistics/*); per daemon its
// host id, pid, lifecycle status and version. Every value is read as
// published and checked: a number that does not parse is reported absent.
// Stateless functions; thread-safe as the XenStore handle they are given.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/parse.h"
#include "common/result.h"
#include "platform/xenstore.h"

namespace vnvram::tools {

struct DeviceStatistics {
  std::optional<uint64_t> requests, bytes, errors;
  std::optional<uint64_t> persist_latency_p50_ns, persist_latency_p99_ns, persist_latency_max_ns;
  std::optional<uint64_t> durable_sequence;
};

struct ServedDevice {
  DomId backend = 0;
  DomId frontend = 0;
  DevId dev = 0;
  std::string volume;          // as the backend directory names it ("" when absent)
  std::string backend_state;   // state name, "-" when absent, "?" when bad
  std::string frontend_state;  // likewise
  std::string online;          // "0", "1" or "" when absent
  std::optional<uint64_t> region_size;
  std::string role;               // be role, "" when absent
  std::optional<uint64_t> epoch;  // be epoch
  std::string replication_state;  // be replication-state, "" when absent
  std::string primary_link;       // be primary-link, "" when absent
  std::string path_role;          // fe path-role, "" when absent
  std::string error;              // be error, "" when absent
  DeviceStatistics stats;
};

// Every device under BackendRoot(backend), by (frontend, devid). An empty
// list when the backend serves none.
Result<std::vector<ServedDevice>> ReadServedDevices(platform::XenStore& xs, DomId backend);

struct DaemonInfo {
  std::optional<std::string> host_id, status, version;
  std::optional<uint64_t> pid;
  bool present() const { return status.has_value(); }
};

// The daemon keys vnvramd of domain `backend` publishes.
DaemonInfo ReadDaemonInfo(platform::XenStore& xs, DomId backend);

}  // namespace vnvram::tools
