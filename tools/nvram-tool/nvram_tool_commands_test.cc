// Tests of nvram-tool's status, volume and cluster commands and of its
// command line as a whole, through the built binary: every subcommand
// with bad inputs (unknown option, duplicate option, bad size, bad UUID,
// empty value, out-of-range domain) exits nonzero with exactly one line on
// stderr that names the bad value; volume create/destroy/list round trips
// on a temporary cluster file (concurrent creators included, and destroy
// refused while a device of the host uses the volume); cluster status and
// status --json checked against a running two-host sim cluster; --version;
// and the bash completion script, sourced in bash. Waits are on events
// (process exit, xenstore watches with the cluster's bounded re-check);
// nothing sleeps.
#define BOOST_TEST_MODULE nvram_tool_commands
#include <sys/stat.h>

#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "backend/replication/cluster_config.h"
#include "tests/replication_cluster.h"
#include "tools/nvram-tool/toolstack.h"

namespace vnvram {
namespace {

using testing::ChildProcess;
using testing::ClusterBin;
using testing::SimCluster;
using testing::VolumeSpec;
using Json = nlohmann::json;
namespace rk = schema::repl;
namespace be = schema::be;

constexpr std::chrono::milliseconds kRun{20000};
constexpr const char* kNoXenstore = "sim:/nonexistent-vnvram-test:0";

// What a run printed on each stream.
struct Run {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs `argv` (argv[0] absolute) once through /bin/sh with stderr sent to
// a file of its own (RunProgram interleaves both streams), with `env` added
// to the environment.
Run RunSplit(const std::vector<std::string>& argv, std::map<std::string, std::string> env = {}) {
  char tmpl[] = "/tmp/vnvram-tool-stderr-XXXXXX";
  const int fd = ::mkstemp(tmpl);
  BOOST_TEST_REQUIRE(fd >= 0);
  ::close(fd);
  std::vector<std::string> sh{"/bin/sh", "-c", "exec \"$0\" \"$@\" 2>\"$VNVRAM_TEST_STDERR\""};
  sh.insert(sh.end(), argv.begin(), argv.end());
  env.emplace("VNVRAM_TEST_STDERR", tmpl);
  auto r = sim::testing::RunProgram(sh, env, kRun);
  const std::string err = testing::ReadWholeFile(tmpl);
  ::unlink(tmpl);
  BOOST_TEST_REQUIRE(r.ok(), r.status().ToString());
  BOOST_TEST_REQUIRE(!r->timed_out);
  return Run{r->exit_code, r->out, err};
}

std::vector<std::string> Tool(const std::string& platform, std::vector<std::string> args) {
  std::vector<std::string> argv{ClusterBin("nvram-tool"), "--platform", platform};
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

std::string ReadFile(const std::string& path) {
  return testing::ReadWholeFile(path);
}

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream f(path);
  f << text;
  BOOST_TEST_REQUIRE(f.good(), "cannot write " << path);
}

// A scratch directory removed at the end.
struct Scratch {
  Scratch() {
    char tmpl[] = "/tmp/vnvram-tool-cmd-test-XXXXXX";
    BOOST_TEST_REQUIRE(::mkdtemp(tmpl) != nullptr);
    dir = tmpl;
  }
  ~Scratch() {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  std::string dir;
};

constexpr const char* kClusterText = R"({
  "version": 1,
  "hosts": [
    {"id": "a", "endpoint": "tcp://127.0.0.1:7401"},
    {"id": "b", "endpoint": "tcp://127.0.0.1:7402"},
    {"id": "c", "endpoint": "tcp://127.0.0.1:7403"}
  ],
  "volumes": [
    {"uuid": "6a0c2f6e-1d2b-4c3d-9e8f-0123456789ab", "name": "journal0",
     "size": "64M", "replicas": ["a", "b", "c"], "policy": "sync"}
  ]
}
)";

struct BadCase {
  std::vector<std::string> args;
  int code;
  std::string names;  // must appear in the one stderr line
};

void ExpectOneLineError(const Run& r, const BadCase& c) {
  BOOST_TEST(r.exit_code == c.code, "exit " << r.exit_code << ", stderr: " << r.err);
  BOOST_TEST(r.err.rfind("nvram-tool: ", 0) == 0u, r.err);
  BOOST_TEST(std::count(r.err.begin(), r.err.end(), '\n') == 1, r.err);
  BOOST_TEST(r.err.find(c.names) != std::string::npos,
             "expected '" << c.names << "' in: " << r.err);
  BOOST_TEST(r.out.empty(), r.out);
}

// ---- bad inputs, every subcommand ----

BOOST_AUTO_TEST_CASE(EverySubcommandRejectsBadInputsWithOneLineNamingThem) {
  Scratch s;
  const std::string cluster = s.dir + "/cluster.json";
  WriteFile(cluster, kClusterText);
  const std::string dup_key = s.dir + "/dup.json";
  WriteFile(dup_key, R"({"version": 1, "hosts": [], "hosts": [], "volumes": []})");
  const std::string unknown_key = s.dir + "/unknown.json";
  WriteFile(unknown_key,
            R"({"version": 1, "hosts": [{"id": "a", "endpoint": "tcp://127.0.0.1:1"}],
                "volumes": [], "colour": "blue"})");
  const std::string v = "6a0c2f6e-1d2b-4c3d-9e8f-0123456789ab";
  const std::vector<std::string> create{"volume", "create", "--cluster", cluster};
  auto with = [](std::vector<std::string> base, std::vector<std::string> more) {
    base.insert(base.end(), more.begin(), more.end());
    return base;
  };
  const std::vector<BadCase> cases = {
      // top level
      {{"frobnicate"}, 2, "frobnicate"},
      {{"--bogus", "list"}, 2, "--bogus"},
      // volume create
      {with(create, {"--name", "j1", "--size", "1M", "--replicas", "a", "--bogus"}), 2,
       "'--bogus'"},
      {with(create, {"--name", "j1", "--name", "j2", "--size", "1M", "--replicas", "a"}), 2,
       "--name"},
      {with(create, {"--name", "j1", "--size", "1000", "--replicas", "a"}), 2, "--size '1000'"},
      {with(create, {"--name", "j1", "--size", "2G", "--replicas", "a"}), 2, "--size '2G'"},
      {with(create, {"--name", "j1", "--size", "12Q", "--replicas", "a"}), 2, "--size '12Q'"},
      {with(create, {"--name", "j1", "--size", "", "--replicas", "a"}), 2, "--size ''"},
      {with(create, {"--name", "", "--size", "1M", "--replicas", "a"}), 2, "--name ''"},
      {with(create, {"--name", "j/1", "--size", "1M", "--replicas", "a"}), 2, "--name 'j/1'"},
      {with(create, {"--name", "j1", "--size", "1M", "--replicas", ""}), 2, "--replicas ''"},
      {with(create, {"--name", "j1", "--size", "1M", "--replicas", "a,,b"}), 2, "'a,,b'"},
      {with(create, {"--name", "j1", "--size", "1M", "--replicas", "a,zz"}), 2, "'zz'"},
      {with(create, {"--name", "j1", "--size", "1M", "--replicas", "a,b,a"}), 2,
       "--replicas 'a': host listed twice"},
      {with(create, {"--name", "journal0", "--size", "1M", "--replicas", "a"}), 2,
       "--name 'journal0'"},
      {with(create, {"--name", "j1", "--size", "1M", "--replicas", "a", "--uuid", "xyz"}), 2,
       "--uuid 'xyz'"},
      {with(create, {"--name", "j1", "--size", "1M", "--replicas", "a", "--uuid", v}), 2,
       "--uuid " + v},
      {with(create, {"--name", "j1", "--size", "1M", "--replicas", "a", "--uuid",
                     "00000000-0000-0000-0000-000000000000"}),
       2, "--uuid 00000000-0000-0000-0000-000000000000"},
      {with(create, {"--name", "j1", "--size", "1M", "--replicas", "a", "--policy", "lazy"}), 2,
       "--policy 'lazy'"},
      {{"volume", "create", "--cluster", "", "--name", "j1", "--size", "1M", "--replicas", "a"},
       2,
       "--cluster ''"},
      {{"volume", "create", "--cluster", dup_key, "--name", "j1", "--size", "1M", "--replicas",
        "a"},
       1,
       "key 'hosts' given twice"},
      {{"volume", "create", "--cluster", unknown_key, "--name", "j1", "--size", "1M", "--replicas",
        "a"},
       1,
       "unknown key 'colour'"},
      {{"volume", "create", "--name", "j1"}, 2, "--size is required"},
      // volume destroy
      {{"volume", "destroy", "--cluster", cluster, ""}, 2, "volume ''"},
      {{"volume", "destroy", "--cluster", cluster, "no/such"}, 2, "'no/such'"},
      {{"volume", "destroy", "--cluster", cluster, "nosuch", "--force"}, 1, "'nosuch'"},
      {{"volume", "destroy", "--cluster", cluster, "journal0", "--bogus"}, 2, "'--bogus'"},
      {{"volume", "destroy", "--cluster", cluster, "journal0"}, 1, "--force skips the check"},
      // volume list
      {{"volume", "list", "--cluster", cluster, "--backend", "40000"}, 2, "--backend '40000'"},
      {{"volume", "list", "--cluster", cluster, "--backend", "-1"}, 2, "-1"},
      {{"volume", "list", "--cluster", s.dir + "/missing.json"}, 1, s.dir + "/missing.json"},
      {{"volume", "list", "--cluster", ""}, 2, "--cluster ''"},
      {{"volume", "list", "--cluster", cluster, "--bogus"}, 2, "'--bogus'"},
      {{"volume", "list", "--cluster", unknown_key}, 1, "unknown key 'colour'"},
      {{"volume"}, 2, "subcommand"},
      // cluster status
      {{"cluster", "status", "--cluster", cluster, "--backend", "32752"}, 2, "--backend '32752'"},
      {{"cluster", "status", "--cluster", cluster, "--backend", ""}, 2, "--backend ''"},
      {{"cluster", "status", "--cluster", dup_key}, 1, "key 'hosts' given twice"},
      {{"cluster", "status", "--cluster", ""}, 2, "--cluster ''"},
      {{"cluster", "status", "--cluster", cluster, "--bogus"}, 2, "'--bogus'"},
      {{"cluster", "stats"}, 2, "stats"},
      // status
      {{"status", "--backend", "99999"}, 2, "--backend '99999'"},
      {{"status", "--domain", "70000"}, 2, "--domain '70000'"},
      {{"status", "--domain", ""}, 2, "--domain ''"},
      {{"status", "--bogus"}, 2, "'--bogus'"},
      {{"status"}, 1, "opening xenstore"},
      // list
      {{"list", "--bogus"}, 2, "--bogus"},
      // attach
      {{"attach", "40000", "--backend", "0", "--devid", "0", "--size", "1M", "--volume", v},
       2,
       "'40000'"},
      {{"attach", "1", "--backend", "0", "--devid", "0", "--size", "1M", "--volume", "xyz"},
       2,
       "--volume 'xyz'"},
      {{"attach", "1", "--backend", "0", "--devid", "0", "--size", "1000x", "--volume", v},
       2,
       "--size '1000x'"},
      {{"attach", "1", "--backend", "0", "--devid", "0", "--size", "", "--volume", v},
       2,
       "--size ''"},
      {{"attach", "1", "--backend", "0", "--devid", "0", "--size", "1M", "--volume", v, "--bogus"},
       2,
       "--bogus"},
      // detach
      {{"detach", "1", "-1"}, 2, "-1"},
      {{"detach", "99999", "0"}, 2, "'99999'"},
      // failover
      {{"failover", "70000", v}, 2, "domain '70000'"},
      {{"failover", "1", "xyz"}, 2, "volume 'xyz'"},
      // monitor
      {{"monitor", "--domain", "99999"}, 2, "--domain '99999'"},
      // promote
      {{"promote", "--volume", "xyz"}, 2, "--volume 'xyz'"},
      {{"promote", "--volume", v, "--backend", "99999"}, 2, "--backend '99999'"},
      // inspect
      {{"inspect", "--cluster", cluster, "--host", "a", "--volume", "xyz", "--offset", "0",
        "--length", "1"},
       2,
       "--volume 'xyz'"},
      {{"inspect", "--cluster", cluster, "--host", "a", "--volume", v, "--offset", "0", "--length",
        "2M"},
       2,
       "--length '2M'"},
      // create and watch (the xl integration; their configs are tested in
      // xl_integration_test)
      {{"create"}, 2, "config is required"},
      {{"create", ""}, 2, "config ''"},
      {{"create", "--timeout", "abc", s.dir + "/guest.cfg"}, 2, "--timeout 'abc'"},
      {{"watch", "--close-timeout", "0"}, 2, "--close-timeout '0'"},
      {{"watch", "--bogus"}, 2, "--bogus"},
      // keygen
      {{"keygen", "--out", ""}, 2, "--out ''"},
      {{"keygen", "--bogus"}, 2, "--bogus"},
  };
  for (const auto& c : cases) {
    std::string label;
    for (const auto& a : c.args) label += a + " ";
    BOOST_TEST_CONTEXT(label) {
      ExpectOneLineError(RunSplit(Tool(kNoXenstore, c.args)), c);
    }
  }
  // No bad create changed the file.
  BOOST_TEST(ReadFile(cluster) == kClusterText);
}

BOOST_AUTO_TEST_CASE(VersionAndHelpOfEverySubcommand) {
  auto r = RunSplit({ClusterBin("nvram-tool"), "--version"});
  BOOST_TEST(r.exit_code == 0);
  BOOST_TEST(r.out.rfind("nvram-tool ", 0) == 0u, r.out);
  BOOST_TEST(r.out.find('.') != std::string::npos, r.out);
  for (const std::vector<std::string>& cmd :
       std::vector<std::vector<std::string>>{{"attach"},
                                             {"detach"},
                                             {"list"},
                                             {"status"},
                                             {"failover"},
                                             {"monitor"},
                                             {"promote"},
                                             {"inspect"},
                                             {"keygen"},
                                             {"volume"},
                                             {"volume", "create"},
                                             {"volume", "destroy"},
                                             {"volume", "list"},
                                             {"cluster"},
                                             {"cluster", "status"}}) {
    std::vector<std::string> argv{ClusterBin("nvram-tool")};
    argv.insert(argv.end(), cmd.begin(), cmd.end());
    argv.push_back("--help");
    auto h = RunSplit(argv);
    BOOST_TEST_CONTEXT(cmd.back()) {
      BOOST_TEST(h.exit_code == 0, h.err);
      BOOST_TEST(h.out.find("Usage:") != std::string::npos, h.out);
    }
  }
}

// ---- volume create / destroy / list on a file ----

BOOST_AUTO_TEST_CASE(VolumeCreateListDestroyRoundTripKeepsTheFileValid) {
  Scratch s;
  const std::string cluster = s.dir + "/cluster.json";
  WriteFile(cluster, kClusterText);
  BOOST_TEST_REQUIRE(::chmod(cluster.c_str(), 0640) == 0);

  auto c1 = RunSplit(Tool(kNoXenstore, {"volume", "create", "--cluster", cluster, "--name", "db",
                                        "--size", "2M", "--replicas", "b,c", "--policy", "async"}));
  BOOST_TEST_REQUIRE(c1.exit_code == 0, c1.err);
  BOOST_TEST(c1.err.empty(), c1.err);
  auto u1 = ParseUuid(c1.out.substr(0, c1.out.find('\n')));
  BOOST_TEST_REQUIRE(u1.ok(), c1.out);
  BOOST_TEST((u1->bytes[6] >> 4) == 4);  // a random (version 4) UUID
  const std::string fixed = "11111111-2222-4333-8444-555555555555";
  auto c2 = RunSplit(Tool(kNoXenstore, {"volume", "create", "--cluster", cluster, "--name", "wal",
                                        "--size", "4096", "--replicas", "c", "--uuid", fixed}));
  BOOST_TEST_REQUIRE(c2.exit_code == 0, c2.err);
  BOOST_TEST(c2.out == fixed + "\n");

  // The parser of vnvramd reads the result; the mode stayed; no temporary
  // file was left behind.
  auto parsed = replication::LoadClusterConfig(cluster);
  BOOST_TEST_REQUIRE(parsed.ok(), parsed.status().ToString());
  BOOST_TEST_REQUIRE(parsed->volumes.size() == 3u);
  const auto* db = parsed->FindVolume(*u1);
  BOOST_TEST_REQUIRE(db != nullptr);
  BOOST_TEST(db->name == "db");
  BOOST_TEST(db->size == 2u << 20);
  BOOST_TEST(replication::PolicyName(db->policy) == "async");
  BOOST_TEST((db->replicas == std::vector<std::string>{"b", "c"}));
  struct stat st {};
  BOOST_TEST_REQUIRE(::stat(cluster.c_str(), &st) == 0);
  BOOST_TEST((st.st_mode & 07777) == 0640u);
  size_t files = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(s.dir)) ++files;
  BOOST_TEST(files == 1u);

