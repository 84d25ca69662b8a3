// vnvram-lab-fsload: the metadata-heavy fsync workload of the Xen lab's
// ext4 scenario (tests/lab/fsync_workload.h, docs/lab.md). Runs in a PV
// guest on a mounted ext4 filesystem. The last line is "RESULT ok ..." or
// "RESULT fail ...".
//
//   vnvram-lab-fsload write --dir D --count N [--first I]
//                           [--report-key KEY] [--platform SPEC]
//       Writes files I .. I+N-1 (each fsynced, renamed into place, its
//       directory fsynced) and prints "done files N fsyncs F bytes B
//       elapsed-us T file-p50-us P file-p99-us Q". With --report-key, after
//       every durable file the number of durable files is written to the
//       xenstore node KEY (relative to the domain's home,
//       /local/domain/<self>/, unless it starts with '/'), before the next
//       file is begun: a count read there is never ahead of the disk.
//   vnvram-lab-fsload interleave --dir A --dir B --count N [--rounds R]
//                                [--warmup W]
//       The workload on two directories (two filesystems) in R interleaved
//       rounds after W warm-up files on each (RunInterleaved); prints
//       "done A files N fsyncs F bytes B elapsed-us T rounds R" and the
//       same for B.
//   vnvram-lab-fsload verify --dir D --count N [--first I]
//       Checks that files I .. I+N-1 exist with their exact content and
//       counts the intact files after them.
//
// Exit status: 0 ok, 1 the workload or the check failed, 2 usage error
// (on stderr).
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/clock.h"
#include "common/log.h"
#include "common/parse.h"
#include "platform/platform.h"
#include "tests/lab/fsync_workload.h"

