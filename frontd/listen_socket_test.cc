// listen_socket: the --tcp address rules, and the Unix socket's stale-file
// handling (replaced when dead, refused when live or not a socket).
#include "frontd/listen_socket.h"

#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <fstream>

#include "common/testing/temp_dir.h"
#include "common/unique_fd.h"

namespace vnvram {
inline std::ostream& operator<<(std::ostream& o, Code c) {
  return o << CodeName(c);
}
}  // namespace vnvram

namespace vnvram::frontd {
namespace {

using vnvram::testing::TempDir;

BOOST_AUTO_TEST_CASE(OnlyLoopbackAddressesAreAccepted) {
  auto a = ParseLoopbackAddress("127.0.0.1:10809");
  BOOST_TEST_REQUIRE(a.ok());
  BOOST_TEST(a->family == AF_INET);
  BOOST_TEST(a->port == 10809);
  BOOST_TEST(a->HostForDisplay() == "127.0.0.1");
  BOOST_TEST(ParseLoopbackAddress("localhost:0").value().family == AF_INET);
  BOOST_TEST(ParseLoopbackAddress("[::1]:5").value().family == AF_INET6);
  BOOST_TEST(ParseLoopbackAddress("::1:5").value().HostForDisplay() == "[::1]");
  for (const char* bad :
       {"0.0.0.0:10809", "10.0.0.1:1", "example.com:1", ":1", "127.0.0.1",
        "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:-1", "127.0.0.1:1x", "127.0.0.2:1", "[::]:1"}) {
    auto r = ParseLoopbackAddress(bad);
    BOOST_TEST(!r.ok(), bad);
  }
  const Status s = ParseLoopbackAddress("192.168.1.1:10809").status();
  BOOST_TEST(s.message().find("192.168.1.1") != std::string::npos, s.ToString());
  BOOST_TEST(s.message().find('\n') == std::string::npos);
}

BOOST_AUTO_TEST_CASE(UnixSocketIsOwnerOnlyAndStaleFilesAreReplaced) {
  TempDir dir;
  const std::string path = dir.path + "/nbd.sock";
  auto fd = ListenUnix(path);
  BOOST_TEST_REQUIRE(fd.ok(), fd.status().ToString());
  struct stat st {};
  BOOST_TEST_REQUIRE(::stat(path.c_str(), &st) == 0);
  BOOST_TEST((st.st_mode & 0777) == 0600u);
  // Live: refused.
  auto second = ListenUnix(path);
  BOOST_TEST(second.status().code() == Code::kAlreadyExists, second.status().ToString());
  // The first listener dies (as in a kill -9): its file is stale now.
  ::close(*fd);
  auto third = ListenUnix(path);
  BOOST_TEST_REQUIRE(third.ok(), third.status().ToString());
  ::close(*third);

  const std::string file = dir.path + "/plain";
  std::ofstream(file) << "not a socket";
  auto plain = ListenUnix(file);
  BOOST_TEST(plain.status().code() == Code::kAlreadyExists);
  BOOST_TEST(std::filesystem::exists(file));  // never removed

  const std::string too_long = dir.path + "/" + std::string(120, 's');
  BOOST_TEST(ListenUnix(too_long).status().code() == Code::kInvalidArgument);
}

BOOST_AUTO_TEST_CASE(TcpEphemeralPortIsReported) {
  uint16_t port = 0;
  auto fd = ListenTcp(ParseLoopbackAddress("127.0.0.1:0").value(), &port);
  BOOST_TEST_REQUIRE(fd.ok(), fd.status().ToString());
  BOOST_TEST(port != 0);
  UniqueFd owner(*fd);
  uint16_t again = 0;
  auto busy = ListenTcp(ParseLoopbackAddress("127.0.0.1:" + std::to_string(port)).value(), &again);
  BOOST_TEST(!busy.ok());
}

}  // namespace
}  // namespace vnvram::frontd