  auto l = RunSplit(Tool(kNoXenstore, {"volume", "list", "--cluster", cluster, "--json"}));
  BOOST_TEST_REQUIRE(l.exit_code == 0, l.err);
  auto j = Json::parse(l.out, nullptr, false);
  BOOST_TEST_REQUIRE(!j.is_discarded(), l.out);
  BOOST_TEST(j["cluster_file"] == cluster);
  BOOST_TEST(j["local_host"].is_null());
  BOOST_TEST(j["local_view_error"].is_string());
  BOOST_TEST_REQUIRE(j["volumes"].size() == 3u);
  BOOST_TEST(j["volumes"][1]["uuid"] == u1->ToString());
  BOOST_TEST(j["volumes"][1]["size"] == 2u << 20);
  BOOST_TEST(j["volumes"][1]["policy"] == "async");
  BOOST_TEST(j["volumes"][1]["local_state"] == "unknown");
  BOOST_TEST(j["volumes"][2]["name"] == "wal");

  // Through a symbolic link: the target changes, the link stays a link.
  const std::string link = s.dir + "/link.json";
  BOOST_TEST_REQUIRE(::symlink(cluster.c_str(), link.c_str()) == 0);
  auto c3 = RunSplit(Tool(kNoXenstore, {"volume", "create", "--cluster", link, "--name", "viaLink",
                                        "--size", "8K", "--replicas", "a"}));
  BOOST_TEST_REQUIRE(c3.exit_code == 0, c3.err);
  BOOST_TEST(std::filesystem::is_symlink(link));
  auto d0 =
      RunSplit(Tool(kNoXenstore, {"volume", "destroy", "--cluster", link, "viaLink", "--force"}));
  BOOST_TEST(d0.exit_code == 0, d0.err);
  BOOST_TEST(std::filesystem::is_symlink(link));
  BOOST_TEST_REQUIRE(::unlink(link.c_str()) == 0);

