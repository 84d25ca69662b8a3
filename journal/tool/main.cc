// vnvram-journal: a guest program on the journal library (include/vnvram/
// journal.hpp) for demos, benchmarks and the crash tests: it formats a
// journal in a device range, appends records whose payloads follow from
// their sequence numbers (journal/payload_pattern.h), replays and checks
// them, and trims. One line per event on stdout, flushed, so a parent can
// follow it; --json prints each summary as one JSON object instead.
//
//   vnvram-journal [--platform SPEC] [--devid N | --volume UUID] [--timeout-ms T]
//                  [--offset O] [--length L] [--json] <command>
//     format [--uuid UUID]
//         "formatted offset=O length=L uuid=U us=T"
//     append --count N [--size B] [--max-size M] [--batch K] [--ack]
//            [--auto-trim] [--verify]
//         the open's replay summary (as replay), then with --ack "ack <seq>"
//         once each commit returned (<seq>: the batch's last record),
//         "remapped gen=G" when the device moved its mapping (a backend
//         restart or a failover; the journal follows it), with
//         --auto-trim "trim <seq>" / "trimmed <seq>" around each trim of
//         the older half when the log is full; at the end "appended
//         records=N first=F last=L commits=C us=T commit_p50_us=P
//         commit_max_us=X gen=G".
//     replay [--verify] [--size B] [--max-size M]
//         "replayed records=N first=F last=L head=H next=X bytes=B
//         open_us=D replay_us=R verified=yes|no|skipped mismatches=M
//         end=clean|damaged lost_commits=yes|no gen=G", after a line
//         "damage <where and why>" when replay stopped at a damaged record
//         (first/last 0 when empty; replay_us: the journal's open, replay
//         and check; open_us: the device's). Exit 1 on any mismatch, or
//         when committed records were lost to damage.
//     trim SEQ
//         "trimmed to=SEQ head=H next=X"
// Exit 0 on success, 1 on a runtime error or mismatch ("error ..." on
// stdout and stderr), 2 on a bad argument (one line naming it).
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/log.h"
#include "common/parse.h"
#include "journal/payload_pattern.h"
#include "journal/replay_check.h"
#include "vnvram/journal.hpp"
#include "vnvram/vnvram.hpp"

