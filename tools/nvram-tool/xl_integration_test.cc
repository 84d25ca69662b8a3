// Tests of nvram-tool's xl integration on the sim platform, as processes:
// `create` refuses bad configs and a missing xl before any xl runs, and
// runs its whole sequence (xl create -p, attach, wait for the backends'
// InitWait, xl unpause; detach and xl destroy on failure) against a
// scripted xl that logs its calls (Xen's xl needs a hypervisor; the lab
// runs the real one). `watch` attaches the devices of a domain introduced
// with XS_INTRODUCE whose config is in its directory, reports bad configs
// and keeps going, and on XS_RELEASE removes every vnvram node of the
// domain, also when the toolstack already removed /local/domain/F. A
// vnvram-xenstored and a vnvramd (dom0) run as child processes; every wait
// is on an event (output line, ready fd, xenstore watch) with a deadline.
#define BOOST_TEST_MODULE xl_integration
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "backend/testing/vnvramd_harness.h"
#include "common/parse.h"
#include "platform/platform.h"
#include "platform/sim/store/xen_xs_wire.h"
#include "platform/sim/xenstored/testing/raw_xs_client.h"
#include "platform/sim/xenstored/testing/xenstored_process.h"
#include "tests/child_process.h"
#include "tests/notify_listener.h"
#include "xenstore-schema/schema.h"

namespace vnvram {
namespace {

namespace fe = schema::fe;
namespace be = schema::be;
using std::chrono::milliseconds;
using testing::ChildProcess;

constexpr milliseconds kWait{20000};
constexpr const char* kVol = "0b5e7c1a-2f4d-4e6b-9a8c-1d2e3f405162";
constexpr const char* kVol2 = "6a1e5d2c-0b7f-4c3e-9d8a-5f4e3d2c1b0a";
// libxl's domain name node, which the sim's "toolstack" (this test) writes.
constexpr std::string_view kNameNode = "name";
// The domain the scripted xl "creates" (the sim serves it from the start).
constexpr DomId kGuest = 5;

std::string Bin(const std::string& name) {
  return std::string(VNVRAM_BIN_DIR) + "/" + name;
}

std::string DomainNode(DomId d, std::string_view key = {}) {
  std::string p = std::string(schema::kDomainRoot) + "/" + std::to_string(d);
  if (!key.empty()) {
    p += '/';
    p += key;
  }
  return p;
}

void WriteFile(const std::string& path, const std::string& text, mode_t mode = 0644) {
  {
    std::ofstream f(path, std::ios::trunc);
    f << text;
  }
  BOOST_TEST_REQUIRE(::chmod(path.c_str(), mode) == 0);
}

std::string ReadFile(const std::string& path) {
  std::ifstream f(path);
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  return s;
}

bool OneLine(const std::string& out) {
  return !out.empty() && out.find('\n') == out.size() - 1;
}

// A sim host: xenstored serving domains 1, 2 and kGuest, vnvramd as dom0,
// a temporary directory with a scripted xl, and a dom0 xenstore handle.
struct Host {
  Host() {
    root = std::filesystem::temp_directory_path() /
           ("xl_integration_test." + std::to_string(::getpid()) + "." + std::to_string(++count));
    std::filesystem::remove_all(root);
    std::filesystem::create_directories(root / "vault");
    std::filesystem::create_directories(root / "configs");
    std::filesystem::create_directories(root / "bin");
    auto xs = sim::testing::XenstoredProcess::Start({1, 2, kGuest});
    BOOST_TEST_REQUIRE(xs.ok(), xs.status().ToString());
    xenstored = std::move(xs).value();
    backend::testing::VnvramdProcess::Options o;
    o.sim_dir = xenstored->socket_dir();
    o.vault_dir = (root / "vault").string();
    o.log_path = (root / "vnvramd.log").string();
    auto d = backend::testing::VnvramdProcess::Start(o);
    BOOST_TEST_REQUIRE(d.ok(), d.status().ToString());
    vnvramd = std::move(d).value();
    auto p = platform::OpenPlatform(Spec());
    BOOST_TEST_REQUIRE(p.ok(), p.status().ToString());
    platform = std::move(p).value();
    auto x = platform->OpenXenStore();
    BOOST_TEST_REQUIRE(x.ok(), x.status().ToString());
    xs0 = std::move(x).value();
    // xl as a script: logs each call; `domid` answers kGuest; unpause fails
    // when XL_FAIL_UNPAUSE is set.
    xl = (root / "bin" / "xl").string();
    xl_log = (root / "xl.log").string();
    WriteFile(xl,
              "#!/bin/sh\n"
              "echo \"$*\" >> \"$XL_LOG\"\n"
              "case \"$1\" in\n"
              "  domid) echo " +
                  std::to_string(kGuest) +
                  " ;;\n"
                  "  unpause) [ -z \"$XL_FAIL_UNPAUSE\" ] || exit 1 ;;\n"
                  "esac\n"
                  "exit 0\n",
              0755);
  }
  ~Host() {
    vnvramd.reset();
    xenstored.reset();
    std::filesystem::remove_all(root);
  }

