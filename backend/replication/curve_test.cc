// CurveZMQ keys, key files, ZapHandler and nvram-tool keygen: key files
// round-trip and bad ones are refused with one-line errors; real CURVE
// sockets over tcp://127.0.0.1:* admit a listed client (bound to its host
// id) and refuse an unlisted one or a client with the wrong server key.
// Every wait is on an event (a socket monitor, a ZAP callback, a message)
// with a deadline, never a sleep. Exits 77 (skipped) without CURVE.
#define BOOST_TEST_MODULE replication_curve
#include "backend/replication/curve.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "backend/replication/cluster_config.h"
#include "backend/replication/testing/zmq_test_support.h"
#include "backend/replication/zap_handler.h"
#include "common/testing/temp_dir.h"
#include "tests/child_process.h"

namespace vnvram::replication {
namespace {

using vnvram::testing::TempDir;

using namespace std::chrono_literals;
namespace fs = std::filesystem;

constexpr auto kDeadline = 10s;
using testing::Monitor;
using testing::NewPair;

struct SkipWithoutCurve {
  SkipWithoutCurve() {
    if (!CurveSupported()) {
      std::printf("SKIP: libzmq was built without CURVE (zmq_has(\"curve\") is false)\n");
      std::fflush(stdout);
      std::_Exit(77);
    }
  }
};
BOOST_TEST_GLOBAL_FIXTURE(SkipWithoutCurve);

void WriteRaw(const std::string& path, const std::string& text, mode_t mode = 0600) {
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
    BOOST_REQUIRE(out.good());
  }
  BOOST_REQUIRE(::chmod(path.c_str(), mode) == 0);
}

std::string ReadRaw(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

mode_t ModeOf(const std::string& path) {
  struct stat st {};
  BOOST_REQUIRE(::stat(path.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

std::string KeyFileText(const CurveKeyPair& p) {
  return "public-key = " + p.public_z85 + "\nsecret-key = " + p.secret_z85 + "\n";
}

// Loads `text` as a key file and expects an error of `code` whose one-line
// message starts with the file's path and contains `words`.
std::string ExpectLoadError(const TempDir& dir, const std::string& text, const std::string& words,
                            Code code = Code::kInvalidArgument, mode_t mode = 0600) {
  const std::string path = dir.File("bad.key");
  WriteRaw(path, text, mode);
  auto r = LoadKeyFile(path);
  BOOST_TEST_REQUIRE(!r.ok(), "accepted; expected an error with: " << words);
  const std::string& msg = r.status().message();
  BOOST_TEST((r.status().code() == code), r.status().ToString());
  BOOST_TEST(msg.find(words) != std::string::npos, msg);
  BOOST_TEST(msg.rfind(path, 0) == 0, msg);
  BOOST_TEST(msg.find('\n') == std::string::npos, msg);
  return msg;
}

BOOST_AUTO_TEST_SUITE(KeyFileTest)

BOOST_AUTO_TEST_CASE(GeneratedPairRoundTripsThroughKeyFile) {
  TempDir dir;
  const CurveKeyPair pair = NewPair();
  BOOST_TEST(pair.public_z85.size() == 40u);
  BOOST_TEST(pair.secret_z85.size() == 40u);
  BOOST_TEST(NewPair().public_z85 != pair.public_z85);
  BOOST_TEST(CheckKeyPair(pair).ok());
  BOOST_TEST(*DerivePublicKey(pair.secret_z85) == pair.public_z85);

  const std::string path = dir.File("host-a.key");
  BOOST_TEST_REQUIRE(WriteKeyFile(path, pair, /*overwrite=*/false).ok());
  BOOST_TEST(ModeOf(path) == 0600u);
  auto loaded = LoadKeyFile(path);
  BOOST_TEST_REQUIRE(loaded.ok(), loaded.status().ToString());
  BOOST_TEST(loaded->public_z85 == pair.public_z85);
  BOOST_TEST(loaded->secret_z85 == pair.secret_z85);
  // Only the key file is left in the directory (no temporary file).
  BOOST_TEST(dir.EntryCount() == 1);
}

BOOST_AUTO_TEST_CASE(CommentsBlankLinesAndZ85CommentCharactersInValuesAreRead) {
  TempDir dir;
  // Z85 has '#' and '=' in its alphabet: find a pair using one of them.
  CurveKeyPair pair = NewPair();
  for (int i = 0; i < 1000 && pair.public_z85.find_first_of("#=") == std::string::npos &&
                  pair.secret_z85.find_first_of("#=") == std::string::npos;
       ++i) {
    pair = NewPair();
  }
  const std::string path = dir.File("k");
  WriteRaw(path, "# a comment\n\n   # indented comment\r\n\tsecret-key=" + pair.secret_z85 +
                     "  \r\npublic-key   =\t" + pair.public_z85);
  auto loaded = LoadKeyFile(path);
  BOOST_TEST_REQUIRE(loaded.ok(), loaded.status().ToString());
  BOOST_TEST(loaded->public_z85 == pair.public_z85);
  BOOST_TEST(loaded->secret_z85 == pair.secret_z85);
}

BOOST_AUTO_TEST_CASE(BadKeyFilesAreRefusedWithOneLineNamingLineAndKey) {
  TempDir dir;
  // A secret without '=' (a Z85 character), for the line missing its '='.
  CurveKeyPair p = NewPair();
  while (p.secret_z85.find('=') != std::string::npos) p = NewPair();
  const CurveKeyPair other = NewPair();
  const std::string pub = "public-key = " + p.public_z85 + "\n";
  const std::string sec = "secret-key = " + p.secret_z85 + "\n";

  ExpectLoadError(dir, pub, "bad.key: missing key 'secret-key'");
  ExpectLoadError(dir, "# only a secret\n" + sec, "bad.key: missing key 'public-key'");
  ExpectLoadError(dir, "", "missing key 'public-key'");
  ExpectLoadError(dir, pub + sec + pub, "bad.key:3: duplicate key 'public-key' (first on line 1)");
  ExpectLoadError(dir, pub + "private-key = x\n" + sec,
                  "bad.key:2: unknown key 'private-key' (expected public-key or secret-key)");
  ExpectLoadError(dir, pub + "secret-key " + p.secret_z85 + "\n",
                  "bad.key:2: expected 'key = value'");
  ExpectLoadError(dir, "public-key = " + p.public_z85.substr(1) + "\n" + sec,
                  "bad.key:1: public-key '" + p.public_z85.substr(1) +
                      "': a CurveZMQ key is 40 Z85 characters, not 39");
  ExpectLoadError(dir, pub + "secret-key = " + p.secret_z85 + "A\n",
                  "bad.key:2: secret-key: a CurveZMQ key is 40 Z85 characters, not 41");
  ExpectLoadError(dir, "public-key = \n" + sec, "bad.key:1: public-key '': a CurveZMQ key is");
  ExpectLoadError(dir, "public-key = " + p.public_z85.substr(0, 39) + "~\n" + sec,
                  "bad.key:1: public-key '" + p.public_z85.substr(0, 39) +
                      "~': character 40 is not in the Z85 alphabet");
  // Five Z85 characters that exceed 32 bits.
  ExpectLoadError(dir, "public-key = " + p.public_z85.substr(0, 35) + "#####\n" + sec,
                  "characters 36..40 do not encode 4 bytes");
  ExpectLoadError(dir, "public-key = " + other.public_z85 + "\n" + sec,
                  "bad.key:1: public-key '" + other.public_z85 +
                      "' is not the public key of secret-key (line 2), which is '" + p.public_z85 +
                      "'");

  // A bad secret key is never echoed.
  const std::string msg =
      ExpectLoadError(dir, pub + "secret-key = " + p.secret_z85 + "~\n", "bad.key:2: secret-key:");
  BOOST_TEST(msg.find(p.secret_z85) == std::string::npos, msg);
  const std::string msg2 =
      ExpectLoadError(dir, pub + "secret-key " + p.secret_z85 + "\n", "found no '='");
  BOOST_TEST(msg2.find(p.secret_z85) == std::string::npos, msg2);
  // Z85 has '=': a secret missing its own '=' must not be cut there and shown.
  // (A prefix of lower-case letters and '-' would read as a key name: pick a
  // secret whose first 5 characters are not all such, and have no '='.)
  const auto usable = [](const std::string& secret) {
    const std::string prefix = secret.substr(0, 5);
    return prefix.find('=') == std::string::npos &&
           prefix.find_first_not_of("abcdefghijklmnopqrstuvwxyz-") != std::string::npos;
  };
  CurveKeyPair q = NewPair();
  while (!usable(q.secret_z85)) q = NewPair();
  const std::string cut = q.secret_z85.substr(0, 5) + "=" + q.secret_z85.substr(6);
  for (const std::string& line : {"secret-key " + cut, cut, "x" + cut}) {
    const std::string msg3 = ExpectLoadError(dir, pub + line + "\n",
                                             "bad.key:2: expected 'key = value', found a key that "
                                             "is not a lower-case word");
    BOOST_TEST(msg3.find(q.secret_z85.substr(0, 5)) == std::string::npos, msg3);
  }
}

BOOST_AUTO_TEST_CASE(KeyFileReadableByGroupOrOthersIsRefusedNamingTheMode) {
  TempDir dir;
  const CurveKeyPair p = NewPair();
  ExpectLoadError(dir, KeyFileText(p), "bad.key: mode 0644 gives group or others access",
                  Code::kPermissionDenied, 0644);
  ExpectLoadError(dir, KeyFileText(p), "mode 0640", Code::kPermissionDenied, 0640);
  ExpectLoadError(dir, KeyFileText(p), "mode 0604", Code::kPermissionDenied, 0604);
  // 0400 is fine (read-only for the owner).
  const std::string path = dir.File("ro.key");
  WriteRaw(path, KeyFileText(p), 0400);
  BOOST_TEST(LoadKeyFile(path).ok());
}

BOOST_AUTO_TEST_CASE(MissingFileIsNotFound) {
  TempDir dir;
  auto r = LoadKeyFile(dir.File("absent.key"));
  BOOST_TEST_REQUIRE(!r.ok());
  BOOST_TEST((r.status().code() == Code::kNotFound), r.status().ToString());
  BOOST_TEST(r.status().message().find("absent.key") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(ExistingKeyFileIsOverwrittenOnlyWhenAsked) {
  TempDir dir;
  const std::string path = dir.File("k");
  const CurveKeyPair first = NewPair();
  const CurveKeyPair second = NewPair();
  BOOST_TEST_REQUIRE(WriteKeyFile(path, first, false).ok());
  const std::string before = ReadRaw(path);

  Status s = WriteKeyFile(path, second, /*overwrite=*/false);
  BOOST_TEST((s.code() == Code::kAlreadyExists), s.ToString());
  BOOST_TEST(s.message().find(path) != std::string::npos, s.message());
  BOOST_TEST(ReadRaw(path) == before);

  // An existing file of any kind, even a dangling symlink, is kept.
  const std::string link = dir.File("dangling");
  BOOST_TEST_REQUIRE(::symlink(dir.File("nowhere").c_str(), link.c_str()) == 0);
  BOOST_TEST((WriteKeyFile(link, second, false).code() == Code::kAlreadyExists));
  BOOST_TEST(!fs::exists(dir.File("nowhere")));

  BOOST_TEST_REQUIRE(WriteKeyFile(path, second, /*overwrite=*/true).ok());
  BOOST_TEST(ModeOf(path) == 0600u);
  BOOST_TEST(LoadKeyFile(path)->public_z85 == second.public_z85);
  // k and dangling: no temporary file left behind.
  BOOST_TEST(dir.EntryCount() == 2);
}

BOOST_AUTO_TEST_CASE(MismatchedPairIsNotWritten) {
  TempDir dir;
  const std::string path = dir.File("k");
  CurveKeyPair p = NewPair();
  p.public_z85 = NewPair().public_z85;
  Status s = WriteKeyFile(path, p, false);
  BOOST_TEST((s.code() == Code::kInvalidArgument), s.ToString());
  BOOST_TEST(s.message().find("is not the public key of the secret key") != std::string::npos,
             s.message());
  BOOST_TEST(s.message().find(p.secret_z85) == std::string::npos, s.message());
  BOOST_TEST(!fs::exists(path));
  BOOST_TEST(fs::is_empty(dir.path));
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------
// Sockets.

// Refusals reported by the ZapHandler's callback (on its thread).
struct Refusals {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::pair<std::string, std::string>> items;  // key, address

  ZapHandler::RefusedFn Fn() {
    return [this](std::string_view key, std::string_view address) {
      std::lock_guard<std::mutex> lock(mu);
      items.emplace_back(std::string(key), std::string(address));
      cv.notify_all();
    };
  }
  std::optional<std::pair<std::string, std::string>> Next() {
    std::unique_lock<std::mutex> lock(mu);
    if (!cv.wait_for(lock, kDeadline, [this] { return !items.empty(); })) return std::nullopt;
    auto item = items.front();
    items.pop_front();
    return item;
  }
};

// Waits for a message on `s`; its frames, or empty after the deadline.
std::vector<zmq::message_t> Receive(zmq::socket_t& s,
                                    std::chrono::milliseconds timeout = kDeadline) {
  std::vector<zmq::message_t> frames;
  zmq::pollitem_t item{s.handle(), 0, ZMQ_POLLIN, 0};
  zmq::poll(&item, 1, timeout);
  if ((item.revents & ZMQ_POLLIN) == 0) return frames;
  do {
    frames.emplace_back();
    BOOST_REQUIRE(s.recv(frames.back(), zmq::recv_flags::dontwait));
  } while (frames.back().more());
  return frames;
}

// One context with a ZapHandler that knows host-a (the server) and host-b.
// Member order is destruction order reversed: sockets go first, then the
// handler, then the context.
struct Cluster {
  zmq::context_t ctx;
  CurveKeyPair host_a = NewPair();
  CurveKeyPair host_b = NewPair();
  CurveKeyPair stranger = NewPair();
  Refusals refusals;
  std::unique_ptr<ZapHandler> zap;
  zmq::socket_t server;
  std::unique_ptr<Monitor> server_monitor;
  std::string endpoint;

  Cluster() {
    auto z = ZapHandler::Start(ctx, {{host_a.public_z85, "host-a"}, {host_b.public_z85, "host-b"}},
                               refusals.Fn());
    BOOST_REQUIRE_MESSAGE(z.ok(), z.status().ToString());
    zap = std::move(*z);
    server = zmq::socket_t(ctx, zmq::socket_type::router);
    server.set(zmq::sockopt::linger, 0);
    BOOST_REQUIRE(ConfigureCurveServer(server, host_a).ok());
    server_monitor = std::make_unique<Monitor>(ctx, server);
    server.bind("tcp://127.0.0.1:*");
    endpoint = server.get(zmq::sockopt::last_endpoint);
  }

  // A DEALER with routing id `id` and key pair `own`, trusting the server
  // key `server_key`; `monitor`, when given, is attached before connecting.
  zmq::socket_t Client(const std::string& id, const CurveKeyPair& own,
                       const std::string& server_key, std::unique_ptr<Monitor>* monitor = nullptr) {
    zmq::socket_t s(ctx, zmq::socket_type::dealer);
    s.set(zmq::sockopt::linger, 0);
    s.set(zmq::sockopt::routing_id, id);
    Status st = ConfigureCurveClient(s, own, server_key);
    BOOST_REQUIRE_MESSAGE(st.ok(), st.ToString());
    if (monitor != nullptr) *monitor = std::make_unique<Monitor>(ctx, s);
    s.connect(endpoint);
    return s;
  }
};

BOOST_AUTO_TEST_SUITE(CurveSocketTest)

BOOST_AUTO_TEST_CASE(ListedClientGetsThroughBoundToItsHostId) {
  Cluster c;
  std::unique_ptr<Monitor> client_monitor;
  zmq::socket_t client = c.Client("host-b", c.host_b, c.host_a.public_z85, &client_monitor);
  client.send(zmq::str_buffer("hello"));

  auto frames = Receive(c.server);
  BOOST_TEST_REQUIRE(frames.size() == 2u);
  BOOST_TEST(frames[0].to_string() == "host-b");
  BOOST_TEST(frames[1].to_string() == "hello");
  auto host = AdmittedHostId(frames[1]);
  BOOST_TEST_REQUIRE(host.ok(), host.status().ToString());
  BOOST_TEST(*host == "host-b");
  BOOST_TEST(c.zap->admitted() == 1u);
  BOOST_TEST(c.zap->refused() == 0u);
  BOOST_TEST(client_monitor->WaitFor(ZMQ_EVENT_HANDSHAKE_SUCCEEDED).has_value(),
             client_monitor->Seen());

  // And the reply path works (the link is encrypted both ways).
  c.server.send(zmq::str_buffer("host-b"), zmq::send_flags::sndmore);
  c.server.send(zmq::str_buffer("welcome"));
  auto reply = Receive(client);
  BOOST_TEST_REQUIRE(reply.size() == 1u);
  BOOST_TEST(reply[0].to_string() == "welcome");
}

BOOST_AUTO_TEST_CASE(UnlistedClientIsRefusedAndItsMessageNeverArrives) {
  Cluster c;
  std::unique_ptr<Monitor> stranger_monitor;
  {
    zmq::socket_t stranger = c.Client("host-b", c.stranger, c.host_a.public_z85, &stranger_monitor);
    stranger.send(zmq::str_buffer("from the stranger"));

    auto refusal = c.refusals.Next();
    BOOST_TEST_REQUIRE(refusal.has_value());
    BOOST_TEST(refusal->first == c.stranger.public_z85);
    BOOST_TEST(refusal->second == "127.0.0.1");
    BOOST_TEST(c.zap->refused() >= 1u);
    BOOST_TEST(c.zap->admitted() == 0u);
    // Both ends see the ZAP refusal (status 400).
    auto client_event = stranger_monitor->WaitFor(ZMQ_EVENT_HANDSHAKE_FAILED_AUTH);
    BOOST_TEST_REQUIRE(client_event.has_value(), stranger_monitor->Seen());
    BOOST_TEST(*client_event == 400);
    auto server_event = c.server_monitor->WaitFor(ZMQ_EVENT_HANDSHAKE_FAILED_AUTH);
    BOOST_TEST_REQUIRE(server_event.has_value(), c.server_monitor->Seen());
    BOOST_TEST(*server_event == 400);
    BOOST_TEST((AdmittedHostId(zmq::message_t(std::string_view("x"))).status().code() ==
                Code::kPermissionDenied));
  }  // the stranger is closed

  // The stranger's message never arrived: the first message the server gets
  // is the listed host's, and nothing else is waiting.
  zmq::socket_t listed = c.Client("host-b", c.host_b, c.host_a.public_z85);
  listed.send(zmq::str_buffer("from host-b"));
  auto frames = Receive(c.server);
  BOOST_TEST_REQUIRE(frames.size() == 2u);
  BOOST_TEST(frames[1].to_string() == "from host-b");
  BOOST_TEST(*AdmittedHostId(frames[1]) == "host-b");
  BOOST_TEST(Receive(c.server, 0ms).empty());
  BOOST_TEST(c.zap->admitted() == 1u);
}

BOOST_AUTO_TEST_CASE(ClientWithWrongServerKeyFailsTheHandshake) {
  Cluster c;
  std::unique_ptr<Monitor> client_monitor;
  // A listed client that trusts another server key: the server cannot open
  // its HELLO, ZAP is never asked.
  zmq::socket_t client = c.Client("host-b", c.host_b, c.stranger.public_z85, &client_monitor);
  client.send(zmq::str_buffer("hello"));
  auto event = c.server_monitor->WaitFor(ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL);
  BOOST_TEST_REQUIRE(event.has_value(), c.server_monitor->Seen());
  BOOST_TEST(*event == ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC);
  BOOST_TEST(c.zap->admitted() == 0u);
  BOOST_TEST(c.zap->refused() == 0u);
  BOOST_TEST(Receive(c.server, 0ms).empty());
}

BOOST_AUTO_TEST_CASE(ServerWithoutZapHandlerRefusesEveryClient) {
  // ConfigureCurveServer enforces the ZAP domain: no handler, no admission
  // (libzmq would otherwise admit any CURVE client unauthenticated).
  zmq::context_t ctx;
  const CurveKeyPair server_pair = NewPair();
  const CurveKeyPair client_pair = NewPair();
  zmq::socket_t server(ctx, zmq::socket_type::router);
  server.set(zmq::sockopt::linger, 0);
  BOOST_TEST_REQUIRE(ConfigureCurveServer(server, server_pair).ok());
  Monitor monitor(ctx, server);
  server.bind("tcp://127.0.0.1:*");
  zmq::socket_t client(ctx, zmq::socket_type::dealer);
  client.set(zmq::sockopt::linger, 0);
  BOOST_TEST_REQUIRE(ConfigureCurveClient(client, client_pair, server_pair.public_z85).ok());
  client.connect(server.get(zmq::sockopt::last_endpoint));
  client.send(zmq::str_buffer("hello"));
  auto event = monitor.WaitFor(ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL);
  BOOST_TEST_REQUIRE(event.has_value(), monitor.Seen());
  BOOST_TEST(Receive(server, 0ms).empty());
}

BOOST_AUTO_TEST_CASE(ConfigureRefusesBadKeysAndBoundSockets) {
  zmq::context_t ctx;
  const CurveKeyPair pair = NewPair();
  zmq::socket_t s(ctx, zmq::socket_type::dealer);
  s.set(zmq::sockopt::linger, 0);
  Status st = ConfigureCurveClient(s, pair, "short");
  BOOST_TEST((st.code() == Code::kInvalidArgument), st.ToString());
  BOOST_TEST(st.message().find("server public-key 'short'") != std::string::npos, st.message());
  CurveKeyPair mismatched{NewPair().public_z85, pair.secret_z85};
  st = ConfigureCurveClient(s, mismatched, pair.public_z85);
  BOOST_TEST((st.code() == Code::kInvalidArgument), st.ToString());
  BOOST_TEST(st.message().find("own key pair: public-key") != std::string::npos, st.message());

  zmq::socket_t bound(ctx, zmq::socket_type::router);
  bound.set(zmq::sockopt::linger, 0);
  bound.bind("tcp://127.0.0.1:*");
  st = ConfigureCurveServer(bound, pair);
  BOOST_TEST((st.code() == Code::kFailedPrecondition), st.ToString());
  BOOST_TEST(st.message().find("tcp://127.0.0.1:") != std::string::npos, st.message());
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------
// The ZapHandler spoken to directly, as libzmq would, with hand-made requests.

struct ZapClient {
  zmq::context_t ctx;
  CurveKeyPair listed = NewPair();
  Refusals refusals;
  std::unique_ptr<ZapHandler> zap;
  zmq::socket_t req;

  ZapClient() {
    auto z = ZapHandler::Start(ctx, {{listed.public_z85, "host-b"}}, refusals.Fn());
    BOOST_REQUIRE_MESSAGE(z.ok(), z.status().ToString());
    zap = std::move(*z);
    req = zmq::socket_t(ctx, zmq::socket_type::req);
    req.set(zmq::sockopt::linger, 0);
    req.connect(std::string(kZapEndpoint));
  }

  // Sends `frames`; returns the reply's status code, text and user id.
  std::vector<std::string> Ask(const std::vector<std::string>& frames) {
    for (size_t i = 0; i < frames.size(); ++i) {
      req.send(zmq::buffer(frames[i]),
               i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
    }
    auto reply = Receive(req);
    BOOST_REQUIRE_EQUAL(reply.size(), 6u);
    BOOST_TEST(reply[0].to_string() == "1.0");
    const std::string request_id = frames.size() > 1 ? frames[1] : std::string();
    BOOST_TEST(reply[1].to_string() == request_id);
    return {reply[2].to_string(), reply[3].to_string(), reply[4].to_string()};
  }
};

std::string Raw(const std::string& z85) {
  std::string raw(32, '\0');
  BOOST_REQUIRE(zmq_z85_decode(reinterpret_cast<uint8_t*>(raw.data()), z85.c_str()) != nullptr);
  return raw;
}

BOOST_AUTO_TEST_SUITE(ZapHandlerTest)

BOOST_AUTO_TEST_CASE(RequestsAreValidatedStrictly) {
  ZapClient z;
  const std::string key = Raw(z.listed.public_z85);
  const std::string stranger = Raw(NewPair().public_z85);
  auto Curve = [](const std::string& version, const std::string& domain,
                  const std::string& credentials) {
    return std::vector<std::string>{version, "7", domain, "10.0.0.9", "", "CURVE", credentials};
  };

  auto ok = z.Ask(Curve("1.0", "vnvram", key));
  BOOST_TEST(ok[0] == "200");
  BOOST_TEST(ok[2] == "host-b");
  BOOST_TEST(z.zap->admitted() == 1u);

  struct Bad {
    std::vector<std::string> frames;
    std::string reason;
  };
  const Bad bad[] = {
      {Curve("1.0", "vnvram", stranger), "public key not in the cluster file"},
      {Curve("2.0", "vnvram", key), "version '2.0'"},
      {Curve("1.0", "other", key), "ZAP domain 'other'"},
      {Curve("1.0", "vnvram", key.substr(1)), "key of 31 bytes, expected 32"},
      {{"1.0", "7", "vnvram", "10.0.0.9", "", "NULL"}, "mechanism 'NULL'"},
      {{"1.0", "7", "vnvram", "10.0.0.9", "", "PLAIN", "user", "pass"}, "mechanism 'PLAIN'"},
      {{"1.0", "7", "vnvram", "10.0.0.9", "", "CURVE"}, "6 frames, expected 7"},
      {{"1.0", "7", "vnvram", "10.0.0.9"}, "4 frames, expected 6 or more"},
  };
  uint64_t refused = 0;
  for (const Bad& b : bad) {
    auto r = z.Ask(b.frames);
    BOOST_TEST(r[0] == "400", b.reason);
    BOOST_TEST(r[1].find(b.reason) != std::string::npos, r[1] << " vs " << b.reason);
    BOOST_TEST(r[2] == "");
    BOOST_TEST(z.zap->refused() == ++refused);
    auto reported = z.refusals.Next();
    BOOST_TEST_REQUIRE(reported.has_value());
    BOOST_TEST(reported->second == "10.0.0.9");
  }
  BOOST_TEST(z.zap->admitted() == 1u);
}

BOOST_AUTO_TEST_CASE(StartRejectsBadAllowListAndSecondHandler) {
  zmq::context_t ctx;
  const CurveKeyPair p = NewPair();
  auto bad_key = ZapHandler::Start(ctx, {{"not-a-key", "host-a"}});
  BOOST_TEST_REQUIRE(!bad_key.ok());
  BOOST_TEST(bad_key.status().message().find("allowed key 'not-a-key' (host 'host-a')") !=
                 std::string::npos,
             bad_key.status().message());
  auto bad_host = ZapHandler::Start(ctx, {{p.public_z85, "-bad host"}});
  BOOST_TEST_REQUIRE(!bad_host.ok());
  BOOST_TEST(bad_host.status().message().find("host id '-bad host'") != std::string::npos,
             bad_host.status().message());

  auto first = ZapHandler::Start(ctx, {{p.public_z85, "host-a"}});
  BOOST_TEST_REQUIRE(first.ok(), first.status().ToString());
  auto second = ZapHandler::Start(ctx, {});
  BOOST_TEST((second.status().code() == Code::kAlreadyExists), second.status().ToString());
  // Once the first is gone, the endpoint is free again.
  first->reset();
  auto third = ZapHandler::Start(ctx, {});
  BOOST_TEST(third.ok(), third.status().ToString());
}

BOOST_AUTO_TEST_CASE(ContextTerminationDoesNotWaitForTheHandler) {
  // Terminating the context while the handler runs: its thread sees ETERM
  // and closes its socket, so zmq_ctx_term returns; destruction then joins.
  zmq::context_t ctx;
  auto z = ZapHandler::Start(ctx, {});
  BOOST_TEST_REQUIRE(z.ok(), z.status().ToString());
  ctx.close();
  z->reset();
  auto after = ZapHandler::Start(ctx, {});
  BOOST_TEST((after.status().code() == Code::kUnavailable), after.status().ToString());
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------
// nvram-tool keygen, the built binary.

struct ToolRun {
  int exit_code = -1;
  std::vector<std::string> lines;  // stdout and stderr
};

ToolRun RunTool(std::vector<std::string> args) {
  args.insert(args.begin(), std::string(VNVRAM_BIN_DIR) + "/nvram-tool");
  auto child = vnvram::testing::ChildProcess::Spawn(args);
  BOOST_REQUIRE_MESSAGE(child.ok(), child.status().ToString());
  ToolRun run;
  while (true) {
    auto line = (*child)->NextLine(kDeadline);
    if (!line.ok()) {
      BOOST_REQUIRE_MESSAGE(line.status().code() == Code::kUnavailable, line.status().ToString());
      break;
    }
    run.lines.push_back(*line);
  }
  auto rc = (*child)->Wait(kDeadline);
  BOOST_REQUIRE_MESSAGE(rc.ok(), rc.status().ToString());
  run.exit_code = *rc;
  return run;
}

BOOST_AUTO_TEST_SUITE(KeygenToolTest)

BOOST_AUTO_TEST_CASE(KeygenWritesPrivateFileAndPrintsItsPublicKey) {
  TempDir dir;
  const std::string path = dir.File("host-a.key");
  ToolRun gen = RunTool({"keygen", "--out", path});
  BOOST_TEST_REQUIRE(gen.exit_code == 0);
  BOOST_TEST_REQUIRE(gen.lines.size() == 1u);
  const std::string pub = gen.lines[0];
  BOOST_TEST(CheckCurveKey(pub).ok(), pub);
  BOOST_TEST(ModeOf(path) == 0600u);
  auto loaded = LoadKeyFile(path);
  BOOST_TEST_REQUIRE(loaded.ok(), loaded.status().ToString());
  BOOST_TEST(loaded->public_z85 == pub);

  ToolRun show = RunTool({"keygen", "--public-of", path});
  BOOST_TEST(show.exit_code == 0);
  BOOST_TEST_REQUIRE(show.lines.size() == 1u);
  BOOST_TEST(show.lines[0] == pub);

  // A second keygen without --force fails and leaves the file alone.
  const std::string before = ReadRaw(path);
  ToolRun again = RunTool({"keygen", "--out", path});
  BOOST_TEST(again.exit_code == 1);
  BOOST_TEST_REQUIRE(again.lines.size() == 1u);
  BOOST_TEST(again.lines[0].find("nvram-tool: already exists: key file " + path) == 0u,
             again.lines[0]);
  BOOST_TEST(again.lines[0].find("--force") != std::string::npos, again.lines[0]);
  BOOST_TEST(ReadRaw(path) == before);

  ToolRun forced = RunTool({"keygen", "--out", path, "--force"});
  BOOST_TEST(forced.exit_code == 0);
  BOOST_TEST_REQUIRE(forced.lines.size() == 1u);
  BOOST_TEST(forced.lines[0] != pub);
  BOOST_TEST(LoadKeyFile(path)->public_z85 == forced.lines[0]);
}

BOOST_AUTO_TEST_CASE(KeygenErrors) {
  TempDir dir;
  const std::string path = dir.File("open.key");
  WriteRaw(path, KeyFileText(NewPair()), 0644);
  ToolRun open = RunTool({"keygen", "--public-of", path});
  BOOST_TEST(open.exit_code == 1);
  BOOST_TEST_REQUIRE(open.lines.size() == 1u);
  BOOST_TEST(open.lines[0].find("mode 0644") != std::string::npos, open.lines[0]);

  // Usage errors: exit 2, one line.
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"keygen"},
           {"keygen", "--out", dir.File("a"), "--public-of", path},
           {"keygen", "--public-of", path, "--force"},
           {"keygen", "--out", ""},
           {"keygen", "--out", dir.File("b"), "extra"},
       }) {
    ToolRun r = RunTool(args);
    BOOST_TEST(r.exit_code == 2, args.size());
    BOOST_TEST(r.lines.size() == 1u);
  }
  BOOST_TEST(!fs::exists(dir.File("a")));
  BOOST_TEST(!fs::exists(dir.File("b")));
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace vnvram::replication
