// vnvram-lab-probe: the Xen lab's guest-side probes (tests/lab/). Runs in a
// PV guest (or as a domain of the sim platform) and does what a well-behaved
// frontend must never do, or shows what a foreign guest cannot do. One line
// per event on stdout; the last line is "RESULT ok ..." or "RESULT fail ...".
//
//   vnvram-lab-probe [--platform SPEC] hostile-ring --devid N [--timeout-ms T]
//       Plays the frontend of device N by hand: waits for the backend's
//       InitWait, shares a one-page ring and binds an unbound event channel,
//       publishes them with state Initialised, waits for Connected. Then
//       2000 requests while one thread rewrites the request slots (double
//       fetch) and another notifies without pause (storm): each must be
//       answered with its id and a protocol status. Then it writes garbage
//       requests and a producer index far past the ring and notifies. ok
//       when the backend fences the device (state Closing with its `error`
//       node written).
//   vnvram-lab-probe [--platform SPEC] dir-refs --devid N [--count K]
//       Maps the device's first page-directory page read-only (a legitimate
//       frontend does this) and prints "refs <dir-ref> <r0> .. <rK-1>".
//   vnvram-lab-probe [--platform SPEC] map-foreign --granter D REF...
//       Tries to map each grant REF of domain D, one at a time, read-only and
//       writable. ok when every attempt is refused (the refs were granted to
//       another domain).
//
// Exit status: 0 ok, 1 the probe's expectation failed, 2 usage error.
#include <poll.h>

#include <CLI/CLI.hpp>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/log.h"
#include "common/parse.h"
#include "common/shared_copy.h"
#include "platform/platform.h"
#include "vnvram/vnvramif.h"
#include "xenstore-schema/schema.h"

