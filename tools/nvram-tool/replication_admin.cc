#include "tools/nvram-tool/replication_admin.h"

#include <fmt/format.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <random>
#include <zmq.hpp>

#include "backend/replication/cluster_config.h"
#include "backend/replication/curve.h"
#include "backend/replication/message.h"
#include "common/clock.h"
#include "common/crc32c.h"
#include "xenstore-schema/schema.h"

namespace vnvram::tools {

namespace rk = schema::repl;
namespace dk = schema::daemon;

Result<PromoteOutcome> Promote(platform::XenStore& xs, DomId backend, const Uuid& volume,
                               bool force, std::chrono::milliseconds timeout) {
  auto key = [&](std::string_view k) { return schema::ReplicationKey(backend, volume, k); };
  if (!xs.Read(platform::kNoTx, key(rk::kRole)).ok()) {
    return Status::NotFound("vnvramd of domain " + std::to_string(backend) +
                            " does not replicate volume " + volume.ToString());
  }
  const std::string token = "nvram-tool-promote";
  VNVRAM_RETURN_IF_ERROR(xs.Watch(key(rk::kPromoteCompleted), token));
  uint64_t request = 0;
  Status s = platform::RunTransaction(xs, [&](platform::TxId tx) -> Status {
    uint64_t last = 0;
    for (std::string_view k : {rk::kPromoteRequest, rk::kPromoteCompleted}) {
      if (auto v = xs.Read(tx, key(k)); v.ok()) last = std::max(last, ParseU64(*v).value_or(0));
    }
    request = last + 1;
    VNVRAM_RETURN_IF_ERROR(xs.Write(tx, key(rk::kPromoteForce), force ? "1" : "0"));
    return xs.Write(tx, key(rk::kPromoteRequest), std::to_string(request));
  });
  if (!s.ok()) {
    (void)xs.Unwatch(key(rk::kPromoteCompleted), token);
    return s.WithContext("write the promote request");
  }
  const Deadline dl(SystemClock::Instance(), timeout);
  Result<PromoteOutcome> out =
      Status::Timeout("vnvramd did not finish promote request " + std::to_string(request) +
                      " within " + std::to_string(timeout.count()) + " ms");
  for (;;) {
    auto done = xs.Read(platform::kNoTx, key(rk::kPromoteCompleted));
    if (done.ok() && ParseU64(*done).value_or(0) >= request) {
      auto result = xs.Read(platform::kNoTx, key(rk::kPromoteResult));
      out = PromoteOutcome{request, result.ok() ? *result : std::string(rk::kPromoteResultError)};
      break;
    }
    if (dl.Expired()) break;
    pollfd pfd{xs.WatchFd(), POLLIN, 0};
    if (::poll(&pfd, 1, dl.RemainingMillisForPoll()) < 0 && errno != EINTR) {
      out = Status::FromErrno(errno, "poll");
      break;
    }
    for (;;) {
      auto ev = xs.ReadWatch();
      if (!ev.ok() || !ev->has_value()) break;
    }
  }
  (void)xs.Unwatch(key(rk::kPromoteCompleted), token);
  return out;
}

std::string ReplicaLine(const ReplicaRow& r) {
  std::string line = fmt::format("replica {:<16} {:<9} acked {}", r.host, r.state,
                                 r.acked.empty() ? "-" : r.acked);
  if (r.state == "syncing") line += ", resync " + (r.progress.empty() ? "-" : r.progress) + "%";
  return line;
}

Result<ReplicationStatus> ReadReplicationStatus(platform::XenStore& xs, DomId backend) {
  ReplicationStatus st;
  auto read = [&](const std::string& path) {
    auto v = xs.Read(platform::kNoTx, path);
    return v.ok() ? *v : std::string("-");
  };
  st.host_id = read(schema::DaemonKey(backend, dk::kHostId));
  // The parent of every volume's replication directory.
  const std::string any = schema::ReplicationDir(backend, Uuid{});
  const std::string repl_root = any.substr(0, any.rfind('/'));
  auto vols = xs.Directory(platform::kNoTx, repl_root);
  if (!vols.ok()) {
    return Status::NotFound("domain " + std::to_string(backend) +
                            " publishes no replication state (vnvramd without --cluster?)");
  }
  for (const std::string& name : *vols) {
    auto uuid = ParseUuid(name);
    if (!uuid.ok()) continue;
    auto key = [&](std::string_view k) { return schema::ReplicationKey(backend, *uuid, k); };
    VolumeReplicationStatus v;
    v.uuid = uuid->ToString();
    v.name = read(key(rk::kName));
    v.size = read(key(rk::kSize));
    v.policy = read(key(rk::kPolicy));
    v.role = read(key(rk::kRole));
    v.epoch = read(key(rk::kEpoch));
    v.sequence = read(key(rk::kSequence));
    v.content_epoch = read(key(rk::kContentEpoch));
    v.promise = read(key(rk::kPromise));
    v.vouch = read(key(rk::kVouch));
    v.serving = read(key(rk::kServing));
    v.risk = read(key(rk::kRisk));
    if (auto hosts = xs.Directory(platform::kNoTx, key(rk::kReplicaDir)); hosts.ok()) {
      for (const std::string& h : *hosts) {
        v.replicas.push_back(ReplicaRow{h, read(key(rk::ReplicaState(h))),
                                        read(key(rk::ReplicaProgress(h))),
                                        read(key(rk::ReplicaAckedSequence(h)))});
      }
    }
    st.volumes.push_back(std::move(v));
  }
  if (auto peers = xs.Directory(platform::kNoTx, schema::DaemonKey(backend, dk::kPeerDir));
      peers.ok()) {
    for (const std::string& h : *peers) {
      st.peers.push_back(PeerRow{h, read(schema::DaemonKey(backend, dk::PeerEndpoint(h))),
                                 read(schema::DaemonKey(backend, dk::PeerState(h))),
                                 read(schema::DaemonKey(backend, dk::PeerLastSeenMs(h)))});
    }
  }
  return st;
}

Result<InspectOutcome> Inspect(const InspectSpec& spec) {
  auto cluster = replication::LoadClusterConfig(spec.cluster_file);
  if (!cluster.ok()) return cluster.status();
  const replication::HostEntry* host = cluster->FindHost(spec.host);
  if (host == nullptr) {
    return Status::InvalidArgument("host " + QuoteForError(spec.host) + " is not listed in " +
                                   spec.cluster_file);
  }
  if (spec.length == 0 || spec.length > cluster->settings.max_data) {
    return Status::InvalidArgument("length " + std::to_string(spec.length) + ": expected 1.." +
                                   std::to_string(cluster->settings.max_data));
  }
  std::optional<replication::CurveKeyPair> keys;
  if (cluster->curve_enabled()) {
    if (spec.key_file.empty()) {
      return Status::InvalidArgument("the cluster file lists CurveZMQ keys: give --key-file");
    }
    auto k = replication::LoadKeyFile(spec.key_file);
    if (!k.ok()) return k.status();
    keys = std::move(k).value();
  }
  const replication::Limits limits{cluster->settings.max_data};
  replication::Inspect req{spec.volume, spec.offset, spec.length};
  auto frame = replication::Encode(req, limits);
  if (!frame.ok()) return frame.status();
  try {
    zmq::context_t ctx;
    zmq::socket_t s(ctx, zmq::socket_type::dealer);
    std::random_device rd;
    s.set(zmq::sockopt::routing_id,
          "nvram-tool-" + std::to_string(::getpid()) + "-" + std::to_string(rd()));
    s.set(zmq::sockopt::linger, 0);
    if (keys) VNVRAM_RETURN_IF_ERROR(ConfigureCurveClient(s, *keys, *host->public_key));
    s.connect(host->endpoint);
    s.send(zmq::message_t(frame->data(), frame->size()), zmq::send_flags::none);
    zmq::pollitem_t item{s.handle(), 0, ZMQ_POLLIN, 0};
    zmq::poll(&item, 1, spec.timeout);
    if ((item.revents & ZMQ_POLLIN) == 0) {
      return Status::Timeout("no answer from " + spec.host + " (" + host->endpoint + ") within " +
                             std::to_string(spec.timeout.count()) + " ms");
    }
    zmq::message_t reply;
    (void)s.recv(reply, zmq::recv_flags::none);
    auto m = replication::Decode(
        std::span<const std::byte>(static_cast<const std::byte*>(reply.data()), reply.size()),
        limits);
    if (!m.ok()) return m.status().WithContext("answer from " + spec.host);
    if (auto* inv = std::get_if<replication::Invalid>(&*m)) {
      return Status::Unavailable(spec.host + " refused the request: " + inv->text);
    }
    auto* r = std::get_if<replication::InspectReply>(&*m);
    if (r == nullptr) return Status::InvalidArgument(spec.host + " answered with another message");
    InspectOutcome out;
    out.epoch = r->epoch;
    out.sequence = r->sequence;
    out.data = r->data;
    out.crc32c = Crc32c(out.data);
    return out;
  } catch (const zmq::error_t& e) {
    return Status::Unavailable(std::string("zeromq: ") + e.what());
  }
}

}  // namespace vnvram::tools
