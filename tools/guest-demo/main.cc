// vnvram-guest-demo: a guest program on libvnvram that writes numbered,
// checksummed records into the device's region and persists each, and
// verifies them later (demo and integration tests). Output is one line per
// event on stdout, flushed, so a parent process can follow it:
//
//   vnvram-guest-demo [--platform SPEC] [--devid N] write --from A --count C
//                     [--batch B] [--pause-after K] [--pause-every N]
//                     [--pause-mapped K] [--timestamps]
//       "open gen=G size=S"; "persisted <seq> gen=<G> us=<latency>" per
//       acknowledged record; with --pause-after, "paused <seq>" and waits
//       for a line on stdin; with --pause-mapped, "mapped <seq>" once it
//       holds region() for record from+K, before storing it, and waits for
//       a line on stdin; with --pause-every N, "paused <seq>" after every
//       N records, waiting for a stdin line each time (a quiescent point
//       for a test harness: nothing stored but not yet persisted);
//       "remapped gen=<G>" after a backend restart;
//       "done records=C p50_us=.. max_us=.. gen=G". With --timestamps,
//       each "persisted" and "remapped" line ends in " t_us=<T>": the wall
//       clock (CLOCK_REALTIME, microseconds since the Unix epoch) when the
//       persist returned, so that another process can time events against
//       it (bench/failover-bench.sh).
//   vnvram-guest-demo ... verify --count C [--copy-mode]
//       "verified C" or "bad <seq>: <why>" (exit 1).
//   vnvram-guest-demo ... fill --offset O [--length L]
//       fills [O, O+L) (default: to the end) with a pattern, persisted in
//       64 KiB writes: "filled <bytes>" (dirties every chunk it covers).
//   vnvram-guest-demo ... scan
//       "valid N": records 0..N-1 valid, N empty (exit 1 if corrupt).
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/log.h"
#include "common/parse.h"
#include "tools/guest-demo/demo_record.h"
#include "vnvram/vnvram.hpp"

