#define BOOST_TEST_MODULE replication_cluster_config
#include "backend/replication/cluster_config.h"

#include <boost/test/unit_test.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

namespace vnvram::replication {
namespace {

constexpr const char* kKeyA = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7";
constexpr const char* kKeyB = "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID";
constexpr const char* kKeyC = "JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6";

std::string Replace(std::string s, const std::string& from, const std::string& to) {
  const size_t at = s.find(from);
  BOOST_REQUIRE_MESSAGE(at != std::string::npos, "fixture lacks " << from);
  return s.replace(at, from.size(), to);
}

std::string Good() {
  return R"({
  "version": 1,
  "settings": {"heartbeat-interval-ms": 50, "peer-expiry-ms": 500, "resync-chunk-size": "64K"},
  "hosts": [
    {"id": "host-a", "endpoint": "tcp://127.0.0.1:7401", "public-key": "KEYA"},
    {"id": "host-b", "endpoint": "tcp://[::1]:7402", "public-key": "KEYB"},
    {"id": "host-c", "endpoint": "tcp://node-c.example:7403", "public-key": "KEYC"}
  ],
  "volumes": [
    {"uuid": "6A0C2F6E-1D2B-4C3D-9E8F-0123456789AB", "name": "journal0", "size": "64M",
     "replicas": ["host-a", "host-b", "host-c"], "policy": "sync"},
    {"uuid": "11111111-2222-3333-4444-555555555555", "name": "scratch", "size": 4096,
     "replicas": ["host-b"], "policy": "async"},
    {"uuid": "11111111-2222-3333-4444-666666666666", "name": "default-policy", "size": 8192,
     "replicas": ["host-c", "host-a"]}
  ]
})";
}

std::string GoodWithKeys() {
  return Replace(Replace(Replace(Good(), "KEYA", kKeyA), "KEYB", kKeyB), "KEYC", kKeyC);
}

void ExpectError(const std::string& text, const std::string& words) {
  auto c = ParseClusterConfig(text, "cluster.json");
  BOOST_TEST_REQUIRE(!c.ok(), "accepted; expected an error with: " << words);
  const std::string& msg = c.status().message();
  BOOST_TEST(msg.find(words) != std::string::npos, msg);
  BOOST_TEST(msg.rfind("cluster.json", 0) == 0, msg);
  BOOST_TEST(msg.find('\n') == std::string::npos, msg);
}

BOOST_AUTO_TEST_SUITE(ClusterConfigTest)

BOOST_AUTO_TEST_CASE(ValidFileParsesEveryField) {
  auto c = ParseClusterConfig(GoodWithKeys());
  BOOST_TEST_REQUIRE(c.ok(), c.status().ToString());
  BOOST_TEST(c->settings.heartbeat_interval_ms == 50u);
  BOOST_TEST(c->settings.peer_expiry_ms == 500u);
  BOOST_TEST(c->settings.resync_chunk == 65536u);
  BOOST_TEST(c->settings.max_data == (1u << 20));
  BOOST_TEST(c->hosts.size() == 3u);
  BOOST_TEST(c->curve_enabled());
  BOOST_TEST(c->FindHost("host-b")->endpoint == "tcp://[::1]:7402");
  BOOST_TEST(*c->FindHost("host-c")->public_key == kKeyC);
  BOOST_TEST(c->FindHost("host-d") == nullptr);
  BOOST_TEST_REQUIRE(c->volumes.size() == 3u);
  const VolumeEntry& v = c->volumes[0];
  BOOST_TEST(v.uuid.ToString() == "6a0c2f6e-1d2b-4c3d-9e8f-0123456789ab");
  BOOST_TEST(v.name == "journal0");
  BOOST_TEST(v.size == 64u << 20);
  BOOST_TEST(v.replicas.front() == "host-a");
  BOOST_TEST(v.majority() == 2u);
  BOOST_TEST((v.policy == Policy::kSync));
  BOOST_TEST((c->volumes[1].policy == Policy::kAsync));
  BOOST_TEST(c->volumes[1].majority() == 1u);
  BOOST_TEST((c->volumes[2].policy == Policy::kSync));  // the default
  BOOST_TEST(c->FindVolume(v.uuid) == &c->volumes[0]);
}

BOOST_AUTO_TEST_CASE(KeysAreOptionalForAllHosts) {
  std::string t = Good();
  for (const char* k :
       {", \"public-key\": \"KEYA\"", ", \"public-key\": \"KEYB\"", ", \"public-key\": \"KEYC\""}) {
    t = Replace(t, k, "");
  }
  auto c = ParseClusterConfig(t);
  BOOST_TEST_REQUIRE(c.ok(), c.status().ToString());
  BOOST_TEST(!c->curve_enabled());
}

BOOST_AUTO_TEST_CASE(KeysForSomeHostsOnlyAreRejected) {
  std::string t = Replace(GoodWithKeys(), std::string(", \"public-key\": \"") + kKeyB + "\"", "");
  ExpectError(t, "hosts[1]: public-key must be given for every host or for none");
}

