#include "tools/nvram-tool/served_devices.h"

#include <algorithm>

#include "xenstore-schema/schema.h"

namespace vnvram::tools {

namespace {

namespace be = schema::be;
namespace fe = schema::fe;
namespace dk = schema::daemon;

std::optional<std::string> ReadOpt(platform::XenStore& xs, const std::string& path) {
  auto v = xs.Read(platform::kNoTx, path);
  if (!v.ok()) return std::nullopt;
  return *v;
}

// The value, or "" when absent.
std::string ReadOr(platform::XenStore& xs, const std::string& path) {
  auto v = ReadOpt(xs, path);
  return v ? *v : std::string();
}

std::optional<uint64_t> ReadU64(platform::XenStore& xs, const std::string& path) {
  auto v = ReadOpt(xs, path);
  if (!v) return std::nullopt;
  auto n = ParseU64(*v);
  if (!n.ok()) return std::nullopt;
  return *n;
}

std::string StateName(platform::XenStore& xs, const std::string& path) {
  auto v = xs.Read(platform::kNoTx, path);
  if (!v.ok()) return v.status().code() == Code::kNotFound ? "-" : "?";
  auto s = schema::ParseXenbusState(*v);
  return s.ok() ? std::string(schema::XenbusStateName(*s)) : "?";
}

}  // namespace

Result<std::vector<ServedDevice>> ReadServedDevices(platform::XenStore& xs, DomId backend) {
  std::vector<ServedDevice> out;
  auto frontends = xs.Directory(platform::kNoTx, schema::BackendRoot(backend));
  if (!frontends.ok()) {
    if (frontends.status().code() == Code::kNotFound) return out;
    return frontends.status().WithContext("list the devices of backend domain " +
                                          std::to_string(backend));
  }
  for (const std::string& fname : *frontends) {
    auto f = ParseDomId(fname, "frontend domain");
    if (!f.ok()) continue;  // not ours to judge here; vnvram-schema-check reports it
    auto devs = xs.Directory(platform::kNoTx, schema::BackendFrontendDir(backend, *f));
    if (!devs.ok()) continue;
    for (const std::string& devname : *devs) {
      auto dev = ParseDevId(devname, "device id");
      if (!dev.ok()) continue;
      auto key = [&](std::string_view k) { return schema::BackendKey(backend, *f, *dev, k); };
      ServedDevice d;
      d.backend = backend;
      d.frontend = *f;
      d.dev = *dev;
      d.volume = ReadOr(xs, key(be::kVolume));
      d.backend_state = StateName(xs, key(be::kState));
      d.frontend_state = StateName(xs, schema::FrontendKey(*f, *dev, fe::kState));
      d.online = ReadOr(xs, key(be::kOnline));
      d.region_size = ReadU64(xs, key(be::kRegionSize));
      d.role = ReadOr(xs, key(be::kRole));
      d.epoch = ReadU64(xs, key(be::kEpoch));
      d.replication_state = ReadOr(xs, key(be::kReplicationState));
      d.primary_link = ReadOr(xs, key(be::kPrimaryLink));
      d.path_role = ReadOr(xs, schema::FrontendKey(*f, *dev, fe::kPathRole));
      d.error = ReadOr(xs, key(be::kError));
      d.stats.requests = ReadU64(xs, key(be::kStatRequests));
      d.stats.bytes = ReadU64(xs, key(be::kStatBytes));
      d.stats.errors = ReadU64(xs, key(be::kStatErrors));
      d.stats.persist_latency_p50_ns = ReadU64(xs, key(be::kStatPersistLatencyP50Ns));
      d.stats.persist_latency_p99_ns = ReadU64(xs, key(be::kStatPersistLatencyP99Ns));
      d.stats.persist_latency_max_ns = ReadU64(xs, key(be::kStatPersistLatencyMaxNs));
      d.stats.durable_sequence = ReadU64(xs, key(be::kStatDurableSequence));
      out.push_back(std::move(d));
    }
  }
  std::sort(out.begin(), out.end(), [](const ServedDevice& a, const ServedDevice& b) {
    return a.frontend != b.frontend ? a.frontend < b.frontend : a.dev < b.dev;
  });
  return out;
}

DaemonInfo ReadDaemonInfo(platform::XenStore& xs, DomId backend) {
  DaemonInfo d;
  d.host_id = ReadOpt(xs, schema::DaemonKey(backend, dk::kHostId));
  d.status = ReadOpt(xs, schema::DaemonKey(backend, dk::kStatus));
  d.version = ReadOpt(xs, schema::DaemonKey(backend, dk::kVersion));
  d.pid = ReadU64(xs, schema::DaemonKey(backend, dk::kPid));
  return d;
}

}  // namespace vnvram::tools