namespace {

using vnvram::Result;
using vnvram::Status;
using vnvram::platform::GrantRef;
using vnvram::platform::kNoTx;
using vnvram::platform::XenStore;
namespace fe = vnvram::schema::fe;
namespace be = vnvram::schema::be;
using vnvram::schema::XenbusState;

void Line(const std::string& s) {
  std::printf("%s\n", s.c_str());
  std::fflush(stdout);
}

int Report(bool ok, const std::string& why) {
  Line(std::string("RESULT ") + (ok ? "ok " : "fail ") + why);
  return ok ? 0 : 1;
}

// Waits (watch-driven, bounded) until `path` holds one of `want`; returns
// the last value read ("" when missing).
std::string WaitFor(XenStore& xs, const std::string& path, const std::vector<std::string>& want,
                    const vnvram::Deadline& dl) {
  const std::string token = "lab-probe";
  (void)xs.Watch(path, token);
  std::string last;
  for (;;) {
    auto v = xs.Read(kNoTx, path);
    last = v.ok() ? *v : "";
    for (const std::string& w : want) {
      if (last == w) {
        (void)xs.Unwatch(path, token);
        return last;
      }
    }
    if (dl.Expired()) break;
    pollfd pfd{xs.WatchFd(), POLLIN, 0};
    (void)::poll(&pfd, 1, dl.RemainingMillisForPoll());
    for (;;) {
      auto ev = xs.ReadWatch();
      if (!ev.ok() || !ev->has_value()) break;
    }
  }
  (void)xs.Unwatch(path, token);
  return last;
}

std::string StateValue(XenbusState s) {
  return std::string(vnvram::schema::XenbusStateValue(s));
}

struct Device {
  vnvram::DomId self = 0;
  vnvram::DomId backend = 0;
  std::string bdir_state;
};

Result<Device> Locate(vnvram::platform::Platform& p, XenStore& xs, vnvram::DevId devid) {
  Device d;
  d.self = p.self_domid();
  auto bid = xs.Read(kNoTx, vnvram::schema::FrontendKey(d.self, devid, fe::kBackendId));
  if (!bid.ok()) return bid.status().WithContext("reading backend-id");
  auto b = vnvram::ParseDomId(*bid, "backend-id");
  if (!b.ok()) return b.status();
  d.backend = *b;
  d.bdir_state = vnvram::schema::BackendKey(d.backend, d.self, devid, be::kState);
  return d;
}

// Hand-driven requests while two threads misbehave on the same ring (see
// HostileRing). Reads only the answers' first two words (id, operation,
// status), which the racing thread leaves alone.
Status RaceAndStorm(vnvramif_sring* sring, vnvram::platform::EventChannels& evt,
                    vnvram::platform::EvtchnPort port, const vnvram::Deadline& dl) {
  const RING_IDX slots = VNVRAMIF_RING_SIZE(1);
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> stores{0}, kicks{0};
  std::thread racer([&] {
    uint64_t x = 0x2545f4914f6cdd1dULL;
    while (!stop.load(std::memory_order_relaxed)) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      auto* req = reinterpret_cast<uint64_t*>(&sring->ring[x % slots].req);
      const uint64_t v = (x & 1) ? x : (x >> 8) & 0x7ffff;
      __atomic_store_n(req + 2 + (x >> 40) % 6, v, __ATOMIC_RELAXED);
      stores.fetch_add(1, std::memory_order_relaxed);
    }
  });
  std::thread storm([&] {
    while (!stop.load(std::memory_order_relaxed)) {
      (void)evt.Notify(port);
      kicks.fetch_add(1, std::memory_order_relaxed);
    }
  });
  uint64_t answered = 0, okay = 0;
  Status result;
  RING_IDX prod = 0;
  for (int i = 0; i < 2000 && result.ok(); ++i) {
    vnvramif_request r{};
    r.id = 5000 + static_cast<uint64_t>(i);
    r.operation = (i % 2 == 0) ? VNVRAMIF_OP_PERSIST : VNVRAMIF_OP_GET_INFO;
    r.offset = static_cast<uint64_t>(i % 16) * 4096;
    r.length = 4096;
    vnvram::StoreToShared(&sring->ring[prod % slots].req, r);
    __atomic_store_n(&sring->req_prod, prod + 1, __ATOMIC_RELEASE);
    (void)evt.Notify(port);
    while (__atomic_load_n(&sring->rsp_prod, __ATOMIC_ACQUIRE) != prod + 1 && !dl.Expired()) {
      std::this_thread::yield();
    }
    if (__atomic_load_n(&sring->rsp_prod, __ATOMIC_ACQUIRE) != prod + 1) {
      result = Status::Timeout("request " + std::to_string(i) + " of the race went unanswered");
      break;
    }
    const auto* w = reinterpret_cast<const uint64_t*>(&sring->ring[prod % slots].rsp);
    const uint64_t id = __atomic_load_n(w, __ATOMIC_RELAXED);
    const uint64_t w1 = __atomic_load_n(w + 1, __ATOMIC_RELAXED);
    const auto status = static_cast<int16_t>((w1 >> 16) & 0xffff);
    if (id != r.id || static_cast<uint8_t>(w1 & 0xff) != r.operation || status > 0 ||
        status < VNVRAMIF_RSP_EAGAIN) {
      result = Status::Corruption("request " + std::to_string(r.id) + " answered as id " +
                                  std::to_string(id) + " status " + std::to_string(status));
      break;
    }
    ++answered;
    okay += status == VNVRAMIF_RSP_OKAY ? 1 : 0;
    ++prod;
  }
  stop = true;
  racer.join();
  storm.join();
  if (!result.ok()) return result;
  Line("race: " + std::to_string(answered) + " requests answered (" + std::to_string(okay) +
       " ok, " + std::to_string(answered - okay) + " errors) under " +
       std::to_string(stores.load()) + " racing stores and " + std::to_string(kicks.load()) +
       " notifications");
  return Status::Ok();
}

