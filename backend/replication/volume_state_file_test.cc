// VolumeStateFile: round trip, the documented layout, every corruption
// refused with the field named, and a failed write keeps the old state.
#define BOOST_TEST_MODULE replication_volume_state_file
#include "backend/replication/volume_state_file.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>

#include <boost/test/unit_test.hpp>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <ostream>
#include <span>
#include <string>
#include <vector>

#include "common/crc32c.h"
#include "common/endian.h"
#include "common/testing/temp_dir.h"

namespace vnvram {
// Boost.Test prints the codes it compares.
inline std::ostream& operator<<(std::ostream& o, Code c) {
  return o << CodeName(c);
}
}  // namespace vnvram

namespace vnvram::replication {
namespace {

using vnvram::testing::TempDir;

namespace fs = std::filesystem;
using Bytes = std::vector<std::byte>;

Uuid Vol(uint8_t n) {
  Uuid u;
  for (size_t i = 0; i < u.bytes.size(); ++i) u.bytes[i] = static_cast<uint8_t>(n + i);
  return u;
}

VolumeState Sample() {
  VolumeState s;
  s.promise = 7;
  s.content_epoch = 6;
  s.content_seq = 123456789;
  s.clean = true;
  return s;
}

Bytes ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  Bytes b;
  for (auto it = std::istreambuf_iterator<char>(in); it != std::istreambuf_iterator<char>(); ++it) {
    b.push_back(static_cast<std::byte>(*it));
  }
  return b;
}

void WriteBytes(const std::string& path, const Bytes& b) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

// The record as docs/backend.md lays it out, built independently of the
// code under test.
Bytes DocumentedRecord(const Uuid& volume, uint32_t version, uint32_t flags, uint64_t promise,
                       uint64_t epoch, uint64_t seq) {
  Bytes b(60);
  std::memcpy(b.data(), "VNVRSTAT", 8);
  StoreLE<uint32_t>(&b[8], version);
  StoreLE<uint32_t>(&b[12], flags);
  std::memcpy(&b[16], volume.bytes.data(), 16);
  StoreLE<uint64_t>(&b[32], promise);
  StoreLE<uint64_t>(&b[40], epoch);
  StoreLE<uint64_t>(&b[48], seq);
  StoreLE<uint32_t>(&b[56], Crc32c(std::span(b).first(56)));
  return b;
}

// Reads the state of Vol(1) from `d`, expecting kCorruption with a message
// naming the file and containing `field`.
void ExpectCorruption(const TempDir& d, const std::string& field) {
  auto r = ReadVolumeState(d.path, Vol(1));
  BOOST_TEST_REQUIRE(!r.ok(), "read succeeded; want a corruption naming " << field);
  BOOST_TEST(r.status().code() == Code::kCorruption);
  const std::string& m = r.status().message();
  BOOST_TEST(m.find(VolumeStatePath(d.path, Vol(1))) != std::string::npos, m);
  BOOST_TEST(m.find(field) != std::string::npos, m);
  BOOST_TEST(m.find('\n') == std::string::npos, m);
}

BOOST_AUTO_TEST_CASE(PathIsUuidDotStateInTheDirectory) {
  BOOST_TEST(VolumeStatePath("/var/lib/vnvram", Vol(0)) ==
             "/var/lib/vnvram/00010203-0405-0607-0809-0a0b0c0d0e0f.state");
}

BOOST_AUTO_TEST_CASE(RoundTripAndOverwrite) {
  TempDir d;
  BOOST_TEST_REQUIRE(WriteVolumeState(d.path, Vol(1), Sample()).ok());
  auto r = ReadVolumeState(d.path, Vol(1));
  BOOST_TEST_REQUIRE(r.ok(), r.status().ToString());
  BOOST_TEST_REQUIRE(r->has_value());
  BOOST_TEST((**r == Sample()));

  VolumeState big;
  big.promise = std::numeric_limits<uint64_t>::max();
  big.content_epoch = std::numeric_limits<uint64_t>::max() - 1;
  big.content_seq = std::numeric_limits<uint64_t>::max() - 2;
  big.clean = false;
  BOOST_TEST_REQUIRE(WriteVolumeState(d.path, Vol(1), big).ok());
  r = ReadVolumeState(d.path, Vol(1));
  BOOST_TEST_REQUIRE(r.ok(), r.status().ToString());
  BOOST_TEST_REQUIRE(r->has_value());
  BOOST_TEST((**r == big));

  // The all-zero state is a state too, not "absent".
  BOOST_TEST_REQUIRE(WriteVolumeState(d.path, Vol(1), VolumeState{}).ok());
  r = ReadVolumeState(d.path, Vol(1));
  BOOST_TEST_REQUIRE(r.ok());
  BOOST_TEST_REQUIRE(r->has_value());
  BOOST_TEST((**r == VolumeState{}));
  // No temp file is left behind.
  BOOST_TEST(d.EntryCount() == 1u);
}

BOOST_AUTO_TEST_CASE(AbsentFileIsNullopt) {
  TempDir d;
  auto r = ReadVolumeState(d.path, Vol(1));
  BOOST_TEST_REQUIRE(r.ok(), r.status().ToString());
  BOOST_TEST(!r->has_value());
  // Another volume's file does not count.
  BOOST_TEST_REQUIRE(WriteVolumeState(d.path, Vol(2), Sample()).ok());
  r = ReadVolumeState(d.path, Vol(1));
  BOOST_TEST_REQUIRE(r.ok());
  BOOST_TEST(!r->has_value());
}

BOOST_AUTO_TEST_CASE(FileHasTheDocumentedLittleEndianLayout) {
  TempDir d;
  VolumeState s;
  s.promise = 0x0102030405060708ull;
  s.content_epoch = 3;
  s.content_seq = 0x1122334455ull;
  s.clean = true;
  BOOST_TEST_REQUIRE(WriteVolumeState(d.path, Vol(1), s).ok());
  const Bytes want = DocumentedRecord(Vol(1), 1, 1, s.promise, s.content_epoch, s.content_seq);
  BOOST_TEST((ReadBytes(VolumeStatePath(d.path, Vol(1))) == want));
  // And a record built from the document reads back.
  WriteBytes(VolumeStatePath(d.path, Vol(1)), DocumentedRecord(Vol(1), 1, 0, 9, 8, 7));
  auto r = ReadVolumeState(d.path, Vol(1));
  BOOST_TEST_REQUIRE(r.ok(), r.status().ToString());
  BOOST_TEST_REQUIRE(r->has_value());
  BOOST_TEST((**r == VolumeState{9, 8, 7, false}));
}

BOOST_AUTO_TEST_CASE(TruncatedFileIsCorruption) {
  TempDir d;
  const std::string path = VolumeStatePath(d.path, Vol(1));
  for (const size_t len : {59, 30, 11, 8, 4, 0}) {
    BOOST_TEST_CONTEXT("length " << len) {
      BOOST_TEST_REQUIRE(WriteVolumeState(d.path, Vol(1), Sample()).ok());
      fs::resize_file(path, len);
      ExpectCorruption(d, "truncated");
    }
  }
}

BOOST_AUTO_TEST_CASE(TrailingBytesAreCorruption) {
  TempDir d;
  const std::string path = VolumeStatePath(d.path, Vol(1));
  BOOST_TEST_REQUIRE(WriteVolumeState(d.path, Vol(1), Sample()).ok());
  Bytes b = ReadBytes(path);
  b.push_back(std::byte{0});
  WriteBytes(path, b);
  ExpectCorruption(d, "trailing bytes");
  b.resize(4096);
  WriteBytes(path, b);
  ExpectCorruption(d, "trailing bytes");
}

BOOST_AUTO_TEST_CASE(BadMagicIsCorruption) {
  TempDir d;
  const std::string path = VolumeStatePath(d.path, Vol(1));
  BOOST_TEST_REQUIRE(WriteVolumeState(d.path, Vol(1), Sample()).ok());
  Bytes b = ReadBytes(path);
  b[7] = std::byte{'X'};
  WriteBytes(path, b);
  ExpectCorruption(d, "bad magic");
  // A vault's magic where a state file should be.
  std::memcpy(b.data(), "VNVRVLT\0", 8);
  WriteBytes(path, b);
  ExpectCorruption(d, "bad magic");
}

BOOST_AUTO_TEST_CASE(BadVersionIsCorruption) {
  TempDir d;
  const std::string path = VolumeStatePath(d.path, Vol(1));
  // Checked before the checksum and the length, which a version fixes.
  WriteBytes(path, DocumentedRecord(Vol(1), 2, 0, 1, 1, 1));
  ExpectCorruption(d, "unsupported version 2");
  Bytes b = DocumentedRecord(Vol(1), 0, 0, 1, 1, 1);
  b.resize(20);
  WriteBytes(path, b);
  ExpectCorruption(d, "unsupported version 0");
}

BOOST_AUTO_TEST_CASE(BadChecksumIsCorruption) {
  TempDir d;
  const std::string path = VolumeStatePath(d.path, Vol(1));
  // A flipped bit in each field after the version, and in the checksum.
  for (const size_t offset : {12, 16, 31, 32, 40, 48, 55, 56, 59}) {
    BOOST_TEST_CONTEXT("offset " << offset) {
      BOOST_TEST_REQUIRE(WriteVolumeState(d.path, Vol(1), Sample()).ok());
      Bytes b = ReadBytes(path);
      b[offset] ^= std::byte{0x10};
      WriteBytes(path, b);
      ExpectCorruption(d, "checksum mismatch");
    }
  }
}

BOOST_AUTO_TEST_CASE(OtherVolumesUuidIsCorruption) {
  TempDir d;
  BOOST_TEST_REQUIRE(WriteVolumeState(d.path, Vol(2), Sample()).ok());
  fs::rename(VolumeStatePath(d.path, Vol(2)), VolumeStatePath(d.path, Vol(1)));
  ExpectCorruption(d, "uuid " + Vol(2).ToString() + " is not volume " + Vol(1).ToString());
}

BOOST_AUTO_TEST_CASE(UnknownFlagsAreCorruption) {
  TempDir d;
  WriteBytes(VolumeStatePath(d.path, Vol(1)), DocumentedRecord(Vol(1), 1, 0x3, 1, 1, 1));
  ExpectCorruption(d, "unknown flags 0x3");
}

BOOST_AUTO_TEST_CASE(WriteIntoAMissingDirectoryFailsAndCreatesNothing) {
  TempDir d;
  BOOST_TEST_REQUIRE(WriteVolumeState(d.path, Vol(1), Sample()).ok());
  const std::string missing = d.path + "/no-such-dir";
  const Status s = WriteVolumeState(missing, Vol(1), VolumeState{});
  BOOST_TEST(s.code() == Code::kNotFound, s.ToString());
  BOOST_TEST(s.message().find(VolumeStatePath(missing, Vol(1))) != std::string::npos, s.message());
  BOOST_TEST(!fs::exists(missing));
  auto r = ReadVolumeState(d.path, Vol(1));
  BOOST_TEST_REQUIRE(r.ok());
  BOOST_TEST_REQUIRE(r->has_value());
  BOOST_TEST((**r == Sample()));
}

// Caps the size of files this process may write (RLIMIT_FSIZE, SIGXFSZ
// ignored so write() fails with EFBIG instead); restores both on scope exit.
// Works as root, unlike a read-only directory.
class FileSizeLimit {
 public:
  explicit FileSizeLimit(rlim_t bytes) {
    BOOST_TEST_REQUIRE(::getrlimit(RLIMIT_FSIZE, &saved_) == 0);
    old_handler_ = ::signal(SIGXFSZ, SIG_IGN);
    rlimit lim = saved_;
    lim.rlim_cur = bytes;
    BOOST_TEST_REQUIRE(::setrlimit(RLIMIT_FSIZE, &lim) == 0);
  }
  ~FileSizeLimit() {
    ::setrlimit(RLIMIT_FSIZE, &saved_);
    ::signal(SIGXFSZ, old_handler_);
  }
  FileSizeLimit(const FileSizeLimit&) = delete;
  FileSizeLimit& operator=(const FileSizeLimit&) = delete;

