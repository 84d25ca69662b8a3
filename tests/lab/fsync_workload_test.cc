// The ext4 scenario's workload (fsync_workload.h) on the build machine's
// own filesystem: what it writes verifies; a missing, truncated or altered
// file is found and named; the durable count reaches the callback in order.
#define BOOST_TEST_MODULE fsync_workload
#include "tests/lab/fsync_workload.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

namespace vnvram::lab {
namespace {

class ScratchDir {
 public:
  ScratchDir() {
    char tmpl[] = "/tmp/vnvfsload-XXXXXX";
    const char* p = ::mkdtemp(tmpl);
    if (p != nullptr) path_ = p;
  }
  ~ScratchDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

Result<WorkloadStats> Run(const std::string& dir, uint32_t first, uint32_t count,
                          std::vector<uint32_t>* reported = nullptr) {
  WorkloadOptions o;
  o.dir = dir;
  o.first = first;
  o.count = count;
  return RunFsyncWorkload(o, SystemClock::Instance(), [&](uint32_t index, uint32_t done) {
    if (reported != nullptr) {
      // The file is in place when the callback says so.
      BOOST_TEST(std::filesystem::exists(FilePath(dir, index)));
      BOOST_TEST(done == index - first + 1);
      reported->push_back(index);
    }
    return Status::Ok();
  });
}

BOOST_AUTO_TEST_SUITE(FsyncWorkloadTest)

std::string AsString(const std::vector<std::byte>& v) {
  return {reinterpret_cast<const char*>(v.data()), v.size()};
}

BOOST_AUTO_TEST_CASE(ContentIsDeterministicSizedAndDistinct) {
  std::set<std::string> seen;
  for (uint32_t i = 0; i < 200; ++i) {
    const std::string a = AsString(FileContent(i));
    BOOST_TEST(a.size() >= 200u);
    BOOST_TEST(a.size() < 4000u);
    BOOST_TEST((a == AsString(FileContent(i))));
    BOOST_TEST(a.starts_with("vnvram-lab-fsload index " + std::to_string(i) + " size "));
    seen.insert(a);
  }
  BOOST_TEST(seen.size() == 200u);
  BOOST_TEST(FilePath("/m", 123) == "/m/d002/f000123");
}

BOOST_AUTO_TEST_CASE(WrittenFilesVerifyAndReportInOrder) {
  ScratchDir d;
  BOOST_REQUIRE(!d.path().empty());
  const std::string dir = d.path() + "/w";
  std::vector<uint32_t> reported;
  auto st = Run(dir, 0, 120, &reported);
  BOOST_REQUIRE_MESSAGE(st.ok(), st.status().ToString());
  BOOST_TEST(st->files == 120u);
  // Two per file (content, directory), one per new subdirectory (3) and
  // one for the new workload directory.
  BOOST_TEST(st->fsyncs == 2u * 120u + 3u + 1u);
  BOOST_TEST(reported.size() == 120u);
  for (uint32_t i = 0; i < reported.size(); ++i) BOOST_TEST(reported[i] == i);
  BOOST_TEST(st->file_p50.count() <= st->file_p99.count());
  // No temporary file is left once a file is reported.
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    BOOST_TEST(e.path().filename().string().front() != '.');
  }

