// Journal: damage to a region is detected. Every single-bit flip of small
// journals, random multi-bit and burst damage of larger ones, torn and
// forged superblocks (bad magic, version, geometry, another region's
// size), forged records whose length points past the log, a batch torn
// across the end of the log and stale records of earlier lives. Open
// refuses a region with no valid superblock; otherwise replay stops at the
// damage, returns only records exactly as committed, and replay_stats()
// says where it stopped and whether committed records were lost there.
#define BOOST_TEST_MODULE journal_corruption
#include <boost/test/unit_test.hpp>
#include <cstring>
#include <functional>
#include <map>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "common/crc32c.h"
#include "common/endian.h"
#include "journal/journal.h"

namespace vnvram::journal {
namespace {

using Rec = std::pair<uint64_t, std::string>;  // (sequence, payload)
using Recs = std::vector<Rec>;
using Region = std::vector<std::byte>;

constexpr uint64_t kSlotSize = 2048;
constexpr uint64_t kSlotCovered = 92;  // fields and CRC; the rest of a slot is not read

const std::array<std::byte, 16> kUuid = {std::byte{0xA5}, std::byte{0x5A}};

std::vector<std::byte> Bytes(const std::string& s) {
  const auto* p = reinterpret_cast<const std::byte*>(s.data());
  return {p, p + s.size()};
}

PersistFn Nowhere() {
  return [](uint64_t, uint64_t) { return Status::Ok(); };
}

struct Replayed {
  Status status;
  Recs records;
  std::vector<uint64_t> offsets;  // each record's header, from the region's start
  ReplayStats stats;
  std::unique_ptr<Journal> journal;
};

// Opens `region` itself (Open writes a superblock slot into it).
Replayed OpenRegion(Region& region) {
  Replayed r;
  auto j = Journal::Open(region, Nowhere(), [&](const Record& rec) {
    r.records.emplace_back(
        rec.sequence,
        std::string(reinterpret_cast<const char*>(rec.payload.data()), rec.payload.size()));
    r.offsets.push_back(static_cast<uint64_t>(rec.payload.data() - region.data()) - kHeaderSize);
  });
  r.status = j.status();
  if (j.ok()) {
    r.journal = std::move(j).value();
    r.stats = r.journal->replay_stats();
  }
  return r;
}

Replayed OpenCopy(const Region& image) {
  Region copy = image;
  Replayed r = OpenRegion(copy);
  r.journal.reset();  // it points into the copy
  return r;
}

std::string Describe(const Recs& recs) {
  std::string s = "[";
  for (const auto& [seq, payload] : recs) {
    s.append(" ").append(std::to_string(seq)).append(":").append(std::to_string(payload.size()));
  }
  return s.append(" ]");
}

// Every record is one that was committed with that sequence, byte for
// byte, and the sequences are consecutive.
void CheckGenuine(const Replayed& r, const std::map<uint64_t, std::string>& history,
                  const std::string& context) {
  for (size_t i = 0; i < r.records.size(); ++i) {
    const auto& [seq, payload] = r.records[i];
    auto it = history.find(seq);
    BOOST_TEST_REQUIRE((it != history.end()),
                       context << ": sequence " << seq << " never committed");
    BOOST_TEST_REQUIRE((it->second == payload), context << ": record " << seq << " differs");
    if (i > 0) BOOST_TEST_REQUIRE(seq == r.records[i - 1].first + 1, context);
  }
}

// A superblock slot's fields, written by the test itself (the layout of
// docs/journal-format.md) so that forged slots carry a valid CRC.
struct Slot {
  std::array<char, 8> magic = {'V', 'N', 'V', 'J', 'R', 'N', 'L', '\0'};
  uint32_t version = 1;
  uint64_t region_size = 0, log_offset = 4096, log_size = 0, generation = 0, head = 0, head_seq = 1;
  uint32_t incarnation = 0;
};

Slot ReadSlot(const Region& r, int slot) {
  const std::byte* p = r.data() + slot * kSlotSize;
  Slot s;
  std::memcpy(s.magic.data(), p, 8);
  s.version = LoadLE<uint32_t>(p + 8);
  s.region_size = LoadLE<uint64_t>(p + 32);
  s.log_offset = LoadLE<uint64_t>(p + 40);
  s.log_size = LoadLE<uint64_t>(p + 48);
  s.generation = LoadLE<uint64_t>(p + 56);
  s.head = LoadLE<uint64_t>(p + 64);
  s.head_seq = LoadLE<uint64_t>(p + 72);
  s.incarnation = LoadLE<uint32_t>(p + 80);
  return s;
}

void WriteSlot(Region& r, int slot, const Slot& s) {
  std::byte* p = r.data() + slot * kSlotSize;
  std::memcpy(p, s.magic.data(), 8);
  StoreLE<uint32_t>(p + 8, s.version);
  StoreLE<uint64_t>(p + 32, s.region_size);
  StoreLE<uint64_t>(p + 40, s.log_offset);
  StoreLE<uint64_t>(p + 48, s.log_size);
  StoreLE<uint64_t>(p + 56, s.generation);
  StoreLE<uint64_t>(p + 64, s.head);
  StoreLE<uint64_t>(p + 72, s.head_seq);
  StoreLE<uint32_t>(p + 80, s.incarnation);
  StoreLE<uint32_t>(p + 88, Crc32c({p, 88}));
}

int NewestSlot(const Region& r) {
  return ReadSlot(r, 0).generation > ReadSlot(r, 1).generation ? 0 : 1;
}

// Writes a record header at region offset `at` over the payload bytes
// already there, with a valid CRC: forged, as only a writer that computes
// our checksums could make it.
void ForgeRecord(Region& r, uint64_t at, uint8_t type, uint8_t flags, uint32_t length,
                 uint32_t incarnation, uint64_t sequence, uint64_t covered) {
  std::byte* p = r.data() + at;
  std::memset(p, 0, kHeaderSize);
  StoreLE<uint32_t>(p, 0x4352524Au);
  p[4] = std::byte{type};
  p[5] = std::byte{flags};
  StoreLE<uint32_t>(p + 8, length);
  StoreLE<uint32_t>(p + 16, incarnation);
  StoreLE<uint64_t>(p + 24, sequence);
  const uint32_t payload_crc = Crc32c({p + kHeaderSize, covered});
  StoreLE<uint32_t>(p + 12, Crc32cExtend(payload_crc, {p, kHeaderSize}));
}

// A journal image and what it holds, in log order: its data records and
// pads (offsets from the region's start), which bytes each CRC covers, and
// whether it ends a commit.
struct Item {
  uint64_t at = 0, covered = 0;  // covered: header plus payload (a pad: its header)
  uint64_t sequence = 0;         // a pad: the sequence of the record after it
  bool commit = false;
};
struct Layout {
  Region image;
  std::map<uint64_t, std::string> history;  // every record ever committed
  Recs live;                                // what replay returns
  std::vector<Item> items;
};

void Describe(Layout& l) {
  Replayed r = OpenCopy(l.image);
  BOOST_TEST_REQUIRE(r.status.ok());
  l.live = r.records;
  l.items.clear();
  const uint64_t log_end = l.image.size();
  uint64_t prev_end = 0;
  for (size_t i = 0; i < r.records.size(); ++i) {
    const uint64_t at = r.offsets[i];
    if (i > 0 && at < prev_end && log_end - prev_end >= kHeaderSize) {
      l.items.push_back({prev_end, kHeaderSize, r.records[i].first, false});  // a pad
    }
    const uint64_t len = r.records[i].second.size();
    l.items.push_back({at, kHeaderSize + len, r.records[i].first,
                       (static_cast<uint8_t>(l.image[at + 5]) & 1) != 0});
    prev_end = at + ((kHeaderSize + len + 7) & ~uint64_t{7});
  }
}

// An 8 KiB journal (a 4 KiB log): batches of 1-3 records, a trim, records
// wrapping with a pad, an empty payload.
Layout SmallWrapped() {
  Layout l;
  l.image.assign(8192, std::byte{0});
  BOOST_TEST_REQUIRE(Journal::Format(l.image, Nowhere(), kUuid).ok());
  Replayed o = OpenRegion(l.image);
  BOOST_TEST_REQUIRE(o.status.ok());
  const std::vector<std::vector<size_t>> batches = {{100, 0, 250}, {500}, {300, 60}, {700, 900},
                                                    {800},         {200}, {30, 10}};
  int n = 0;
  for (size_t b = 0; b < batches.size(); ++b) {
    for (size_t size : batches[b]) {
      std::string p(size, static_cast<char>('a' + n % 26));
      for (size_t i = 0; i < size; i += 5) p[i] = static_cast<char>(n * 7 + i);
      const uint64_t seq = *o.journal->Append(Bytes(p), n++);
      l.history[seq] = p;
    }
    BOOST_TEST_REQUIRE(o.journal->Commit().ok());
    if (b == 2) BOOST_TEST_REQUIRE(o.journal->Trim(3).ok());
  }
  o.journal.reset();
  Describe(l);
  return l;
}

// An 8 KiB journal over several lives: the log wraps leaving a gap under
// a header; a batch torn by damage before a reopen leaves stale records
// of an earlier life (the next sequence, a commit flag) right after the
// new life's records.
Layout SmallStale() {
  Layout l;
  l.image.assign(8192, std::byte{0});
  BOOST_TEST_REQUIRE(Journal::Format(l.image, Nowhere(), kUuid).ok());
  int n = 0;
  auto append = [&](Replayed& o, size_t size) {
    std::string p(size, static_cast<char>('A' + n % 26));
    for (size_t i = 0; i < size; i += 3) p[i] = static_cast<char>(n * 13 + i);
    ++n;
    const uint64_t seq = *o.journal->Append(Bytes(p), n);
    return std::make_pair(seq, p);
  };
  {
    Replayed o = OpenRegion(l.image);
    for (size_t size : {400, 120}) l.history.insert(append(o, size));
    BOOST_TEST_REQUIRE(o.journal->Commit().ok());
    // Records of 440 and 160 bytes; fill to 32 bytes before the end.
    l.history.insert(append(o, 4096 - 32 - 600 - kHeaderSize));
    BOOST_TEST_REQUIRE(o.journal->Commit().ok());
    BOOST_TEST_REQUIRE(o.journal->Trim(2).ok());
    // Three records of 48 bytes at the log's start (the 32 bytes skipped).
    for (int i = 0; i < 3; ++i) append(o, 8);
    BOOST_TEST_REQUIRE(o.journal->Commit().ok());
  }
  l.image[kLogOffset + kHeaderSize] ^= std::byte{0x40};  // the first of them torn
  {
    Replayed o = OpenRegion(l.image);
    BOOST_TEST_REQUIRE(o.records.size() == 1u);
    for (int i = 0; i < 2; ++i) {  // over the first two; the stale third follows
      l.history.insert(append(o, 8));
      BOOST_TEST_REQUIRE(o.journal->Commit().ok());
    }
  }
  Replayed o = OpenRegion(l.image);  // one more life
  BOOST_TEST_REQUIRE(o.records.size() == 3u);
  // Right after them, the torn batch's third record: the next sequence,
  // a commit flag, an earlier life.
  const std::byte* stale = l.image.data() + kLogOffset + 96;
  BOOST_TEST_REQUIRE(LoadLE<uint32_t>(stale) == 0x4352524Au);
  BOOST_TEST_REQUIRE(LoadLE<uint64_t>(stale + 24) == o.records.back().first + 1);
  BOOST_TEST_REQUIRE(static_cast<int>(stale[5]) == 1);
  o.journal.reset();
  Describe(l);
  return l;
}

// Flips every bit of the region, one at a time: each flip is detected
// where it matters, and nothing else changes.
void FlipEveryBit(const Layout& l, const std::string& name) {
  const uint64_t newest = static_cast<uint64_t>(NewestSlot(l.image));
  uint64_t stopped = 0, lost = 0, fallbacks = 0;
  for (uint64_t byte = 0; byte < l.image.size(); ++byte) {
    // What covers this byte: a superblock slot's checked part, or a live
    // record's header or payload (item), or nothing replay reads.
    int slot = -1;
    if (byte < 2 * kSlotSize && byte % kSlotSize < kSlotCovered) {
      slot = static_cast<int>(byte / kSlotSize);
    }
    size_t item = l.items.size();
    for (size_t i = 0; i < l.items.size(); ++i) {
      if (byte >= l.items[i].at && byte < l.items[i].at + l.items[i].covered) item = i;
    }
    for (int bit = 0; bit < 8; ++bit) {
      Region copy = l.image;
      copy[byte] ^= std::byte(1u << bit);
      const std::string context =
          name + ": bit " + std::to_string(bit) + " of byte " + std::to_string(byte);
      Replayed r = OpenRegion(copy);
      BOOST_TEST_REQUIRE(r.status.ok(), context << ": " << r.status.ToString());
      CheckGenuine(r, l.history, context);
      if (slot >= 0) {
        BOOST_TEST_REQUIRE(r.stats.valid_slots == 1, context);
        if (static_cast<uint64_t>(slot) != newest) {
          BOOST_TEST_REQUIRE((r.records == l.live), context);
        } else {
          ++fallbacks;  // the older head: records trimmed since may come back
        }
        continue;
      }
      BOOST_TEST_REQUIRE(r.stats.valid_slots == 2, context);
      if (item == l.items.size()) {
        BOOST_TEST_REQUIRE((r.records == l.live), context << ": " << Describe(r.records));
        BOOST_TEST_REQUIRE(!r.stats.lost_commits(), context << ": " << r.stats.end_detail);
        continue;
      }
      // Replay stops at the damaged record (or pad): what came before its
      // batch comes back, and the loss is reported when at least two
      // commits follow.
      const uint64_t first_of_batch = [&] {
        uint64_t seq = l.items[item].sequence;
        for (size_t i = item; i-- > 0 && !l.items[i].commit;) seq = l.items[i].sequence;
        return seq;
      }();
      Recs expected;
      for (const Rec& rec : l.live) {
        if (rec.first < first_of_batch) expected.push_back(rec);
      }
      BOOST_TEST_REQUIRE((r.records == expected),
                         context << ": " << Describe(r.records) << " " << r.stats.end_detail);
      BOOST_TEST_REQUIRE(
          r.stats.end_offset % (l.image.size() - kLogOffset) == l.items[item].at - kLogOffset,
          context);
      // A flipped magic looks like the end of the log (nothing is scanned
      // for); anything else fails the record's CRC: damaged.
      const bool magic = byte < l.items[item].at + 4;
      BOOST_TEST_REQUIRE(
          (r.stats.end == (magic ? ReplayStats::End::kNoRecord : ReplayStats::End::kDamaged)),
          context << ": " << r.stats.end_detail);
      uint64_t commits_after = 0;
      for (size_t i = item + 1; i < l.items.size(); ++i) commits_after += l.items[i].commit;
      BOOST_TEST_REQUIRE(r.stats.lost_commits() == (!magic && commits_after >= 2),
                         context << ": " << r.stats.end_detail);
      ++stopped;
      lost += r.stats.lost_commits();
    }
  }
  BOOST_TEST_MESSAGE(name << ": " << 8 * l.image.size() << " flips, " << stopped
                          << " stopped replay (" << lost << " reported as lost commits), "
                          << fallbacks << " fell back to the older superblock");
  BOOST_TEST(stopped > 0u);
  BOOST_TEST(lost > 0u);
}

BOOST_AUTO_TEST_CASE(EverySingleBitFlipIsDetectedWhereItMatters) {
  const Layout wrapped = SmallWrapped();
  BOOST_TEST_REQUIRE(wrapped.live.size() == 9u);
  FlipEveryBit(wrapped, "wrapped");
  const Layout stale = SmallStale();
  BOOST_TEST_REQUIRE(stale.live.size() == 3u);
  FlipEveryBit(stale, "stale");
}

// Builds a journal on `size` bytes from a seeded workload of appends (up to
// `max_payload` bytes), commits, trims and reopens after a commit.
Layout Workload(size_t size, uint64_t seed, int steps, size_t max_payload) {
  Layout l;
  l.image.assign(size, std::byte{0});
  BOOST_TEST_REQUIRE(Journal::Format(l.image, Nowhere(), kUuid).ok());
  std::mt19937_64 rng(seed);
  Replayed o = OpenRegion(l.image);
  std::map<uint64_t, std::string> pending;
  for (int step = 0; step < steps; ++step) {
    const int op = static_cast<int>(rng() % 100);
    if (op < 60) {
      std::string p(rng() % (max_payload + 1), static_cast<char>(rng()));
      for (size_t i = 0; i < p.size(); i += 11) p[i] = static_cast<char>(rng());
      auto seq = o.journal->Append(Bytes(p), step);
      if (seq.ok()) {
        pending[*seq] = p;
      } else if (o.journal->committed_sequence() >= o.journal->head_sequence()) {
        BOOST_TEST_REQUIRE(
            o.journal->Trim((o.journal->head_sequence() + o.journal->committed_sequence()) / 2)
                .ok());
      }
    } else if (op < 85) {
      BOOST_TEST_REQUIRE(o.journal->Commit().ok());
      l.history.insert(pending.begin(), pending.end());
      pending.clear();
    } else if (op < 95) {
      if (o.journal->committed_sequence() >= o.journal->head_sequence()) {
        BOOST_TEST_REQUIRE(o.journal->Trim(o.journal->head_sequence()).ok());
      }
    } else if (pending.empty()) {
      o.journal.reset();
      o = OpenRegion(l.image);
    }
  }
  BOOST_TEST_REQUIRE(o.journal->Commit().ok());
  l.history.insert(pending.begin(), pending.end());
  o.journal.reset();
  Describe(l);
  return l;
}

// Random damage, many times over larger journals: k bit flips anywhere, in
// the log or in the superblocks, a burst of random bytes, a zeroed range. Whatever replay
// returns is genuine; with only the log damaged it is exactly what came
// before the first damaged record's batch, it is reported as lost commits
// exactly when its magic is intact and an intact run of records after it
// holds two commits, and the journal takes new records after it.
BOOST_AUTO_TEST_CASE(RandomMultiBitAndBurstDamageNeverYieldsACorruptRecord) {
  uint64_t refused = 0, exact = 0, lost = 0, trials = 0;
  for (uint64_t seed : {21u, 22u}) {
    const Layout l = Workload(256 << 10, seed, 3000, 3000);
    BOOST_TEST_REQUIRE(l.live.size() > 50u);
    std::mt19937_64 rng(seed * 7);
    for (int t = 0; t < 1500; ++t, ++trials) {
      Region copy = l.image;
      const int kind = static_cast<int>(rng() % 5);
      const uint64_t log = copy.size() - kLogOffset;
      if (kind == 0 || kind == 3 || kind == 4) {
        const int flips = 1 + static_cast<int>(rng() % 64);
        for (int f = 0; f < flips; ++f) {
          const uint64_t at = kind == 0   ? rng() % copy.size()
                              : kind == 3 ? kLogOffset + rng() % log
                                          : rng() % 2 * kSlotSize + rng() % kSlotCovered;
          copy[at] ^= std::byte(1u << (rng() % 8));
        }
      } else {
        const uint64_t len = 1 + rng() % (kind == 1 ? 512 : 4096);
        const uint64_t at = rng() % (copy.size() - len);
        for (uint64_t i = 0; i < len; ++i) {
          copy[at + i] = kind == 1 ? static_cast<std::byte>(rng()) : std::byte{0};
        }
      }
      bool slot_hit[2] = {false, false};
      for (int slot = 0; slot < 2; ++slot) {
        slot_hit[slot] = std::memcmp(copy.data() + slot * kSlotSize,
                                     l.image.data() + slot * kSlotSize, kSlotCovered) != 0;
      }
      // The first damaged item, and the most commits in a run of intact
      // items after it (a chain of this log that survived).
      size_t first = l.items.size();
      uint64_t run = 0, most = 0;
      for (size_t i = 0; i < l.items.size(); ++i) {
        const bool damaged = std::memcmp(copy.data() + l.items[i].at,
                                         l.image.data() + l.items[i].at, l.items[i].covered) != 0;
        if (damaged) {
          first = std::min(first, i);
          run = 0;
        } else if (first < l.items.size()) {
          run += l.items[i].commit;
          most = std::max(most, run);
        }
      }
      const std::string context = "seed " + std::to_string(seed) + " trial " + std::to_string(t) +
                                  " kind " + std::to_string(kind);
      Replayed r = OpenRegion(copy);
      if (!r.status.ok()) {
        BOOST_TEST_REQUIRE((r.status.code() == Code::kCorruption), context);
        BOOST_TEST_REQUIRE((slot_hit[0] && slot_hit[1]), context << ": " << r.status.ToString());
        ++refused;
        continue;
      }
      CheckGenuine(r, l.history, context);
      if (r.stats.lost_commits()) {
        BOOST_TEST_REQUIRE(r.records.size() < l.live.size(), context);
        ++lost;
      }
      if (!slot_hit[0] && !slot_hit[1]) {
        Recs expected;
        uint64_t batch_first = UINT64_MAX;
        if (first < l.items.size()) {
          batch_first = l.items[first].sequence;
          for (size_t i = first; i-- > 0 && !l.items[i].commit;) {
            batch_first = l.items[i].sequence;
          }
        }
        for (const Rec& rec : l.live) {
          if (rec.first < batch_first) expected.push_back(rec);
        }
        BOOST_TEST_REQUIRE((r.records == expected), context << ": " << Describe(r.records));
        ++exact;
        const bool magic =
            first < l.items.size() && std::memcmp(copy.data() + l.items[first].at,
                                                  l.image.data() + l.items[first].at, 4) != 0;
        BOOST_TEST_REQUIRE(r.stats.lost_commits() == (!magic && most >= 2),
                           context << ": " << r.stats.end_detail);
      }
      // The damaged journal takes new records after what it returned.
      Recs after = r.records;
      for (int i = 0; i < 2; ++i) {
        const std::string p(1 + rng() % 2000, static_cast<char>('0' + i));
        auto seq = r.journal->Append(Bytes(p), 0);
        if (!seq.ok()) break;
        after.emplace_back(*seq, p);
      }
      BOOST_TEST_REQUIRE(r.journal->Commit().ok());
      r.journal.reset();
      Replayed again = OpenRegion(copy);
      BOOST_TEST_REQUIRE(again.status.ok(), context);
      BOOST_TEST_REQUIRE((again.records == after), context << ": " << Describe(again.records));
      BOOST_TEST_REQUIRE(!again.stats.lost_commits(), context << ": " << again.stats.end_detail);
    }
  }
  BOOST_TEST_MESSAGE(trials << " damaged journals: " << refused << " refused (both slots hit), "
                            << exact << " replayed exactly up to the damage, " << lost
                            << " reported lost commits");
  BOOST_TEST((exact > 0 && lost > 0 && refused > 0));
}

// A superblock slot torn at every byte while the other is good: replay
// uses the old head or the new one, never anything else. Both torn: the
// region is refused.
BOOST_AUTO_TEST_CASE(ATornSuperblockSlotFallsBackAndTwoAreRefused) {
  Region pre(16384, std::byte{0});
  BOOST_TEST_REQUIRE(Journal::Format(pre, Nowhere(), kUuid).ok());
  Recs all;
  {
    Replayed o = OpenRegion(pre);
    for (int i = 0; i < 6; ++i) {
      const std::string p(50 * i, static_cast<char>('a' + i));
      all.emplace_back(*o.journal->Append(Bytes(p), 0), p);
      BOOST_TEST_REQUIRE(o.journal->Commit().ok());
    }
  }
  // `pre` as one more open left it, `post` the same after a trim: they
  // differ only in the slot the trim wrote.
  Region post = pre;
  {
    auto j = Journal::Open(post, Nowhere(), nullptr);
    BOOST_TEST_REQUIRE(j.ok());
    pre = post;
    BOOST_TEST_REQUIRE((*j)->Trim(3).ok());
  }
  const int slot = NewestSlot(post);
  const Recs trimmed(all.begin() + 3, all.end());
  for (uint64_t c = 0; c <= kSlotSize; ++c) {
    Region torn = pre;
    std::memcpy(torn.data() + slot * kSlotSize, post.data() + slot * kSlotSize, c);
    Replayed r = OpenRegion(torn);
    BOOST_TEST_REQUIRE(r.status.ok(), "cut " << c);
    BOOST_TEST_REQUIRE((r.records == (c >= kSlotCovered ? trimmed : all)),
                       "cut " << c << ": " << Describe(r.records));
  }
  Region both = post;
  both[0 * kSlotSize + 60] ^= std::byte{1};
  both[1 * kSlotSize + 70] ^= std::byte{1};
  Replayed r = OpenRegion(both);
  BOOST_TEST((r.status.code() == Code::kCorruption));
  BOOST_TEST(r.status.message().find("no valid superblock") != std::string::npos);
}

// Slots forged with valid CRCs: a wrong magic, version, log offset, or a
// generation in the wrong slot makes a slot invalid (the other is used);
// a geometry that cannot be this region's, or an impossible head, sequence,
// generation or incarnation refuses the region with the value named.
BOOST_AUTO_TEST_CASE(ForgedSuperblocksWithBadFieldsAreRefused) {
  Region image(16384, std::byte{0});
  BOOST_TEST_REQUIRE(Journal::Format(image, Nowhere(), kUuid).ok());
  Recs all;
  {
    Replayed o = OpenRegion(image);
    for (int i = 0; i < 4; ++i) {
      const std::string p(100, static_cast<char>('a' + i));
      all.emplace_back(*o.journal->Append(Bytes(p), 0), p);
    }
    BOOST_TEST_REQUIRE(o.journal->Commit().ok());
  }
  {
    Replayed o = OpenRegion(image);  // both slots now have the same head
    BOOST_TEST_REQUIRE((o.records == all));
  }
  const int newest = NewestSlot(image);
  const Slot good = ReadSlot(image, newest);
  auto with_newest = [&](const std::function<void(Slot&)>& edit) {
    Region r = image;
    Slot s = good;
    edit(s);
    WriteSlot(r, newest, s);
    return r;
  };
  // Invalid slots: the other one opens the journal.
  const std::vector<std::pair<std::string, std::function<void(Slot&)>>> invalid = {
      {"magic", [](Slot& s) { s.magic[0] = 'X'; }},
      {"version", [](Slot& s) { s.version = 2; }},
      {"log offset", [](Slot& s) { s.log_offset = 8192; }},
      {"generation parity", [](Slot& s) { s.generation += 1; }},
  };
  for (const auto& [name, edit] : invalid) {
    Region r = with_newest(edit);
    Replayed o = OpenRegion(r);
    BOOST_TEST_REQUIRE(o.status.ok(), name << ": " << o.status.ToString());
    BOOST_TEST((o.records == all), name);
    BOOST_TEST(o.stats.valid_slots == 1, name);
  }
  Region neither = with_newest([](Slot& s) { s.magic[1] = 'X'; });
  Slot other = ReadSlot(neither, 1 - newest);
  other.version = 7;
  WriteSlot(neither, 1 - newest, other);
  Replayed none = OpenRegion(neither);
  BOOST_TEST((none.status.code() == Code::kCorruption));
  BOOST_TEST(none.status.message().find("no valid superblock") != std::string::npos);
  // Refused, with the bad value in the message.
  const uint64_t big = (uint64_t{1} << 62) + 2;  // even: keeps the slot's parity
  const std::vector<std::tuple<std::string, std::function<void(Slot&)>, std::string>> refused = {
      {"region size", [](Slot& s) { s.region_size = 32768; }, "32768"},
      {"log size", [](Slot& s) { s.log_size = 4096; }, "4096"},
      {"unaligned head", [](Slot& s) { s.head += 4; }, "head 4"},
      {"head sequence 0", [](Slot& s) { s.head_seq = 0; }, "head sequence 0"},
      {"huge head", [&](Slot& s) { s.head = big; }, std::to_string(big)},
      {"huge generation", [&](Slot& s) { s.generation += big; },
       std::to_string(good.generation + big)},
      {"last incarnation", [](Slot& s) { s.incarnation = UINT32_MAX; }, "4294967295"},
  };
  for (const auto& [name, edit, value] : refused) {
    Region r = with_newest(edit);
    Replayed o = OpenRegion(r);
    BOOST_TEST((o.status.code() == Code::kCorruption), name);
    BOOST_TEST(o.status.message().find(value) != std::string::npos,
               name << ": " << o.status.message());
  }
  // One slot invalid: the newest may have been an open's, one incarnation
  // up, so one below the last cannot be raised either.
  Region one = with_newest([](Slot& s) { s.incarnation = UINT32_MAX - 1; });
  one[(1 - newest) * kSlotSize + 60] ^= std::byte{1};
  BOOST_TEST((OpenRegion(one).status.code() == Code::kCorruption));
}

// The superblock of another region size: the same bytes in a larger or a
// smaller span, or a size no format could have written.
BOOST_AUTO_TEST_CASE(AGeometryOfAnotherRegionSizeIsRefused) {
  Region image(16384, std::byte{0});
  BOOST_TEST_REQUIRE(Journal::Format(image, Nowhere(), kUuid).ok());
  Region larger(32768, std::byte{0});
  std::memcpy(larger.data(), image.data(), image.size());
  Replayed l = OpenRegion(larger);
  BOOST_TEST((l.status.code() == Code::kCorruption));
  BOOST_TEST(l.status.message().find("16384") != std::string::npos, l.status.message());
  BOOST_TEST(l.status.message().find("32768") != std::string::npos, l.status.message());
  Region smaller(image.begin(), image.begin() + 12288);
  BOOST_TEST((OpenRegion(smaller).status.code() == Code::kCorruption));
  Region tiny(4096, std::byte{0});
  BOOST_TEST((OpenRegion(tiny).status.code() == Code::kInvalidArgument));
  // 16388 bytes, described consistently: not a multiple of 8.
  Region odd(16388, std::byte{0});
  std::memcpy(odd.data(), image.data(), 4096);
  for (int slot = 0; slot < 2; ++slot) {
    Slot s = ReadSlot(odd, slot);
    s.region_size = 16388;
    s.log_size = 16388 - 4096;
    WriteSlot(odd, slot, s);
  }
  Replayed o = OpenRegion(odd);
  BOOST_TEST((o.status.code() == Code::kCorruption));
  BOOST_TEST(o.status.message().find("12292") != std::string::npos, o.status.message());
}

// Records forged with valid CRCs right after the committed ones: a length
// past the end of the log, a huge length, a pad that does not reach the
// end, an unknown type, a record reaching over the head. Replay stops
// there, says why, and returns the committed records.
BOOST_AUTO_TEST_CASE(ForgedRecordsWithLengthsPastTheLogStopReplay) {
  Region image(8192, std::byte{0});  // a 4 KiB log
  BOOST_TEST_REQUIRE(Journal::Format(image, Nowhere(), kUuid).ok());
  Recs all;
  uint32_t incarnation = 0;
  {
    Replayed o = OpenRegion(image);
    for (int i = 0; i < 3; ++i) {
      const std::string p(600, static_cast<char>('a' + i));
      all.emplace_back(*o.journal->Append(Bytes(p), 0), p);
    }
    BOOST_TEST_REQUIRE(o.journal->Commit().ok());
    incarnation = o.stats.incarnation;
  }
  const uint64_t tail = 3 * 640;  // three records of 640 bytes from the log's start
  const uint64_t room = 4096 - tail;
  struct Case {
    std::string name;
    uint8_t type;
    uint32_t length;
    uint64_t covered;
    std::string why;
  };
  const std::vector<Case> cases = {
      {"past the end", 1, static_cast<uint32_t>(room - kHeaderSize + 1), 0, "length"},
      {"huge", 1, UINT32_MAX, 0, "length"},
      {"short pad", 2, static_cast<uint32_t>(room - kHeaderSize - 8), 0, "length"},
      {"unknown type", 3, 16, 16, "type"},
  };
  for (const Case& c : cases) {
    Region r = image;
    ForgeRecord(r, kLogOffset + tail, c.type, 1, c.length, incarnation, 4, c.covered);
    Replayed o = OpenRegion(r);
    BOOST_TEST_REQUIRE(o.status.ok(), c.name);
    BOOST_TEST((o.records == all), c.name << ": " << Describe(o.records));
    BOOST_TEST((o.stats.end == ReplayStats::End::kDamaged), c.name);
    BOOST_TEST(o.stats.end_offset == tail, c.name);
    BOOST_TEST(o.stats.end_detail.find(c.why) != std::string::npos,
               c.name << ": " << o.stats.end_detail);
  }
  // The control: the same forgery with a length that fits is a record.
  Region fits = image;
  ForgeRecord(fits, kLogOffset + tail, 1, 1, 16, incarnation, 4, 16);
  BOOST_TEST(OpenRegion(fits).records.size() == 4u);
  // Over the head: trim two records (the head at 1280), wrap the log, then
  // forge a record at the tail that fits before the end of the log but
  // reaches over the head's record.
  Region wrapped = image;
  Recs live = {all.back()};
  {
    Replayed o = OpenRegion(wrapped);
    BOOST_TEST_REQUIRE(o.journal->Trim(2).ok());
    const std::string p(1000, 'w');  // at 1920, 2960, then a pad and 0
    for (int i = 0; i < 3; ++i) live.emplace_back(*o.journal->Append(Bytes(p), 0), p);
    BOOST_TEST_REQUIRE(o.journal->Commit().ok());
    incarnation = o.stats.incarnation;
    BOOST_TEST_REQUIRE((4096 - o.journal->free_bytes() + 1280) % 4096 == 1040u);
  }
  Region over = wrapped;  // 1040 + 344 > 1280
  ForgeRecord(over, kLogOffset + 1040, 1, 1, 300, incarnation, 7, 300);
  Replayed o = OpenRegion(over);
  BOOST_TEST_REQUIRE(o.status.ok());
  BOOST_TEST((o.records == live), Describe(o.records));
  BOOST_TEST(o.stats.end_detail.find("length") != std::string::npos, o.stats.end_detail);
  Region under = wrapped;  // 1040 + 48 <= 1280: the control
  ForgeRecord(under, kLogOffset + 1040, 1, 1, 8, incarnation, 7, 8);
  BOOST_TEST(OpenRegion(under).records.size() == live.size() + 1);
}

// A batch wraps: a record before the end of the log, a pad, a record at its
// start; Commit persists it as two ranges. Either range alone, or a
// damaged pad, and none of the batch comes back.
BOOST_AUTO_TEST_CASE(ABatchTornAcrossTheEndOfTheLogComesBackWholeOrNotAtAll) {
  Region live(8192, std::byte{0});
  Region durable = live;
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  PersistFn persist = [&](uint64_t off, uint64_t len) {
    ranges.emplace_back(off, len);
    std::memcpy(durable.data() + off, live.data() + off, len);
    return Status::Ok();
  };
  BOOST_TEST_REQUIRE(Journal::Format(live, persist, kUuid).ok());
  Recs before;
  auto j = std::move(Journal::Open(live, persist, nullptr)).value();
  for (int i = 0; i < 3; ++i) {
    const std::string p(1000, static_cast<char>('p' + i));
    before.emplace_back(*j->Append(Bytes(p), 0), p);
  }
  BOOST_TEST_REQUIRE(j->Commit().ok());  // 3 x 1040 bytes
  BOOST_TEST_REQUIRE(j->Trim(2).ok());
  before.erase(before.begin(), before.begin() + 2);
  const Region base = durable;
  Recs batch = before;
  for (size_t size : {500, 700}) {  // 540 fits before the end, 740 wraps after a pad
    const std::string p(size, 'b');
    batch.emplace_back(*j->Append(Bytes(p), 0), p);
  }
  ranges.clear();
  BOOST_TEST_REQUIRE(j->Commit().ok());
  BOOST_TEST_REQUIRE(ranges.size() == 2u);
  BOOST_TEST(ranges[0].first + ranges[0].second == 8192u);  // to the end of the log
  BOOST_TEST(ranges[1].first == kLogOffset);                // from its start
  for (int which = 0; which < 3; ++which) {
    Region image = base;
    for (int k = 0; k < 2; ++k) {
      if (which == 2 || which == k) {
        std::memcpy(image.data() + ranges[k].first, durable.data() + ranges[k].first,
                    ranges[k].second);
      }
    }
    Replayed r = OpenRegion(image);
    BOOST_TEST_REQUIRE(r.status.ok());
    BOOST_TEST((r.records == (which == 2 ? batch : before)),
               "ranges persisted: " << which << " " << Describe(r.records));
  }
  Region bad_pad = durable;
  bad_pad[kLogOffset + 3 * 1040 + 540 + 9] ^= std::byte{2};  // the pad's length
  Replayed r = OpenRegion(bad_pad);
  BOOST_TEST((r.records == before), Describe(r.records));
}

// Life after life, the last batch is torn at its first record and the next
// life writes fewer records of the same sizes over it: stale records with
// the next sequence and a commit flag always follow the new ones, and
// never come back.
BOOST_AUTO_TEST_CASE(StaleRecordsOfEarlierLivesNeverContinueTheLog) {
  Region image(16384, std::byte{0});
  BOOST_TEST_REQUIRE(Journal::Format(image, Nowhere(), kUuid).ok());
  std::mt19937_64 rng(31);
  Recs committed;
  for (int life = 0; life < 200; ++life) {
    Replayed o = OpenRegion(image);
    BOOST_TEST_REQUIRE(o.status.ok());
    BOOST_TEST_REQUIRE((o.records == committed), "life " << life << ": " << Describe(o.records));
    BOOST_TEST_REQUIRE(!o.stats.lost_commits(), o.stats.end_detail);
    if (o.journal->free_bytes() < 4096) {
      BOOST_TEST_REQUIRE(o.journal->Trim(o.journal->committed_sequence()).ok());
      committed.clear();
    }
    // Some records that stay, then a batch that gets torn.
    const std::string keep(rng() % 200, 'k');
    committed.emplace_back(*o.journal->Append(Bytes(keep), 0), keep);
    BOOST_TEST_REQUIRE(o.journal->Commit().ok());
    const size_t size = 8 * (rng() % 20);
    const uint64_t first = o.journal->next_sequence();
    for (int i = 0; i < 4; ++i)
      BOOST_TEST_REQUIRE(o.journal->Append(Bytes(std::string(size, 's')), 0).ok());
    BOOST_TEST_REQUIRE(o.journal->Commit().ok());
    o.journal.reset();
    // Tear the batch's first record (its payload's first byte, or its
    // header's timestamp when it has no payload).
    Replayed torn = OpenCopy(image);
    BOOST_TEST_REQUIRE(torn.records.back().first == first + 3);
    const uint64_t at = torn.offsets[torn.offsets.size() - 4];
    image[at + (size > 0 ? kHeaderSize : 32)] ^= std::byte{0x80};
    // The next life writes one or two records of the same size over them.
    Replayed next = OpenRegion(image);
    BOOST_TEST_REQUIRE((next.records == committed), "life " << life);
    const int n = 1 + static_cast<int>(rng() % 2);
    for (int i = 0; i < n; ++i) {
      const std::string p(size, static_cast<char>('0' + life % 10));
      committed.emplace_back(*next.journal->Append(Bytes(p), 0), p);
    }
    BOOST_TEST_REQUIRE(next.journal->Commit().ok());
  }
}

// A batch torn at its first record leaves the rest of it, a commit flag
// at the end, in the log; the next life writes records of the same sizes
// over the torn ones and trims them all: the head is now where the stale
// commit record sits, with the head's sequence. It is not replayed.
BOOST_AUTO_TEST_CASE(AStaleRecordAtTheHeadOfAnEmptyLogIsNotReplayed) {
  Region image(16384, std::byte{0});
  BOOST_TEST_REQUIRE(Journal::Format(image, Nowhere(), kUuid).ok());
  uint64_t first = 0;
  {
    Replayed o = OpenRegion(image);
    BOOST_TEST_REQUIRE(o.journal->Append(Bytes("kept"), 0).ok());
    BOOST_TEST_REQUIRE(o.journal->Commit().ok());
    first = o.journal->next_sequence();
    for (const char* p : {"torn", "next", "last"}) {
      BOOST_TEST_REQUIRE(o.journal->Append(Bytes(p), 0).ok());
    }
    BOOST_TEST_REQUIRE(o.journal->Commit().ok());
  }
  image[kLogOffset + 48 + kHeaderSize] ^= std::byte{1};  // "torn", after "kept" (48 bytes)
  {
    Replayed o = OpenRegion(image);
    BOOST_TEST_REQUIRE(o.records.size() == 1u);
    for (const char* p : {"TORN", "NEXT"}) {
      BOOST_TEST_REQUIRE(o.journal->Append(Bytes(p), 0).ok());
    }
    BOOST_TEST_REQUIRE(o.journal->Commit().ok());
    BOOST_TEST_REQUIRE(o.journal->Trim(first + 1).ok());  // all: the head is at "last"
    BOOST_TEST_REQUIRE(o.journal->head_sequence() == first + 2);
  }
  Replayed o = OpenRegion(image);
  BOOST_TEST(o.records.empty(), Describe(o.records));
  BOOST_TEST_REQUIRE(o.journal->Append(Bytes("new"), 0).ok());
  BOOST_TEST_REQUIRE(o.journal->Commit().ok());
  o.journal.reset();
  BOOST_TEST((OpenRegion(image).records == Recs{{first + 2, "new"}}));
}

// The newest superblock slot damaged after an open wrote it: the older
// slot opens the journal, the records of that open's life come back, and
// the new life's records are never followed by stale ones of that life.
BOOST_AUTO_TEST_CASE(ADamagedNewestSlotNeitherLosesNorResurrectsRecords) {
  Region image(16384, std::byte{0});
  BOOST_TEST_REQUIRE(Journal::Format(image, Nowhere(), kUuid).ok());
  Recs all;
  {
    Replayed o = OpenRegion(image);
    for (const char* s : {"AAAA", "BBBB", "CCCC"}) {
      all.emplace_back(*o.journal->Append(Bytes(s), 0), s);
      BOOST_TEST_REQUIRE(o.journal->Commit().ok());
    }
  }
  image[NewestSlot(image) * kSlotSize + 60] ^= std::byte{1};
  {
    Replayed o = OpenRegion(image);
    BOOST_TEST_REQUIRE(o.status.ok());
    BOOST_TEST((o.records == all), Describe(o.records));
    BOOST_TEST(o.stats.valid_slots == 1);
    all.emplace_back(*o.journal->Append(Bytes("XXXX"), 0), "XXXX");
    BOOST_TEST_REQUIRE(o.journal->Commit().ok());
  }
  Replayed o = OpenRegion(image);
  BOOST_TEST((o.records == all), Describe(o.records));
  BOOST_TEST(o.stats.valid_slots == 2);
}

// Format over a region that held another journal: none of its records can
// ever continue the new journal's log, even of the same sizes.
BOOST_AUTO_TEST_CASE(AReformattedRegionNeverReplaysThePreviousJournal) {
  Region image(16384, std::byte{0});
  BOOST_TEST_REQUIRE(Journal::Format(image, Nowhere(), kUuid).ok());
  for (int life = 0; life < 3; ++life) {
    Replayed o = OpenRegion(image);
    for (int i = 0; i < 5; ++i) {
      BOOST_TEST_REQUIRE(o.journal->Append(Bytes("old" + std::to_string(i)), 0).ok());
      BOOST_TEST_REQUIRE(o.journal->Commit().ok());
    }
  }
  BOOST_TEST_REQUIRE(Journal::Format(image, Nowhere(), kUuid).ok());
  Recs fresh;
  for (int life = 0; life < 3; ++life) {
    Replayed o = OpenRegion(image);
    BOOST_TEST_REQUIRE((o.records == fresh), "life " << life << ": " << Describe(o.records));
    const std::string p = "new" + std::to_string(life);
    fresh.emplace_back(*o.journal->Append(Bytes(p), 0), p);
    BOOST_TEST_REQUIRE(o.journal->Commit().ok());
  }
  BOOST_TEST((OpenRegion(image).records == fresh));
}

// Damage inside the committed log with two or more commits of this log
// after it is reported (lost commits, in the detail too); damage with one
// commit after it looks like a torn last commit and is not; once a new
// life wrote over it, the report is gone.
BOOST_AUTO_TEST_CASE(DamageInsideTheCommittedLogIsReportedATornLastCommitIsNot) {
  Region image(16384, std::byte{0});
  BOOST_TEST_REQUIRE(Journal::Format(image, Nowhere(), kUuid).ok());
  Recs all;
  std::vector<uint64_t> at;  // each batch's first record, from the region's start
  {
    Replayed o = OpenRegion(image);
    for (int b = 0; b < 6; ++b) {
      at.push_back(kLogOffset + o.journal->log_size() - o.journal->free_bytes());
      for (int i = 0; i < 2; ++i) {
        const std::string p(100 + b, static_cast<char>('a' + b));
        all.emplace_back(*o.journal->Append(Bytes(p), 0), p);
      }
      BOOST_TEST_REQUIRE(o.journal->Commit().ok());
    }
  }
  {
    Replayed clean = OpenCopy(image);
    BOOST_TEST((clean.records == all));
    BOOST_TEST((clean.stats.end == ReplayStats::End::kNoRecord));
    BOOST_TEST(clean.stats.commits_beyond == 0u);
  }
  for (int b = 1; b < 6; ++b) {
    for (int rec = 0; rec < 2; ++rec) {
      Region r = image;
      const uint64_t second = at[b] + ((kHeaderSize + 100 + b + 7) & ~uint64_t{7});
      r[(rec == 0 ? at[b] : second) + kHeaderSize + 5] ^= std::byte{0x20};
      Replayed o = OpenRegion(r);
      BOOST_TEST_REQUIRE(o.status.ok());
      const std::string context = "batch " + std::to_string(b) + " record " + std::to_string(rec);
      BOOST_TEST((o.records == Recs(all.begin(), all.begin() + 2 * b)), context);
      BOOST_TEST((o.stats.end == ReplayStats::End::kDamaged), context);
      // The damaged batch's own commit (when intact), and the later ones.
      const uint64_t beyond = (rec == 0 ? 1 : 0) + (5 - b);
      BOOST_TEST(o.stats.commits_beyond == beyond, context << ": " << o.stats.end_detail);
      BOOST_TEST(o.stats.lost_commits() == (beyond >= 2), context);
      BOOST_TEST((o.stats.end_detail.find("lost") != std::string::npos) == (beyond >= 2));
      if (b == 1 && rec == 0) {
        const std::string p = "after";
        Recs after(all.begin(), all.begin() + 2);
        after.emplace_back(*o.journal->Append(Bytes(p), 0), p);
        BOOST_TEST_REQUIRE(o.journal->Commit().ok());
        o.journal.reset();
        Replayed again = OpenRegion(r);
        BOOST_TEST((again.records == after));
        BOOST_TEST(!again.stats.lost_commits(), again.stats.end_detail);
      }
    }
  }
  // Stores kept, one uncommitted record: dropped, and counted.
  {
    Region r = image;
    Replayed o = OpenRegion(r);
    BOOST_TEST_REQUIRE(o.journal->Append(Bytes("pending"), 0).ok());
    o.journal.reset();
    Replayed again = OpenRegion(r);
    BOOST_TEST((again.records == all));
    BOOST_TEST(again.stats.uncommitted == 1u);
  }
}

}  // namespace
}  // namespace vnvram::journal
