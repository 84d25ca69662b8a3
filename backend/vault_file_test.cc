// VaultFile: round trip, and every corruption is refused.
#define BOOST_TEST_MODULE vault_file
#include "backend/vault_file.h"

#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <fstream>
#include <ostream>

#include "common/testing/temp_dir.h"

namespace vnvram {
// Boost.Test prints the codes it compares.
inline std::ostream& operator<<(std::ostream& o, Code c) {
  return o << CodeName(c);
}
}  // namespace vnvram

namespace vnvram::backend {
namespace {

using vnvram::testing::TempDir;

Uuid Vol(uint8_t n) {
  Uuid u;
  u.bytes.fill(n);
  return u;
}

std::vector<std::byte> Pattern(size_t n) {
  std::vector<std::byte> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<std::byte>(i * 7 + 1);
  return v;
}

void Poke(const std::string& path, uint64_t offset, char byte) {
  std::fstream io(path, std::ios::in | std::ios::out | std::ios::binary);
  io.seekp(static_cast<std::streamoff>(offset));
  io.put(byte);
}

BOOST_AUTO_TEST_CASE(RoundTripKeepsBytesSequenceAndSize) {
  TempDir d;
  const auto region = Pattern(3 * 4096);
  BOOST_TEST_REQUIRE(WriteVault(d.path, Vol(1), 42, region).ok());
  auto h = ReadVaultHeader(d.path, Vol(1), 1 << 30);
  BOOST_TEST_REQUIRE(h.ok(), h.status().ToString());
  BOOST_TEST(h->durable_seq == 42u);
  BOOST_TEST(h->region_size == region.size());
  std::vector<std::byte> out(h->region_size);
  BOOST_TEST_REQUIRE(ReadVaultData(d.path, *h, out).ok());
  BOOST_TEST((out == region));
  // No temp file is left behind.
  size_t files = 0;
  for (const auto& e : std::filesystem::directory_iterator(d.path)) {
    (void)e;
    ++files;
  }
  BOOST_TEST(files == 1u);
}

BOOST_AUTO_TEST_CASE(MissingVaultIsNotFound) {
  TempDir d;
  auto h = ReadVaultHeader(d.path, Vol(1), 1 << 30);
  BOOST_TEST(h.status().code() == Code::kNotFound);
}

BOOST_AUTO_TEST_CASE(EveryCorruptionIsRefused) {
  TempDir d;
  const auto region = Pattern(4096);
  const std::string path = VaultPath(d.path, Vol(1));
  struct Case {
    const char* what;
    uint64_t offset;
  };
  // Magic, version, header size, uuid, size, sequence, checksum fields.
  for (const Case c : {Case{"magic", 0}, Case{"version", 8}, Case{"header size", 12},
                       Case{"uuid", 16}, Case{"size", 32}, Case{"sequence", 40},
                       Case{"data checksum", 48}, Case{"header checksum", 56}}) {
    BOOST_TEST_CONTEXT(c.what) {
      BOOST_TEST_REQUIRE(WriteVault(d.path, Vol(1), 1, region).ok());
      Poke(path, c.offset, '\x7f');
      auto h = ReadVaultHeader(d.path, Vol(1), 1 << 30);
      BOOST_TEST(h.status().code() == Code::kCorruption, h.status().ToString());
    }
  }
  // A data byte: the header reads, the data does not.
  BOOST_TEST_REQUIRE(WriteVault(d.path, Vol(1), 1, region).ok());
  Poke(path, kVaultHeaderSize + 17, '\x7f');
  auto h = ReadVaultHeader(d.path, Vol(1), 1 << 30);
  BOOST_TEST_REQUIRE(h.ok());
  std::vector<std::byte> out(h->region_size);
  BOOST_TEST(ReadVaultData(d.path, *h, out).code() == Code::kCorruption);
  // Truncated and extended files.
  BOOST_TEST_REQUIRE(WriteVault(d.path, Vol(1), 1, region).ok());
  std::filesystem::resize_file(path, kVaultHeaderSize + 100);
  BOOST_TEST(ReadVaultHeader(d.path, Vol(1), 1 << 30).status().code() == Code::kCorruption);
  std::filesystem::resize_file(path, kVaultHeaderSize + 8192);
  BOOST_TEST(ReadVaultHeader(d.path, Vol(1), 1 << 30).status().code() == Code::kCorruption);
  std::filesystem::resize_file(path, 10);
  BOOST_TEST(ReadVaultHeader(d.path, Vol(1), 1 << 30).status().code() == Code::kCorruption);
}

BOOST_AUTO_TEST_CASE(AnotherVolumesFileOrAnOversizeRegionIsRefused) {
  TempDir d;
  BOOST_TEST_REQUIRE(WriteVault(d.path, Vol(2), 1, Pattern(8192)).ok());
  std::filesystem::rename(VaultPath(d.path, Vol(2)), VaultPath(d.path, Vol(3)));
  BOOST_TEST(ReadVaultHeader(d.path, Vol(3), 1 << 30).status().code() == Code::kCorruption);
  BOOST_TEST(ReadVaultHeader(d.path, Vol(3), 4096).status().code() == Code::kCorruption);
}

BOOST_AUTO_TEST_CASE(HeaderIsLittleEndianAtFixedOffsets) {
  VaultHeader h;
  h.volume = Vol(9);
  h.region_size = 0x0102030405060708ull;
  h.durable_seq = 5;
  const auto b = EncodeVaultHeader(h);
  BOOST_TEST(b.size() == kVaultHeaderSize);
  BOOST_TEST(static_cast<int>(b[8]) == 1);    // version, LE
  BOOST_TEST(static_cast<int>(b[12]) == 64);  // header size, LE
  BOOST_TEST(static_cast<int>(b[32]) == 0x08);
  BOOST_TEST(static_cast<int>(b[39]) == 0x01);
  auto back = DecodeVaultHeader(b);
  BOOST_TEST_REQUIRE(back.ok());
  BOOST_TEST(back->region_size == h.region_size);
  BOOST_TEST((back->volume == h.volume));
}

}  // namespace
}  // namespace vnvram::backend