  // Destroy by name and by UUID (--force: no xenstore here).
  auto d1 =
      RunSplit(Tool(kNoXenstore, {"volume", "destroy", "--cluster", cluster, "db", "--force"}));
  BOOST_TEST(d1.exit_code == 0, d1.err);
  BOOST_TEST(d1.out.find("removed volume db (" + u1->ToString() + ")") == 0u, d1.out);
  auto d2 =
      RunSplit(Tool(kNoXenstore, {"volume", "destroy", "--cluster", cluster, fixed, "--force"}));
  BOOST_TEST(d2.exit_code == 0, d2.err);
  auto after = replication::LoadClusterConfig(cluster);
  BOOST_TEST_REQUIRE(after.ok(), after.status().ToString());
  BOOST_TEST_REQUIRE(after->volumes.size() == 1u);
  BOOST_TEST(after->volumes[0].name == "journal0");
  // Destroying it again: not found.
  auto d3 =
      RunSplit(Tool(kNoXenstore, {"volume", "destroy", "--cluster", cluster, fixed, "--force"}));
  BOOST_TEST(d3.exit_code == 1);
  BOOST_TEST(d3.err.find(fixed) != std::string::npos, d3.err);
}

BOOST_AUTO_TEST_CASE(ConcurrentVolumeCreatesAreAllKept) {
  Scratch s;
  const std::string cluster = s.dir + "/cluster.json";
  WriteFile(cluster, kClusterText);
  constexpr int kEditors = 8;
  std::vector<std::unique_ptr<ChildProcess>> editors;
  for (int i = 0; i < kEditors; ++i) {
    std::string name = "v";
    name.append(std::to_string(i));
    auto c =
        ChildProcess::Spawn(Tool(kNoXenstore, {"volume", "create", "--cluster", cluster, "--name",
                                               name, "--size", "1M", "--replicas", "a,b"}));
    BOOST_TEST_REQUIRE(c.ok(), c.status().ToString());
    editors.push_back(std::move(c).value());
  }
  for (auto& e : editors) {
    auto rc = e->Wait(kRun);
    BOOST_TEST_REQUIRE(rc.ok(), rc.status().ToString());
    BOOST_TEST(*rc == 0, e->transcript());
  }
  auto parsed = replication::LoadClusterConfig(cluster);
  BOOST_TEST_REQUIRE(parsed.ok(), parsed.status().ToString());
  BOOST_TEST(parsed->volumes.size() == size_t{kEditors} + 1);
}

