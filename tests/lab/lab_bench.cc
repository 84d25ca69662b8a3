// vnvram-lab-bench: the Xen lab's latency benchmark (issue 7, `make
// lab-bench`, docs/lab.md "lab-bench"). Under TCG every figure is slow, so
// the program measures the figure and its baseline in one run, interleaved
// in rounds (load on the build machine then moves both alike), and reports
// ratios next to the absolute values. It never fails on a figure; it fails
// only when it could not measure.
//
//   vnvram-lab-bench [--platform SPEC] echo --peer D [--timeout-ms T]
//       The dom0 side of the event-channel baseline. Waits for domain D to
//       publish an unbound port in /local/domain/D/data/lab-bench-evtchn,
//       binds it, notifies once ("hello"), then answers every event on it
//       at once (Pending, Unmask, Notify) while blocking in poll as
//       vnvramd's ring workers do, until the deadline or SIGTERM.
//   vnvram-lab-bench [--platform SPEC] guest --devid N [--replicated-devid M]
//       [--echo-domain D] [--rounds R] [--iterations I] [--warmup W]
//       [--timeout-ms T]
//       The guest side, in a PV guest. Figures, each from R rounds of I
//       samples (the rounds interleave the figures):
//         evtchn-rtt       Notify to the echo's answer, both sides blocked
//                          in poll (needs `echo` running in domain D)
//         persist-64b      QD1 Device::persist() of 64 bytes on device N
//         persist-4k       the same, 4 KiB
//         persist-4k-repl1 (with --replicated-devid) 4 KiB on device M,
//                          a volume with one replica
//       W persists per size (and W round trips) warm up first; every slot a
//       sample uses is touched before (first touches fault in under TCG).
//
// Output (stdout), one figure per line, parsed by run-lab.sh --part bench:
//   BENCH <figure>-p50-us V | BENCH <figure>-p99-us V | BENCH <figure>-samples N
//   BENCH <figure>-vs-evtchn-rtt-p50-ratio V   (persist p50 / evtchn p50)
//   BENCH-ERROR <figure> <why>                 (a figure not measured)
// then "RESULT ok ..." (every figure asked for measured) or "RESULT fail ...".
// Percentiles are nearest-rank. Timing: steady_clock around the call alone;
// the bytes are stored into the region before the clock starts.
//
// Exit status: 0 ok, 1 some figure could not be measured, 2 usage error.
// Single-threaded; owns its platform handles and devices for its lifetime.
#include <poll.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/log.h"
#include "common/parse.h"
#include "platform/platform.h"
#include "vnvram/vnvram.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using vnvram::Result;
using vnvram::Status;
using vnvram::platform::EventChannels;
using vnvram::platform::EvtchnPort;
using vnvram::platform::kNoTx;

// The xenstore key (under the guest's own data/ directory) where the guest
// publishes the port the echo binds.
constexpr const char* kPortKey = "data/lab-bench-evtchn";
// Slots each size cycles through (distinct cache lines / pages).
constexpr uint64_t kSlots = 64;

void Line(const std::string& s) {
  std::printf("%s\n", s.c_str());
  std::fflush(stdout);
}

std::string Fixed1(double v) {
  char b[64];
  std::snprintf(b, sizeof(b), "%.1f", v);
  return b;
}

std::string Fixed2(double v) {
  char b[64];
  std::snprintf(b, sizeof(b), "%.2f", v);
  return b;
}

// The last line: "RESULT ok|fail WHY"; the exit status (0 ok, 1 fail).
int Report(bool ok, const std::string& why) {
  Line(std::string("RESULT ") + (ok ? "ok " : "fail ") + why);
  return ok ? 0 : 1;
}

double Micros(Clock::duration d) {
  return std::chrono::duration<double, std::micro>(d).count();
}

// Nearest-rank percentile of `sorted` (not empty), p in (0, 100].
double Percentile(const std::vector<double>& sorted, double p) {
  const auto n = static_cast<double>(sorted.size());
  auto rank = static_cast<size_t>(std::ceil(p / 100.0 * n));
  rank = std::clamp<size_t>(rank, 1, sorted.size());
  return sorted[rank - 1];
}

