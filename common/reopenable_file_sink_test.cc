#include "common/reopenable_file_sink.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/log.h"
#include "common/testing/temp_dir.h"

namespace vnvram::log {
namespace {

using vnvram::testing::TempDir;

std::string ReadAll(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

BOOST_AUTO_TEST_SUITE(ReopenableFileSinkTest)

// logrotate's default rotation: rename the file, then tell the program to
// reopen. Lines before the reopen stay in the renamed file; later ones go
// to a new file at the original path.
BOOST_AUTO_TEST_CASE(RenameThenReopenSplitsTheLinesBetweenTheFiles) {
  TempDir dir;
  const std::string path = dir.path + "/daemon.log";
  auto sink = ReopenableFileSink::Open(path);
  BOOST_TEST_REQUIRE(sink.ok(), sink.status().ToString());
  spdlog::logger logger("sink-test", *sink);
  logger.set_pattern("%v");
  logger.info("before rotation {}", 1);
  BOOST_TEST(ReadAll(path) == "before rotation 1\n");  // no buffering

  BOOST_TEST_REQUIRE(::rename(path.c_str(), (path + ".1").c_str()) == 0);
  logger.info("after rename, before reopen");
  BOOST_TEST_REQUIRE((*sink)->Reopen().ok());
  logger.info("after reopen");

  BOOST_TEST(ReadAll(path + ".1") == "before rotation 1\nafter rename, before reopen\n");
  BOOST_TEST(ReadAll(path) == "after reopen\n");
  struct stat st {};
  BOOST_TEST_REQUIRE(::stat(path.c_str(), &st) == 0);
  BOOST_TEST((st.st_mode & 0777) == 0640u);
}

BOOST_AUTO_TEST_CASE(AppendsToAnExistingFile) {
  TempDir dir;
  const std::string path = dir.path + "/daemon.log";
  std::ofstream(path) << "earlier run\n";
  auto sink = ReopenableFileSink::Open(path);
  BOOST_TEST_REQUIRE(sink.ok(), sink.status().ToString());
  spdlog::logger logger("sink-test-append", *sink);
  logger.set_pattern("%v");
  logger.warn("this run");
  BOOST_TEST(ReadAll(path) == "earlier run\nthis run\n");
}

BOOST_AUTO_TEST_CASE(FailedReopenKeepsTheOldFile) {
  TempDir dir;
  const std::string sub = dir.path + "/sub";
  BOOST_TEST_REQUIRE(::mkdir(sub.c_str(), 0700) == 0);
  const std::string path = sub + "/daemon.log";
  auto sink = ReopenableFileSink::Open(path);
  BOOST_TEST_REQUIRE(sink.ok(), sink.status().ToString());
  spdlog::logger logger("sink-test-fail", *sink);
  logger.set_pattern("%v");
  // The directory goes away: the reopen fails, the lines keep landing in
  // the file the sink had.
  BOOST_TEST_REQUIRE(::rename(sub.c_str(), (dir.path + "/moved").c_str()) == 0);
  Status s = (*sink)->Reopen();
  BOOST_TEST(!s.ok());
  BOOST_TEST(s.message().find(path) != std::string::npos, s.ToString());
  logger.info("still written");
  BOOST_TEST(ReadAll(dir.path + "/moved/daemon.log") == "still written\n");
}

BOOST_AUTO_TEST_CASE(OpenFailsOnAMissingDirectory) {
  auto sink = ReopenableFileSink::Open("/nonexistent-vnvram-dir/daemon.log");
  BOOST_TEST(!sink.ok());
}

// The global logger: InitToFile() then Reopen() after a rename.
BOOST_AUTO_TEST_CASE(InitToFileAndReopen) {
  TempDir dir;
  const std::string path = dir.path + "/prog.log";
  BOOST_TEST_REQUIRE(InitToFile("prog", Level::kInfo, path).ok());
  spdlog::info("first");
  BOOST_TEST_REQUIRE(::rename(path.c_str(), (path + ".1").c_str()) == 0);
  BOOST_TEST_REQUIRE(Reopen().ok());
  spdlog::info("second");
  const std::string old_log = ReadAll(path + ".1");
  const std::string new_log = ReadAll(path);
  BOOST_TEST(old_log.find("prog[") != std::string::npos, old_log);
  BOOST_TEST(old_log.find("info: first\n") != std::string::npos, old_log);
  BOOST_TEST(old_log.find("second") == std::string::npos, old_log);
  BOOST_TEST(new_log.find("info: second\n") != std::string::npos, new_log);
  BOOST_TEST(new_log.find("first") == std::string::npos, new_log);
  // Back on stderr: Reopen() has nothing to do.
  Init("prog", Level::kInfo);
  BOOST_TEST(Reopen().ok());
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace vnvram::log