BOOST_AUTO_TEST_CASE(VolumeDestroyIsRefusedWhileADeviceOfThisHostUsesIt) {
  Scratch s;
  const std::string cluster = s.dir + "/cluster.json";
  WriteFile(cluster, kClusterText);
  auto xsd = sim::testing::XenstoredProcess::Start({1});
  BOOST_TEST_REQUIRE(xsd.ok(), xsd.status().ToString());
  const std::string dom0 = "sim:" + (*xsd)->socket_dir() + ":0";
  auto p = platform::OpenPlatform(dom0);
  BOOST_TEST_REQUIRE(p.ok(), p.status().ToString());
  auto xs = (*p)->OpenXenStore();
  BOOST_TEST_REQUIRE(xs.ok(), xs.status().ToString());
  const Uuid vol = ParseUuid("6a0c2f6e-1d2b-4c3d-9e8f-0123456789ab").value();
  BOOST_TEST_REQUIRE(tools::Attach(**xs, {1, 0, 3, vol, 1 << 20, std::nullopt}).ok());

  auto refused = RunSplit(Tool(dom0, {"volume", "destroy", "--cluster", cluster, "journal0"}));
  BOOST_TEST(refused.exit_code == 1);
  BOOST_TEST(std::count(refused.err.begin(), refused.err.end(), '\n') == 1, refused.err);
  BOOST_TEST(refused.err.find("in use by domain 1 devid 3") != std::string::npos, refused.err);
  BOOST_TEST(ReadFile(cluster) == kClusterText);

  // Once the device is gone the check passes.
  tools::DetachOptions o;
  o.force = true;
  o.timeout = std::chrono::milliseconds(1);
  BOOST_TEST_REQUIRE(tools::Detach(**xs, 1, 3, o).ok());
  auto ok = RunSplit(Tool(dom0, {"volume", "destroy", "--cluster", cluster, "journal0"}));
  BOOST_TEST(ok.exit_code == 0, ok.err);
  auto parsed = replication::LoadClusterConfig(cluster);
  BOOST_TEST_REQUIRE(parsed.ok(), parsed.status().ToString());
  BOOST_TEST(parsed->volumes.empty());
}