// One figure's samples, or why it has none.
struct Figure {
  std::vector<double> us;
  std::string error;  // set once a sample failed: the figure stops
};

// ------------------------------------------------------------------ echo

// Waits (watch-driven, bounded) for `path` to exist; its value.
Result<std::string> WaitKey(vnvram::platform::XenStore& xs, const std::string& path,
                            const vnvram::Deadline& dl) {
  const std::string token = "lab-bench";
  (void)xs.Watch(path, token);
  for (;;) {
    auto v = xs.Read(kNoTx, path);
    if (v.ok()) {
      (void)xs.Unwatch(path, token);
      return v;
    }
    if (dl.Expired()) {
      (void)xs.Unwatch(path, token);
      return Status(vnvram::Code::kTimeout, path + " not written in time");
    }
    pollfd pfd{xs.WatchFd(), POLLIN, 0};
    (void)::poll(&pfd, 1, dl.RemainingMillisForPoll());
    for (;;) {
      auto ev = xs.ReadWatch();
      if (!ev.ok() || !ev->has_value()) break;
    }
  }
}

// Waits until `port` has an event (blocking in poll), consumes and unmasks
// it. Events on other ports of the handle are consumed too.
Status AwaitEvent(EventChannels& ev, EvtchnPort port, const vnvram::Deadline& dl) {
  for (;;) {
    for (;;) {
      VNVRAM_ASSIGN_OR_RETURN(const std::optional<EvtchnPort> p, ev.Pending());
      if (!p.has_value()) break;
      VNVRAM_RETURN_IF_ERROR(ev.Unmask(*p));
      if (*p == port) return Status::Ok();
    }
    if (dl.Expired()) return Status(vnvram::Code::kTimeout, "no event in time");
    pollfd pfd{ev.Fd(), POLLIN, 0};
    const int n = ::poll(&pfd, 1, dl.RemainingMillisForPoll());
    if (n < 0 && errno != EINTR) return Status::FromErrno(errno, "poll");
  }
}

int Echo(vnvram::platform::Platform& p, vnvram::DomId peer, std::chrono::milliseconds t) {
  vnvram::Deadline dl(vnvram::SystemClock::Instance(), t);
  auto xs = p.OpenXenStore();
  if (!xs.ok()) return Report(false, "xenstore: " + xs.status().ToString());
  const std::string key = "/local/domain/" + std::to_string(peer) + "/" + kPortKey;
  auto v = WaitKey(**xs, key, dl);
  if (!v.ok()) return Report(false, v.status().ToString());
  auto remote = vnvram::ParseU32(*v, key);
  if (!remote.ok()) return Report(false, remote.status().ToString());
  auto ev = p.OpenEventChannels();
  if (!ev.ok()) return Report(false, "event channels: " + ev.status().ToString());
  auto port = (*ev)->BindInterdomain(peer, *remote);
  if (!port.ok()) return Report(false, "bind: " + port.status().ToString());
  if (Status s = (*ev)->Notify(*port); !s.ok()) return Report(false, "hello: " + s.ToString());
  Line("echo: bound local port " + std::to_string(*port) + " to domain " + std::to_string(peer) +
       " port " + std::to_string(*remote) + ", hello sent");
  uint64_t echoed = 0;
  while (!dl.Expired()) {
    pollfd pfd{(*ev)->Fd(), POLLIN, 0};
    const int n = ::poll(&pfd, 1, dl.RemainingMillisForPoll());
    if (n < 0 && errno != EINTR) return Report(false, "poll: " + std::string(strerror(errno)));
    for (;;) {
      auto pe = (*ev)->Pending();
      if (!pe.ok()) return Report(false, "pending: " + pe.status().ToString());
      if (!pe->has_value()) break;
      (void)(*ev)->Unmask(**pe);
      if (**pe != *port) continue;
      if (Status s = (*ev)->Notify(*port); !s.ok()) {
        return Report(false, "notify after " + std::to_string(echoed) + ": " + s.ToString());
      }
      ++echoed;
    }
  }
  return Report(true, "echoed " + std::to_string(echoed) + " events until the deadline");
}

