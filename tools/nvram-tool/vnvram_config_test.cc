// Tests of the vnvram= config parser (vnvram_config.h): xl's syntax as the
// reader must skip it (strings, escapes, comments, multi-line and nested
// lists, ';'), each device spec key, devid assignment, and every bad input
// the issue lists (unknown key, duplicate key, bad size, bad UUID, empty,
// out-of-range domain), each a one-line error naming the key or value and
// the line.
#define BOOST_TEST_MODULE vnvram_config
#include "tools/nvram-tool/vnvram_config.h"

#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

namespace vnvram::tools {
namespace {

constexpr const char* kVol = "0b5e7c1a-2f4d-4e6b-9a8c-1d2e3f405162";
constexpr const char* kVol2 = "6a1e5d2c-0b7f-4c3e-9d8a-5f4e3d2c1b0a";

std::string V(const std::string& rest) {
  return std::string("volume=") + kVol + ", " + rest;
}

// The error message of a spec that must fail.
std::string SpecError(const std::string& spec) {
  auto r = ParseVnvramSpec(spec);
  BOOST_TEST_REQUIRE(!r.ok(), "accepted: " + spec);
  BOOST_TEST((r.status().code() == Code::kInvalidArgument));
  const std::string& m = r.status().message();
  BOOST_TEST(m.find('\n') == std::string::npos, m);
  return m;
}

std::string ConfigError(const std::string& text) {
  auto r = ParseXlConfig(text, "g.cfg");
  BOOST_TEST_REQUIRE(!r.ok(), "accepted: " + text);
  const std::string& m = r.status().message();
  BOOST_TEST(m.find('\n') == std::string::npos, m);
  return m;
}

bool Has(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

BOOST_AUTO_TEST_CASE(SinglePathSpec) {
  auto r = ParseVnvramSpec(V("size=64M, backend=3, devid=7, priority=10"));
  BOOST_TEST_REQUIRE(r.ok(), r.status().ToString());
  BOOST_TEST(r->volume.ToString() == kVol);
  BOOST_TEST(r->size == 64u << 20);
  BOOST_TEST_REQUIRE(r->paths.size() == 1u);
  BOOST_TEST(std::get<DomId>(r->paths[0].backend) == 3);
  BOOST_TEST(r->paths[0].devid == 7u);
  BOOST_TEST(r->paths[0].devid_given);
  BOOST_TEST(*r->paths[0].priority == 10u);
  // Defaults: backend 0, devid chosen later, no priority. Spaces are free.
  r = ParseVnvramSpec(std::string("  size = 4K ,volume= ") + kVol + " ");
  BOOST_TEST_REQUIRE(r.ok(), r.status().ToString());
  BOOST_TEST(std::get<DomId>(r->paths[0].backend) == 0);
  BOOST_TEST(!r->paths[0].devid_given);
  BOOST_TEST(!r->paths[0].priority.has_value());
}

BOOST_AUTO_TEST_CASE(PathsSpec) {
  auto r = ParseVnvramSpec(V("size=1M, paths=0:0:10+drv-1:3:5+7"));
  BOOST_TEST_REQUIRE(r.ok(), r.status().ToString());
  BOOST_TEST_REQUIRE(r->paths.size() == 3u);
  BOOST_TEST(std::get<DomId>(r->paths[0].backend) == 0);
  BOOST_TEST(*r->paths[0].priority == 10u);
  BOOST_TEST(std::get<std::string>(r->paths[1].backend) == "drv-1");
  BOOST_TEST(r->paths[1].devid == 3u);
  BOOST_TEST(std::get<DomId>(r->paths[2].backend) == 7);
  BOOST_TEST(!r->paths[2].devid_given);
}

BOOST_AUTO_TEST_CASE(BadSpecsNameTheKeyOrValue) {
  BOOST_TEST(Has(SpecError(V("size=1M, colour=red")), "unknown key 'colour'"));
  BOOST_TEST(Has(SpecError(V("size=1M, policy=sync")), "cluster file"));
  BOOST_TEST(Has(SpecError(V("size=1M, size=2M")), "key 'size' given twice"));
  BOOST_TEST(Has(SpecError(V("size=1M, volume=x")), "key 'volume' given twice"));
  for (const char* bad : {"size=1X", "size=100", "size=2G", "size=0", "size=-4K", "size=4097"}) {
    BOOST_TEST(Has(SpecError(V(bad)), "size"), bad);
  }
  BOOST_TEST(Has(SpecError("volume=0b5e7c1a-zzzz-4e6b-9a8c-1d2e3f405162, size=1M"), "volume"));
  BOOST_TEST(Has(SpecError("volume=00000000-0000-0000-0000-000000000000, size=1M"), "nil"));
  BOOST_TEST(Has(SpecError(""), "empty"));
  BOOST_TEST(Has(SpecError("   "), "empty"));
  BOOST_TEST(Has(SpecError(V("size=1M,")), "empty item"));
  BOOST_TEST(Has(SpecError(V("size=")), "key 'size': empty value"));
  BOOST_TEST(Has(SpecError(V("size")), "expected KEY=VALUE"));
  BOOST_TEST(Has(SpecError("size=1M"), "missing key 'volume'"));
  BOOST_TEST(Has(SpecError(std::string("volume=") + kVol), "missing key 'size'"));
  // Out-of-range domains and devids, and bad names.
  BOOST_TEST(Has(SpecError(V("size=1M, backend=32752")), "backend"));
  BOOST_TEST(Has(SpecError(V("size=1M, backend=99999999999")), "backend"));
  BOOST_TEST(Has(SpecError(V("size=1M, backend=a/b")), "backend"));
  BOOST_TEST(Has(SpecError(V("size=1M, devid=2147483648")), "devid"));
  BOOST_TEST(Has(SpecError(V("size=1M, priority=256")), "priority"));
  BOOST_TEST(Has(SpecError(V("size=1M, paths=0:0+40000:1")), "paths: backend"));
  BOOST_TEST(Has(SpecError(V("size=1M, paths=0:x")), "paths: devid"));
  BOOST_TEST(Has(SpecError(V("size=1M, paths=0:1:2:3")), "BACKEND[:DEVID[:PRIORITY]]"));
  BOOST_TEST(Has(SpecError(V("size=1M, paths=0:1+0:2")), "backend 0 appears twice"));
  BOOST_TEST(Has(SpecError(V("size=1M, paths=0+")), "paths: backend"));
  BOOST_TEST(Has(SpecError(V("size=1M, paths=0+1, devid=3")), "cannot be combined"));
  BOOST_TEST(Has(SpecError(V("size=1M, paths=0+1+2+3+4+5+6+7+8")), "at most 8"));
}

BOOST_AUTO_TEST_CASE(ConfigFindsNameAndVnvramAndSkipsTheRest) {
  const std::string text = std::string(R"(# a guest
name = "guest-1"
memory = 512 ; vcpus = 2
kernel = '/boot/vmlinuz # not a comment'
extra = "console=hvc0 \"quoted\" \\ end"
disk = [ 'format=raw, vdev=xvda, target=/dev/vg/g1',
         "vdev=xvdb, target=/dev/vg/g1b",   # trailing comment
       ]
vnuma = [ [ "pnode=0", "size=512" ], [ "pnode=1", "size=512" ] ]
vnvram = [
  'volume=)") + kVol + R"(, size=64M, paths=0:0:10+5:1:5',
  "volume=)" + kVol2 + R"(, size=4M",
]
on_crash = 'destroy'
)";
  auto r = ParseXlConfig(text, "g.cfg");
  BOOST_TEST_REQUIRE(r.ok(), r.status().ToString());
  BOOST_TEST(*r->name == "guest-1");
  BOOST_TEST(r->name_line == 2);
  BOOST_TEST_REQUIRE(r->volumes.size() == 2u);
  BOOST_TEST(r->volumes[0].line == 11);
  BOOST_TEST(r->volumes[1].line == 12);
  BOOST_TEST(r->volumes[0].paths.size() == 2u);
  // The second volume's path had no devid: the lowest free one (2).
  BOOST_TEST(r->volumes[1].paths[0].devid == 2u);
  BOOST_TEST(r->volumes[1].size == 4u << 20);
}

BOOST_AUTO_TEST_CASE(NoVnvramIsAnEmptyList) {
  auto r = ParseXlConfig("name='a'\nmemory=1\n", "g.cfg");
  BOOST_TEST_REQUIRE(r.ok(), r.status().ToString());
  BOOST_TEST(r->volumes.empty());
  r = ParseXlConfig("", "g.cfg");
  BOOST_TEST_REQUIRE(r.ok());
  BOOST_TEST(!r->name.has_value());
}

BOOST_AUTO_TEST_CASE(AppendAddsEntries) {
  auto r = ParseXlConfig(std::string("vnvram = ['volume=") + kVol +
                             ", size=1M']\nvnvram += ['volume=" + kVol2 + ", size=1M, devid=0']\n",
                         "g.cfg");
  BOOST_TEST_REQUIRE(r.ok(), r.status().ToString());
  BOOST_TEST_REQUIRE(r->volumes.size() == 2u);
  // The explicit devid 0 is kept; the first entry gets 1.
  BOOST_TEST(r->volumes[0].paths[0].devid == 1u);
  BOOST_TEST(r->volumes[1].paths[0].devid == 0u);
}

BOOST_AUTO_TEST_CASE(BadConfigsNameTheLine) {
  const std::string ok1 = std::string("'volume=") + kVol + ", size=1M'";
  const std::string bad_uuid = ConfigError("name='a'\n\nvnvram = [ 'volume=x, size=1M' ]\n");
  BOOST_TEST(Has(bad_uuid, "g.cfg:3: vnvram: "), bad_uuid);
  BOOST_TEST(Has(bad_uuid, "volume"), bad_uuid);
  BOOST_TEST(
      Has(ConfigError("vnvram = [\n" + ok1 + ",\n 'volume=" + kVol2 + ", size=1M, bogus=1' ]"),
          "g.cfg:3: vnvram: unknown key 'bogus'"));
  BOOST_TEST(Has(ConfigError("vnvram = [ '' ]"), "g.cfg:1: vnvram: empty"));
  BOOST_TEST(Has(ConfigError("vnvram = [" + ok1 + "]\nvnvram = [" + ok1 + "]"),
                 "g.cfg:2: vnvram set twice (first on line 1"));
  BOOST_TEST(Has(ConfigError("vnvram = [" + ok1 + ", " + ok1 + "]"), "appears in two entries"));
  BOOST_TEST(Has(ConfigError(std::string("vnvram = ['volume=") + kVol +
                             ", size=1M, devid=1', 'volume=" + kVol2 + ", size=1M, devid=1']"),
                 "devid 1 used twice"));
  BOOST_TEST(Has(ConfigError("vnvram = " + ok1), "g.cfg:1: vnvram: expected a list"));
  BOOST_TEST(Has(ConfigError("vnvram = [ 3 ]"), "quoted string"));
  BOOST_TEST(Has(ConfigError("name = 'a'\nname = 'b'"), "g.cfg:2: name set twice"));
  BOOST_TEST(Has(ConfigError("name = 'a b'"), "g.cfg:1: name"));
  BOOST_TEST(Has(ConfigError("name = 'a'\n\nmemory = [ 1,\n 2"), "g.cfg:3: list opened here"));
  BOOST_TEST(Has(ConfigError("kernel = 'abc\n"), "g.cfg:1: unterminated string"));
  BOOST_TEST(Has(ConfigError("a = 1\nb = 2 3\n"), "g.cfg:2: expected the end"));
  BOOST_TEST(Has(ConfigError("a = 1\n= 2\n"), "g.cfg:2: expected a setting"));
  BOOST_TEST(Has(ConfigError("a 1\n"), "expected '=' after 'a'"));
  BOOST_TEST(Has(ConfigError("a = $\n"), "unexpected character"));
  BOOST_TEST(Has(ConfigError("a = [ 1 2 ]\n"), "expected ',' or ']'"));
  BOOST_TEST(Has(ConfigError("a = [[[[[[[[[[1]]]]]]]]]]\n"), "nested too deeply"));
  BOOST_TEST(Has(ConfigError(std::string("a = 'x\0y'", 9)), "NUL"));
  BOOST_TEST(Has(ConfigError(std::string(kXlConfigMaxBytes + 1, '#')), "larger than"));
  std::string many = "vnvram = [";
  for (int i = 0; i < 17; ++i) {
    char vol[40];
    std::snprintf(vol, sizeof vol, "0b5e7c1a-2f4d-4e6b-9a8c-%012d", i + 1);
    many += std::string("'volume=") + vol + ", size=4K',";
  }
  BOOST_TEST(Has(ConfigError(many + "]"), "at most 16"));
}

BOOST_AUTO_TEST_CASE(ReadsAFile) {
  const auto path = std::filesystem::temp_directory_path() /
                    ("vnvram_config_test." + std::to_string(::getpid()) + ".cfg");
  {
    std::ofstream f(path);
    f << "name = \"g\"\nvnvram = [ 'volume=" << kVol << ", size=16M' ]\n";
  }
  auto r = ReadXlConfigFile(path.string());
  std::filesystem::remove(path);
  BOOST_TEST_REQUIRE(r.ok(), r.status().ToString());
  BOOST_TEST(r->source == path.string());
  BOOST_TEST(r->volumes.size() == 1u);
  auto missing = ReadXlConfigFile(path.string());
  BOOST_TEST(!missing.ok());
  BOOST_TEST(Has(missing.status().message(), path.string()));
}

}  // namespace
}  // namespace vnvram::tools