  auto v = VerifyFsyncWorkload(dir, 0, 120);
  BOOST_REQUIRE_MESSAGE(v.ok(), v.status().ToString());
  BOOST_TEST(v->verified == 120u);
  BOOST_TEST(v->beyond == 0u);
  // A shorter reported count: the rest counts as intact beyond it.
  v = VerifyFsyncWorkload(dir, 0, 100);
  BOOST_REQUIRE(v.ok());
  BOOST_TEST(v->beyond == 20u);
}

BOOST_AUTO_TEST_CASE(ContinuesFromAnIndexInTheSameDirectory) {
  ScratchDir d;
  const std::string dir = d.path() + "/w";
  BOOST_REQUIRE(Run(dir, 0, 30).ok());
  auto st = Run(dir, 30, 40);
  BOOST_REQUIRE_MESSAGE(st.ok(), st.status().ToString());
  auto v = VerifyFsyncWorkload(dir, 0, 70);
  BOOST_REQUIRE_MESSAGE(v.ok(), v.status().ToString());
  BOOST_TEST(v->verified == 70u);
}

BOOST_AUTO_TEST_CASE(MissingTruncatedAndAlteredFilesAreNamed) {
  ScratchDir d;
  const std::string dir = d.path() + "/w";
  BOOST_REQUIRE(Run(dir, 0, 60).ok());

  BOOST_REQUIRE(::truncate(FilePath(dir, 10).c_str(), 100) == 0);
  auto v = VerifyFsyncWorkload(dir, 0, 60);
  BOOST_REQUIRE(!v.ok());
  BOOST_TEST((v.status().code() == Code::kCorruption));
  BOOST_TEST(v.status().message().find("file 10 ") != std::string::npos);
  BOOST_TEST(v.status().message().find("size 100") != std::string::npos);

  const int fd = ::open(FilePath(dir, 20).c_str(), O_RDWR);
  BOOST_REQUIRE(fd >= 0);
  unsigned char byte = 0;
  BOOST_REQUIRE(::pread(fd, &byte, 1, 150) == 1);
  byte = static_cast<unsigned char>(~byte);
  BOOST_REQUIRE(::pwrite(fd, &byte, 1, 150) == 1);
  ::close(fd);
  v = VerifyFsyncWorkload(dir, 11, 49);
  BOOST_REQUIRE(!v.ok());
  BOOST_TEST((v.status().code() == Code::kCorruption));
  BOOST_TEST(v.status().message().find("differs at byte 150") != std::string::npos);

  BOOST_REQUIRE(::unlink(FilePath(dir, 55).c_str()) == 0);
  v = VerifyFsyncWorkload(dir, 21, 39);
  BOOST_REQUIRE(!v.ok());
  BOOST_TEST((v.status().code() == Code::kNotFound));
  BOOST_TEST(v.status().message().find("file 55 ") != std::string::npos);
  // Up to the hole everything verifies, and nothing is intact after it.
  v = VerifyFsyncWorkload(dir, 21, 34);
  BOOST_REQUIRE(v.ok());
  BOOST_TEST(v->beyond == 0u);
}

BOOST_AUTO_TEST_CASE(CallbackErrorStopsTheRun) {
  ScratchDir d;
  const std::string dir = d.path() + "/w";
  WorkloadOptions o;
  o.dir = dir;
  o.count = 50;
  auto st = RunFsyncWorkload(o, SystemClock::Instance(), [](uint32_t index, uint32_t) {
    return index == 7 ? Status::Unavailable("xenstore gone") : Status::Ok();
  });
  BOOST_REQUIRE(!st.ok());
  BOOST_TEST(st.status().message() == "xenstore gone");
  BOOST_TEST(std::filesystem::exists(FilePath(dir, 7)));
  BOOST_TEST(!std::filesystem::exists(FilePath(dir, 8)));
}

BOOST_AUTO_TEST_CASE(InterleavedRunsWriteBothDirectoriesInFull) {
  ScratchDir d;
  InterleavedOptions o;
  o.dir_a = d.path() + "/a";
  o.dir_b = d.path() + "/b";
  o.count = 60;
  o.rounds = 6;
  o.warmup = 5;
  auto st = RunInterleaved(o, SystemClock::Instance());
  BOOST_REQUIRE_MESSAGE(st.ok(), st.status().ToString());
  for (const auto* s : {&st->first, &st->second}) {
    BOOST_TEST(s->files == 60u);
    // Two per file, one per new subdirectory (d000, d001) and one for the
    // new workload directory.
    BOOST_TEST(s->fsyncs == 2u * 60u + 2u + 1u);
    BOOST_TEST(s->elapsed.count() > 0);
  }
  for (const std::string& dir : {o.dir_a, o.dir_b}) {
    auto v = VerifyFsyncWorkload(dir, 0, 60);
    BOOST_REQUIRE_MESSAGE(v.ok(), v.status().ToString());
    BOOST_TEST(v->beyond == 0u);
    auto w = VerifyFsyncWorkload(dir + ".warmup", 0, 5);
    BOOST_REQUIRE_MESSAGE(w.ok(), w.status().ToString());
  }
  o.count = 61;
  BOOST_TEST(
      (RunInterleaved(o, SystemClock::Instance()).status().code() == Code::kInvalidArgument));
  o.count = 60;
  o.dir_b = o.dir_a;
  BOOST_TEST(
      (RunInterleaved(o, SystemClock::Instance()).status().code() == Code::kInvalidArgument));
}

BOOST_AUTO_TEST_CASE(BadArgumentsAreRefused) {
  WorkloadOptions o;
  o.dir = "";
  o.count = 1;
  BOOST_TEST(!RunFsyncWorkload(o, SystemClock::Instance(), nullptr).ok());
  o.dir = "/tmp/never-created-vnvfsload";
  o.count = 0;
  BOOST_TEST(!RunFsyncWorkload(o, SystemClock::Instance(), nullptr).ok());
  o.first = kMaxIndex;
  o.count = 2;
  BOOST_TEST(
      (RunFsyncWorkload(o, SystemClock::Instance(), nullptr).status().code() == Code::kOutOfRange));
  BOOST_TEST(!std::filesystem::exists(o.dir));
  BOOST_TEST((VerifyFsyncWorkload("/tmp", kMaxIndex, 2).status().code() == Code::kOutOfRange));
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace vnvram::lab
