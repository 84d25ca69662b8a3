// Debian's stock xenstore-utils (xenstore-read, -write, -ls, -list, -rm,
// -exists, -chmod, -watch) against vnvram-xenstored through XENSTORED_PATH,
// unchanged. Exits 77 (skipped) when xenstore-utils is not installed.
#define BOOST_TEST_MODULE sim_xenstore_utils
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <cstdio>
#include <cstdlib>

#include "platform/sim/xenstored/testing/xenstored_process.h"

namespace vnvram::sim {
namespace {

using testing::LineReader;
using testing::ProgramResult;
using testing::RunProgram;
using testing::XenstoredProcess;

constexpr const char* kUtils[] = {"xenstore-read",  "xenstore-write", "xenstore-ls",
                                  "xenstore-list",  "xenstore-rm",    "xenstore-exists",
                                  "xenstore-chmod", "xenstore-watch"};

// VNVRAM_XENSTORE_UTILS_DIR overrides where the tools are looked for.
std::string Tool(const std::string& name) {
  const char* dir = std::getenv("VNVRAM_XENSTORE_UTILS_DIR");
  return std::string(dir != nullptr ? dir : "/usr/bin") + "/" + name;
}

struct SkipWithoutXenstoreUtils {
  SkipWithoutXenstoreUtils() {
    for (const char* u : kUtils) {
      if (::access(Tool(u).c_str(), X_OK) != 0) {
        std::printf("SKIP: %s not found: install Debian's xenstore-utils\n", Tool(u).c_str());
        std::fflush(stdout);
        std::_Exit(77);
      }
    }
  }
};
BOOST_TEST_GLOBAL_FIXTURE(SkipWithoutXenstoreUtils);

struct Daemon {
  std::unique_ptr<XenstoredProcess> proc;
  Daemon() {
    auto p = XenstoredProcess::Start({1, 2});
    BOOST_REQUIRE_MESSAGE(p.ok(), p.status().ToString());
    proc = std::move(*p);
  }
  ~Daemon() { BOOST_CHECK_MESSAGE(proc->Alive(), "daemon died; log:\n" + proc->Log()); }