  std::string Spec() const { return "sim:" + xenstored->socket_dir() + ":0"; }

  sim::testing::ProgramResult Tool(const std::vector<std::string>& args,
                                   std::map<std::string, std::string> env = {}) {
    std::vector<std::string> argv{Bin("nvram-tool"), "--platform", Spec()};
    argv.insert(argv.end(), args.begin(), args.end());
    env.emplace("XL_LOG", xl_log);
    auto r = sim::testing::RunProgram(argv, env, kWait);
    BOOST_TEST_REQUIRE(r.ok(), r.status().ToString());
    BOOST_TEST_REQUIRE(!r->timed_out);
    return *r;
  }

  std::string Config(const std::string& name, const std::string& text) {
    std::string path = (root / name).string();
    WriteFile(path, text);
    return path;
  }

  bool Exists(const std::string& path) { return xs0->Read(platform::kNoTx, path).ok(); }

  void Put(const std::string& path, const std::string& value) {
    Status s = xs0->Write(platform::kNoTx, path, value);
    BOOST_TEST_REQUIRE(s.ok(), path + ": " + s.ToString());
  }

  // What libxl does before introducing a domain: its home, owned by it,
  // with its name.
  void MakeDomain(DomId d, const std::string& name) {
    const std::string home = DomainNode(d);
    BOOST_TEST_REQUIRE(xs0->Mkdir(platform::kNoTx, home).ok());
    const std::vector<platform::PermEntry> perms = {{d, platform::Perm::kNone}};
    BOOST_TEST_REQUIRE(xs0->SetPermissions(platform::kNoTx, home, perms).ok());
    Put(DomainNode(d, kNameNode), name);
  }

  void Call(uint32_t type, std::initializer_list<std::string_view> args) {
    auto raw = sim::testing::RawXsClient::Connect(xenstored->dom0_socket());
    BOOST_TEST_REQUIRE(raw.ok(), raw.status().ToString());
    auto r = (*raw)->Call(type, sim::testing::XsArgs(args));
    BOOST_TEST_REQUIRE(r.ok(), r.status().ToString());
    BOOST_TEST_REQUIRE(r->hdr.type == type, r->payload);
  }
  void Introduce(DomId d) { Call(XS_INTRODUCE, {std::to_string(d), "1", "1"}); }
  void Release(DomId d) { Call(XS_RELEASE, {std::to_string(d)}); }

  std::string BackendState(DomId f, DevId dev) {
    auto v = backend::testing::WaitForValue(
        *xs0, schema::BackendKey(0, f, dev, be::kState),
        std::string(schema::XenbusStateValue(schema::XenbusState::kInitWait)), kWait);
    return v.ok() ? *v : v.status().ToString();
  }

  // No vnvram node of domain f is left anywhere.
  void ExpectNoNodes(DomId f) {
    BOOST_TEST(!Exists(schema::BackendFrontendDir(0, f)));
    BOOST_TEST(!Exists(schema::FrontendRoot(f)));
    BOOST_TEST(!Exists(schema::DomainVnvramDir(f)));
  }

