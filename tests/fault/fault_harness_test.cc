// The fault harness's own parts: LinkProxy forwards, holds bytes and new
// connections while partitioned and delivers them on heal, delays chunks;
// RecordLedger takes acknowledgements in order, over passes, and finds
// acknowledged records missing or corrupt in a copy (but not the slot a
// store may be in flight at).
#define BOOST_TEST_MODULE fault_harness
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "tests/fault/link_proxy.h"
#include "tests/fault/record_ledger.h"
#include "tools/guest-demo/demo_record.h"

namespace vnvram::testing {
namespace {

using std::chrono::milliseconds;

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

uint16_t Listen(Fd& l) {
  l.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  BOOST_TEST_REQUIRE(::bind(l.fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  BOOST_TEST_REQUIRE(::listen(l.fd, 4) == 0);
  socklen_t len = sizeof a;
  BOOST_TEST_REQUIRE(::getsockname(l.fd, reinterpret_cast<sockaddr*>(&a), &len) == 0);
  return ntohs(a.sin_port);
}

void Connect(Fd& c, uint16_t port) {
  c.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  BOOST_TEST_REQUIRE(::connect(c.fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
}

bool Readable(int fd, milliseconds within) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, static_cast<int>(within.count())) == 1;
}

void Accept(Fd& listener, Fd& out, milliseconds within) {
  BOOST_TEST_REQUIRE(Readable(listener.fd, within), "no connection reached the upstream");
  out.fd = ::accept4(listener.fd, nullptr, nullptr, SOCK_CLOEXEC);
  BOOST_TEST_REQUIRE(out.fd >= 0);
}

std::string ReadN(int fd, size_t n, milliseconds within) {
  std::string s;
  const auto end = std::chrono::steady_clock::now() + within;
  while (s.size() < n) {
    const auto left =
        std::chrono::duration_cast<milliseconds>(end - std::chrono::steady_clock::now());
    if (left.count() <= 0 || !Readable(fd, left)) break;
    char buf[4096];
    const ssize_t r = ::read(fd, buf, std::min(sizeof buf, n - s.size()));
    if (r <= 0) break;
    s.append(buf, static_cast<size_t>(r));
  }
  return s;
}

void Send(int fd, const std::string& s) {
  BOOST_TEST_REQUIRE(::send(fd, s.data(), s.size(), MSG_NOSIGNAL) ==
                     static_cast<ssize_t>(s.size()));
}

// A client connected through a proxy to an upstream listener, and the
// upstream's side of that connection.
struct ProxiedLink {
  Fd up, client, server;
  std::unique_ptr<LinkProxy> proxy;
  ProxiedLink() {
    auto p = LinkProxy::Start(Listen(up));
    BOOST_TEST_REQUIRE(p.ok(), p.status().ToString());
    proxy = std::move(p).value();
    Connect(client, proxy->port());
    Accept(up, server, milliseconds(5000));
  }
};

BOOST_FIXTURE_TEST_CASE(ProxyForwardsBothWays, ProxiedLink) {
  Send(client.fd, "hello upstream");
  BOOST_TEST(ReadN(server.fd, 14, milliseconds(5000)) == "hello upstream");
  Send(server.fd, "hello back");
  BOOST_TEST(ReadN(client.fd, 10, milliseconds(5000)) == "hello back");
}

BOOST_FIXTURE_TEST_CASE(PartitionHoldsBytesAndConnectionsUntilHeal, ProxiedLink) {
  proxy->SetBlackhole(true);
  Send(client.fd, "held");
  // Nothing arrives while the link is cut (a bounded wait for an event
  // that must not come), and a new connection reaches no one.
  BOOST_TEST(!Readable(server.fd, milliseconds(300)));
  Fd late;
  Connect(late, proxy->port());  // the proxy accepts: no reset, a cut cable
  BOOST_TEST(!Readable(up.fd, milliseconds(300)));
  proxy->SetBlackhole(false);
  BOOST_TEST(ReadN(server.fd, 4, milliseconds(5000)) == "held");
  Fd late_server;
  Accept(up, late_server, milliseconds(5000));
  Send(late.fd, "late");
  BOOST_TEST(ReadN(late_server.fd, 4, milliseconds(5000)) == "late");
}

BOOST_FIXTURE_TEST_CASE(DelayHoldsEachChunkForItsTime, ProxiedLink) {
  proxy->SetDelay(milliseconds(200));
  const auto t0 = std::chrono::steady_clock::now();
  Send(client.fd, "slow");
  BOOST_TEST(ReadN(server.fd, 4, milliseconds(5000)) == "slow");
  BOOST_TEST((std::chrono::steady_clock::now() - t0 >= milliseconds(200)));
  proxy->SetDelay(milliseconds(0));
  Send(client.fd, "fast");
  BOOST_TEST(ReadN(server.fd, 4, milliseconds(5000)) == "fast");
}

BOOST_AUTO_TEST_CASE(UpstreamDownClosesTheConnection) {
  uint16_t port = 0;
  {
    Fd gone;
    port = Listen(gone);
  }
  auto proxy = LinkProxy::Start(port);
  BOOST_TEST_REQUIRE(proxy.ok(), proxy.status().ToString());
  Fd client;
  Connect(client, (*proxy)->port());
  BOOST_TEST_REQUIRE(Readable(client.fd, milliseconds(5000)));
  char c;
  BOOST_TEST(::read(client.fd, &c, 1) <= 0);  // EOF or reset: the dialler reconnects
}

std::vector<std::byte> Region(uint64_t size) {
  return std::vector<std::byte>(size);
}

void Put(std::vector<std::byte>& r, uint64_t seq, uint32_t pass = 0) {
  demo::EncodeRecord(seq, 1, RecordLedger::TagOf(pass),
                     std::span(r).subspan(demo::RecordOffset(seq), demo::kRecordSize));
}

BOOST_AUTO_TEST_CASE(LedgerTakesRecordsInOrder) {
  RecordLedger l(4096 + 10 * 64);
  BOOST_TEST(l.capacity() == 10u);
  BOOST_TEST(l.Acked(0).ok());
  BOOST_TEST(l.Acked(1).ok());
  BOOST_TEST(l.Acked(1).ok());  // a repeat (a restarted writer) is fine
  const Status gap = l.Acked(3);
  BOOST_TEST(!gap.ok());
  BOOST_TEST(gap.message().find("record 3 acknowledged before record 2") != std::string::npos,
             gap.ToString());
  BOOST_TEST(!l.StartPass().ok());  // pass 0 is not complete
  for (uint64_t s = 2; s < 10; ++s) BOOST_TEST(l.Acked(s).ok());
  BOOST_TEST(!l.Acked(10).ok());
  BOOST_TEST(l.pass_complete());
  BOOST_TEST(l.StartPass().ok());
  BOOST_TEST(l.pass() == 1u);
  BOOST_TEST(l.next() == 0u);
  BOOST_TEST(l.total_acked() == 10u);
}

BOOST_AUTO_TEST_CASE(LedgerFindsMissingAndCorruptRecords) {
  RecordLedger l(4096 + 10 * 64);
  auto r = Region(4096 + 10 * 64);
  for (uint64_t s = 0; s < 4; ++s) {
    Put(r, s);
    BOOST_TEST(l.Acked(s).ok());
  }
  BOOST_TEST(l.Check(r).empty());
  // The slot in flight (next) may hold anything.
  r[demo::RecordOffset(4) + 3] = std::byte{0x77};
  BOOST_TEST(l.Check(r).empty());
  // An acknowledged record zeroed, another with one bit flipped.
  std::fill_n(r.begin() + static_cast<ptrdiff_t>(demo::RecordOffset(1)), demo::kRecordSize,
              std::byte{0});
  r[demo::RecordOffset(2) + 20] ^= std::byte{1};
  const auto bad = l.Check(r);
  BOOST_TEST_REQUIRE(bad.size() == 2u);
  BOOST_TEST(bad[0].seq == 1u);
  BOOST_TEST(bad[0].why == "missing (zero)");
  BOOST_TEST(bad[1].seq == 2u);
}

BOOST_AUTO_TEST_CASE(LedgerInALaterPassExpectsEverySlotButTheNextOne) {
  RecordLedger l(4096 + 4 * 64);
  auto r = Region(4096 + 4 * 64);
  for (uint64_t s = 0; s < 4; ++s) {
    Put(r, s);
    BOOST_TEST(l.Acked(s).ok());
  }
  BOOST_TEST(l.StartPass().ok());
  Put(r, 0, 1);
  BOOST_TEST(l.Acked(0).ok());
  // Slot 1 is in flight; slots 2 and 3 hold pass 0's acknowledged records.
  r[demo::RecordOffset(1)] = std::byte{0};
  BOOST_TEST(l.Check(r).empty());
  r[demo::RecordOffset(3)] = std::byte{0};
  const auto bad = l.Check(r);
  BOOST_TEST_REQUIRE(bad.size() == 1u);
  BOOST_TEST(bad[0].seq == 3u);
}

BOOST_AUTO_TEST_CASE(LedgerFindsARewriteACopyMissed) {
  RecordLedger l(4096 + 4 * 64);
  auto r = Region(4096 + 4 * 64);
  for (uint64_t s = 0; s < 4; ++s) {
    Put(r, s);
    BOOST_TEST(l.Acked(s).ok());
  }
  BOOST_TEST(l.StartPass().ok());
  Put(r, 0, 1);
  BOOST_TEST(l.Acked(0).ok());
  BOOST_TEST(l.Acked(1).ok());  // acknowledged in pass 1, but the copy kept pass 0's record
  const auto bad = l.Check(r);
  BOOST_TEST_REQUIRE(bad.size() == 1u);
  BOOST_TEST(bad[0].seq == 1u);
  BOOST_TEST(bad[0].why.find("rewrite missed") != std::string::npos, bad[0].why);
  // Slots 2 and 3 still hold pass 0's records, as they should.
  Put(r, 1, 1);
  BOOST_TEST(l.Check(r).empty());
}

}  // namespace
}  // namespace vnvram::testing
