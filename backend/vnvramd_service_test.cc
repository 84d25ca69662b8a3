// vnvramd under a service manager, black-box on the sim platform: a real
// sim xenstored and a real vnvramd whose NOTIFY_SOCKET is a datagram
// socket of this test. It sends READY=1 once serving, RELOADING=1 and
// READY=1 around a SIGHUP (which also reopens --log-file, as logrotate
// needs) and STOPPING=1 on SIGTERM. Every wait is on a message or an exit,
// with a deadline.
#define BOOST_TEST_MODULE vnvramd_service
#include <signal.h>
#include <stdlib.h>

#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "backend/testing/vnvramd_harness.h"
#include "platform/sim/xenstored/testing/xenstored_process.h"
#include "tests/notify_listener.h"

namespace vnvram::backend::testing {
namespace {

std::string ReadAll(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

struct Host {
  Host() {
    auto x = sim::testing::XenstoredProcess::Start({1});
    BOOST_TEST_REQUIRE(x.ok(), x.status().ToString());
    xsd = std::move(x).value();
    char tmpl[] = "/tmp/vnvramd-service-test-XXXXXX";
    BOOST_TEST_REQUIRE(::mkdtemp(tmpl) != nullptr);
    root = tmpl;
    auto l = vnvram::testing::NotifyListener::Create();
    BOOST_TEST_REQUIRE(l.ok(), l.status().ToString());
    notify = std::move(l).value();
  }
  ~Host() {
    daemon.reset();
    std::error_code ec;
    std::filesystem::remove_all(root, ec);
  }
  void Start(std::vector<std::string> extra) {
    VnvramdProcess::Options o;
    o.sim_dir = xsd->socket_dir();
    o.vault_dir = root + "/vault";
    o.log_path = root + "/stderr.log";
    o.extra_args = std::move(extra);
    o.extra_env = {notify->EnvAssignment()};
    auto d = VnvramdProcess::Start(o);
    BOOST_TEST_REQUIRE(d.ok(), d.status().ToString());
    daemon = std::move(d).value();
  }
  std::string Wait(std::string_view assignment) {
    auto m = notify->WaitFor(assignment, kWait);
    BOOST_TEST_REQUIRE(m.ok(), m.status().ToString() << "\nmessages:\n"
                                                     << notify->transcript() << "\nlog:\n"
                                                     << daemon->Log());
    return *m;
  }

  std::unique_ptr<sim::testing::XenstoredProcess> xsd;
  std::string root;
  std::unique_ptr<vnvram::testing::NotifyListener> notify;
  std::unique_ptr<VnvramdProcess> daemon;
};

BOOST_FIXTURE_TEST_SUITE(Service, Host)

BOOST_AUTO_TEST_CASE(ReadyWhenServingStoppingOnSigterm) {
  Start({});
  const std::string ready = Wait("READY=1");
  BOOST_TEST(ready.find("STATUS=serving 0 device(s)") != std::string::npos, ready);
  BOOST_TEST_REQUIRE(daemon->Signal(SIGTERM).ok());
  const std::string stopping = Wait("STOPPING=1");
  BOOST_TEST(stopping.find("STATUS=stopping") != std::string::npos, stopping);
  auto rc = daemon->Stop();
  BOOST_TEST_REQUIRE(rc.ok(), rc.status().ToString());
  BOOST_TEST(*rc == 0, daemon->Log());
}

// logrotate's default rotation: rename the file, then SIGHUP (the units'
// ExecReload and the logrotate snippet's postrotate). Lines before the
// SIGHUP stay in the renamed file; later ones go to a new file.
BOOST_AUTO_TEST_CASE(SighupReopensTheLogFileAfterRename) {
  const std::string log = root + "/vnvramd.log";
  Start({"--log-file", log});
  Wait("READY=1");
  BOOST_TEST_REQUIRE(::rename(log.c_str(), (log + ".1").c_str()) == 0);
  BOOST_TEST_REQUIRE(daemon->Signal(SIGHUP).ok());
  Wait("RELOADING=1");
  Wait("READY=1");  // after the reopen and the rescan
  BOOST_TEST_REQUIRE(daemon->Signal(SIGTERM).ok());
  Wait("STOPPING=1");
  auto rc = daemon->Stop();
  BOOST_TEST_REQUIRE(rc.ok(), rc.status().ToString());
  BOOST_TEST(*rc == 0, daemon->Log());

  const std::string before = ReadAll(log + ".1");
  const std::string after = ReadAll(log);
  BOOST_TEST(before.find("as domain 0, host") != std::string::npos, before);
  BOOST_TEST(before.find("SIGHUP") == std::string::npos, before);
  BOOST_TEST(after.find("SIGHUP: log reopened, rescanning devices") != std::string::npos, after);
  BOOST_TEST(after.find("signal 15: stopping") != std::string::npos, after);
  BOOST_TEST(after.find("as domain 0, host") == std::string::npos, after);
  // Nothing went to stderr: every line is in the log files.
  BOOST_TEST(daemon->Log().empty(), daemon->Log());
}

BOOST_AUTO_TEST_CASE(UnopenableLogFileIsAConfigurationError) {
  VnvramdProcess::Options o;
  o.sim_dir = xsd->socket_dir();
  o.vault_dir = root + "/vault";
  o.log_path = root + "/stderr.log";
  o.extra_args = {"--log-file", root + "/missing/dir/vnvramd.log"};
  auto r = VnvramdProcess::Start(o);
  BOOST_TEST_REQUIRE(!r.ok());
  BOOST_TEST(r.status().message().find("open log file " + root + "/missing/dir/vnvramd.log") !=
                 std::string::npos,
             r.status().message());
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace vnvram::backend::testing