namespace {

using vnvram::Status;
using vnvram::demo::kRecordSize;

int Fail(const std::string& what, const Status& s) {
  std::printf("error %s: %s\n", what.c_str(), s.ToString().c_str());
  std::fflush(stdout);
  std::fprintf(stderr, "vnvram-guest-demo: %s: %s\n", what.c_str(), s.ToString().c_str());
  return 1;
}

void Line(const std::string& s) {
  std::printf("%s\n", s.c_str());
  std::fflush(stdout);
}

uint64_t NowUs() {
  return static_cast<uint64_t>(vnvram::SystemClock::Instance().Now().count() / 1000);
}

uint64_t WallUs() {
  return static_cast<uint64_t>(vnvram::SystemClock::Instance().WallNow().count() / 1000);
}

int Write(vnvram::Device& dev, uint64_t from, uint64_t count, uint64_t batch,
          std::optional<uint64_t> pause_after, std::optional<uint64_t> pause_mapped,
          std::optional<uint64_t> pause_every, bool timestamps, std::optional<uint32_t> tag) {
  const uint64_t cap = vnvram::demo::RecordCapacity(dev.size());
  if (from + count > cap) {
    return Fail("write",
                Status::OutOfRange("records " + std::to_string(from) + "+" + std::to_string(count) +
                                   " exceed the capacity " + std::to_string(cap)));
  }
  uint64_t gen = dev.generation();
  std::vector<uint64_t> lat;
  lat.reserve(count);
  const uint32_t writer = tag.value_or(static_cast<uint32_t>(getpid()));
  uint64_t seq = from;
  while (seq < from + count) {
    const uint64_t n = std::min(batch, from + count - seq);
    const uint64_t t0 = NowUs();
    std::span<std::byte> region = dev.region();
    if (pause_mapped && seq - from <= *pause_mapped && *pause_mapped < seq - from + n) {
      // The span in hand, nothing stored yet: whatever happens to the
      // device now (a failover, say) must not lose the stores that follow.
      Line("mapped " + std::to_string(from + *pause_mapped));
      std::string ignored;
      std::getline(std::cin, ignored);
    }
    if (region.size() < vnvram::demo::RecordOffset(seq + n)) {
      return Fail("write",
                  dev.error().ok() ? Status::Unavailable("the region is not mapped") : dev.error());
    }
    for (uint64_t i = 0; i < n; ++i) {
      const uint64_t s = seq + i;
      vnvram::demo::EncodeRecord(
          s, static_cast<uint64_t>(vnvram::SystemClock::Instance().WallNow().count()), writer,
          region.subspan(vnvram::demo::RecordOffset(s), kRecordSize));
    }

    Status st;
    if (n == 1) {
      st = dev.persist(vnvram::demo::RecordOffset(seq), kRecordSize);
    } else {
      for (uint64_t i = 0; i < n && st.ok(); ++i) {
        st = dev.persist_async(vnvram::demo::RecordOffset(seq + i), kRecordSize);
      }
      if (st.ok()) st = dev.drain();
    }
    if (!st.ok()) return Fail("persist of record " + std::to_string(seq), st);
    const uint64_t us = NowUs() - t0;
    const std::string stamp = timestamps ? " t_us=" + std::to_string(WallUs()) : std::string();
    if (dev.generation() != gen) {
      gen = dev.generation();
      Line("remapped gen=" + std::to_string(gen) + stamp);
    }
    for (uint64_t i = 0; i < n; ++i) {
      lat.push_back(us);
      Line("persisted " + std::to_string(seq + i) + " gen=" + std::to_string(gen) +
           " us=" + std::to_string(us) + stamp);
    }
    seq += n;
    const bool after = pause_after && seq - from >= *pause_after && seq - n - from < *pause_after;
    const bool every =
        pause_every && (seq - from) / *pause_every != (seq - n - from) / *pause_every;
    if (after || every) {
      Line("paused " + std::to_string(seq - 1));
      std::string ignored;
      std::getline(std::cin, ignored);
    }
  }
  std::sort(lat.begin(), lat.end());
  const uint64_t p50 = lat.empty() ? 0 : lat[lat.size() / 2];
  const uint64_t mx = lat.empty() ? 0 : lat.back();
  Line("done records=" + std::to_string(count) + " p50_us=" + std::to_string(p50) +
       " max_us=" + std::to_string(mx) + " gen=" + std::to_string(dev.generation()) +
       " durable_seq=" + std::to_string(dev.durable_seq()));
  return 0;
}

int Verify(vnvram::Device& dev, uint64_t count, bool copy_mode) {
  const uint64_t cap = vnvram::demo::RecordCapacity(dev.size());
  if (count > cap) return Fail("verify", Status::OutOfRange("count exceeds the capacity"));
  std::vector<std::byte> buf(count * kRecordSize);
  if (copy_mode) {
    if (Status s = dev.read(vnvram::demo::kRecordsOffset, buf); !s.ok()) return Fail("read", s);
  } else {
    std::span<std::byte> r = dev.region();
    std::copy_n(r.data() + vnvram::demo::kRecordsOffset, buf.size(), buf.data());
  }
  for (uint64_t s = 0; s < count; ++s) {
    std::string why;
    auto c = vnvram::demo::CheckRecord(s, {buf.data() + s * kRecordSize, kRecordSize}, &why);
    if (c != vnvram::demo::RecordCheck::kValid) {
      if (c == vnvram::demo::RecordCheck::kEmpty) why = "missing (never written or lost)";
      Line("bad " + std::to_string(s) + ": " + why);
      return 1;
    }
  }
  Line("verified " + std::to_string(count) + (copy_mode ? " (copy mode)" : " (mapped)"));
  return 0;
}

int Fill(vnvram::Device& dev, uint64_t offset, std::optional<uint64_t> length) {
  if (offset > dev.size()) {
    return Fail("fill", Status::OutOfRange("--offset " + std::to_string(offset) +
                                           " beyond the region of " + std::to_string(dev.size())));
  }
  const uint64_t len = length.value_or(dev.size() - offset);
  if (len > dev.size() - offset) {
    return Fail("fill",
                Status::OutOfRange("--length " + std::to_string(len) + " beyond the region"));
  }
  std::vector<std::byte> buf(64u << 10);
  for (uint64_t done = 0; done < len;) {
    const uint64_t n = std::min<uint64_t>(buf.size(), len - done);
    for (uint64_t i = 0; i < n; ++i) {
      buf[i] = static_cast<std::byte>(((offset + done + i) >> 12) ^ 0x5a);
    }
    if (Status s = dev.write(offset + done, std::span(buf.data(), n)); !s.ok()) {
      return Fail("fill at " + std::to_string(offset + done), s);
    }
    done += n;
  }
  Line("filled " + std::to_string(len));
  return 0;
}

int Scan(vnvram::Device& dev) {
  const uint64_t cap = vnvram::demo::RecordCapacity(dev.size());
  std::span<std::byte> r = dev.region();
  uint64_t n = 0;
  for (; n < cap; ++n) {
    std::string why;
    auto c =
        vnvram::demo::CheckRecord(n, r.subspan(vnvram::demo::RecordOffset(n), kRecordSize), &why);
    if (c == vnvram::demo::RecordCheck::kEmpty) break;
    if (c == vnvram::demo::RecordCheck::kCorrupt) {
      Line("bad " + std::to_string(n) + ": " + why);
      return 1;
    }
  }
  Line("valid " + std::to_string(n));
  return 0;
}

int Main(int argc, char** argv) {
  CLI::App app{"vnvram-guest-demo: write and verify checksummed records on a vnvram device"};
  app.require_subcommand(1);
  std::string platform, devid = "0", timeout_ms = "10000";
  app.add_option("--platform", platform, "xen or sim:<dir>:<domid>");
  app.add_option("--devid", devid, "device id (default 0)");
  std::string volume;
  app.add_option("--volume", volume, "open the device of this volume UUID instead of --devid");
  app.add_option("--timeout-ms", timeout_ms, "handshake and request deadline (default 10000)");
  std::string path_timeout_ms;
  app.add_option("--path-timeout-ms", path_timeout_ms,
                 "a request unanswered this long fails the active path over (default 6000)");
  std::string log_level = "warn";
  app.add_option("--log-level", log_level,
                 "libvnvram's log on stderr: trace, debug, info, warn "
                 "(default), error or off");
  std::string from = "0", count, batch = "1", pause_after, pause_mapped, pause_every, tag;
  CLI::App* write = app.add_subcommand("write", "write and persist records");
  write->add_option("--from", from, "first record number");
  write->add_option("--count", count, "records to write")->required();
  write->add_option("--batch", batch, "records per batch (persist_async + drain)");
  write->add_option("--pause-after", pause_after, "pause after this many; wait for a stdin line");
  write->add_option("--pause-mapped", pause_mapped,
                    "pause before storing record from+K (region() in hand); wait for a stdin line");
  write->add_option("--pause-every", pause_every,
                    "pause after every N records; wait for a stdin line each time");
  write->add_option("--tag", tag,
                    "the records' writer field (default: the process id); a checker can "
                    "tell passes over the region apart by it");
  bool timestamps = false;
  write->add_flag("--timestamps", timestamps,
                  "end each persisted/remapped line in t_us=<wall clock, us since the epoch>");
  std::string vcount;
  bool copy_mode = false;
  CLI::App* verify = app.add_subcommand("verify", "check records 0..count-1");
  verify->add_option("--count", vcount, "records to check")->required();
  verify->add_flag("--copy-mode", copy_mode, "read through copy mode instead of the mapping");
  std::string fill_offset, fill_length;
  CLI::App* fill = app.add_subcommand("fill", "fill a range with a pattern, persisted");
  fill->add_option("--offset", fill_offset, "first byte")->required();
  fill->add_option("--length", fill_length, "bytes (default: to the end of the region)");
  app.add_subcommand("scan", "count the valid records from 0");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  auto level = vnvram::log::ParseLevel(log_level);
  if (!level.ok()) return Fail("arguments", level.status());
  vnvram::log::Init("vnvram-guest-demo", *level);

  vnvram::OpenOptions o;
  o.platform = platform;
  auto dev_id = vnvram::ParseDevId(devid, "--devid");
  if (!dev_id.ok()) return Fail("arguments", dev_id.status());
  o.devid = *dev_id;
  o.volume = volume;
  auto t = vnvram::ParseU64InRange(timeout_ms, 1, 3'600'000, "--timeout-ms");
  if (!t.ok()) return Fail("arguments", t.status());
  o.timeout = std::chrono::milliseconds(*t);
  if (!path_timeout_ms.empty()) {
    auto pt = vnvram::ParseU64InRange(path_timeout_ms, 1, 3'600'000, "--path-timeout-ms");
    if (!pt.ok()) return Fail("arguments", pt.status());
    o.path_timeout = std::chrono::milliseconds(*pt);
  }

  const uint64_t t0 = NowUs();
  auto dev = vnvram::Device::Open(o);
  if (!dev.ok()) return Fail("open", dev.status());
  Line("open gen=" + std::to_string((*dev)->generation()) +
       " size=" + std::to_string((*dev)->size()) + " us=" + std::to_string(NowUs() - t0));

  int rc = 0;
  if (write->parsed()) {
    auto f = vnvram::ParseU64(from, "--from");
    auto c = vnvram::ParseU64(count, "--count");
    auto b = vnvram::ParseU64InRange(batch, 1, 4096, "--batch");
    if (!f.ok()) return Fail("arguments", f.status());
    if (!c.ok()) return Fail("arguments", c.status());
    if (!b.ok()) return Fail("arguments", b.status());
    std::optional<uint64_t> pause;
    if (!pause_after.empty()) {
      auto p = vnvram::ParseU64(pause_after, "--pause-after");
      if (!p.ok()) return Fail("arguments", p.status());
      pause = *p;
    }
    std::optional<uint64_t> mapped;
    if (!pause_mapped.empty()) {
      auto p = vnvram::ParseU64(pause_mapped, "--pause-mapped");
      if (!p.ok()) return Fail("arguments", p.status());
      mapped = *p;
    }
    std::optional<uint64_t> every;
    if (!pause_every.empty()) {
      auto p = vnvram::ParseU64InRange(pause_every, 1, UINT64_MAX, "--pause-every");
      if (!p.ok()) return Fail("arguments", p.status());
      every = *p;
    }
    std::optional<uint32_t> writer_tag;
    if (!tag.empty()) {
      auto p = vnvram::ParseU64InRange(tag, 0, UINT32_MAX, "--tag");
      if (!p.ok()) return Fail("arguments", p.status());
      writer_tag = static_cast<uint32_t>(*p);
    }
    rc = Write(**dev, *f, *c, *b, pause, mapped, every, timestamps, writer_tag);
  } else if (verify->parsed()) {
    auto c = vnvram::ParseU64(vcount, "--count");
    if (!c.ok()) return Fail("arguments", c.status());
    rc = Verify(**dev, *c, copy_mode);
  } else if (fill->parsed()) {
    auto o = vnvram::ParseU64(fill_offset, "--offset");
    if (!o.ok()) return Fail("arguments", o.status());
    std::optional<uint64_t> l;
    if (!fill_length.empty()) {
      auto v = vnvram::ParseU64(fill_length, "--length");
      if (!v.ok()) return Fail("arguments", v.status());
      l = *v;
    }
    rc = Fill(**dev, *o, l);
  } else {
    rc = Scan(**dev);
  }
  if (Status s = (*dev)->close(); !s.ok() && rc == 0) return Fail("close", s);
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return Main(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "vnvram-guest-demo: fatal: %s\n", e.what());
  }
  return 1;
}