// ----------------------------------------------------------------- guest

struct GuestOptions {
  std::string platform;
  vnvram::DevId devid = 0;
  bool replicated = false;
  vnvram::DevId replicated_devid = 0;
  vnvram::DomId echo_domain = 0;
  uint64_t rounds = 5;
  uint64_t iterations = 200;
  uint64_t warmup = 100;
  std::chrono::milliseconds timeout{120000};
};

// The guest's end of the event-channel baseline.
class EvtchnPinger {
 public:
  // Binds an unbound port for `echo`, publishes it, waits for the hello.
  static Result<std::unique_ptr<EvtchnPinger>> Open(vnvram::platform::Platform& p,
                                                    vnvram::DomId echo,
                                                    const vnvram::Deadline& dl) {
    VNVRAM_ASSIGN_OR_RETURN(auto xs, p.OpenXenStore());
    VNVRAM_ASSIGN_OR_RETURN(auto ev, p.OpenEventChannels());
    VNVRAM_ASSIGN_OR_RETURN(const EvtchnPort port, ev->BindUnbound(echo));
    const std::string key = "/local/domain/" + std::to_string(p.self_domid()) + "/" + kPortKey;
    VNVRAM_RETURN_IF_ERROR(xs->Write(kNoTx, key, std::to_string(port)));
    if (Status s = AwaitEvent(*ev, port, dl); !s.ok()) {
      const std::string where = "domain " + std::to_string(echo);
      return s.WithContext("waiting for the echo's hello (is `vnvram-lab-bench echo` running in " +
                           where + "?)");
    }
    return std::unique_ptr<EvtchnPinger>(new EvtchnPinger(std::move(ev), port));
  }

  // One round trip; its duration in microseconds.
  Result<double> RoundTrip(const vnvram::Deadline& dl) {
    const auto t0 = Clock::now();
    VNVRAM_RETURN_IF_ERROR(ev_->Notify(port_));
    VNVRAM_RETURN_IF_ERROR(AwaitEvent(*ev_, port_, dl));
    return Micros(Clock::now() - t0);
  }

 private:
  EvtchnPinger(std::unique_ptr<EventChannels> ev, EvtchnPort port)
      : ev_(std::move(ev)), port_(port) {}
  std::unique_ptr<EventChannels> ev_;
  EvtchnPort port_;
};

// QD1 persists of one size on one device, cycling through kSlots slots.
class Persister {
 public:
  Persister(vnvram::Device& dev, uint64_t size) : dev_(dev), size_(size) {
    stride_ = std::max<uint64_t>(size, 64);
  }
  // Bytes the slots cover; the region must be at least this large.
  uint64_t span() const { return kSlots * stride_; }
  uint64_t device_size() const { return dev_.size(); }

  // Stores into the next slot (untimed), then times persist().
  Result<double> Once() {
    const uint64_t off = (next_++ % kSlots) * stride_;
    std::span<std::byte> r = dev_.region();
    std::memset(r.data() + off, static_cast<int>(next_ & 0xff), size_);
    const auto t0 = Clock::now();
    VNVRAM_RETURN_IF_ERROR(dev_.persist(off, size_));
    return Micros(Clock::now() - t0);
  }

 private:
  vnvram::Device& dev_;
  uint64_t size_;
  uint64_t stride_;
  uint64_t next_ = 0;
};

