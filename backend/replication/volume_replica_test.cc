// VolumeReplica's rules without sockets: replica apply order, replays,
// gaps, fencing by epoch, resync chunks, vouching and votes, standalone
// persists, promotion, the state file across a "restart".
#define BOOST_TEST_MODULE replication_volume_replica_test
#include "backend/replication/volume_replica.h"

#include <boost/test/unit_test.hpp>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <thread>

#include "backend/replication/volume_state_file.h"
#include "common/testing/temp_dir.h"

namespace vnvram::replication {
namespace {

using vnvram::testing::TempDir;

VolumeEntry Entry(std::vector<std::string> replicas) {
  VolumeEntry e;
  e.uuid = *ParseUuid("6a0c2f6e-1d2b-4c3d-9e8f-0123456789ab");
  e.name = "vol";
  e.size = 64 * 1024;
  e.replicas = std::move(replicas);
  return e;
}

std::shared_ptr<VolumeReplica> Make(const std::string& dir, std::vector<std::string> replicas,
                                    std::string self = "b") {
  ReplicationSettings s;
  s.resync_chunk = 4096;
  s.max_data = 4096;
  auto r = std::make_shared<VolumeReplica>(Entry(std::move(replicas)), std::move(self), s, dir,
                                           SystemClock::Instance(), [] {});
  BOOST_REQUIRE(r->Load().ok());
  return r;
}

Replicate Rep(uint64_t epoch, uint64_t seq, uint64_t off, uint8_t fill, bool ack = true) {
  Replicate m;
  m.volume = Entry({}).uuid;
  m.epoch = epoch;
  m.sequence = seq;
  m.offset = off;
  m.ack_requested = ack;
  m.data.assign(16, std::byte{fill});
  return m;
}

std::byte ByteAt(VolumeReplica& r, uint64_t off) {
  Inspect q{Entry({}).uuid, off, 1};
  return r.Inspect(q).data.at(0);
}

// A fresh replica of epoch 1 (content based on epoch 1 at sequence 0).
void JoinEpoch(VolumeReplica& r, uint64_t epoch, uint64_t seq = 0) {
  ResyncChunk c;
  c.volume = Entry({}).uuid;
  c.epoch = epoch;
  c.chunk_size = 4096;
  c.chunk_index = 0;
  c.as_of_sequence = seq;
  c.first = true;
  c.data.assign(4096, std::byte{0});
  (void)r.OnResyncChunk(c);
  auto a = r.OnResyncDone(ResyncDone{c.volume, epoch, seq, 1});
  BOOST_REQUIRE(a.reply && std::holds_alternative<Ack>(*a.reply));
}

BOOST_AUTO_TEST_CASE(AppliesInOrderAndAcksCumulatively) {
  TempDir d;
  auto r = Make(d.path, {"a", "b", "c"});
  JoinEpoch(*r, 1);
  auto a1 = r->OnReplicate(Rep(1, 1, 0, 0x11, false));
  BOOST_TEST(!a1.reply.has_value());
  auto a2 = r->OnReplicate(Rep(1, 2, 100, 0x22));
  BOOST_REQUIRE(a2.reply && std::holds_alternative<Ack>(*a2.reply));
  BOOST_TEST(std::get<Ack>(*a2.reply).acked_sequence == 2u);
  BOOST_TEST(static_cast<int>(ByteAt(*r, 0)) == 0x11);
  BOOST_TEST(static_cast<int>(ByteAt(*r, 100)) == 0x22);
  BOOST_TEST(r->View().content_seq == 2u);
}

BOOST_AUTO_TEST_CASE(ReplayIsNotAppliedTwice) {
  TempDir d;
  auto r = Make(d.path, {"a", "b"});
  JoinEpoch(*r, 1);
  (void)r->OnReplicate(Rep(1, 1, 0, 0x11));
  (void)r->OnReplicate(Rep(1, 2, 0, 0x22));
  auto replay = r->OnReplicate(Rep(1, 1, 0, 0x11));
  BOOST_TEST(static_cast<int>(ByteAt(*r, 0)) == 0x22);
  BOOST_REQUIRE(replay.reply && std::holds_alternative<Ack>(*replay.reply));
  BOOST_TEST(std::get<Ack>(*replay.reply).acked_sequence == 2u);
}

BOOST_AUTO_TEST_CASE(GapIsReportedOnceAndNothingApplied) {
  TempDir d;
  auto r = Make(d.path, {"a", "b"});
  JoinEpoch(*r, 1);
  auto g = r->OnReplicate(Rep(1, 3, 0, 0x33));
  BOOST_REQUIRE(g.reply && std::holds_alternative<Gap>(*g.reply));
  BOOST_TEST(std::get<Gap>(*g.reply).expected_sequence == 1u);
  BOOST_TEST(std::get<Gap>(*g.reply).received_sequence == 3u);
  BOOST_TEST(static_cast<int>(ByteAt(*r, 0)) == 0);
  auto again = r->OnReplicate(Rep(1, 4, 0, 0x44));
  BOOST_TEST(!again.reply.has_value());  // no GAP storm
}

BOOST_AUTO_TEST_CASE(ContentOfAnotherEpochNeedsAResync) {
  TempDir d;
  auto r = Make(d.path, {"a", "b"});
  JoinEpoch(*r, 1);
  auto g = r->OnReplicate(Rep(2, 1, 0, 0x11));
  BOOST_REQUIRE(g.reply && std::holds_alternative<Gap>(*g.reply));
  BOOST_TEST(std::get<Gap>(*g.reply).expected_sequence == 0u);
  BOOST_TEST(r->View().promise == 2u);  // the newer epoch is promised anyway
}

BOOST_AUTO_TEST_CASE(StaleEpochIsFenced) {
  TempDir d;
  auto r = Make(d.path, {"a", "b", "c"});
  JoinEpoch(*r, 3);
  auto a = r->OnReplicate(Rep(2, 1, 0, 0x11));
  BOOST_REQUIRE(a.reply && std::holds_alternative<Ack>(*a.reply));
  BOOST_TEST(static_cast<int>(std::get<Ack>(*a.reply).status) ==
             static_cast<int>(wire::AckStatus::kStaleEpoch));
  BOOST_TEST(std::get<Ack>(*a.reply).epoch == 3u);
  BOOST_TEST(static_cast<int>(ByteAt(*r, 0)) == 0);
  ResyncChunk c;
  c.volume = Entry({}).uuid;
  c.epoch = 2;
  c.chunk_size = 4096;
  c.data.assign(4096, std::byte{0x77});
  auto ca = r->OnResyncChunk(c);
  BOOST_REQUIRE(ca.reply && std::holds_alternative<Ack>(*ca.reply));
  BOOST_TEST(static_cast<int>(ByteAt(*r, 0)) == 0);
}

BOOST_AUTO_TEST_CASE(OutOfRangeIsRefused) {
  TempDir d;
  auto r = Make(d.path, {"a", "b"});
  JoinEpoch(*r, 1);
  auto a = r->OnReplicate(Rep(1, 1, 64 * 1024 - 8, 0x11));
  BOOST_REQUIRE(a.reply && std::holds_alternative<Ack>(*a.reply));
  BOOST_TEST(static_cast<int>(std::get<Ack>(*a.reply).status) ==
             static_cast<int>(wire::AckStatus::kOutOfRange));
}

BOOST_AUTO_TEST_CASE(ResyncConvergesWhileWritesGoOn) {
  TempDir d;
  auto r = Make(d.path, {"a", "b"});
  ResyncChunk c;
  c.volume = Entry({}).uuid;
  c.epoch = 1;
  c.chunk_size = 4096;
  c.chunk_index = 1;
  c.as_of_sequence = 5;
  c.first = true;
  c.data.assign(4096, std::byte{0x55});
  (void)r->OnResyncChunk(c);
  BOOST_TEST(r->View().syncing_epoch == 1u);
  BOOST_TEST(!r->View().vouch);
  // A later write to the same chunk lands on top of it.
  (void)r->OnReplicate(Rep(1, 6, 4096, 0x66, true));
  BOOST_TEST(static_cast<int>(ByteAt(*r, 4096)) == 0x66);
  BOOST_TEST(static_cast<int>(ByteAt(*r, 4096 + 100)) == 0x55);
  auto done = r->OnResyncDone(ResyncDone{c.volume, 1, 6, 1});
  BOOST_REQUIRE(done.reply && std::holds_alternative<Ack>(*done.reply));
  BOOST_TEST(std::get<Ack>(*done.reply).acked_sequence == 6u);
  BOOST_TEST(r->View().vouch);
  BOOST_TEST(r->View().content_seq == 6u);
  auto next = r->OnReplicate(Rep(1, 7, 0, 0x77));
  BOOST_REQUIRE(next.reply && std::holds_alternative<Ack>(*next.reply));
  BOOST_TEST(std::get<Ack>(*next.reply).acked_sequence == 7u);
}

// The first chunk of a resync run unless `first` is false.
ResyncChunk Chunk(uint64_t epoch, uint32_t index, uint64_t as_of, uint8_t fill, bool first = true) {
  ResyncChunk c;
  c.first = first;
  c.volume = Entry({}).uuid;
  c.epoch = epoch;
  c.chunk_size = 4096;
  c.chunk_index = index;
  c.as_of_sequence = as_of;
  c.data.assign(4096, std::byte{fill});
  return c;
}

// Replays (a frame of the current epoch delivered again, later than frames
// that followed it on the stream) must not roll bytes back: mid-resync the
// copy vouches for everything at RESYNC_DONE, so an older REPLICATE applied
// after a newer one would be vouched for as the newer content.
BOOST_AUTO_TEST_CASE(ReplayedReplicateMidResyncDoesNotUndoALaterWrite) {
  TempDir d;
  auto r = Make(d.path, {"a", "b"});
  (void)r->OnResyncChunk(Chunk(1, 0, 5, 0x55));
  (void)r->OnReplicate(Rep(1, 6, 0, 0x66));
  (void)r->OnReplicate(Rep(1, 7, 0, 0x77));
  auto replay = r->OnReplicate(Rep(1, 6, 0, 0x66));
  BOOST_TEST(!replay.reply.has_value());
  BOOST_TEST(static_cast<int>(ByteAt(*r, 0)) == 0x77);
  auto done = r->OnResyncDone(ResyncDone{Entry({}).uuid, 1, 7, 1});
  BOOST_REQUIRE(done.reply && std::holds_alternative<Ack>(*done.reply));
  BOOST_TEST(std::get<Ack>(*done.reply).acked_sequence == 7u);
  BOOST_TEST(r->View().vouch);
  BOOST_TEST(static_cast<int>(ByteAt(*r, 0)) == 0x77);
}

BOOST_AUTO_TEST_CASE(ReplayedResyncChunkMidResyncDoesNotUndoALaterWrite) {
  TempDir d;
  auto r = Make(d.path, {"a", "b"});
  (void)r->OnResyncChunk(Chunk(1, 0, 5, 0x55));
  (void)r->OnReplicate(Rep(1, 6, 0, 0x66));
  // The same chunk again (as of sequence 5, before the write of 6).
  auto replay = r->OnResyncChunk(Chunk(1, 0, 5, 0x55));
  BOOST_TEST(!replay.reply.has_value());
  BOOST_TEST(static_cast<int>(ByteAt(*r, 0)) == 0x66);
  BOOST_TEST(static_cast<int>(ByteAt(*r, 100)) == 0x55);
  // A chunk read later (as of 6) is not a replay: it lands.
  (void)r->OnResyncChunk(Chunk(1, 1, 6, 0x56, /*first=*/false));
  BOOST_TEST(static_cast<int>(ByteAt(*r, 4096)) == 0x56);
  // A stale RESYNC_DONE (of sequence 5, before what was applied) does not
  // end the resync at a position the copy is already past.
  auto stale_done = r->OnResyncDone(ResyncDone{Entry({}).uuid, 1, 5, 1});
  BOOST_TEST(!stale_done.reply.has_value());
  BOOST_TEST(r->View().syncing_epoch == 1u);
  BOOST_TEST(!r->View().vouch);
  auto done = r->OnResyncDone(ResyncDone{Entry({}).uuid, 1, 6, 2});
  BOOST_REQUIRE(done.reply && std::holds_alternative<Ack>(*done.reply));
  BOOST_TEST(std::get<Ack>(*done.reply).acked_sequence == 6u);
  BOOST_TEST(static_cast<int>(ByteAt(*r, 0)) == 0x66);
  BOOST_TEST(static_cast<int>(ByteAt(*r, 100)) == 0x55);
}

BOOST_AUTO_TEST_CASE(ReplayedResyncFramesAfterTheResyncChangeNothing) {
  TempDir d;
  auto r = Make(d.path, {"a", "b"});
  (void)r->OnResyncChunk(Chunk(1, 0, 0, 0x00));
  (void)r->OnResyncDone(ResyncDone{Entry({}).uuid, 1, 0, 1});
  for (uint64_t s = 1; s <= 3; ++s) (void)r->OnReplicate(Rep(1, s, 0, static_cast<uint8_t>(s)));
  BOOST_REQUIRE(r->View().content_seq == 3u);
  // The resync's chunk again: neither the bytes nor the position move.
  auto chunk = r->OnResyncChunk(Chunk(1, 0, 0, 0x00));
  BOOST_TEST(!chunk.reply.has_value());
  BOOST_TEST(static_cast<int>(ByteAt(*r, 0)) == 3);
  BOOST_TEST(r->View().syncing_epoch == 0u);
  BOOST_TEST(r->View().vouch);
  BOOST_TEST(r->View().content_seq == 3u);
  // Its RESYNC_DONE again (with and without chunks): acknowledged as
  // already held, the position does not go back to 0.
  for (uint32_t chunks : {1u, 0u}) {
    auto done = r->OnResyncDone(ResyncDone{Entry({}).uuid, 1, 0, chunks});
    BOOST_REQUIRE(done.reply && std::holds_alternative<Ack>(*done.reply));
    BOOST_TEST(static_cast<int>(std::get<Ack>(*done.reply).status) ==
               static_cast<int>(wire::AckStatus::kOk));
    BOOST_TEST(std::get<Ack>(*done.reply).acked_sequence == 3u);
    BOOST_TEST(r->View().content_seq == 3u);
    BOOST_TEST(r->View().vouch);
  }
  // The stream goes on where it was.
  auto next = r->OnReplicate(Rep(1, 4, 0, 0x04));
  BOOST_REQUIRE(next.reply && std::holds_alternative<Ack>(*next.reply));
  BOOST_TEST(std::get<Ack>(*next.reply).acked_sequence == 4u);
  // A new resync of this epoch (chunks as of the primary's sequence) still
  // starts one.
  (void)r->OnResyncChunk(Chunk(1, 0, 4, 0x44));
  BOOST_TEST(r->View().syncing_epoch == 1u);
  BOOST_TEST(static_cast<int>(ByteAt(*r, 0)) == 0x44);
}

// A resync run whose stream lost frames (a dropped connection takes what
// was in flight) must not be vouched for: the replica notices the skip,
// answers GAP, refuses the run's RESYNC_DONE, and a new run repairs it.
Gap RequireGap(const ReplicaAnswer& a) {
  BOOST_REQUIRE(a.reply && std::holds_alternative<Gap>(*a.reply));
  return std::get<Gap>(*a.reply);
}

BOOST_AUTO_TEST_CASE(ALostReplicateBreaksTheRunAndANewRunRepairsIt) {
  TempDir d;
  auto r = Make(d.path, {"a", "b"});
  (void)r->OnResyncChunk(Chunk(1, 0, 5, 0x55));
  (void)r->OnReplicate(Rep(1, 6, 0, 0x66));
  // 7 (a write to chunk 1) never arrives; 8 does.
  const Gap g = RequireGap(r->OnReplicate(Rep(1, 8, 8192, 0x88)));
  BOOST_TEST(g.epoch == 1u);
  BOOST_TEST(g.expected_sequence == 7u);
  BOOST_TEST(g.received_sequence == 8u);
  BOOST_TEST(static_cast<int>(ByteAt(*r, 8192)) == 0);  // nothing of a broken run lands
  // The run's end is refused: the copy lacks 7.
  (void)RequireGap(r->OnResyncDone(ResyncDone{Entry({}).uuid, 1, 8, 1}));
  BOOST_TEST(!r->View().vouch);
  BOOST_TEST(r->View().syncing_epoch == 1u);
  // The primary's new run: its chunks carry 7's bytes.
  (void)r->OnResyncChunk(Chunk(1, 1, 8, 0x77));
  (void)r->OnResyncChunk(Chunk(1, 2, 8, 0x88, /*first=*/false));
  auto done = r->OnResyncDone(ResyncDone{Entry({}).uuid, 1, 8, 2});
  BOOST_REQUIRE(done.reply && std::holds_alternative<Ack>(*done.reply));
  BOOST_TEST(std::get<Ack>(*done.reply).acked_sequence == 8u);
  BOOST_TEST(r->View().vouch);
  BOOST_TEST(static_cast<int>(ByteAt(*r, 4096)) == 0x77);
  BOOST_TEST(static_cast<int>(ByteAt(*r, 8192)) == 0x88);
}

BOOST_AUTO_TEST_CASE(AChunkPastTheRunsSequenceBreaksTheRun) {
  TempDir d;
  auto r = Make(d.path, {"a", "b"});
  (void)r->OnResyncChunk(Chunk(1, 0, 5, 0x55));
  // Read as of 7: REPLICATEs 6 and 7 went out before it and were lost.
  const Gap g = RequireGap(r->OnResyncChunk(Chunk(1, 1, 7, 0x77, /*first=*/false)));
  BOOST_TEST(g.expected_sequence == 6u);
  BOOST_TEST(static_cast<int>(ByteAt(*r, 4096)) == 0);
  (void)RequireGap(r->OnResyncDone(ResyncDone{Entry({}).uuid, 1, 7, 2}));
  BOOST_TEST(!r->View().vouch);
}

BOOST_AUTO_TEST_CASE(ALostChunkIsCaughtByTheRunsChunkCount) {
  TempDir d;
  auto r = Make(d.path, {"a", "b"});
  (void)r->OnResyncChunk(Chunk(1, 0, 5, 0x55));
  // Chunk 1 lost; chunk 2 of the same sequence arrives.
  (void)r->OnResyncChunk(Chunk(1, 2, 5, 0x22, /*first=*/false));
  (void)RequireGap(r->OnResyncDone(ResyncDone{Entry({}).uuid, 1, 5, 3}));
  BOOST_TEST(!r->View().vouch);
  BOOST_TEST(r->View().syncing_epoch == 1u);
}

BOOST_AUTO_TEST_CASE(ARunWithoutItsFirstChunkIsNotApplied) {
  TempDir d;
  auto r = Make(d.path, {"a", "b"});
  JoinEpoch(*r, 1, 4);
  // A new run's first chunk was lost: its other chunks and its end change
  // nothing, and the replica asks for the run again.
  const Gap g = RequireGap(r->OnResyncChunk(Chunk(1, 1, 9, 0x99, /*first=*/false)));
  BOOST_TEST(g.expected_sequence == 0u);
  BOOST_TEST(static_cast<int>(ByteAt(*r, 4096)) == 0);
  BOOST_TEST(r->View().content_seq == 4u);
  BOOST_TEST(r->View().vouch);
}

BOOST_AUTO_TEST_CASE(StaleEpochResyncDoneChangesNothing) {
  TempDir d;
  auto r = Make(d.path, {"a", "b", "c"});
  JoinEpoch(*r, 3);
  (void)r->OnReplicate(Rep(3, 1, 0, 0x31));
  auto a = r->OnResyncDone(ResyncDone{Entry({}).uuid, 2, 100, 1});
  BOOST_REQUIRE(a.reply && std::holds_alternative<Ack>(*a.reply));
  BOOST_TEST(static_cast<int>(std::get<Ack>(*a.reply).status) ==
             static_cast<int>(wire::AckStatus::kStaleEpoch));
  BOOST_TEST(r->View().content_epoch == 3u);
  BOOST_TEST(r->View().content_seq == 1u);
  BOOST_TEST(static_cast<int>(ByteAt(*r, 0)) == 0x31);
}

BOOST_AUTO_TEST_CASE(VotesOnlyWhenVouchingAndNewer) {
  TempDir d;
  auto r = Make(d.path, {"a", "b", "c"});
  EpochPropose p{Entry({}).uuid, 1, 0, 0, "a"};
  Message m = r->OnPropose(p, "a");
  BOOST_TEST(std::holds_alternative<EpochAccept>(m));
  BOOST_TEST(r->AcceptedCandidate(1).value_or("") == "a");
  // Same epoch again: stale.
  m = r->OnPropose(EpochPropose{Entry({}).uuid, 1, 0, 0, "c"}, "c");
  BOOST_REQUIRE(std::holds_alternative<EpochReject>(m));
  BOOST_TEST(std::get<EpochReject>(m).promised_epoch == 1u);
  // A candidate that claims another host's id.
  m = r->OnPropose(EpochPropose{Entry({}).uuid, 5, 0, 0, "c"}, "a");
  BOOST_TEST(std::holds_alternative<EpochReject>(m));
  // Not vouching (mid-resync): no vote, but the promise rises.
  ResyncChunk c;
  c.volume = Entry({}).uuid;
  c.epoch = 1;
  c.chunk_size = 4096;
  c.first = true;
  c.data.assign(4096, std::byte{1});
  (void)r->OnResyncChunk(c);
  m = r->OnPropose(EpochPropose{Entry({}).uuid, 2, 1, 0, "c"}, "c");
  BOOST_REQUIRE(std::holds_alternative<EpochReject>(m));
  BOOST_TEST(std::get<EpochReject>(m).promised_epoch < 2u);
  BOOST_TEST(r->View().promise == 2u);
}

BOOST_AUTO_TEST_CASE(PromiseSurvivesARestart) {
  TempDir d;
  {
    auto r = Make(d.path, {"a", "b", "c"});
    (void)r->OnPropose(EpochPropose{Entry({}).uuid, 4, 0, 0, "a"}, "a");
  }
  auto st = ReadVolumeState(d.path, Entry({}).uuid);
  BOOST_REQUIRE(st.ok() && st->has_value());
  BOOST_TEST((*st)->promise == 4u);
  BOOST_TEST(!(*st)->clean);
  auto r = Make(d.path, {"a", "b", "c"});
  BOOST_TEST(r->View().promise == 4u);
  // Crashed (not clean) after taking part: it must not vouch.
  BOOST_TEST(!r->View().vouch);
  auto m = r->OnPropose(EpochPropose{Entry({}).uuid, 4, 0, 0, "c"}, "c");
  BOOST_TEST(std::holds_alternative<EpochReject>(m));
}

BOOST_AUTO_TEST_CASE(CleanShutdownVouchesAfterRestart) {
  TempDir d;
  {
    auto r = Make(d.path, {"a", "b"});
    JoinEpoch(*r, 1);
    (void)r->OnReplicate(Rep(1, 1, 0, 0x42));
    BOOST_REQUIRE(r->Vault(/*clean=*/true).ok());
  }
  auto r = Make(d.path, {"a", "b"});
  BOOST_TEST(r->View().vouch);
  BOOST_TEST(r->View().content_epoch == 1u);
  BOOST_TEST(r->View().content_seq == 1u);
  BOOST_TEST(static_cast<int>(ByteAt(*r, 0)) == 0x42);
  // The restart itself is not clean any more.
  auto st = ReadVolumeState(d.path, Entry({}).uuid);
  BOOST_TEST(!(*st)->clean);
}

BOOST_AUTO_TEST_CASE(StandalonePrimaryPersistsAtOnce) {
  TempDir d;
  auto r = Make(d.path, {"b"});
  auto e = r->BeginCandidacy();
  BOOST_REQUIRE(e.ok());
  r->BecomePrimary(*e, false);
  std::vector<std::byte> region(64 * 1024);
  r->AttachRegion(region);
  std::memset(region.data() + 8192, 0x5a, 100);
  backend::ByteRange range{8192, 100};
  auto s = r->PersistBatch(std::span(&range, 1), std::chrono::seconds(1));
  BOOST_REQUIRE(s.ok());
  BOOST_TEST(*s == 1u);
  BOOST_TEST(r->DurableSeq() == 1u);
  BOOST_TEST(static_cast<int>(ByteAt(*r, 8192)) == 0x5a);
  r->DetachRegion();
}

// A peer's stream as the engine lends it: records every frame queued, or
// refuses them (not connected, high-water mark).
class FakeLink final : public FrameLink {
 public:
  using FrameLink::Send;  // the shared-frame overload copies through this one
  bool Send(std::span<const std::byte> frame) override {
    std::lock_guard lock(mu_);
    if (refuse_) return false;
    frames_.emplace_back(frame.begin(), frame.end());
    return true;
  }
  void Refuse() {
    std::lock_guard lock(mu_);
    refuse_ = true;
  }
  std::vector<Message> Decoded() {
    std::lock_guard lock(mu_);
    std::vector<Message> out;
    for (const Bytes& f : frames_) {
      auto m = Decode(f, Limits{4096});
      BOOST_REQUIRE(m.ok());
      out.push_back(std::move(*m));
    }
    return out;
  }
  size_t size() {
    std::lock_guard lock(mu_);
    return frames_.size();
  }