  static inline int count = 0;
  std::filesystem::path root;
  std::unique_ptr<sim::testing::XenstoredProcess> xenstored;
  std::unique_ptr<backend::testing::VnvramdProcess> vnvramd;
  std::unique_ptr<platform::Platform> platform;
  std::unique_ptr<platform::XenStore> xs0;
  std::string xl;
  std::string xl_log;
};

std::string Vnvram(const std::string& specs) {
  return "name = \"g\"\nmemory = 256\nvnvram = [ " + specs + " ]\n";
}

BOOST_FIXTURE_TEST_SUITE(Create, Host)

BOOST_AUTO_TEST_CASE(BadConfigsFailBeforeXlRuns) {
  const std::string v = std::string("volume=") + kVol;
  const std::vector<std::pair<std::string, std::string>> cases = {
      {Vnvram("'" + v + ", size=1M, colour=red'"), "unknown key 'colour'"},
      {Vnvram("'" + v + ", size=1M, size=2M'"), "key 'size' given twice"},
      {Vnvram("'" + v + ", size=1Q'"), "size '1Q'"},
      {Vnvram("'" + v + ", size=2G'"), "size '2G'"},
      {Vnvram("'volume=0b5e7c1a-2f4d-4e6b-9a8c-1d2e3f40516, size=1M'"), "volume"},
      {Vnvram("''"), "empty vnvram spec"},
      {Vnvram("'" + v + ", size=1M, backend=32752'"), "backend '32752'"},
      {Vnvram("'" + v + ", size=1M, paths=0:1+99999:2'"), "paths: backend '99999'"},
      {"memory = 256\nvnvram = [ '" + v + ", size=1M' ]\n", "no name"},
      {"name = 'g'\nvnvram = [ '" + v + ", size=1M' \n", "not closed"},
  };
  for (const auto& [text, want] : cases) {
    const std::string cfg = Config("bad.cfg", text);
    auto r = Tool({"create", cfg, "--xl", xl});
    BOOST_TEST(r.exit_code == 2, r.out);
    BOOST_TEST(OneLine(r.out), r.out);
    BOOST_TEST(r.out.find(want) != std::string::npos, r.out + " (want " + want + ")");
    if (want != "no name") BOOST_TEST(r.out.find("bad.cfg:") != std::string::npos, r.out);
  }
  // An empty config name, a missing file, a refused xl option.
  auto r = Tool({"create", ""});
  BOOST_TEST(r.exit_code == 2, r.out);
  BOOST_TEST(OneLine(r.out), r.out);
  r = Tool({"create", (root / "none.cfg").string(), "--xl", xl});
  BOOST_TEST(r.exit_code == 1, r.out);
  BOOST_TEST(OneLine(r.out), r.out);
  const std::string good =
      Config("good.cfg", Vnvram(std::string("'volume=") + kVol + ", size=1M'"));
  r = Tool({"create", good, "--xl", xl, "--", "-c"});
  BOOST_TEST(r.exit_code == 2, r.out);
  BOOST_TEST(r.out.find("'-c'") != std::string::npos, r.out);
  r = Tool({"create", good, "--xl", xl, "--timeout", "0"});
  BOOST_TEST(r.exit_code == 2, r.out);
  // A backend named but not running: resolved before xl runs.
  const std::string named =
      Config("named.cfg", Vnvram(std::string("'volume=") + kVol + ", size=1M, backend=drv9'"));
  r = Tool({"create", named, "--xl", xl});
  BOOST_TEST(r.exit_code == 1, r.out);
  BOOST_TEST(r.out.find("drv9") != std::string::npos, r.out);
  BOOST_TEST(OneLine(r.out), r.out);
  BOOST_TEST(!std::filesystem::exists(xl_log), ReadFile(xl_log));
}

BOOST_AUTO_TEST_CASE(MissingXlIsAOneLineError) {
  const std::string good =
      Config("good.cfg", Vnvram(std::string("'volume=") + kVol + ", size=1M'"));
  auto r = Tool({"create", good}, {{"PATH", (root / "vault").string()}});
  BOOST_TEST(r.exit_code == 1, r.out);
  BOOST_TEST(OneLine(r.out), r.out);
  BOOST_TEST(r.out.find("xl not found in PATH") != std::string::npos, r.out);
  r = Tool({"create", good, "--xl", (root / "no-xl").string()});
  BOOST_TEST(r.exit_code == 1, r.out);
  BOOST_TEST(OneLine(r.out), r.out);
  BOOST_TEST(r.out.find("not an executable file") != std::string::npos, r.out);
  BOOST_TEST(!Exists(schema::FrontendRoot(kGuest)));
}

BOOST_AUTO_TEST_CASE(CreateAttachesWaitsAndUnpauses) {
  // dom0 named as libxl names it: backends may be given by name.
  Put(DomainNode(0, kNameNode), "Domain-0");
  const std::string cfg = Config(
      "g.cfg", Vnvram(std::string("'volume=") + kVol +
                      ", size=1M, paths=Domain-0:3:10',\n  'volume=" + kVol2 + ", size=64K'"));
  // xl found in PATH; name= on the command line overrides the config's.
  auto r = Tool({"create", cfg, "--", "name=\"guest-x\"", "-q"},
                {{"PATH", (root / "bin").string() + ":/usr/bin:/bin"}});
  BOOST_TEST_REQUIRE(r.exit_code == 0, r.out);
  BOOST_TEST(ReadFile(xl_log) == "create -p " + cfg + " name=\"guest-x\" -q\ndomid guest-x\n" +
                                     "unpause " + std::to_string(kGuest) + "\n");
  BOOST_TEST(r.out.find("domain guest-x (id 5) running with 2 vnvram devices") != std::string::npos,
             r.out);
  // Both devices exist, with the config's values, and their backends were
  // ready (InitWait) before the unpause.
  BOOST_TEST(BackendState(kGuest, 3) == "2");
  BOOST_TEST(BackendState(kGuest, 0) == "2");
  BOOST_TEST(*xs0->Read(platform::kNoTx, schema::FrontendKey(kGuest, 3, fe::kVolume)) == kVol);
  BOOST_TEST(*xs0->Read(platform::kNoTx, schema::FrontendKey(kGuest, 3, fe::kPathPriority)) ==
             "10");
  BOOST_TEST(*xs0->Read(platform::kNoTx, schema::FrontendKey(kGuest, 0, fe::kVolume)) == kVol2);
  BOOST_TEST(*xs0->Read(platform::kNoTx, schema::BackendKey(0, kGuest, 0, be::kSize)) == "65536");
}

BOOST_AUTO_TEST_CASE(FailureDetachesAndDestroys) {
  // Unpause fails: the devices (ready) are detached and the domain destroyed.
  const std::string cfg = Config("g.cfg", Vnvram(std::string("'volume=") + kVol + ", size=1M'"));
  auto r = Tool({"create", cfg, "--xl", xl}, {{"XL_FAIL_UNPAUSE", "1"}});
  BOOST_TEST(r.exit_code == 1, r.out);
  BOOST_TEST(r.out.find("nvram-tool: ") != std::string::npos, r.out);
  BOOST_TEST(r.out.find("destroyed") != std::string::npos, r.out);
  BOOST_TEST(ReadFile(xl_log) == "create -p " + cfg + "\ndomid g\nunpause 5\ndestroy 5\n");
  BOOST_TEST(!Exists(schema::FrontendRoot(kGuest)));
  BOOST_TEST(!Exists(schema::BackendFrontendDir(0, kGuest)));

  // A backend domain that serves nothing (no vnvramd in domain 2): not
  // ready in time; torn down the same way.
  std::filesystem::remove(xl_log);
  const std::string cfg2 =
      Config("g2.cfg", Vnvram(std::string("'volume=") + kVol + ", size=1M, backend=2'"));
  r = Tool({"create", cfg2, "--xl", xl, "--timeout", "1"});
  BOOST_TEST(r.exit_code == 1, r.out);
  BOOST_TEST(r.out.find("not ready within 1000 ms") != std::string::npos, r.out);
  BOOST_TEST(ReadFile(xl_log) == "create -p " + cfg2 + "\ndomid g\ndestroy 5\n");
  BOOST_TEST(!Exists(schema::FrontendRoot(kGuest)));
  BOOST_TEST(!Exists(schema::BackendFrontendDir(2, kGuest)));
}

BOOST_AUTO_TEST_CASE(SignalTearsDown) {
  // A backend that never gets ready, and a long timeout: SIGTERM while
  // create waits must detach and destroy, not leave a paused domain.
  const std::string cfg =
      Config("g.cfg", Vnvram(std::string("'volume=") + kVol + ", size=1M, backend=2'"));
  ::setenv("XL_LOG", xl_log.c_str(), 1);
  auto c = ChildProcess::Spawn(
      {Bin("nvram-tool"), "--platform", Spec(), "create", cfg, "--xl", xl, "--timeout", "600"});
  BOOST_TEST_REQUIRE(c.ok(), c.status().ToString());
  auto l = (*c)->WaitForLine("created domain g (id 5), paused", kWait);
  BOOST_TEST_REQUIRE(l.ok(), l.status().ToString() + "\n" + (*c)->transcript());
  BOOST_TEST_REQUIRE(::kill((*c)->pid(), SIGTERM) == 0);
  auto rc = (*c)->Wait(kWait);
  BOOST_TEST_REQUIRE(rc.ok(), rc.status().ToString());
  BOOST_TEST(*rc == 1, (*c)->transcript());
  BOOST_TEST((*c)->transcript().find("interrupted by a signal") != std::string::npos,
             (*c)->transcript());
  BOOST_TEST(ReadFile(xl_log) == "create -p " + cfg + "\ndomid g\ndestroy 5\n");
  BOOST_TEST(!Exists(schema::FrontendRoot(kGuest)));
  BOOST_TEST(!Exists(schema::BackendFrontendDir(2, kGuest)));
  ::unsetenv("XL_LOG");
}

BOOST_AUTO_TEST_SUITE_END()

// `nvram-tool watch` as a child process; ready through --ready-fd.
struct WatchProcess {
  WatchProcess(Host& h, const std::vector<std::string>& extra = {}) {
    int ready[2];
    BOOST_TEST_REQUIRE(::pipe(ready) == 0);  // the write end is inherited
    ::fcntl(ready[0], F_SETFD, FD_CLOEXEC);
    std::vector<std::string> argv{Bin("nvram-tool"), "--platform",
                                  h.Spec(),          "watch",
                                  "--config-dir",    (h.root / "configs").string(),
                                  "--ready-fd",      std::to_string(ready[1])};
    argv.insert(argv.end(), extra.begin(), extra.end());
    auto c = ChildProcess::Spawn(argv);
    ::close(ready[1]);
    BOOST_TEST_REQUIRE(c.ok(), c.status().ToString());
    child = std::move(c).value();
    pollfd p{ready[0], POLLIN, 0};
    char byte = 0;
    const bool got =
        ::poll(&p, 1, static_cast<int>(kWait.count())) == 1 && ::read(ready[0], &byte, 1) == 1;
    ::close(ready[0]);
    BOOST_TEST_REQUIRE(got, child->transcript());
  }
  std::string Line(std::string_view prefix) {
    auto l = child->WaitForLine(prefix, kWait);
    BOOST_TEST_REQUIRE(l.ok(), l.status().ToString() + "\n" + child->transcript());
    return *l;
  }
  std::unique_ptr<ChildProcess> child;
};

BOOST_FIXTURE_TEST_SUITE(Watch, Host)

BOOST_AUTO_TEST_CASE(AttachesOnIntroduceAndCleansOnRelease) {
  WatchProcess w(*this);
  WriteFile((root / "configs" / "guest7.cfg").string(),
            "name = 'guest7'\nvnvram = [ 'volume=" + std::string(kVol) +
                ", size=1M, paths=0:0:5',\n 'volume=" + kVol2 + ", size=128K, devid=4' ]\n");
  WriteFile((root / "configs" / "broken.cfg").string(),
            "vnvram = [ 'volume=" + std::string(kVol) + ", size=1M, bogus=1' ]\n");
  // A domain without a config, one with a bad config, one with a good one
  // (handled in that order: introduced in that order).
  MakeDomain(8, "noconf");
  Introduce(8);
  MakeDomain(9, "broken");
  Introduce(9);
  MakeDomain(7, "guest7");
  Introduce(7);
  std::string err = w.Line("nvram-tool watch: domain 9 (broken)");
  BOOST_TEST(err.find("broken.cfg:1: vnvram: unknown key 'bogus'") != std::string::npos, err);
  std::string l = w.Line("attached domain 7 (guest7) device 0");
  BOOST_TEST(l.find(kVol) != std::string::npos, l);
  l = w.Line("attached domain 7 (guest7) device 4");
  BOOST_TEST(l.find(kVol2) != std::string::npos, l);
  BOOST_TEST(BackendState(7, 0) == "2");
  BOOST_TEST(BackendState(7, 4) == "2");
  BOOST_TEST(*xs0->Read(platform::kNoTx, schema::FrontendKey(7, 0, fe::kPathPriority)) == "5");
  ExpectNoNodes(8);
  ExpectNoNodes(9);

  // xl destroy: the domain is released; every vnvram node goes.
  Release(7);
  l = w.Line("removed the vnvram nodes of domain 7");
  BOOST_TEST(l.find("(2 devices)") != std::string::npos, l);
  ExpectNoNodes(7);
  BOOST_TEST(!Exists(schema::BackendRoot(0)));

  // libxl removes /local/domain/F itself before the release: the backend
  // directories (which libxl does not know) still go. The domain id is
  // reused, so the new domain 7 is handled afresh.
  MakeDomain(7, "guest7");
  Introduce(7);
  w.Line("attached domain 7 (guest7) device 4");
  BOOST_TEST(BackendState(7, 4) == "2");
  BOOST_TEST_REQUIRE(xs0->Remove(platform::kNoTx, DomainNode(7)).ok());
  Release(7);
  w.Line("removed the vnvram nodes of domain 7");
  ExpectNoNodes(7);

  BOOST_TEST_REQUIRE(::kill(w.child->pid(), SIGTERM) == 0);
  auto rc = w.child->Wait(kWait);
  BOOST_TEST_REQUIRE(rc.ok(), rc.status().ToString());
  BOOST_TEST(*rc == 0, w.child->transcript());
}

BOOST_AUTO_TEST_CASE(StartupAttachesRunningDomainsAndReapsDeadOnes) {
  // Before the watcher starts: a running domain with a config, and the
  // leftovers of a dead one (domain 1 served, then released).
  WriteFile((root / "configs" / "early.cfg").string(),
            "vnvram = [ 'volume=" + std::string(kVol) + ", size=1M' ]\n");
  MakeDomain(11, "early");
  Introduce(11);
  backend::testing::Toolstack ts(*xs0);
  backend::testing::DeviceSpec dead{1, 0, 0, ParseUuid(kVol2).value(), 1 << 20};
  BOOST_TEST_REQUIRE(ts.Attach(dead).ok());
  BOOST_TEST(BackendState(1, 0) == "2");
  Release(1);
  WatchProcess w(*this);
  // Both were done before the ready byte.
  const std::string l = w.Line("removed the vnvram nodes of domain 1");
  BOOST_TEST(l.find("(1 device)") != std::string::npos, l);
  w.Line("attached domain 11 (early) device 0");
  ExpectNoNodes(1);
  BOOST_TEST(BackendState(11, 0) == "2");
}

BOOST_AUTO_TEST_CASE(BadOptions) {
  auto r = Tool({"watch", "--config-dir", (root / "missing").string()});
  BOOST_TEST(r.exit_code == 2, r.out);
  BOOST_TEST(OneLine(r.out), r.out);
  r = Tool({"watch", "--config-dir", (root / "configs").string(), "--ready-fd", "x"});
  BOOST_TEST(r.exit_code == 2, r.out);
  BOOST_TEST(OneLine(r.out), r.out);
  r = Tool({"watch", "--config-dir", (root / "configs").string(), "--close-timeout", "0"});
  BOOST_TEST(r.exit_code == 2, r.out);
  BOOST_TEST(OneLine(r.out), r.out);
  r = Tool({"watch", "--config-dir", (root / "configs").string(), "--log-file", "w.log"});
  BOOST_TEST(r.exit_code == 2, r.out);
  BOOST_TEST(r.out.find("not an absolute path") != std::string::npos, r.out);
  r = Tool({"watch", "--config-dir", (root / "configs").string(), "--log-file",
            (root / "missing" / "w.log").string()});
  BOOST_TEST(r.exit_code == 2, r.out);
  BOOST_TEST(OneLine(r.out), r.out);
}

// Under systemd (Type=notify): READY=1 once watching, RELOADING=1 and
// READY=1 around SIGHUP, which reopens --log-file after logrotate renamed
// it, and STOPPING=1 on SIGTERM.
BOOST_AUTO_TEST_CASE(NotifiesTheServiceManagerAndReopensItsLogOnSighup) {
  auto listener = testing::NotifyListener::Create();
  BOOST_TEST_REQUIRE(listener.ok(), listener.status().ToString());
  testing::NotifyListener& notify = **listener;
  const std::string log = (root / "watch.log").string();
  BOOST_TEST_REQUIRE(::setenv("NOTIFY_SOCKET", notify.path().c_str(), 1) == 0);
  WatchProcess w(*this, {"--log-file", log});
  ::unsetenv("NOTIFY_SOCKET");
  auto wait = [&](std::string_view assignment) {
    auto m = notify.WaitFor(assignment, kWait);
    BOOST_TEST_REQUIRE(m.ok(), m.status().ToString() + "\n" + notify.transcript());
    return *m;
  };
  const std::string ready = wait("READY=1");
  BOOST_TEST(ready.find("STATUS=watching for domains") != std::string::npos, ready);

  BOOST_TEST_REQUIRE(::rename(log.c_str(), (log + ".1").c_str()) == 0);
  BOOST_TEST_REQUIRE(::kill(w.child->pid(), SIGHUP) == 0);
  wait("RELOADING=1");
  wait("READY=1");
  // A domain handled after the reopen: its line is in the new file.
  WriteFile((root / "configs" / "late.cfg").string(),
            "vnvram = [ 'volume=" + std::string(kVol) + ", size=1M' ]\n");
  MakeDomain(12, "late");
  Introduce(12);
  // The watcher attached it (vnvramd answered): its line was written before
  // the watcher next polls for signals.
  BOOST_TEST_REQUIRE(BackendState(12, 0) == "2");
  BOOST_TEST_REQUIRE(::kill(w.child->pid(), SIGTERM) == 0);
  wait("STOPPING=1");
  auto rc = w.child->Wait(kWait);
  BOOST_TEST_REQUIRE(rc.ok(), rc.status().ToString());
  BOOST_TEST(*rc == 0);

  const std::string before = ReadFile(log + ".1");
  const std::string after = ReadFile(log);
  BOOST_TEST(before.find("watching for domains") != std::string::npos, before);
  BOOST_TEST(before.find("SIGHUP") == std::string::npos, before);
  BOOST_TEST(after.find("SIGHUP: log file reopened") != std::string::npos, after);
  BOOST_TEST(after.find("attached domain 12 (late) device 0") != std::string::npos, after);
  BOOST_TEST(w.child->transcript().empty(), w.child->transcript());
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace vnvram