// ---- status and cluster status against running vnvramd ----

Json ParseJson(const Run& r) {
  BOOST_TEST_REQUIRE(r.exit_code == 0, r.err);
  auto j = Json::parse(r.out, nullptr, false);
  BOOST_TEST_REQUIRE(!j.is_discarded(), r.out);
  return j;
}

const Json* FindBy(const Json& arr, const std::string& key, const std::string& value) {
  for (const auto& e : arr) {
    if (e.contains(key) && e[key] == value) return &e;
  }
  return nullptr;
}

BOOST_AUTO_TEST_CASE(StatusAndClusterStatusShowWhatTheRunningClusterPublishes) {
  const VolumeSpec vol{
      "3d2c1b0a-5f4e-4c3d-9d8a-0b7f6a1e5d2c", "journal", 1 << 20, {"a", "b"}, "sync"};
  testing::ClusterSpec spec;
  spec.hosts = {"a", "b"};
  spec.volumes = {vol};
  SimCluster c(spec);
  c.StartAll();
  c.WaitHealthy("a", vol);
  c.Attach("a", vol, 0);
  BOOST_TEST_REQUIRE(c.RunGuest("a", {"write", "--from", "0", "--count", "20"}) == 0);
  // Statistics are published at most once a second: wait for the writes.
  const std::string stat_key = schema::BackendKey(0, 1, 0, be::kStatRequests);
  BOOST_TEST_REQUIRE(c.WaitFor("statistics of the 20 persists",
                               [&] { return ParseU64(c.Read("a", stat_key)).value_or(0) >= 20; }));

  // status --json on a: the daemon, the volume with its path, the peer, the
  // device and its statistics as xenstore holds them.
  const Json st = ParseJson(RunSplit(Tool(c.node("a").Dom0(), {"status", "--json"})));
  BOOST_TEST(st["host_id"] == "a");
  BOOST_TEST(st["backend_domid"] == 0);
  BOOST_TEST(st["replicated"] == true);
  BOOST_TEST(st["daemon"]["status"] == "running");
  BOOST_TEST(st["daemon"]["pid"] == c.node("a").daemon->pid());
  BOOST_TEST_REQUIRE(st["volumes"].size() == 1u);
  const Json& sv = st["volumes"][0];
  BOOST_TEST(sv["uuid"] == vol.uuid);
  BOOST_TEST(sv["role"] == "primary");
  BOOST_TEST(sv["epoch"] == c.Repl("a", vol.uuid, rk::kEpoch));
  BOOST_TEST(sv["serving"] == true);
  BOOST_TEST_REQUIRE(sv["paths"].size() == 1u);
  BOOST_TEST(sv["paths"][0]["frontend_domid"] == 1);
  BOOST_TEST(sv["paths"][0]["devid"] == 0);
  BOOST_TEST_REQUIRE(FindBy(sv["replicas"], "host", "b") != nullptr);
  BOOST_TEST((*FindBy(sv["replicas"], "host", "b"))["state"] == "in-sync");
  BOOST_TEST_REQUIRE(FindBy(st["peers"], "host", "b") != nullptr);
  BOOST_TEST((*FindBy(st["peers"], "host", "b"))["state"] == "up");
  BOOST_TEST_REQUIRE(st["devices"].size() == 1u);
  const Json& dev = st["devices"][0];
  BOOST_TEST(dev["frontend_domid"] == 1);
  BOOST_TEST(dev["volume"] == vol.uuid);
  BOOST_TEST(dev["role"] == "primary");
  BOOST_TEST(dev["region_size"] == vol.size);
  const Json& stats = dev["statistics"];
  BOOST_TEST(stats["requests"].get<uint64_t>() >= 20u);
  for (const auto& [field, key] : std::vector<std::pair<std::string, std::string_view>>{
           {"durable_sequence", be::kStatDurableSequence},
           {"bytes", be::kStatBytes},
           {"errors", be::kStatErrors}}) {
    BOOST_TEST_CONTEXT(field) {
      BOOST_TEST(stats[field] == ParseU64(c.Read("a", schema::BackendKey(0, 1, 0, key))).value());
    }
  }
  BOOST_TEST(stats["errors"] == 0);
  // --domain: a guest that has no device sees nothing of the volume.
  const Json other =
      ParseJson(RunSplit(Tool(c.node("a").Dom0(), {"status", "--json", "--domain", "7"})));
  BOOST_TEST(other["devices"].empty());
  BOOST_TEST(other["volumes"].empty());

  // cluster status on a (the primary) and on b (a replica).
  const std::string file = c.cluster_file();
  const Json ca = ParseJson(
      RunSplit(Tool(c.node("a").Dom0(), {"cluster", "status", "--cluster", file, "--json"})));
  BOOST_TEST(ca["local_host"] == "a");
  BOOST_TEST(ca["daemon_status"] == "running");
  BOOST_TEST(ca["local_view_error"].is_null());
  BOOST_TEST(ca["curve"] == false);
  BOOST_TEST(ca["settings"]["heartbeat_interval_ms"] == spec.heartbeat_interval_ms);
  BOOST_TEST_REQUIRE(ca["hosts"].size() == 2u);
  const Json* ha = FindBy(ca["hosts"], "id", "a");
  const Json* hb = FindBy(ca["hosts"], "id", "b");
  BOOST_TEST_REQUIRE((ha != nullptr && hb != nullptr));
  BOOST_TEST((*ha)["link"] == "self");
  BOOST_TEST((*ha)["self"] == true);
  BOOST_TEST((*ha)["endpoint"] == c.node("a").endpoint());
  BOOST_TEST((*hb)["link"] == "up");
  BOOST_TEST((*hb)["published_endpoint"] == c.node("b").endpoint());
  // Published with the counters (at most once a second): a number or absent.
  BOOST_TEST(((*hb)["last_seen_ms"].is_null() || (*hb)["last_seen_ms"].is_number_unsigned()));
  BOOST_TEST_REQUIRE(ca["volumes"].size() == 1u);
  const Json& va = ca["volumes"][0];
  BOOST_TEST(va["uuid"] == vol.uuid);
  BOOST_TEST(va["primary"] == "a");
  BOOST_TEST(va["local_state"] == "published");
  BOOST_TEST(va["local"]["role"] == "primary");
  BOOST_TEST(va["local"]["epoch"] == c.ReplU64("a", vol.uuid, rk::kEpoch));
  BOOST_TEST_REQUIRE(va["replica_states"].size() == 1u);
  BOOST_TEST(va["replica_states"][0]["host"] == "b");
  BOOST_TEST(va["replica_states"][0]["state"] == "in-sync");
  BOOST_TEST(ca["drift"].empty());

  const Json cb = ParseJson(
      RunSplit(Tool(c.node("b").Dom0(), {"cluster", "status", "--cluster", file, "--json"})));
  BOOST_TEST(cb["local_host"] == "b");
  BOOST_TEST((*FindBy(cb["hosts"], "id", "a"))["link"] == "up");
  BOOST_TEST(cb["volumes"][0]["local"]["role"] == "replica");
  BOOST_TEST(cb["volumes"][0]["local"]["epoch"] == c.ReplU64("a", vol.uuid, rk::kEpoch));
  BOOST_TEST(cb["volumes"][0]["primary"].is_null());

  // inspect --json reads a's copy over ZeroMQ (no platform needed).
  const Json in = ParseJson(
      RunSplit({ClusterBin("nvram-tool"), "inspect", "--cluster", file, "--host", "a", "--volume",
                vol.uuid, "--offset", "0", "--length", "4096", "--hex", "--json"}));
  BOOST_TEST(in["host"] == "a");
  BOOST_TEST(in["volume"] == vol.uuid);
  BOOST_TEST(in["epoch"] == c.ReplU64("a", vol.uuid, rk::kEpoch));
  BOOST_TEST(in["length"] == 4096);
  BOOST_TEST(in["hex"].get<std::string>().size() == 8192u);
  auto in_text = RunSplit({ClusterBin("nvram-tool"), "inspect", "--cluster", file, "--host", "a",
                           "--volume", vol.uuid, "--offset", "0", "--length", "4096"});
  BOOST_TEST(in_text.out.find("crc32c " + in["crc32c"].get<std::string>()) != std::string::npos,
             in_text.out);
  // Without --cluster, inspect reads $VNVRAM_CLUSTER like the other commands.
  auto in_env = RunSplit({ClusterBin("nvram-tool"), "inspect", "--host", "a", "--volume", vol.uuid,
                          "--offset", "0", "--length", "4096"},
                         {{"VNVRAM_CLUSTER", file}});
  BOOST_TEST(in_env.exit_code == 0, in_env.err);
  BOOST_TEST(in_env.out == in_text.out);

  // --backend defaults to the domain the tool runs in: run in the guest's
  // domain 1, status reads domain 1's (absent) vnvramd, not dom0's.
  auto from_guest = RunSplit(Tool(c.node("a").Dom1(), {"status"}));
  BOOST_TEST(from_guest.exit_code == 1);
  BOOST_TEST(from_guest.err.find("domain 1 runs no vnvramd") != std::string::npos, from_guest.err);

  // A volume added to the file is not in the running vnvramd until it
  // restarts: volume list and cluster status say so.
  auto created =
      RunSplit(Tool(c.node("a").Dom0(), {"volume", "create", "--cluster", file, "--name", "later",
                                         "--size", "64K", "--replicas", "a,b"}));
  BOOST_TEST_REQUIRE(created.exit_code == 0, created.err);
  const std::string later = created.out.substr(0, created.out.find('\n'));
  const Json la = ParseJson(
      RunSplit(Tool(c.node("a").Dom0(), {"volume", "list", "--cluster", file, "--json"})));
  const Json* lv = FindBy(la["volumes"], "uuid", later);
  BOOST_TEST_REQUIRE(lv != nullptr);
  BOOST_TEST((*lv)["local_state"] == "not-published");
  BOOST_TEST((*lv)["local"].is_null());
  const Json* lj = FindBy(la["volumes"], "uuid", vol.uuid);
  BOOST_TEST_REQUIRE(lj != nullptr);
  BOOST_TEST((*lj)["local"]["role"] == "primary");
  BOOST_TEST_REQUIRE(la["drift"].size() == 1u);
  BOOST_TEST(la["drift"][0].get<std::string>().find("restart vnvramd") != std::string::npos);
  // The text form says it too.
  auto text = RunSplit(Tool(c.node("a").Dom0(), {"cluster", "status", "--cluster", file}));
  BOOST_TEST(text.exit_code == 0, text.err);
  BOOST_TEST(text.out.find("note: volume later (" + later + ")") != std::string::npos, text.out);
  // Destroy refuses the volume the guest uses, on this host.
  auto refused =
      RunSplit(Tool(c.node("a").Dom0(), {"volume", "destroy", "--cluster", file, vol.name}));
  BOOST_TEST(refused.exit_code == 1);
  BOOST_TEST(refused.err.find("in use by domain 1 devid 0") != std::string::npos, refused.err);
}

