// Runs a libFuzzer entry point as an ordinary test when no fuzzer is built
// in: every file of the seed corpus directory VNVRAM_FUZZ_CORPUS_DIR, then a
// fixed-seed sweep of generated inputs biased towards boundary values. A
// violated invariant aborts inside the entry point and fails the test.
// Reusable by any fuzz target: link it with the target's source and define
// VNVRAM_FUZZ_CORPUS_DIR (and VNVRAM_FUZZ_SWEEP_ITERATIONS for slow targets).
#define BOOST_TEST_MODULE fuzz_replay
#include <boost/test/unit_test.hpp>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

#ifndef VNVRAM_FUZZ_SWEEP_ITERATIONS
#define VNVRAM_FUZZ_SWEEP_ITERATIONS 100000
#endif

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

std::vector<uint8_t> ReadFile(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// xorshift64*: deterministic across runs and platforms.
struct Rng {
  uint64_t s = 0x9E3779B97F4A7C15ull;
  uint64_t Next() {
    s ^= s >> 12;
    s ^= s << 25;
    s ^= s >> 27;
    return s * 0x2545F4914F6CDD1Dull;
  }
};

BOOST_AUTO_TEST_CASE(EverySeedCorpusFileReplaysCleanly) {
  const std::filesystem::path dir = VNVRAM_FUZZ_CORPUS_DIR;
  BOOST_TEST_REQUIRE(std::filesystem::is_directory(dir), dir.string() << " is not a directory");
  size_t files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    const std::vector<uint8_t> data = ReadFile(entry.path());
    BOOST_TEST_CHECKPOINT("replaying " << entry.path().filename().string());
    BOOST_TEST(LLVMFuzzerTestOneInput(data.data(), data.size()) == 0);
    ++files;
  }
  BOOST_TEST(files >= 5u, "seed corpus has only " << files << " files");
}

BOOST_AUTO_TEST_CASE(GeneratedBoundaryInputsReplayCleanly) {
  // Seeds mutated at random, with fields pulled towards edges: 0, 1, small,
  // page-sized and near 2^64, where the arithmetic bugs live.
  const std::filesystem::path dir = VNVRAM_FUZZ_CORPUS_DIR;
  std::vector<std::vector<uint8_t>> seeds;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.is_regular_file()) seeds.push_back(ReadFile(entry.path()));
  }
  BOOST_TEST_REQUIRE(!seeds.empty());
  static constexpr uint64_t kEdges[] = {
      0,     1,     2,        4095,  4096,      4097,         8191,
      32768, 32769, 1u << 20, ~0ull, ~0ull - 1, ~0ull - 4095, 1ull << 63};
  Rng rng;
  for (int i = 0; i < VNVRAM_FUZZ_SWEEP_ITERATIONS; ++i) {
    std::vector<uint8_t> in = seeds[rng.Next() % seeds.size()];
    if (in.size() < 16) in.resize(16, 0);
    const int edits = 1 + static_cast<int>(rng.Next() % 4);
    for (int e = 0; e < edits; ++e) {
      const uint64_t pick = rng.Next();
      if (pick % 3 == 0) {
        in[rng.Next() % in.size()] = static_cast<uint8_t>(rng.Next());
      } else {
        // Overwrite an 8-byte little-endian field at a 2-aligned offset
        // with an edge value, +-small noise.
        const size_t at = 2 * (rng.Next() % ((in.size() - 8) / 2 + 1));
        const uint64_t v = kEdges[rng.Next() % std::size(kEdges)] + (rng.Next() % 3) - 1;
        for (size_t b = 0; b < 8; ++b) in[at + b] = static_cast<uint8_t>(v >> (8 * b));
      }
    }
    if (LLVMFuzzerTestOneInput(in.data(), in.size()) != 0) {
      BOOST_FAIL("entry point returned non-zero at iteration " << i);
    }
  }
}

}  // namespace