  // Runs a tool as dom0 (domid 0) or as domain `domid` through its socket.
  ProgramResult Run(std::vector<std::string> argv, DomId domid = 0) {
    argv[0] = Tool(argv[0]);
    const std::string socket = domid == 0 ? proc->dom0_socket() : proc->domain_socket(domid);
    auto r = RunProgram(argv, {{"XENSTORED_PATH", socket}});
    BOOST_REQUIRE_MESSAGE(r.ok(), r.status().ToString());
    BOOST_REQUIRE_MESSAGE(!r->timed_out, argv[0] + " timed out");
    return std::move(*r);
  }
};

BOOST_FIXTURE_TEST_SUITE(XenstoreUtils, Daemon)

BOOST_AUTO_TEST_CASE(WriteReadListLsExistsRm) {
  auto w = Run({"xenstore-write", "/u/a", "one", "/u/b", "two"});
  BOOST_TEST(w.exit_code == 0, w.out);
  auto r = Run({"xenstore-read", "/u/a", "/u/b"});
  BOOST_TEST(r.exit_code == 0);
  BOOST_TEST(r.out == "one\ntwo\n");
  auto l = Run({"xenstore-list", "/u"});
  BOOST_TEST(l.exit_code == 0);
  BOOST_TEST(l.out == "a\nb\n");
  auto ls = Run({"xenstore-ls", "/u"});
  BOOST_TEST(ls.exit_code == 0);
  BOOST_TEST(ls.out == "a = \"one\"\nb = \"two\"\n");
  BOOST_TEST(Run({"xenstore-exists", "/u/a"}).exit_code == 0);
  BOOST_TEST(Run({"xenstore-rm", "/u/a"}).exit_code == 0);
  BOOST_TEST(Run({"xenstore-exists", "/u/a"}).exit_code != 0);
  auto missing = Run({"xenstore-read", "/u/a"});
  BOOST_TEST(missing.exit_code != 0);
}

BOOST_AUTO_TEST_CASE(LsOfWholeTreeShowsDomainHomes) {
  auto ls = Run({"xenstore-ls", "/local/domain"});
  BOOST_TEST(ls.exit_code == 0, ls.out);
  BOOST_TEST(ls.out == "1 = \"\"\n2 = \"\"\n");
}

BOOST_AUTO_TEST_CASE(ChmodSetsPermissionsThatLsShowsAndDomainsObey) {
  BOOST_REQUIRE(Run({"xenstore-write", "/shared/v", "s"}).exit_code == 0);
  auto c = Run({"xenstore-chmod", "/shared/v", "n0", "r1"});
  BOOST_TEST(c.exit_code == 0, c.out);
  auto ls = Run({"xenstore-ls", "-p", "/shared"});
  BOOST_TEST(ls.exit_code == 0);
  BOOST_TEST(ls.out.find("(n0,r1)") != std::string::npos, ls.out);
  auto r1 = Run({"xenstore-read", "/shared/v"}, 1);
  BOOST_TEST(r1.exit_code == 0, r1.out);
  BOOST_TEST(r1.out == "s\n");
  BOOST_TEST(Run({"xenstore-read", "/shared/v"}, 2).exit_code != 0);
  BOOST_TEST(Run({"xenstore-write", "/shared/v", "x"}, 1).exit_code != 0);
}

BOOST_AUTO_TEST_CASE(DomainSocketIsDeniedWriteToAnotherDomainsNodes) {
  BOOST_REQUIRE(Run({"xenstore-write", "data/mine", "2"}, 2).exit_code == 0);
  auto w = Run({"xenstore-write", "/local/domain/2/data/mine", "stolen"}, 1);
  BOOST_TEST(w.exit_code != 0);
  BOOST_TEST(w.out.find("could not write") != std::string::npos, w.out);
  auto rm = Run({"xenstore-rm", "/local/domain/2/data"}, 1);
  BOOST_TEST(rm.exit_code != 0);
  BOOST_TEST(Run({"xenstore-read", "/local/domain/2/data/mine"}).out == "2\n");
  // Its own home is fine, through a relative path too.
  BOOST_TEST(Run({"xenstore-write", "data/x", "1"}, 1).exit_code == 0);
  BOOST_TEST(Run({"xenstore-read", "/local/domain/1/data/x"}).out == "1\n");
}

BOOST_AUTO_TEST_CASE(WatchPrintsInitialEventThenChange) {
  auto watch = LineReader::Spawn({Tool("xenstore-watch"), "-n", "2", "/wt"},
                                 {{"XENSTORED_PATH", proc->dom0_socket()}});
  BOOST_REQUIRE(watch.ok());
  auto first = (*watch)->NextLine();
  BOOST_REQUIRE_MESSAGE(first.ok(), first.status().ToString());
  BOOST_TEST(*first == "/wt");
  BOOST_REQUIRE(Run({"xenstore-write", "/wt/k", "v"}).exit_code == 0);
  auto second = (*watch)->NextLine();
  BOOST_REQUIRE_MESSAGE(second.ok(), second.status().ToString());
  BOOST_TEST(*second == "/wt/k");
  auto rc = (*watch)->Wait();
  BOOST_REQUIRE(rc.ok());
  BOOST_TEST(*rc == 0);
}

BOOST_AUTO_TEST_CASE(DomainWatchOnItsHomeSeesItsOwnWrites) {
  auto watch = LineReader::Spawn({Tool("xenstore-watch"), "-n", "2", "/local/domain/1"},
                                 {{"XENSTORED_PATH", proc->domain_socket(1)}});
  BOOST_REQUIRE(watch.ok());
  BOOST_REQUIRE((*watch)->NextLine().ok());
  BOOST_REQUIRE(Run({"xenstore-write", "k", "v"}, 1).exit_code == 0);
  auto second = (*watch)->NextLine();
  BOOST_REQUIRE_MESSAGE(second.ok(), second.status().ToString());
  BOOST_TEST(*second == "/local/domain/1/k");
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace vnvram::sim