int HostileRing(vnvram::platform::Platform& p, vnvram::DevId devid, std::chrono::milliseconds t) {
  auto xs = p.OpenXenStore();
  if (!xs.ok()) return Report(false, "xenstore: " + xs.status().ToString());
  auto dev = Locate(p, **xs, devid);
  if (!dev.ok()) return Report(false, dev.status().ToString());
  vnvram::Deadline dl(vnvram::SystemClock::Instance(), t);
  const std::string fkey_state = vnvram::schema::FrontendKey(dev->self, devid, fe::kState);

  // Like a frontend: Initialising, then wait for the backend's InitWait.
  if (Status s = (*xs)->Write(kNoTx, fkey_state, StateValue(XenbusState::kInitialising)); !s.ok()) {
    return Report(false, "write state: " + s.ToString());
  }
  const std::string initwait = StateValue(XenbusState::kInitWait);
  if (WaitFor(**xs, dev->bdir_state, {initwait}, dl) != initwait) {
    return Report(false, "backend never reached InitWait");
  }
  Line("backend InitWait");

  auto sharer = p.OpenGrantSharer();
  if (!sharer.ok()) return Report(false, "grant sharer: " + sharer.status().ToString());
  auto ring = (*sharer)->Share(dev->backend, 1, true);
  if (!ring.ok()) return Report(false, "share ring: " + ring.status().ToString());
  auto evt = p.OpenEventChannels();
  if (!evt.ok()) return Report(false, "event channels: " + evt.status().ToString());
  auto port = (*evt)->BindUnbound(dev->backend);
  if (!port.ok()) return Report(false, "bind: " + port.status().ToString());
  auto* sring = reinterpret_cast<vnvramif_sring*>((*ring)->data().data());
  SHARED_RING_INIT(sring);

  const std::string ref = std::to_string((*ring)->refs()[0]);
  Status s = vnvram::platform::RunTransaction(**xs, [&](vnvram::platform::TxId tx) -> Status {
    auto put = [&](std::string_view k, const std::string& v) {
      return (*xs)->Write(tx, vnvram::schema::FrontendKey(dev->self, devid, k), v);
    };
    VNVRAM_RETURN_IF_ERROR(put(fe::kRingPageOrder, "0"));
    VNVRAM_RETURN_IF_ERROR(put(fe::kRingRef, ref));
    VNVRAM_RETURN_IF_ERROR(put(fe::kEventChannel, std::to_string(*port)));
    VNVRAM_RETURN_IF_ERROR(put(fe::kProtocol, std::string(fe::kProtocolX86_64Abi)));
    return put(fe::kState, StateValue(XenbusState::kInitialised));
  });
  if (!s.ok()) return Report(false, "publish: " + s.ToString());
  const std::string connected = StateValue(XenbusState::kConnected);
  const std::string closing = StateValue(XenbusState::kClosing);
  std::string st = WaitFor(**xs, dev->bdir_state, {connected, closing}, dl);
  if (st != connected) return Report(false, "backend did not connect (state '" + st + "')");
  Line("backend Connected on ring-ref " + ref + " port " + std::to_string(*port));

  // First a guest that races the backend: one thread rewrites offset,
  // length and grant refs (words 2..7) of every request slot while
  // requests are in flight (double fetch), another notifies the event
  // channel without pause (a storm). Every request must still be answered,
  // with its own id and operation and a status of the protocol.
  if (Status r = RaceAndStorm(sring, **evt, *port, dl); !r.ok()) {
    return Report(false, r.ToString());
  }

  // Garbage: every request slot filled with random-looking bytes, then a
  // producer index far beyond one ring ahead of the consumer.
  const size_t slots = VNVRAMIF_RING_SIZE(1);
  uint64_t x = 0x9e3779b97f4a7c15ULL;
  for (size_t i = 0; i < slots; ++i) {
    auto* bytes = reinterpret_cast<unsigned char*>(&sring->ring[i].req);
    for (size_t j = 0; j < sizeof(vnvramif_request); ++j) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      bytes[j] = static_cast<unsigned char>(x);
    }
  }
  std::atomic_thread_fence(std::memory_order_seq_cst);
  // After the race, the backend's consumer stands where the race left it.
  sring->req_prod = sring->rsp_prod + 0x7ffffff0u;
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (Status n = (*evt)->Notify(*port); !n.ok()) return Report(false, "notify: " + n.ToString());
  Line("wrote garbage requests and req_prod 0x7ffffff0 past the responses, notified");

  st = WaitFor(**xs, dev->bdir_state, {closing}, dl);
  auto err =
      (*xs)->Read(kNoTx, vnvram::schema::BackendKey(dev->backend, dev->self, devid, be::kError));
  const std::string error = err.ok() ? *err : "";
  if (st != closing || error.empty()) {
    return Report(false, "backend not fenced: state '" + st + "' error '" + error + "'");
  }
  return Report(true, "fenced: backend state Closing, error '" + error + "'");
}