namespace {

using vnvram::Code;
using vnvram::Device;
using vnvram::Journal;
using vnvram::Status;
using vnvram::journal::ReplayCheck;
using vnvram::journal::SizeRange;

constexpr int kRuntimeError = 1;
constexpr int kBadArgument = 2;
// The payload buffers of one batch are allocated up front.
constexpr uint64_t kMaxBatchBytes = 256u << 20;

void Line(const std::string& s) {
  std::fputs(s.c_str(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

int Fail(const std::string& what, const Status& s) {
  Line("error " + what + ": " + s.ToString());
  std::fprintf(stderr, "vnvram-journal: %s: %s\n", what.c_str(), s.ToString().c_str());
  return kRuntimeError;
}

int BadArgument(const Status& s) {
  std::fprintf(stderr, "vnvram-journal: %s\n", s.ToString().c_str());
  return kBadArgument;
}

// A journal that cannot be opened: a bad --offset/--length is an argument
// error, anything else (not formatted, the device) a runtime one.
int OpenFailed(const Status& s) {
  return s.code() == Code::kInvalidArgument ? BadArgument(s) : Fail("open journal", s);
}

uint64_t NowUs() {
  return static_cast<uint64_t>(vnvram::SystemClock::Instance().Now().count() / 1000);
}

struct Where {
  uint64_t offset = 0;
  uint64_t length = 0;
};

struct Output {
  bool json = false;
  // Prints `line` as is, or `obj` as one JSON line.
  void Summary(const std::string& line, const nlohmann::json& obj) const {
    Line(json ? obj.dump() : line);
  }
};

// The open's replay and its summary (replay, and the start of append).
struct Replayed {
  std::unique_ptr<Journal> journal;
  bool ok = false;  // no mismatch
};

Replayed OpenAndReport(Device& dev, const Where& w, bool verify, std::optional<SizeRange> range,
                       uint64_t open_us, const Output& out, int* rc) {
  Replayed r;
  ReplayCheck check(verify, range);
  const uint64_t t0 = NowUs();
  auto j = Journal::Open(dev, w.offset, w.length, check.Callback());
  if (!j.ok()) {
    *rc = OpenFailed(j.status());
    return r;
  }
  check.Finish((*j)->head_sequence(), (*j)->next_sequence());
  const uint64_t replay_us = NowUs() - t0;
  for (const std::string& m : check.messages()) Line("mismatch " + m);
  const std::string verified = !verify ? "skipped" : check.mismatches() == 0 ? "yes" : "no";
  const vnvram::JournalReplayReport report = (*j)->replay_report();
  if (report.damaged) Line("damage " + report.detail);
  const std::string end = report.damaged ? "damaged" : "clean";
  const std::string lost = report.lost_commits ? "yes" : "no";
  nlohmann::json obj = {{"records", check.records()},
                        {"first", check.first()},
                        {"last", check.last()},
                        {"head", (*j)->head_sequence()},
                        {"next", (*j)->next_sequence()},
                        {"bytes", check.bytes()},
                        {"open_us", open_us},
                        {"replay_us", replay_us},
                        {"verified", verified},
                        {"mismatches", check.mismatches()},
                        {"end", end},
                        {"lost_commits", report.lost_commits},
                        {"generation", dev.generation()}};
  out.Summary(
      "replayed records=" + std::to_string(check.records()) +
          " first=" + std::to_string(check.first()) + " last=" + std::to_string(check.last()) +
          " head=" + std::to_string((*j)->head_sequence()) + " next=" +
          std::to_string((*j)->next_sequence()) + " bytes=" + std::to_string(check.bytes()) +
          " open_us=" + std::to_string(open_us) + " replay_us=" + std::to_string(replay_us) +
          " verified=" + verified + " mismatches=" + std::to_string(check.mismatches()) +
          " end=" + end + " lost_commits=" + lost + " gen=" + std::to_string(dev.generation()),
      obj);
  r.journal = std::move(j).value();
  // Committed records lost to damage: the journal is corrupt.
  r.ok = check.mismatches() == 0 && !report.lost_commits;
  *rc = r.ok ? 0 : kRuntimeError;
  return r;
}

int Format(Device& dev, const Where& w, const std::string& uuid_text, const Output& out) {
  vnvram::Uuid uuid;
  if (uuid_text.empty()) {
    std::random_device rd;
    for (auto& b : uuid.bytes) b = static_cast<uint8_t>(rd());
    uuid.bytes[6] = static_cast<uint8_t>((uuid.bytes[6] & 0x0F) | 0x40);  // version 4
    uuid.bytes[8] = static_cast<uint8_t>((uuid.bytes[8] & 0x3F) | 0x80);  // RFC 4122 variant
  } else {
    auto u = vnvram::ParseUuid(uuid_text, "--uuid");
    if (!u.ok()) return BadArgument(u.status());
    uuid = *u;
  }
  vnvram::JournalUuid id;
  for (size_t i = 0; i < id.size(); ++i) id[i] = static_cast<std::byte>(uuid.bytes[i]);
  const uint64_t t0 = NowUs();
  if (Status s = Journal::Format(dev, w.offset, w.length, id); !s.ok()) {
    return s.code() == Code::kInvalidArgument ? BadArgument(s) : Fail("format", s);
  }
  const uint64_t us = NowUs() - t0;
  out.Summary("formatted offset=" + std::to_string(w.offset) +
                  " length=" + std::to_string(w.length) + " uuid=" + uuid.ToString() +
                  " us=" + std::to_string(us),
              {{"offset", w.offset}, {"length", w.length}, {"uuid", uuid.ToString()}, {"us", us}});
  return 0;
}

struct AppendOptions {
  uint64_t count = 0;
  SizeRange size;
  uint64_t batch = 1;
  bool ack = false;
  bool auto_trim = false;
  bool verify = false;
};

int Append(Device& dev, const Where& w, const AppendOptions& a, uint64_t open_us,
           const Output& out) {
  int rc = 0;
  Replayed r = OpenAndReport(dev, w, a.verify, a.size, open_us, out, &rc);
  if (r.journal == nullptr || rc != 0) return rc;
  Journal& j = *r.journal;
  std::vector<std::vector<std::byte>> bufs(a.batch, std::vector<std::byte>(a.size.max));
  std::vector<std::span<const std::byte>> spans(a.batch);
  std::vector<uint64_t> commit_us;
  commit_us.reserve(std::min<uint64_t>(a.count / a.batch + 1, 1u << 20));
  const uint64_t first = j.next_sequence();
  uint64_t gen = dev.generation();
  const uint64_t t0 = NowUs();
  uint64_t done = 0;
  uint64_t commits = 0;
  while (done < a.count) {
    const uint64_t n = std::min(a.batch, a.count - done);
    const uint64_t seq = j.next_sequence();
    for (uint64_t i = 0; i < n; ++i) {
      const uint32_t size = vnvram::journal::PatternSize(seq + i, a.size);
      vnvram::journal::FillPattern(seq + i, {bufs[i].data(), size});
      spans[i] = {bufs[i].data(), size};
    }
    auto appended = j.append_batch({spans.data(), n});
    if (appended.status().code() == Code::kResourceExhausted && a.auto_trim &&
        j.committed_sequence() >= j.head_sequence()) {
      // Drop the older half of the committed records (at least one).
      const uint64_t to = j.head_sequence() + (j.committed_sequence() - j.head_sequence()) / 2;
      Line("trim " + std::to_string(to));
      if (Status s = j.trim(to); !s.ok()) return Fail("trim to " + std::to_string(to), s);
      Line("trimmed " + std::to_string(to));
      continue;
    }
    if (!appended.ok()) return Fail("append of record " + std::to_string(seq), appended.status());
    const uint64_t c0 = NowUs();
    if (Status s = j.commit(); !s.ok()) {
      return Fail("commit of records " + std::to_string(seq) + ".." + std::to_string(seq + n - 1),
                  s);
    }
    if (commit_us.size() < commit_us.capacity()) commit_us.push_back(NowUs() - c0);
    ++commits;
    done += n;
    if (dev.generation() != gen) {
      gen = dev.generation();
      Line("remapped gen=" + std::to_string(gen));
    }
    if (a.ack) Line("ack " + std::to_string(seq + n - 1));
  }
  const uint64_t us = NowUs() - t0;
  std::sort(commit_us.begin(), commit_us.end());
  const uint64_t p50 = commit_us.empty() ? 0 : commit_us[commit_us.size() / 2];
  const uint64_t mx = commit_us.empty() ? 0 : commit_us.back();
  const uint64_t last = a.count == 0 ? 0 : first + a.count - 1;
  out.Summary("appended records=" + std::to_string(a.count) + " first=" +
                  std::to_string(a.count == 0 ? 0 : first) + " last=" + std::to_string(last) +
                  " commits=" + std::to_string(commits) + " us=" + std::to_string(us) +
                  " commit_p50_us=" + std::to_string(p50) + " commit_max_us=" + std::to_string(mx) +
                  " gen=" + std::to_string(dev.generation()),
              {{"records", a.count},
               {"first", a.count == 0 ? 0 : first},
               {"last", last},
               {"commits", commits},
               {"us", us},
               {"commit_p50_us", p50},
               {"commit_max_us", mx},
               {"generation", dev.generation()}});
  return 0;
}

int Trim(Device& dev, const Where& w, uint64_t to, const Output& out) {
  auto j = Journal::Open(dev, w.offset, w.length, nullptr);
  if (!j.ok()) return OpenFailed(j.status());
  if (Status s = (*j)->trim(to); !s.ok()) return Fail("trim to " + std::to_string(to), s);
  out.Summary("trimmed to=" + std::to_string(to) +
                  " head=" + std::to_string((*j)->head_sequence()) +
                  " next=" + std::to_string((*j)->next_sequence()),
              {{"to", to}, {"head", (*j)->head_sequence()}, {"next", (*j)->next_sequence()}});
  return 0;
}

// Parses an optional number option; `*out` keeps its default when empty.
Status ParseOpt(const std::string& text, const char* what, uint64_t lo, uint64_t hi,
                uint64_t* out) {
  if (text.empty()) return Status::Ok();
  auto v = vnvram::ParseU64InRange(text, lo, hi, what);
  if (!v.ok()) return v.status();
  *out = *v;
  return Status::Ok();
}

Status ParseSizeOpt(const std::string& text, const char* what, uint64_t* out) {
  if (text.empty()) return Status::Ok();
  auto v = vnvram::ParseSize(text, what);
  if (!v.ok()) return v.status();
  *out = *v;
  return Status::Ok();
}

int Main(int argc, char** argv) {
  CLI::App app{"vnvram-journal: format, append, replay and trim a journal on a vnvram device"};
  app.require_subcommand(1);
  app.fallthrough();
  std::string platform, devid = "0", volume, timeout_ms = "10000", offset, length;
  std::string log_level = "warn";
  bool json = false;
  app.add_option("--platform", platform, "xen or sim:<dir>:<domid> (default $VNVRAM_PLATFORM)");
  app.add_option("--devid", devid, "device id (default 0)");
  app.add_option("--volume", volume, "open the volume with this UUID (all its paths)");
  app.add_option("--timeout-ms", timeout_ms, "handshake and request deadline (default 10000)");
  app.add_option("--offset", offset, "the journal's first byte in the region (default 0)");
  app.add_option("--length", length, "the journal's bytes (default: to the end of the region)");
  app.add_flag("--json", json, "print each summary as one JSON object");
  app.add_option("--log-level", log_level, "libvnvram's log on stderr (default warn)");

  std::string uuid;
  CLI::App* format = app.add_subcommand("format", "write an empty journal");
  format->add_option("--uuid", uuid, "the journal's UUID (default: random)");

  std::string count, size = "64", max_size, batch = "1";
  AppendOptions a;
  CLI::App* append = app.add_subcommand("append", "append and commit pattern records");
  append->add_option("--count", count, "records to append")->required();
  append->add_option("--size", size, "payload bytes (the minimum with --max-size; default 64)");
  append->add_option("--max-size", max_size, "payload sizes vary per record up to this");
  append->add_option("--batch", batch, "records per commit (default 1)");
  append->add_flag("--ack", a.ack, "print \"ack <seq>\" after each commit");
  append->add_flag("--auto-trim", a.auto_trim, "trim the older half when the log is full");
  append->add_flag("--verify", a.verify, "check the replayed records first");

  bool verify = false;
  std::string rsize, rmax_size;
  CLI::App* replay = app.add_subcommand("replay", "replay the committed records");
  replay->add_flag("--verify", verify, "check each payload against its pattern");
  replay->add_option("--size", rsize, "also check payload sizes (as append's --size)");
  replay->add_option("--max-size", rmax_size, "as append's --max-size");

  std::string trim_to;
  CLI::App* trim = app.add_subcommand("trim", "drop the records up to SEQ");
  trim->add_option("SEQ", trim_to, "last record to drop")->required();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }

  auto level = vnvram::log::ParseLevel(log_level);
  if (!level.ok()) return BadArgument(level.status());
  vnvram::log::Init("vnvram-journal", *level);
  vnvram::OpenOptions o;
  o.platform = platform;
  auto dev_id = vnvram::ParseDevId(devid, "--devid");
  if (!dev_id.ok()) return BadArgument(dev_id.status());
  o.devid = *dev_id;
  o.volume = volume;
  uint64_t t = 0;
  if (Status s = ParseOpt(timeout_ms, "--timeout-ms", 1, 3'600'000, &t); !s.ok()) {
    return BadArgument(s);
  }
  o.timeout = std::chrono::milliseconds(t);
  std::optional<uint64_t> want_offset, want_length;
  if (!offset.empty()) {
    uint64_t v = 0;
    if (Status s = ParseSizeOpt(offset, "--offset", &v); !s.ok()) return BadArgument(s);
    want_offset = v;
  }
  if (!length.empty()) {
    uint64_t v = 0;
    if (Status s = ParseSizeOpt(length, "--length", &v); !s.ok()) return BadArgument(s);
    want_length = v;
  }
  std::optional<SizeRange> range;
  uint64_t trim_seq = 0;
  if (append->parsed()) {
    if (Status s = ParseOpt(count, "--count", 0, UINT64_MAX, &a.count); !s.ok()) {
      return BadArgument(s);
    }
    uint64_t lo = 64, hi = 0;
    if (Status s = ParseOpt(size, "--size", 0, Journal::kMaxPayload, &lo); !s.ok()) {
      return BadArgument(s);
    }
    hi = lo;
    if (Status s = ParseOpt(max_size, "--max-size", lo, Journal::kMaxPayload, &hi); !s.ok()) {
      return BadArgument(s);
    }
    a.size = {static_cast<uint32_t>(lo), static_cast<uint32_t>(hi)};
    if (Status s = ParseOpt(batch, "--batch", 1, 65536, &a.batch); !s.ok()) return BadArgument(s);
    if (a.batch * a.size.max > kMaxBatchBytes) {
      return BadArgument(Status::InvalidArgument(
          "--batch " + std::to_string(a.batch) + " of --max-size " + std::to_string(a.size.max) +
          " is over " + std::to_string(kMaxBatchBytes) + " bytes"));
    }
  } else if (replay->parsed()) {
    if (!rsize.empty() || !rmax_size.empty()) {
      uint64_t lo = 64, hi = 0;
      if (Status s = ParseOpt(rsize, "--size", 0, Journal::kMaxPayload, &lo); !s.ok()) {
        return BadArgument(s);
      }
      hi = lo;
      if (Status s = ParseOpt(rmax_size, "--max-size", lo, Journal::kMaxPayload, &hi); !s.ok()) {
        return BadArgument(s);
      }
      range = SizeRange{static_cast<uint32_t>(lo), static_cast<uint32_t>(hi)};
    }
  } else if (trim->parsed()) {
    if (Status s = ParseOpt(trim_to, "SEQ", 0, UINT64_MAX, &trim_seq); !s.ok()) {
      return BadArgument(s);
    }
  }

  const Output out{json};
  const uint64_t t0 = NowUs();
  auto dev = Device::Open(o);
  if (!dev.ok()) return Fail("open device", dev.status());
  const uint64_t open_us = NowUs() - t0;
  Where w;
  w.offset = want_offset.value_or(0);
  if (w.offset > (*dev)->size()) {
    return BadArgument(Status::InvalidArgument("--offset " + std::to_string(w.offset) +
                                               " is beyond the region of " +
                                               std::to_string((*dev)->size()) + " bytes"));
  }
  w.length = want_length.value_or(((*dev)->size() - w.offset) & ~uint64_t{7});

  int rc = 0;
  if (format->parsed()) {
    rc = Format(**dev, w, uuid, out);
  } else if (append->parsed()) {
    rc = Append(**dev, w, a, open_us, out);
  } else if (replay->parsed()) {
    OpenAndReport(**dev, w, verify, range, open_us, out, &rc);
  } else {
    rc = Trim(**dev, w, trim_seq, out);
  }
  if (Status s = (*dev)->close(); !s.ok() && rc == 0) return Fail("close", s);
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return Main(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "vnvram-journal: fatal: %s\n", e.what());
  }
  return 1;
}