int Guest(vnvram::platform::Platform& p, const GuestOptions& o) {
  vnvram::Deadline dl(vnvram::SystemClock::Instance(), o.timeout);
  std::map<std::string, Figure> figs;  // by name; printed in this order:
  const std::vector<std::string> order = {"evtchn-rtt", "persist-64b", "persist-4k",
                                          "persist-4k-repl1"};

  std::unique_ptr<EvtchnPinger> pinger;
  if (auto r = EvtchnPinger::Open(p, o.echo_domain, dl); r.ok()) {
    pinger = std::move(r).value();
    Line("bench: event channel to domain " + std::to_string(o.echo_domain) + " bound");
  } else {
    figs["evtchn-rtt"].error = r.status().ToString();
  }

  auto open = [&](vnvram::DevId devid) -> Result<std::unique_ptr<vnvram::Device>> {
    vnvram::OpenOptions oo;
    oo.platform = o.platform;
    oo.devid = devid;
    oo.timeout = std::chrono::milliseconds(60000);
    return vnvram::Device::Open(oo);
  };
  std::unique_ptr<vnvram::Device> local, repl;
  std::vector<std::pair<std::string, std::unique_ptr<Persister>>> persisters;
  if (auto d = open(o.devid); d.ok()) {
    local = std::move(d).value();
    persisters.emplace_back("persist-64b", std::make_unique<Persister>(*local, 64));
    persisters.emplace_back("persist-4k", std::make_unique<Persister>(*local, 4096));
    Line("bench: device " + std::to_string(o.devid) + " open, " +
         std::to_string(local->size() >> 10) + " KiB");
  } else {
    const std::string why = "open device " + std::to_string(o.devid) + ": " + d.status().ToString();
    figs["persist-64b"].error = why;
    figs["persist-4k"].error = why;
  }
  if (o.replicated) {
    if (auto d = open(o.replicated_devid); d.ok()) {
      repl = std::move(d).value();
      persisters.emplace_back("persist-4k-repl1", std::make_unique<Persister>(*repl, 4096));
      Line("bench: replicated device " + std::to_string(o.replicated_devid) + " open");
    } else {
      figs["persist-4k-repl1"].error =
          "open device " + std::to_string(o.replicated_devid) + ": " + d.status().ToString();
    }
  }
  for (auto& [name, ps] : persisters) {
    if (ps->span() > ps->device_size()) {
      figs[name].error = "the region is smaller than " + std::to_string(ps->span()) + " bytes";
    }
  }

  // A figure stops at its first failed sample (the error is reported).
  auto live = [&](const std::string& name) { return figs[name].error.empty(); };
  auto record = [&](const std::string& name, const Result<double>& r, bool keep) {
    Figure& fig = figs[name];
    if (!r.ok()) {
      fig.error = r.status().ToString();
    } else if (keep) {
      fig.us.push_back(*r);
    }
  };
  // Warm-up: every slot touched, then W more of each (not recorded).
  for (uint64_t i = 0; i < kSlots + o.warmup; ++i) {
    if (pinger && live("evtchn-rtt")) record("evtchn-rtt", pinger->RoundTrip(dl), false);
    for (auto& [name, ps] : persisters) {
      if (live(name)) record(name, ps->Once(), false);
    }
  }
  // Rounds: each figure's block of I samples in turn.
  for (uint64_t round = 0; round < o.rounds; ++round) {
    for (uint64_t i = 0; pinger && i < o.iterations && live("evtchn-rtt"); ++i) {
      record("evtchn-rtt", pinger->RoundTrip(dl), true);
    }
    for (auto& [name, ps] : persisters) {
      for (uint64_t i = 0; i < o.iterations && live(name); ++i) record(name, ps->Once(), true);
    }
  }

  std::map<std::string, double> p50;
  std::string missing;
  for (const std::string& name : order) {
    auto it = figs.find(name);
    if (it == figs.end()) continue;
    Figure& f = it->second;
    if (!f.error.empty()) {
      Line("BENCH-ERROR " + name + " " + f.error);
      missing += (missing.empty() ? "" : ", ") + name;
      continue;
    }
    if (f.us.empty()) continue;
    std::sort(f.us.begin(), f.us.end());
    p50[name] = Percentile(f.us, 50);
    Line("BENCH " + name + "-p50-us " + Fixed1(p50[name]));
    Line("BENCH " + name + "-p99-us " + Fixed1(Percentile(f.us, 99)));
    Line("BENCH " + name + "-samples " + std::to_string(f.us.size()));
  }
  if (auto e = p50.find("evtchn-rtt"); e != p50.end() && e->second > 0) {
    for (const auto& [name, v] : p50) {
      if (name == "evtchn-rtt") continue;
      Line("BENCH " + name + "-vs-evtchn-rtt-p50-ratio " + Fixed2(v / e->second));
    }
  }
  if (!missing.empty()) return Report(false, "not measured: " + missing);
  return Report(true, std::to_string(p50.size()) + " figures, " + std::to_string(o.rounds) +
                          " rounds of " + std::to_string(o.iterations));
}