BOOST_AUTO_TEST_CASE(SyntaxErrorsAndDuplicateKeysAreRejected) {
  ExpectError("{\"version\": 1,", "not valid JSON");
  ExpectError("[]", "top level must be an object");
  ExpectError(Replace(GoodWithKeys(), "\"version\": 1,", "\"version\": 1, \"version\": 1,"),
              "key 'version' given twice");
  ExpectError(
      Replace(GoodWithKeys(), "\"name\": \"scratch\",", "\"name\": \"scratch\", \"name\": \"x\","),
      "key 'name' given twice");
}

BOOST_AUTO_TEST_CASE(VersionAndUnknownKeysAreChecked) {
  ExpectError(Replace(GoodWithKeys(), "\"version\": 1", "\"version\": 2"),
              "version '2': only version 1");
  ExpectError(Replace(GoodWithKeys(), "\"version\": 1,", ""), "missing key 'version'");
  ExpectError(Replace(GoodWithKeys(), "\"version\": 1,", "\"version\": 1, \"colour\": 3,"),
              "unknown key 'colour'");
  ExpectError(Replace(GoodWithKeys(), "\"policy\": \"async\"", "\"polcy\": \"async\""),
              "volumes[1]: unknown key 'polcy'");
}

BOOST_AUTO_TEST_CASE(DuplicateHostIdsAreRejected) {
  ExpectError(Replace(GoodWithKeys(), "\"id\": \"host-b\"", "\"id\": \"host-a\""),
              "hosts[1].id 'host-a': duplicate host id (also hosts[0])");
}

BOOST_AUTO_TEST_CASE(BadHostIdsAreRejected) {
  ExpectError(Replace(GoodWithKeys(), "\"id\": \"host-b\"", "\"id\": \"host b\""),
              "hosts[1].id 'host b': not 1..64");
  ExpectError(Replace(GoodWithKeys(), "\"id\": \"host-b\"", "\"id\": 7"),
              "hosts[1].id '7': not a string");
}

BOOST_AUTO_TEST_CASE(UnknownHostInAReplicaSetIsRejected) {
  ExpectError(Replace(GoodWithKeys(), "[\"host-b\"]", "[\"host-z\"]"),
              "volumes[1].replicas[0] 'host-z': not a host id listed in hosts");
  ExpectError(Replace(GoodWithKeys(), "[\"host-c\", \"host-a\"]", "[\"host-c\", \"host-c\"]"),
              "volumes[2].replicas[1] 'host-c': host listed twice");
  ExpectError(Replace(GoodWithKeys(), "[\"host-b\"]", "[]"), "volumes[1].replicas '[]'");
}

BOOST_AUTO_TEST_CASE(BadEndpointsAreRejected) {
  const std::pair<const char*, const char*> cases[] = {
      {"tcp//127.0.0.1:7401", "not tcp://HOST:PORT"},
      {"udp://127.0.0.1:7401", "not tcp://HOST:PORT"},
      {"tcp://127.0.0.1", "no :PORT"},
      {"tcp://127.0.0.1:0", "port is not"},
      {"tcp://127.0.0.1:65536", "port is not"},
      {"tcp://127.0.0.1:07401", "port is not"},
      {"tcp://*:7401", "a wildcard host"},
      {"tcp://300.0.0.1:7401", "host is not"},
      {"tcp://1.2.3:7401", "host is not"},
      {"tcp://-bad.example:7401", "host is not"},
      {"tcp://[zz::1]:7401", "bad IPv6"},
  };
  for (const auto& [ep, words] : cases) {
    ExpectError(Replace(GoodWithKeys(), "tcp://127.0.0.1:7401", ep),
                std::string("hosts[0].endpoint '") + ep + "': " + words);
  }
  ExpectError(Replace(GoodWithKeys(), "tcp://[::1]:7402", "tcp://127.0.0.1:7401"),
              "hosts[1].endpoint 'tcp://127.0.0.1:7401': duplicate endpoint (also hosts[0])");
}

BOOST_AUTO_TEST_CASE(BadKeysAreRejected) {
  ExpectError(Replace(GoodWithKeys(), kKeyA, "short"),
              "hosts[0].public-key 'short': a CurveZMQ public key is 40 Z85 characters, not 5");
  std::string bad_char = kKeyA;
  bad_char[3] = '~';
  ExpectError(Replace(GoodWithKeys(), kKeyA, bad_char), "character 4 is not in the Z85 alphabet");
  ExpectError(Replace(GoodWithKeys(), kKeyA, std::string(40, '#')), "do not encode 4 bytes");
  ExpectError(Replace(GoodWithKeys(), kKeyB, kKeyA), "hosts[1].public-key");
}

