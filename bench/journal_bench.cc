#include "bench/journal_bench.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <cstring>
#include <memory>
#include <vector>

#include "journal/journal.h"
#include "vnvram/vnvram.hpp"

namespace vnvram::bench {

namespace {

using Clock = std::chrono::steady_clock;

double MicrosSince(Clock::time_point t) {
  return std::chrono::duration<double, std::micro>(Clock::now() - t).count();
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

Result<std::unique_ptr<Device>> OpenGuestDevice(const std::string& platform) {
  OpenOptions o;
  o.platform = platform;
  o.devid = 0;
  o.timeout = std::chrono::seconds(30);
  return Device::Open(o);
}

journal::PersistFn PersistOn(Device& dev) {
  return [&dev](uint64_t offset, uint64_t length) { return dev.persist(offset, length); };
}

// Fills the journal on `dev` with records of `payload` bytes, committed 64
// at a time (one persist each), until the log is full. Returns the count.
Result<uint64_t> Fill(Device& dev, uint64_t payload) {
  std::array<std::byte, 16> uuid{};
  uuid[0] = std::byte{0x6a};
  VNVRAM_RETURN_IF_ERROR(journal::Journal::Format(dev.region(), PersistOn(dev), uuid));
  VNVRAM_ASSIGN_OR_RETURN(
      auto j, journal::Journal::Open(dev.region(), PersistOn(dev), [](const journal::Record&) {}));
  std::vector<std::byte> record(payload);
  uint64_t n = 0;
  for (;;) {
    std::memset(record.data(), static_cast<int>(n & 0xff), record.size());
    Result<uint64_t> seq = j->Append(record, n);
    if (!seq.ok()) {
      if (seq.status().code() != Code::kResourceExhausted) return seq.status();
      break;
    }
    ++n;
    if (n % 64 == 0) VNVRAM_RETURN_IF_ERROR(j->Commit());
  }
  VNVRAM_RETURN_IF_ERROR(j->Commit());
  return n;
}

// One replay of the journal in `dev`'s region: its duration, and what it
// returned (a record count and the bytes it read, headers included).
struct Replay {
  double us = 0;
  uint64_t records = 0;
  uint64_t log_bytes = 0;
};

Result<Replay> ReplayOnce(Device& dev) {
  Replay r;
  uint64_t sum = 0;
  const auto t = Clock::now();
  VNVRAM_ASSIGN_OR_RETURN(
      auto j, journal::Journal::Open(dev.region(), PersistOn(dev), [&](const journal::Record& rec) {
        ++r.records;
        r.log_bytes += journal::kHeaderSize + rec.payload.size();
        sum += static_cast<uint8_t>(rec.payload.back());
      }));
  r.us = MicrosSince(t);
  if (r.records == 0 || sum == 0) return Status::Corruption("the replay returned no records");
  return r;
}

}  // namespace

Result<JournalReplayRun> MeasureJournalReplay(const std::string& bin_dir, const std::string& work,
                                              const ClusterSettings& settings,
                                              const std::string& uuid, uint64_t region_bytes,
                                              uint64_t record_payload) {
  const BenchVolume volume{uuid, "journal", region_bytes, {"a", "b", "w"}, "sync"};
  VNVRAM_ASSIGN_OR_RETURN(
      auto cluster, BenchCluster::Start(bin_dir, work, {{"a", true}, {"b", true}, {"w", false}},
                                        {volume}, settings));
  JournalReplayRun run;
  run.region_bytes = region_bytes;
  run.record_payload = record_payload;
  {
    VNVRAM_RETURN_IF_ERROR(cluster->Attach("a", 0, volume));
    VNVRAM_ASSIGN_OR_RETURN(auto dev, OpenGuestDevice(cluster->GuestPlatform("a")));
    VNVRAM_ASSIGN_OR_RETURN(const uint64_t filled, Fill(*dev, record_payload));
    (void)filled;
    // The guest goes first (a close, so that it does not wait for the dead
    // backend), then host a is lost: its vnvramd killed with SIGKILL.
    VNVRAM_RETURN_IF_ERROR(dev->close());
  }
  const auto lost = Clock::now();
  VNVRAM_RETURN_IF_ERROR(cluster->KillVnvramd("a"));
  VNVRAM_RETURN_IF_ERROR(
      cluster->Tool("b", {"promote", "--volume", uuid, "--timeout-ms", "10000"}));
  run.promote_ms = MicrosSince(lost) / 1000.0;
  VNVRAM_RETURN_IF_ERROR(cluster->Attach("b", 0, volume));
  VNVRAM_ASSIGN_OR_RETURN(auto dev, OpenGuestDevice(cluster->GuestPlatform("b")));
  VNVRAM_ASSIGN_OR_RETURN(const Replay first, ReplayOnce(*dev));
  run.records = first.records;
  run.log_bytes = first.log_bytes;
  run.first_replay_us = first.us;
  std::vector<double> warm;
  std::vector<double> copy;
  std::vector<std::byte> buffer(first.log_bytes);
  for (int i = 0; i < 5; ++i) {
    VNVRAM_ASSIGN_OR_RETURN(const Replay again, ReplayOnce(*dev));
    if (again.records != first.records) {
      return Status::Corruption("replays disagree: " + std::to_string(first.records) + " then " +
                                std::to_string(again.records) + " records");
    }
    warm.push_back(again.us);
    const std::span<std::byte> region = dev->region();
    const auto t = Clock::now();
    std::memcpy(buffer.data(), region.data() + journal::kLogOffset, buffer.size());
    copy.push_back(MicrosSince(t));
  }
  run.warm_replay_us = Median(warm);
  run.memcpy_us = Median(copy);
  (void)dev->close();
  return run;
}

}  // namespace vnvram::bench