int Main(int argc, char** argv) {
  CLI::App app{"vnvram-lab-bench: persist latency against the event-channel round trip"};
  app.require_subcommand(1);
  std::string platform, peer, timeout_ms = "120000", devid = "0", rdevid, echo_domain = "0",
                              rounds = "5", iterations = "200", warmup = "100";
  app.add_option("--platform", platform, "xen or sim:<dir>:<domid>");
  CLI::App* echo = app.add_subcommand("echo", "dom0 side: answer the guest's events");
  echo->add_option("--peer", peer, "the guest's domain id")->required();
  echo->add_option("--timeout-ms", timeout_ms, "how long to serve");
  CLI::App* guest = app.add_subcommand("guest", "guest side: measure and print BENCH lines");
  guest->add_option("--devid", devid, "the local volume's device id");
  guest->add_option("--replicated-devid", rdevid, "a replicated volume's device id");
  guest->add_option("--echo-domain", echo_domain, "the domain running `echo`");
  guest->add_option("--rounds", rounds, "rounds (each figure's block once per round)");
  guest->add_option("--iterations", iterations, "samples per figure per round");
  guest->add_option("--warmup", warmup, "unrecorded samples per figure first");
  guest->add_option("--timeout-ms", timeout_ms, "overall deadline");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  vnvram::log::Init("vnvram-lab-bench", vnvram::log::Level::kWarn);
  auto usage = [](const Status& s) {
    std::fprintf(stderr, "vnvram-lab-bench: %s\n", s.ToString().c_str());
    return 2;
  };
  auto t = vnvram::ParseU64InRange(timeout_ms, 1, 3'600'000, "--timeout-ms");
  if (!t.ok()) return usage(t.status());
  auto p = vnvram::platform::OpenPlatform(platform);
  if (!p.ok()) return Report(false, "platform: " + p.status().ToString());
  if (echo->parsed()) {
    auto d = vnvram::ParseDomId(peer, "--peer");
    if (!d.ok()) return usage(d.status());
    return Echo(**p, *d, std::chrono::milliseconds(*t));
  }
  GuestOptions o;
  o.platform = platform;
  o.timeout = std::chrono::milliseconds(*t);
  auto dv = vnvram::ParseDevId(devid, "--devid");
  if (!dv.ok()) return usage(dv.status());
  o.devid = *dv;
  if (!rdevid.empty()) {
    auto r = vnvram::ParseDevId(rdevid, "--replicated-devid");
    if (!r.ok()) return usage(r.status());
    o.replicated = true;
    o.replicated_devid = *r;
  }
  auto ed = vnvram::ParseDomId(echo_domain, "--echo-domain");
  if (!ed.ok()) return usage(ed.status());
  o.echo_domain = *ed;
  auto ro = vnvram::ParseU64InRange(rounds, 1, 1000, "--rounds");
  auto it = vnvram::ParseU64InRange(iterations, 1, 1'000'000, "--iterations");
  auto wu = vnvram::ParseU64InRange(warmup, 0, 1'000'000, "--warmup");
  if (!ro.ok()) return usage(ro.status());
  if (!it.ok()) return usage(it.status());
  if (!wu.ok()) return usage(wu.status());
  o.rounds = *ro;
  o.iterations = *it;
  o.warmup = *wu;
  return Guest(**p, o);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return Main(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "vnvram-lab-bench: fatal: %s\n", e.what());
  }
  return 1;
}