 private:
  std::mutex mu_;
  std::vector<Bytes> frames_;
  bool refuse_ = false;
};

std::shared_ptr<VolumeReplica> MakePrimary(const std::string& dir, std::vector<std::string> group,
                                           std::vector<std::byte>& region) {
  auto r = Make(dir, std::move(group));
  auto e = r->BeginCandidacy();
  BOOST_REQUIRE(e.ok());
  r->BecomePrimary(*e, false);
  region.assign(64 * 1024, std::byte{0});
  r->AttachRegion(region);
  return r;
}

BOOST_AUTO_TEST_CASE(PersistWaitsForAcknowledgementAndFailsWhenFenced) {
  TempDir d;
  std::vector<std::byte> region;
  auto r = MakePrimary(d.path, {"b", "c", "d"}, region);
  auto link = std::make_shared<FakeLink>();
  r->SetFanOut("c", link, /*in_sync=*/true);
  backend::ByteRange range{0, 4096 * 2};  // two frames of max_data
  // Acknowledged: the engine raises the durable sequence.
  std::thread acker([&] {
    while (link->size() < 2) std::this_thread::yield();
    auto frames = link->Decoded();
    BOOST_CHECK_EQUAL(frames.size(), 2u);
    const auto& last = std::get<Replicate>(frames.back());
    BOOST_CHECK(!std::get<Replicate>(frames.front()).ack_requested);
    BOOST_CHECK(last.ack_requested);
    r->SetDurable(last.sequence);
  });
  auto s = r->PersistBatch(std::span(&range, 1), std::chrono::seconds(10));
  acker.join();
  BOOST_REQUIRE(s.ok());
  BOOST_TEST(*s == 2u);
  // Fenced while waiting: the persist fails at once, not at the deadline.
  const uint64_t epoch = r->View().epoch;
  std::thread fencer([&] {
    while (link->size() < 4) std::this_thread::yield();
    r->StepDown(/*fenced=*/true, epoch + 1);
  });
  auto f = r->PersistBatch(std::span(&range, 1), std::chrono::seconds(30),
                           std::chrono::microseconds(300));
  fencer.join();
  BOOST_TEST(!f.ok());
  BOOST_TEST((f.status().code() == Code::kFailedPrecondition));
  BOOST_TEST((r->View().role == Role::kFenced));
  auto again = r->PersistBatch(std::span(&range, 1), std::chrono::seconds(1));
  BOOST_TEST((again.status().code() == Code::kFailedPrecondition));
  r->DetachRegion();
}

// The persisting thread queues its frames itself: to every replica of the
// fan-out, in sequence order; a replica that cannot take one is dropped
// and reported to the engine, never skipped silently.
BOOST_AUTO_TEST_CASE(PersistSendsToTheFanOutAndReportsDroppedReplicas) {
  TempDir d;
  std::vector<std::byte> region;
  auto r = MakePrimary(d.path, {"b", "c", "d"}, region);
  auto c = std::make_shared<FakeLink>();
  auto dl = std::make_shared<FakeLink>();
  r->SetFanOut("c", c, /*in_sync=*/true);
  r->SetFanOut("d", dl, /*in_sync=*/false);  // syncing: gets frames, owes no ack
  std::memset(region.data() + 4096, 0x42, 4096);
  backend::ByteRange range{4096, 4096};
  std::thread acker([&] {
    while (c->size() < 1) std::this_thread::yield();
    r->SetDurable(1);
  });
  auto s = r->PersistBatch(std::span(&range, 1), std::chrono::seconds(10));
  acker.join();
  BOOST_REQUIRE(s.ok());
  for (auto* l : {c.get(), dl.get()}) {
    auto frames = l->Decoded();
    BOOST_REQUIRE(frames.size() == 1u);
    const auto& m = std::get<Replicate>(frames[0]);
    BOOST_TEST(m.sequence == 1u);
    BOOST_TEST(m.offset == 4096u);
    BOOST_TEST(static_cast<int>(m.data.at(0)) == 0x42);
  }
  BOOST_TEST(r->TakeFanOutNews().dropped.empty());
  // The in-sync replica's requested ack is outstanding until it comes.
  BOOST_TEST(r->FanOutOverdue(Nanos{0}) == std::vector<std::string>{"c"});
  r->FanOutAcked("c", 1);
  BOOST_TEST(r->FanOutOverdue(Nanos{0}).empty());
  // d stops taking frames: dropped from the fan-out and reported; c goes on.
  dl->Refuse();
  std::thread acker2([&] {
    while (c->size() < 2) std::this_thread::yield();
    r->SetDurable(2);
  });
  s = r->PersistBatch(std::span(&range, 1), std::chrono::seconds(10));
  acker2.join();
  BOOST_REQUIRE(s.ok());
  FanOutNews news = r->TakeFanOutNews();
  BOOST_REQUIRE(news.dropped.size() == 1u);
  BOOST_TEST(news.dropped[0].first == "d");
  BOOST_TEST(dl->size() == 1u);
  // Resync frames need the replica in the fan-out.
  BOOST_TEST(!r->SendResyncChunk("d", r->View().epoch, 4096, 0, false));
  BOOST_TEST(!r->SendResyncDone("d", r->View().epoch, 1).has_value());
  r->DetachRegion();
}

// A resync chunk is read and queued in one step: a later write's REPLICATE
// follows it on the stream, and RESYNC_DONE names the last sequence sent.
BOOST_AUTO_TEST_CASE(ResyncChunksAndReplicatesShareOneOrderedStream) {
  TempDir d;
  std::vector<std::byte> region;
  auto r = MakePrimary(d.path, {"b", "c"}, region);
  auto c = std::make_shared<FakeLink>();
  r->SetFanOut("c", c, /*in_sync=*/false);
  const uint64_t epoch = r->View().epoch;
  BOOST_REQUIRE(r->SendResyncChunk("c", epoch, 4096, 0, false));
  std::memset(region.data(), 0x77, 16);
  backend::ByteRange range{0, 16};
  // Nothing acknowledges (a syncing replica does not): the persist times out.
  auto s = r->PersistBatch(std::span(&range, 1), std::chrono::milliseconds(10));
  BOOST_TEST((s.status().code() == Code::kUnavailable));
  BOOST_TEST(r->TakeFanOutNews().recompute);  // no in-sync replica to count on
  BOOST_REQUIRE(r->SendResyncChunk("c", epoch, 4096, 1, true));
  auto done = r->SendResyncDone("c", epoch, 2);
  BOOST_REQUIRE(done.has_value());
  BOOST_TEST(*done == 1u);
  auto frames = c->Decoded();
  BOOST_REQUIRE(frames.size() == 4u);
  BOOST_TEST(std::get<ResyncChunk>(frames[0]).chunk_index == 0u);
  BOOST_TEST(static_cast<int>(std::get<ResyncChunk>(frames[0]).data.at(0)) == 0);
  BOOST_TEST(std::get<Replicate>(frames[1]).sequence == 1u);
  BOOST_TEST(std::get<ResyncChunk>(frames[2]).as_of_sequence == 1u);
  BOOST_TEST(std::get<ResyncChunk>(frames[2]).last);
  BOOST_TEST(std::get<ResyncDone>(frames[3]).sequence == 1u);
  // A replica of a host that steps down sends nothing more.
  r->StepDown(false, epoch + 1);
  BOOST_TEST(!r->SendResyncChunk("c", epoch, 4096, 0, false));
  r->DetachRegion();
}

}  // namespace
}  // namespace vnvram::replication