namespace {

using vnvram::Status;

int Report(bool ok, const std::string& why) {
  std::printf("RESULT %s %s\n", ok ? "ok" : "fail", why.c_str());
  std::fflush(stdout);
  return ok ? 0 : 1;
}

int Usage(const std::string& why) {
  std::fprintf(stderr, "vnvram-lab-fsload: %s\n", why.c_str());
  return 2;
}

int64_t Micros(vnvram::Nanos n) {
  return std::chrono::duration_cast<std::chrono::microseconds>(n).count();
}

int Write(const vnvram::lab::WorkloadOptions& options, const std::string& report_key,
          const std::string& platform_spec) {
  std::unique_ptr<vnvram::platform::Platform> platform;
  std::unique_ptr<vnvram::platform::XenStore> xs;
  std::string key = report_key;
  if (!report_key.empty()) {
    auto p = vnvram::platform::OpenPlatform(platform_spec);
    if (!p.ok()) return Report(false, "platform: " + p.status().ToString());
    platform = std::move(*p);
    auto x = platform->OpenXenStore();
    if (!x.ok()) return Report(false, "xenstore: " + x.status().ToString());
    xs = std::move(*x);
    if (key.front() != '/') {
      key = "/local/domain/" + std::to_string(platform->self_domid()) + "/" + key;
    }
  }
  auto synced = [&](uint32_t /*index*/, uint32_t done) -> Status {
    if (!xs) return Status::Ok();
    return xs->Write(vnvram::platform::kNoTx, key, std::to_string(done))
        .WithContext("reporting to " + key);
  };
  auto stats = vnvram::lab::RunFsyncWorkload(options, vnvram::SystemClock::Instance(), synced);
  if (!stats.ok()) return Report(false, stats.status().ToString());
  std::printf(
      "done files %u fsyncs %llu bytes %llu elapsed-us %lld file-p50-us %lld "
      "file-p99-us %lld\n",
      stats->files, static_cast<unsigned long long>(stats->fsyncs),
      static_cast<unsigned long long>(stats->bytes), static_cast<long long>(Micros(stats->elapsed)),
      static_cast<long long>(Micros(stats->file_p50)),
      static_cast<long long>(Micros(stats->file_p99)));
  return Report(true, std::to_string(stats->files) + " files durable in " + options.dir);
}

int Interleave(const vnvram::lab::InterleavedOptions& options) {
  auto st = vnvram::lab::RunInterleaved(options, vnvram::SystemClock::Instance());
  if (!st.ok()) return Report(false, st.status().ToString());
  for (const auto& [dir, s] : {std::pair{options.dir_a, st->first}, {options.dir_b, st->second}}) {
    std::printf("done %s files %u fsyncs %llu bytes %llu elapsed-us %lld rounds %u\n", dir.c_str(),
                s.files, static_cast<unsigned long long>(s.fsyncs),
                static_cast<unsigned long long>(s.bytes), static_cast<long long>(Micros(s.elapsed)),
                options.rounds);
  }
  return Report(true, std::to_string(options.count) + " files durable in each of " + options.dir_a +
                          " and " + options.dir_b);
}

int Verify(const std::string& dir, uint32_t first, uint32_t count) {
  auto v = vnvram::lab::VerifyFsyncWorkload(dir, first, count);
  if (!v.ok()) return Report(false, v.status().ToString());
  std::printf("verified %u files (%llu bytes) in %s; %u more intact after them\n", v->verified,
              static_cast<unsigned long long>(v->bytes), dir.c_str(), v->beyond);
  return Report(true, "files " + std::to_string(first) + ".." +
                          std::to_string(static_cast<uint64_t>(first) + count) +
                          " (exclusive) intact, " + std::to_string(v->beyond) + " more after");
}

int Main(int argc, char** argv) {
  CLI::App app{"vnvram-lab-fsload: the ext4 scenario's fsync workload"};
  app.require_subcommand(1);
  std::string platform, dir, count, first = "0", report_key, rounds = "1", warmup = "0";
  std::vector<std::string> dirs;
  app.add_option("--platform", platform, "xen or sim:<dir>:<domid> (for --report-key)");
  CLI::App* write = app.add_subcommand("write", "create, fsync and rename files");
  CLI::App* verify = app.add_subcommand("verify", "check files against their content");
  for (CLI::App* c : {write, verify}) {
    c->add_option("--dir", dir, "workload directory")->required();
    c->add_option("--count", count, "number of files")->required();
    c->add_option("--first", first, "index of the first file");
  }
  write->add_option("--report-key", report_key, "xenstore node for the durable count");
  CLI::App* interleave = app.add_subcommand("interleave", "the workload on two directories");
  interleave->add_option("--dir", dirs, "the two workload directories")->required()->expected(2);
  interleave->add_option("--count", count, "files in each")->required();
  interleave->add_option("--rounds", rounds, "interleaved rounds (count is a multiple)");
  interleave->add_option("--warmup", warmup, "files written first in DIR.warmup, not counted");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  vnvram::log::Init("vnvram-lab-fsload", vnvram::log::Level::kWarn);
  if (interleave->parsed()) {
    auto c = vnvram::ParseU64InRange(count, 1, vnvram::lab::kMaxIndex + 1, "--count");
    if (!c.ok()) return Usage(c.status().ToString());
    auto r = vnvram::ParseU64InRange(rounds, 1, 1000, "--rounds");
    if (!r.ok()) return Usage(r.status().ToString());
    auto w = vnvram::ParseU64InRange(warmup, 0, 1000, "--warmup");
    if (!w.ok()) return Usage(w.status().ToString());
    if (dirs.size() != 2) return Usage("interleave needs --dir twice");
    vnvram::lab::InterleavedOptions o;
    o.dir_a = dirs[0];
    o.dir_b = dirs[1];
    o.count = static_cast<uint32_t>(*c);
    o.rounds = static_cast<uint32_t>(*r);
    o.warmup = static_cast<uint32_t>(*w);
    return Interleave(o);
  }
  if (dir.empty()) return Usage("--dir is empty");
  auto f = vnvram::ParseU64InRange(first, 0, vnvram::lab::kMaxIndex, "--first");
  if (!f.ok()) return Usage(f.status().ToString());
  auto c = vnvram::ParseU64InRange(count, write->parsed() ? 1 : 0, vnvram::lab::kMaxIndex + 1 - *f,
                                   "--count");
  if (!c.ok()) return Usage(c.status().ToString());
  if (write->parsed()) {
    vnvram::lab::WorkloadOptions o;
    o.dir = dir;
    o.first = static_cast<uint32_t>(*f);
    o.count = static_cast<uint32_t>(*c);
    return Write(o, report_key, platform);
  }
  return Verify(dir, static_cast<uint32_t>(*f), static_cast<uint32_t>(*c));
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return Main(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "vnvram-lab-fsload: fatal: %s\n", e.what());
  }
  return 1;
}