 private:
  rlimit saved_{};
  sighandler_t old_handler_ = SIG_DFL;
};

BOOST_AUTO_TEST_CASE(WriteFailingMidRecordKeepsThePreviousFile) {
  TempDir d;
  BOOST_TEST_REQUIRE(WriteVolumeState(d.path, Vol(1), Sample()).ok());
  VolumeState next = Sample();
  next.promise = 8;
  next.clean = false;
  Status s;
  {
    // The temp file gets 10 bytes, then write() fails.
    FileSizeLimit limit(10);
    s = WriteVolumeState(d.path, Vol(1), next);
  }
  BOOST_TEST(!s.ok());
  BOOST_TEST(s.message().find(".state.tmp.") != std::string::npos, s.message());
  auto r = ReadVolumeState(d.path, Vol(1));
  BOOST_TEST_REQUIRE(r.ok(), r.status().ToString());
  BOOST_TEST_REQUIRE(r->has_value());
  BOOST_TEST((**r == Sample()));
  BOOST_TEST(d.EntryCount() == 1u);  // the temp file was removed
  // And the next write goes through.
  BOOST_TEST_REQUIRE(WriteVolumeState(d.path, Vol(1), next).ok());
  r = ReadVolumeState(d.path, Vol(1));
  BOOST_TEST_REQUIRE(r.ok());
  BOOST_TEST((**r == next));
}

BOOST_AUTO_TEST_CASE(TempFileOfACrashedWriteIsIgnored) {
  TempDir d;
  BOOST_TEST_REQUIRE(WriteVolumeState(d.path, Vol(1), Sample()).ok());
  // What a crash between creating the temp file and the rename leaves.
  WriteBytes(VolumeStatePath(d.path, Vol(1)) + ".tmp.Ab12Cd", Bytes(17, std::byte{0x55}));
  auto r = ReadVolumeState(d.path, Vol(1));
  BOOST_TEST_REQUIRE(r.ok(), r.status().ToString());
  BOOST_TEST_REQUIRE(r->has_value());
  BOOST_TEST((**r == Sample()));
  VolumeState next = Sample();
  next.content_seq += 1;
  BOOST_TEST_REQUIRE(WriteVolumeState(d.path, Vol(1), next).ok());
  r = ReadVolumeState(d.path, Vol(1));
  BOOST_TEST_REQUIRE(r.ok());
  BOOST_TEST((**r == next));
}

}  // namespace
}  // namespace vnvram::replication
