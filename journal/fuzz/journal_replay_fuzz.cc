// libFuzzer entry point for Journal::Open (replay) over arbitrary region
// contents. Input: bytes 0-1 little-endian select the region size (8192 +
// 8 * (value % 1024)), byte 2 seeds the operations run afterwards, then
// 128 bytes laid over superblock slot 0, 128 over slot 1 (the rest of each
// slot zero) and the log from its start; shorter inputs are zero-padded.
// Checks, with its own decoding of docs/journal-format.md: Open either
// refuses with kCorruption and replays nothing, or returns consecutive
// records from the head whose headers and CRCs are right, disjoint, inside
// the log; every persist is inside the region; then appends, commits and
// trims behave, and reopening the memory and the persisted image returns
// exactly the records committed and not trimmed. Any violation aborts.
// Built with -fsanitize=fuzzer when VNVRAM_FUZZ=ON; otherwise
// backend/fuzz/fuzz_replay_test.cc replays the seed corpus through it.
// Single-threaded.
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "common/crc32c.h"
#include "common/endian.h"
#include "journal/journal.h"

namespace {

using vnvram::Code;
using vnvram::Crc32c;
using vnvram::Crc32cExtend;
using vnvram::LoadLE;
using vnvram::Status;
using vnvram::StoreLE;
using vnvram::journal::Journal;
using vnvram::journal::kHeaderSize;
using vnvram::journal::kLogOffset;
using vnvram::journal::Record;

constexpr size_t kPrefix = 3;       // size selector and operations seed
constexpr size_t kSlotBytes = 128;  // of each superblock slot, from the input
constexpr uint64_t kSlotSize = 2048;
constexpr uint32_t kRecordMagic = 0x4352524Au;

[[noreturn]] void Violation(const char* what) {
  std::fprintf(stderr, "journal_replay_fuzz: invariant violated: %s\n", what);
  std::abort();
}

void Check(bool cond, const char* what) {
  if (!cond) Violation(what);
}

uint64_t RecordSize(uint64_t payload) {
  return (kHeaderSize + payload + 7) & ~uint64_t{7};
}

// The record CRC as docs/journal-format.md defines it: the payload's CRC
// extended with the header whose CRC field is zero.
bool CrcRight(const std::byte* header, uint64_t payload_length) {
  std::array<std::byte, kHeaderSize> h;
  std::memcpy(h.data(), header, kHeaderSize);
  StoreLE<uint32_t>(h.data() + 12, 0);
  const uint32_t crc = Crc32cExtend(Crc32c({header + kHeaderSize, payload_length}), h);
  return crc == LoadLE<uint32_t>(header + 12);
}

// A region, the image of it that persists made durable, and a check that
// every persist stays inside it.
struct Device {
  explicit Device(std::vector<std::byte> image) : live(image), durable(std::move(image)) {}
  vnvram::journal::PersistFn Persist() {
    return [this](uint64_t off, uint64_t len) {
      Check(off <= live.size() && len <= live.size() - off, "persist outside the region");
      std::memcpy(durable.data() + off, live.data() + off, len);
      return Status::Ok();
    };
  }
  std::vector<std::byte> live, durable;
};

struct Rec {
  uint64_t sequence;
  std::vector<std::byte> payload;
  bool operator==(const Rec& o) const { return sequence == o.sequence && payload == o.payload; }
};

// Opens `region` and checks what replay returned against the format.
std::vector<Rec> OpenAndCheck(std::vector<std::byte>& region, Device* device,
                              std::unique_ptr<Journal>* out) {
  std::vector<Rec> recs;
  std::vector<std::pair<uint64_t, uint64_t>> spans;  // [header, end) of each record
  auto persist =
      device ? device->Persist() : vnvram::journal::PersistFn([&](uint64_t off, uint64_t len) {
        Check(off <= region.size() && len <= region.size() - off, "persist outside the region");
        return Status::Ok();
      });
  auto j = Journal::Open(region, persist, [&](const Record& r) {
    const std::byte* header = r.payload.data() - kHeaderSize;
    Check(header >= region.data() + kLogOffset, "record before the log");
    const uint64_t at = static_cast<uint64_t>(header - region.data());
    Check(r.payload.size() <= region.size() - at - kHeaderSize, "record past the region");
    Check(LoadLE<uint32_t>(header) == kRecordMagic, "record without magic");
    Check(static_cast<uint8_t>(header[4]) == 1, "a returned record is not data");
    Check(LoadLE<uint32_t>(header + 8) == r.payload.size(), "payload length differs");
    Check(LoadLE<uint64_t>(header + 24) == r.sequence, "sequence differs from the header's");
    Check(LoadLE<uint64_t>(header + 32) == r.timestamp_ns, "timestamp differs");
    Check(CrcRight(header, r.payload.size()), "record CRC wrong");
    if (!recs.empty()) Check(r.sequence == recs.back().sequence + 1, "sequences not consecutive");
    recs.push_back({r.sequence, {r.payload.begin(), r.payload.end()}});
    spans.emplace_back(at, at + RecordSize(r.payload.size()));
  });
  if (!j.ok()) {
    Check(j.status().code() == Code::kCorruption, "Open failed other than kCorruption");
    Check(recs.empty(), "records replayed by a failed Open");
    return recs;
  }
  Journal& journal = **j;
  const auto& stats = journal.replay_stats();
  Check(journal.log_size() == region.size() - kLogOffset, "log size");
  Check(stats.records == recs.size(), "stats count other records");
  Check(stats.valid_slots == 1 || stats.valid_slots == 2, "valid slots");
  Check(!stats.end_detail.empty(), "no end detail");
  if (!recs.empty()) {
    Check(recs.front().sequence == journal.head_sequence(), "first record is not the head");
    Check(LoadLE<uint32_t>(region.data() + spans.back().first + 16) < stats.incarnation,
          "a record of the new incarnation");
    Check((static_cast<uint8_t>(region[spans.back().first + 5]) & 1) != 0,
          "the last record is not a commit");
  }
  Check(journal.committed_sequence() + 1 == journal.head_sequence() + recs.size(),
        "committed sequence");
  Check(journal.next_sequence() == journal.committed_sequence() + 1, "next sequence");
  uint64_t used = 0;
  std::sort(spans.begin(), spans.end());
  for (size_t i = 0; i < spans.size(); ++i) {
    Check(spans[i].second <= region.size(), "record past the log");
    if (i > 0) Check(spans[i - 1].second <= spans[i].first, "records overlap");
    used += spans[i].second - spans[i].first;
  }
  Check(used <= journal.log_size() - journal.free_bytes(), "free bytes count live records");
  if (out) *out = std::move(j).value();
  return recs;
}

// A forged record of the incarnation the journal now writes with can
// follow its new records (only a writer that computes the CRCs makes one;
// docs/journal-format.md, "Damage and what Open reports").
bool HasRecordOfIncarnation(const std::vector<std::byte>& region, uint32_t incarnation) {
  for (uint64_t at = kLogOffset; at + kHeaderSize <= region.size(); at += 8) {
    const std::byte* p = region.data() + at;
    if (LoadLE<uint32_t>(p) != kRecordMagic || LoadLE<uint32_t>(p + 16) != incarnation) continue;
    const uint64_t length = static_cast<uint8_t>(p[4]) == 2 ? 0 : LoadLE<uint32_t>(p + 8);
    if (length <= region.size() - at - kHeaderSize && CrcRight(p, length)) return true;
  }
  return false;
}

void Expect(const std::vector<Rec>& got, const std::vector<Rec>& model, bool forged,
            const char* what) {
  if (got == model) return;
  Check(forged && got.size() > model.size() && std::equal(model.begin(), model.end(), got.begin()),
        what);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::array<uint8_t, kPrefix> prefix{};
  std::memcpy(prefix.data(), data, std::min(size, kPrefix));
  const size_t region_size = 8192 + 8 * (static_cast<size_t>(prefix[0] | prefix[1] << 8) % 1024);
  std::vector<std::byte> region(region_size, std::byte{0});
  size_t pos = std::min(size, kPrefix);
  auto lay = [&](uint64_t at, size_t n) {
    const size_t k = std::min(n, size - pos);
    std::memcpy(region.data() + at, data + pos, k);
    pos += k;
  };
  lay(0, kSlotBytes);
  lay(kSlotSize, kSlotBytes);
  lay(kLogOffset, region_size - kLogOffset);

  Device d(region);
  std::unique_ptr<Journal> j;
  std::vector<Rec> model = OpenAndCheck(d.live, &d, &j);
  if (!j) return 0;
  const uint32_t incarnation = j->replay_stats().incarnation;
  const bool forged = HasRecordOfIncarnation(region, incarnation);
  {  // Open again: the same records (its slot write made both slots valid).
    std::vector<std::byte> copy = d.live;
    std::unique_ptr<Journal> again;
    Expect(OpenAndCheck(copy, nullptr, &again), model, forged, "a second open differs");
    Check(again->replay_stats().valid_slots == 2, "open left an invalid slot");
  }

  // Appends, commits and trims, seeded by byte 2.
  uint64_t rng = 0x9E3779B97F4A7C15ull ^ prefix[2];
  auto next = [&] {
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return rng * 0x2545F4914F6CDD1Dull;
  };
  std::vector<Rec> pending;
  for (int op = 0; op < 12; ++op) {
    const uint64_t pick = next() % 10;
    if (pick < 5) {
      const uint64_t n = next() % 6 == 0 ? j->log_size() + next() % 64 : next() % 1500;
      std::vector<std::byte> payload(n, std::byte(0x40 + op));
      auto seq = j->Append(payload, op);
      if (seq.ok()) {
        const uint64_t expected = !pending.empty() ? pending.back().sequence + 1
                                  : !model.empty() ? model.back().sequence + 1
                                                   : j->head_sequence();
        Check(*seq == expected && *seq == j->next_sequence() - 1, "append sequence");
        pending.push_back({*seq, std::move(payload)});
      } else {
        const Code c = seq.status().code();
        Check(c == Code::kResourceExhausted ||
                  (c == Code::kInvalidArgument && n > j->log_size() - kHeaderSize),
              "append failed unexpectedly");
      }
    } else if (pick < 8) {
      Check(j->Commit().ok(), "commit failed");
      model.insert(model.end(), pending.begin(), pending.end());
      pending.clear();
      Check(j->committed_sequence() + 1 == j->next_sequence(), "commit left records pending");
    } else {
      const uint64_t committed = j->committed_sequence();
      const uint64_t head = j->head_sequence();
      if (next() % 4 == 0) {
        Check(j->Trim(committed + 1 + next() % 3).code() == Code::kOutOfRange,
              "trim past the committed records");
      } else if (committed >= head) {
        const uint64_t to = head + next() % (committed - head + 1);
        Check(j->Trim(to).ok(), "trim failed");
        Check(j->head_sequence() == to + 1, "trim moved the head elsewhere");
        model.erase(model.begin(), model.begin() + static_cast<ptrdiff_t>(to + 1 - head));
      }
    }
  }
  Check(j->Commit().ok(), "final commit failed");
  model.insert(model.end(), pending.begin(), pending.end());
  j.reset();

  // The memory (a process restart) and the persisted image (a power cut).
  std::vector<std::byte> memory = d.live;
  Expect(OpenAndCheck(memory, nullptr, nullptr), model, forged, "reopened memory differs");
  std::vector<std::byte> image = d.durable;
  Expect(OpenAndCheck(image, nullptr, nullptr), model, forged, "reopened image differs");

  // Formatted again, the region is an empty journal.
  std::array<std::byte, 16> uuid{};
  Check(Journal::Format(d.live, d.Persist(), uuid).ok(), "format failed");
  Check(OpenAndCheck(d.live, nullptr, nullptr).empty(), "a formatted region has records");
  return 0;
}