// ---- man page ----

BOOST_AUTO_TEST_CASE(ManPageRendersWithoutWarningsAndNamesEveryCommand) {
  const std::string page = std::string(VNVRAM_SOURCE_DIR) + "/docs/man/nvram-tool.8";
  if (::access("/usr/bin/groff", X_OK) != 0) {
    BOOST_TEST_MESSAGE("skipped: no /usr/bin/groff (apt-get install groff-base)");
    return;
  }
  // -ww: every warning; -z: no output, only diagnostics.
  auto warn =
      sim::testing::RunProgram({"/usr/bin/groff", "-man", "-Tutf8", "-ww", "-z", page}, {}, kRun);
  BOOST_TEST_REQUIRE(warn.ok(), warn.status().ToString());
  BOOST_TEST(warn->exit_code == 0, warn->out);
  BOOST_TEST(warn->out.empty(), warn->out);
  auto text = sim::testing::RunProgram(
      {"/bin/sh", "-c", "/usr/bin/groff -man -Tascii -P-cbou \"$0\" 2>/dev/null", page}, {}, kRun);
  BOOST_TEST_REQUIRE(text.ok(), text.status().ToString());
  // Every command of --help has its entry.
  auto help = RunSplit({ClusterBin("nvram-tool"), "--help"});
  BOOST_TEST_REQUIRE(help.exit_code == 0);
  const size_t from = help.out.find("Subcommands:");
  BOOST_TEST_REQUIRE(from != std::string::npos, help.out);
  std::istringstream lines(help.out.substr(from));
  std::string line;
  std::getline(lines, line);
  int commands = 0;
  while (std::getline(lines, line)) {
    std::istringstream words(line);
    std::string name;
    if (!(words >> name)) continue;
    ++commands;
    BOOST_TEST_CONTEXT(name) {
      BOOST_TEST(text->out.find("\n       " + name + " ") != std::string::npos);
    }
  }
  BOOST_TEST(commands >= 13);
  for (const char* section : {"EXIT STATUS", "EXAMPLES", "JSON OUTPUT", "volume create",
                              "volume destroy", "volume list", "cluster status"}) {
    BOOST_TEST(text->out.find(section) != std::string::npos, section);
  }
}