BOOST_AUTO_TEST_CASE(BadVolumesAreRejected) {
  ExpectError(Replace(GoodWithKeys(), "\"size\": 4096", "\"size\": 4097"),
              "volumes[1].size '4097': not a multiple of 4096");
  ExpectError(Replace(GoodWithKeys(), "\"size\": 4096", "\"size\": \"2G\""),
              "volumes[1].size '2G'");
  ExpectError(Replace(GoodWithKeys(), "\"size\": 4096", "\"size\": -4096"),
              "volumes[1].size '-4096'");
  ExpectError(Replace(GoodWithKeys(), "\"size\": 4096", "\"size\": \"4 K\""),
              "volumes[1].size '4 K': not a size");
  ExpectError(Replace(GoodWithKeys(), "11111111-2222-3333-4444-555555555555", "not-a-uuid"),
              "volumes[1].uuid 'not-a-uuid': not a UUID");
  ExpectError(Replace(GoodWithKeys(), "11111111-2222-3333-4444-555555555555",
                      "00000000-0000-0000-0000-000000000000"),
              "nil UUID");
  ExpectError(Replace(GoodWithKeys(), "11111111-2222-3333-4444-555555555555",
                      "6a0c2f6e-1d2b-4c3d-9e8f-0123456789ab"),
              "volumes[1].uuid '6a0c2f6e-1d2b-4c3d-9e8f-0123456789ab': duplicate volume UUID "
              "(also volumes[0])");
  ExpectError(Replace(GoodWithKeys(), "\"scratch\"", "\"journal0\""),
              "volumes[1].name 'journal0': duplicate volume name");
  ExpectError(Replace(GoodWithKeys(), "\"policy\": \"async\"", "\"policy\": \"fast\""),
              "volumes[1].policy 'fast': not 'sync' or 'async'");
  ExpectError(Replace(GoodWithKeys(), "\"size\": 4096,", ""), "volumes[1]: missing key 'size'");
}

BOOST_AUTO_TEST_CASE(BadSettingsAreRejected) {
  ExpectError(Replace(GoodWithKeys(), "\"peer-expiry-ms\": 500", "\"peer-expiry-ms\": 100"),
              "settings.peer-expiry-ms 100: must be at least 3 heartbeat intervals");
  ExpectError(
      Replace(GoodWithKeys(), "\"heartbeat-interval-ms\": 50", "\"heartbeat-interval-ms\": 5"),
      "settings.heartbeat-interval-ms '5': not an integer in 10..60000");
  ExpectError(Replace(GoodWithKeys(), "\"64K\"", "\"48K\""),
              "settings.resync-chunk-size '48K': not a power of two");
  ExpectError(Replace(GoodWithKeys(), "\"64K\"", "\"64K\", \"max-data\": \"16K\""),
              "resync-chunk-size 65536: larger than max-data 16384");
}

BOOST_AUTO_TEST_CASE(LoadReadsAFileAndNamesItInErrors) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("vnvram-cluster-test-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto good = dir / "good.json";
  std::ofstream(good) << GoodWithKeys();
  auto c = LoadClusterConfig(good.string());
  BOOST_TEST(c.ok(), c.status().ToString());
  const auto bad = dir / "bad.json";
  std::ofstream(bad) << Replace(GoodWithKeys(), "\"size\": 4096", "\"size\": 4097");
  auto b = LoadClusterConfig(bad.string());
  BOOST_TEST_REQUIRE(!b.ok());
  BOOST_TEST(b.status().message().rfind(bad.string(), 0) == 0, b.status().ToString());
  auto missing = LoadClusterConfig((dir / "missing.json").string());
  BOOST_TEST((missing.status().code() == Code::kNotFound), missing.status().ToString());
  std::filesystem::remove_all(dir);
}

// Found by cluster_config_fuzz: an error message showed the bad value with
// Json::dump(), which recurses per level, so a file of 1 MiB (the limit)
// nesting arrays 500000 deep overflowed the stack of vnvramd or nvram-tool.
BOOST_AUTO_TEST_CASE(DeeplyNestedBadValueIsRefusedWithoutOverflow) {
  constexpr size_t kDepth = 500000;
  const std::string nested = std::string(kDepth, '[') + std::string(kDepth, ']');
  ExpectError("{\"version\": " + nested + "}", "version [...]: only version 1 is known");
  ExpectError("{\"version\": 1, \"hosts\": [" + nested + "]}", "hosts[0] [...]: not an object");
  // A shallow value is still shown whole.
  ExpectError(R"({"version": [[1]]})", "version '[[1]]': only version 1 is known");
}

// Found by cluster_config_fuzz: the JSON parser's message quotes the bad
// token whole ("last read: ..."), so a long broken token made an error
// message (one log line) as large as the file.
BOOST_AUTO_TEST_CASE(InvalidJsonMessageIsBoundedAndPrintable) {
  const std::string broken = "{\"version\": \"" + std::string(100000, 'x') + "\x01\xff";
  auto c = ParseClusterConfig(broken, "cluster.json");
  BOOST_TEST_REQUIRE(!c.ok());
  const std::string& msg = c.status().message();
  BOOST_TEST(msg.rfind("cluster.json: not valid JSON: ", 0) == 0, msg);
  BOOST_TEST(msg.size() < 300u, msg.size());
  for (char ch : msg) BOOST_TEST_REQUIRE((ch >= 0x20 && ch < 0x7F), msg);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace vnvram::replication