int DirRefs(vnvram::platform::Platform& p, vnvram::DevId devid, size_t count) {
  auto xs = p.OpenXenStore();
  if (!xs.ok()) return Report(false, "xenstore: " + xs.status().ToString());
  auto dev = Locate(p, **xs, devid);
  if (!dev.ok()) return Report(false, dev.status().ToString());
  auto v = (*xs)->Read(
      kNoTx, vnvram::schema::BackendKey(dev->backend, dev->self, devid, be::PageDirRef(0)));
  if (!v.ok()) return Report(false, "page-dir-ref-0: " + v.status().ToString());
  auto dref = vnvram::ParseU32(*v, "page-dir-ref-0");
  if (!dref.ok()) return Report(false, dref.status().ToString());
  auto mapper = p.OpenGrantMapper();
  if (!mapper.ok()) return Report(false, "mapper: " + mapper.status().ToString());
  const std::array<GrantRef, 1> refs{*dref};
  auto m = (*mapper)->Map(dev->backend, refs, false);
  if (!m.ok()) return Report(false, "map own directory: " + m.status().ToString());
  std::string out = "refs " + std::to_string(*dref);
  const std::span<std::byte> page = (*m)->data();
  for (size_t i = 0; i < count && (i + 1) * 4 <= page.size(); ++i) {
    uint32_t r = 0;
    std::memcpy(&r, page.data() + i * 4, 4);
    out += " " + std::to_string(r);
  }
  Line(out);
  return Report(true, "mapped own page directory from domain " + std::to_string(dev->backend));
}

int MapForeign(vnvram::platform::Platform& p, vnvram::DomId granter,
               const std::vector<std::string>& refs) {
  auto mapper = p.OpenGrantMapper();
  if (!mapper.ok()) return Report(false, "mapper: " + mapper.status().ToString());
  size_t refused = 0;
  for (const std::string& text : refs) {
    auto r = vnvram::ParseU32(text, "ref");
    if (!r.ok()) return Report(false, r.status().ToString());
    const std::array<GrantRef, 1> one{*r};
    for (bool writable : {false, true}) {
      auto m = (*mapper)->Map(granter, one, writable);
      const std::string what = "ref " + text + (writable ? " writable" : " read-only") +
                               " of domain " + std::to_string(granter);
      if (m.ok()) return Report(false, "mapped " + what + ": isolation broken");
      Line("refused " + what + ": " + m.status().ToString());
      ++refused;
    }
  }
  return Report(refused > 0, std::to_string(refused) + " foreign mappings refused");
}

int Main(int argc, char** argv) {
  CLI::App app{"vnvram-lab-probe: hostile and isolation probes for the Xen lab"};
  app.require_subcommand(1);
  std::string platform, devid = "0", timeout_ms = "60000", count = "4", granter;
  std::vector<std::string> refs;
  app.add_option("--platform", platform, "xen or sim:<dir>:<domid>");
  CLI::App* hostile = app.add_subcommand("hostile-ring", "fence test: garbage on the ring");
  hostile->add_option("--devid", devid, "device id");
  hostile->add_option("--timeout-ms", timeout_ms, "overall deadline");
  CLI::App* dir = app.add_subcommand("dir-refs", "print the device's region grant refs");
  dir->add_option("--devid", devid, "device id");
  dir->add_option("--count", count, "region refs to print");
  CLI::App* foreign = app.add_subcommand("map-foreign", "try to map another domain's grants");
  foreign->add_option("--granter", granter, "granting domain")->required();
  foreign->add_option("refs", refs, "grant refs")->required();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  vnvram::log::Init("vnvram-lab-probe", vnvram::log::Level::kWarn);
  auto p = vnvram::platform::OpenPlatform(platform);
  if (!p.ok()) return Report(false, "platform: " + p.status().ToString());
  auto dev = vnvram::ParseDevId(devid, "--devid");
  if (!dev.ok()) return Report(false, dev.status().ToString());
  if (hostile->parsed()) {
    auto t = vnvram::ParseU64InRange(timeout_ms, 1, 3'600'000, "--timeout-ms");
    if (!t.ok()) return Report(false, t.status().ToString());
    return HostileRing(**p, *dev, std::chrono::milliseconds(*t));
  }
  if (dir->parsed()) {
    auto c = vnvram::ParseU64InRange(count, 0, 1024, "--count");
    if (!c.ok()) return Report(false, c.status().ToString());
    return DirRefs(**p, *dev, *c);
  }
  auto g = vnvram::ParseDomId(granter, "--granter");
  if (!g.ok()) return Report(false, g.status().ToString());
  return MapForeign(**p, *g, refs);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return Main(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "vnvram-lab-probe: fatal: %s\n", e.what());
  }
  return 1;
}