// ---- bash completion ----

std::string Complete(const std::vector<std::string>& words) {
  std::string line = "source '" + std::string(VNVRAM_SOURCE_DIR) +
                     "/tools/completion/nvram-tool' || exit 3; COMP_WORDS=(";
  for (const auto& w : words) line += "'" + w + "' ";
  line += "); COMP_CWORD=" + std::to_string(words.size() - 1) +
          "; _nvram_tool; printf '%s\\n' \"${COMPREPLY[@]}\"";
  auto r = sim::testing::RunProgram({"/bin/bash", "--norc", "-c", line}, {}, kRun);
  BOOST_TEST_REQUIRE(r.ok(), r.status().ToString());
  BOOST_TEST_REQUIRE(r->exit_code == 0, r->out);
  return r->out;
}

BOOST_AUTO_TEST_CASE(BashCompletionOffersSubcommandsAndTheirOptions) {
  if (::access("/bin/bash", X_OK) != 0) {
    BOOST_TEST_MESSAGE("skipped: no /bin/bash");
    return;
  }
  BOOST_TEST(Complete({"nvram-tool", "vol"}) == "volume\n");
  BOOST_TEST(Complete({"nvram-tool", "c"}) == "create\ncluster\n");
  BOOST_TEST(Complete({"nvram-tool", "--platform", "xen", "volume", ""}) ==
             "create\ndestroy\nlist\n");
  BOOST_TEST(Complete({"nvram-tool", "volume", "create", "--re"}) == "--replicas\n");
  BOOST_TEST(Complete({"nvram-tool", "volume", "create", "--policy", "a"}) == "async\n");
  BOOST_TEST(Complete({"nvram-tool", "cluster", "status", "--j"}) == "--json\n");
  BOOST_TEST(Complete({"nvram-tool", "status", "--d"}) == "--domain\n");
  BOOST_TEST(Complete({"nvram-tool", "--v"}) == "--version\n");
  BOOST_TEST(Complete({"nvram-tool", "watch", "--c"}) == "--config-dir\n--close-timeout\n");
  BOOST_TEST(Complete({"nvram-tool", "watch", "--l"}) == "--log-file\n");
}

}  // namespace
}  // namespace vnvram
