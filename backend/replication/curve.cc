#include "backend/replication/curve.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <optional>
#include <vector>

#include "backend/replication/cluster_config.h"
#include "common/file_io.h"
#include "common/parse.h"

namespace vnvram::replication {

namespace {

constexpr size_t kZ85KeyLength = 40;
constexpr size_t kMaxKeyFileSize = 4096;
constexpr mode_t kKeyFileMode = 0600;
constexpr std::string_view kPublicKeyName = "public-key";
constexpr std::string_view kSecretKeyName = "secret-key";

// ZMQ_ZAP_ENFORCE_DOMAIN: zmq.h of libzmq 4.3 declares it only under
// ZMQ_BUILD_DRAFT_API, but the library honours it in every 4.3 build.
constexpr int kZmqZapEnforceDomain = 93;

// Clears a buffer that held a secret key.
template <size_t N>
void Wipe(std::array<char, N>& buf) {
  explicit_bzero(buf.data(), buf.size());
}

std::string Quote(std::string_view s) {
  return QuoteForError(s, 80);
}

std::string ModeString(mode_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

// Checks one key; `name` is "public-key" or "secret-key". The value is
// quoted in the error only when `echo` (never for a secret key).
Status CheckKey(std::string_view z85, std::string_view name, bool echo) {
  std::string prefix(name);
  if (echo) {
    // Two appends: GCC 12 warns falsely (-Wrestrict) on " " + std::string.
    prefix += ' ';
    prefix += Quote(z85);
  }
  if (z85.size() != kZ85KeyLength) {
    return Status::InvalidArgument(prefix + ": a CurveZMQ key is 40 Z85 characters, not " +
                                   std::to_string(z85.size()));
  }
  if (Status s = CheckCurveKey(z85); !s.ok()) {
    return Status::InvalidArgument(prefix + ": " + s.message());
  }
  return {};
}

Status CurveMissing() {
  return Status::NotSupported("libzmq was built without CURVE (libsodium)");
}

// The public key of a secret key already checked by CheckKey.
Result<std::string> Derive(std::string_view secret_z85) {
  std::array<char, kZ85KeyLength + 1> secret{};
  std::array<char, kZ85KeyLength + 1> pub{};
  std::memcpy(secret.data(), secret_z85.data(), kZ85KeyLength);
  const int rc = zmq_curve_public(pub.data(), secret.data());
  const int err = zmq_errno();
  Wipe(secret);
  if (rc != 0) {
    if (err == ENOTSUP) return CurveMissing();
    return Status::FromErrno(err, "zmq_curve_public");
  }
  return std::string(pub.data(), kZ85KeyLength);
}

Status SetOption(zmq::socket_t& s, int option, const void* value, size_t size,
                 std::string_view name) {
  if (zmq_setsockopt(s.handle(), option, value, size) != 0) {
    return Status::FromErrno(zmq_errno(), "zmq_setsockopt " + std::string(name));
  }
  return {};
}

Status SetKey(zmq::socket_t& s, int option, std::string_view z85, std::string_view name) {
  return SetOption(s, option, z85.data(), z85.size(), name);
}

Status SetInt(zmq::socket_t& s, int option, int value, std::string_view name) {
  return SetOption(s, option, &value, sizeof value, name);
}

// CURVE options take effect only for connections made after they are set.
Status CheckNotYetBoundOrConnected(zmq::socket_t& s, std::string_view caller) {
  std::array<char, 1024> endpoint{};
  size_t size = endpoint.size();
  if (zmq_getsockopt(s.handle(), ZMQ_LAST_ENDPOINT, endpoint.data(), &size) != 0) {
    return Status::FromErrno(zmq_errno(), "zmq_getsockopt ZMQ_LAST_ENDPOINT");
  }
  if (endpoint[0] != '\0') {
    return Status::FailedPrecondition(
        std::string(caller) + ": socket already bound or connected (" + Quote(endpoint.data()) +
        "); configure CURVE before bind/connect");
  }
  return {};
}

Status Errno(std::string_view what, const std::string& path) {
  return Status::FromErrno(errno, std::string(what) + " " + path);
}

std::string_view Trim(std::string_view s) {
  const auto blank = [](char c) { return c == ' ' || c == '\t' || c == '\r'; };
  while (!s.empty() && blank(s.front())) s.remove_prefix(1);
  while (!s.empty() && blank(s.back())) s.remove_suffix(1);
  return s;
}

// Key names are lower-case words with '-' ("public-key"). Anything else
// before a '=' may be the start of a secret key pasted without its name
// ('=' is a Z85 character) and is not echoed in errors.
bool LooksLikeKeyName(std::string_view key) {
  if (key.empty() || key.size() > 32 || key.front() < 'a' || key.front() > 'z') return false;
  for (char c : key) {
    if ((c < 'a' || c > 'z') && c != '-') return false;
  }
  return true;
}

Result<std::string> ReadKeyFileText(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) return Errno("open key file", path);
  struct FdCloser {
    int fd;
    ~FdCloser() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) return Errno("stat key file", path);
  if (!S_ISREG(st.st_mode)) {
    return Status::InvalidArgument(path + ": not a regular file");
  }
  if ((st.st_mode & 0077) != 0) {
    return Status::PermissionDenied(path + ": mode " + ModeString(st.st_mode) +
                                    " gives group or others access to the secret key; run chmod "
                                    "600 " +
                                    path);
  }
  if (static_cast<uint64_t>(st.st_size) > kMaxKeyFileSize) {
    return Status::InvalidArgument(path + ": " + std::to_string(st.st_size) +
                                   " bytes, a key file is at most " +
                                   std::to_string(kMaxKeyFileSize));
  }
  std::string text;
  std::array<char, 1024> buf{};
  while (true) {
    const ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return Errno("read key file", path);
    }
    if (n == 0) break;
    text.append(buf.data(), static_cast<size_t>(n));
    if (text.size() > kMaxKeyFileSize) {
      return Status::InvalidArgument(path + ": a key file is at most " +
                                     std::to_string(kMaxKeyFileSize) + " bytes");
    }
  }
  Wipe(buf);
  return text;
}

}  // namespace

bool CurveSupported() {
  return zmq_has("curve") != 0;
}

Result<CurveKeyPair> GenerateCurveKeyPair() {
  if (!CurveSupported()) return CurveMissing();
  std::array<char, kZ85KeyLength + 1> pub{};
  std::array<char, kZ85KeyLength + 1> secret{};
  if (zmq_curve_keypair(pub.data(), secret.data()) != 0) {
    const int err = zmq_errno();
    if (err == ENOTSUP) return CurveMissing();
    return Status::FromErrno(err, "zmq_curve_keypair");
  }
  CurveKeyPair pair{std::string(pub.data(), kZ85KeyLength),
                    std::string(secret.data(), kZ85KeyLength)};
  Wipe(secret);
  return pair;
}

Result<std::string> DerivePublicKey(std::string_view secret_z85) {
  if (!CurveSupported()) return CurveMissing();
  VNVRAM_RETURN_IF_ERROR(CheckKey(secret_z85, kSecretKeyName, /*echo=*/false));
  return Derive(secret_z85);
}

Status CheckKeyPair(const CurveKeyPair& pair) {
  VNVRAM_RETURN_IF_ERROR(CheckKey(pair.public_z85, kPublicKeyName, /*echo=*/true));
  VNVRAM_ASSIGN_OR_RETURN(const std::string derived, DerivePublicKey(pair.secret_z85));
  if (derived != pair.public_z85) {
    return Status::InvalidArgument("public-key " + Quote(pair.public_z85) +
                                   " is not the public key of the secret key (that is " +
                                   Quote(derived) + ")");
  }
  return {};
}

Status WriteKeyFile(const std::string& path, const CurveKeyPair& pair, bool overwrite) {
  if (path.empty()) return Status::InvalidArgument("key file path is empty");
  if (Status s = CheckKeyPair(pair); !s.ok()) return s.WithContext("key file " + path);
  struct stat st {};
  if (!overwrite && ::lstat(path.c_str(), &st) == 0) {
    return Status::AlreadyExists("key file " + path + " already exists; not overwritten");
  }

  std::string dir = std::filesystem::path(path).parent_path().string();
  if (dir.empty()) dir.push_back('.');  // not `= "."`: GCC 12 -Wrestrict false positive
  std::vector<char> tmp_name(path.begin(), path.end());
  for (char c : std::string_view(".tmp-XXXXXX")) tmp_name.push_back(c);
  tmp_name.push_back('\0');
  const int fd = ::mkostemp(tmp_name.data(), O_CLOEXEC);
  if (fd < 0) return Errno("create temporary key file beside", path);
  const std::string tmp(tmp_name.data());

  std::string text;
  text += "# vnvram CurveZMQ key pair, written by nvram-tool keygen. Keep it secret:\n";
  text += "# mode 0600, readable by vnvramd only. The public key goes into the\n";
  text += "# cluster file as this host's hosts[].public-key.\n";
  text += std::string(kPublicKeyName) + " = " + pair.public_z85 + "\n";
  text += std::string(kSecretKeyName) + " = " + pair.secret_z85 + "\n";

  Status status;
  if (::fchmod(fd, kKeyFileMode) != 0) {
    status = Errno("chmod 600", tmp);
  } else {
    status = WriteAll(fd, std::as_bytes(std::span(text.data(), text.size())), tmp);
  }
  if (status.ok() && ::fsync(fd) != 0) status = Errno("fsync", tmp);
  if (::close(fd) != 0 && status.ok()) status = Errno("close", tmp);
  explicit_bzero(text.data(), text.size());
  if (status.ok()) {
    if (overwrite) {
      if (::rename(tmp.c_str(), path.c_str()) != 0) status = Errno("rename " + tmp + " to", path);
    } else if (::link(tmp.c_str(), path.c_str()) != 0) {
      status = errno == EEXIST
                   ? Status::AlreadyExists("key file " + path + " already exists; not overwritten")
                   : Errno("link " + tmp + " to", path);
    }
  }
  // After a rename the name is gone; otherwise the temporary name goes.
  if (!(status.ok() && overwrite)) ::unlink(tmp.c_str());
  VNVRAM_RETURN_IF_ERROR(status);
  return FsyncDirectory(dir);
}

Result<CurveKeyPair> LoadKeyFile(const std::string& path) {
  VNVRAM_ASSIGN_OR_RETURN(std::string text, ReadKeyFileText(path));
  struct Entry {
    std::string value;
    size_t line = 0;
  };
  std::optional<Entry> pub, secret;
  Status status;
  size_t line_no = 0;
  std::string_view rest = text;
  while (status.ok() && !rest.empty()) {
    ++line_no;
    const size_t eol = rest.find('\n');
    const std::string_view line = Trim(rest.substr(0, eol));
    rest.remove_prefix(eol == std::string_view::npos ? rest.size() : eol + 1);
    if (line.empty() || line.front() == '#') continue;
    const std::string where = path + ":" + std::to_string(line_no) + ": ";
    const size_t eq = line.find('=');
    if (eq == std::string_view::npos) {
      // The line is not echoed: it may be a secret key missing its '='.
      status = Status::InvalidArgument(where + "expected 'key = value', found no '='");
      break;
    }
    const std::string_view key = Trim(line.substr(0, eq));
    const std::string_view value = Trim(line.substr(eq + 1));
    if (!LooksLikeKeyName(key)) {
      // Not echoed: it may be part of a secret key ('=' is a Z85 character).
      status = Status::InvalidArgument(where +
                                       "expected 'key = value', found a key that is not a "
                                       "lower-case word (not shown: it may hold the secret)");
      break;
    }
    std::optional<Entry>* slot = nullptr;
    if (key == kPublicKeyName) {
      slot = &pub;
    } else if (key == kSecretKeyName) {
      slot = &secret;
    } else {
      status = Status::InvalidArgument(where + "unknown key " + Quote(key) +
                                       " (expected public-key or secret-key)");
      break;
    }
    if (slot->has_value()) {
      status = Status::InvalidArgument(where + "duplicate key '" + std::string(key) +
                                       "' (first on line " + std::to_string((*slot)->line) + ")");
      break;
    }
    const bool is_public = slot == &pub;
    if (Status s = CheckKey(value, key, /*echo=*/is_public); !s.ok()) {
      status = Status::InvalidArgument(where + s.message());
      break;
    }
    *slot = Entry{std::string(value), line_no};
  }
  explicit_bzero(text.data(), text.size());
  VNVRAM_RETURN_IF_ERROR(status);
  if (!pub) return Status::InvalidArgument(path + ": missing key 'public-key'");
  if (!secret) return Status::InvalidArgument(path + ": missing key 'secret-key'");

  auto derived = Derive(secret->value);
  if (!derived.ok()) return derived.status().WithContext(path);
  if (*derived != pub->value) {
    return Status::InvalidArgument(path + ":" + std::to_string(pub->line) + ": public-key " +
                                   Quote(pub->value) +
                                   " is not the public key of secret-key (line " +
                                   std::to_string(secret->line) + "), which is " + Quote(*derived));
  }
  return CurveKeyPair{std::move(pub->value), std::move(secret->value)};
}

Status ConfigureCurveServer(zmq::socket_t& s, const CurveKeyPair& own) {
  if (!CurveSupported()) return CurveMissing();
  VNVRAM_RETURN_IF_ERROR(CheckNotYetBoundOrConnected(s, "ConfigureCurveServer"));
  if (Status st = CheckKeyPair(own); !st.ok()) return st.WithContext("own key pair");
  VNVRAM_RETURN_IF_ERROR(SetInt(s, ZMQ_CURVE_SERVER, 1, "ZMQ_CURVE_SERVER"));
  VNVRAM_RETURN_IF_ERROR(SetKey(s, ZMQ_CURVE_SECRETKEY, own.secret_z85, "ZMQ_CURVE_SECRETKEY"));
  VNVRAM_RETURN_IF_ERROR(SetKey(s, ZMQ_ZAP_DOMAIN, kZapDomain, "ZMQ_ZAP_DOMAIN"));
  return SetInt(s, kZmqZapEnforceDomain, 1, "ZMQ_ZAP_ENFORCE_DOMAIN");
}

Status ConfigureCurveClient(zmq::socket_t& s, const CurveKeyPair& own,
                            std::string_view server_public_z85) {
  if (!CurveSupported()) return CurveMissing();
  VNVRAM_RETURN_IF_ERROR(CheckNotYetBoundOrConnected(s, "ConfigureCurveClient"));
  if (Status st = CheckKey(server_public_z85, "server public-key", /*echo=*/true); !st.ok()) {
    return st;
  }
  if (Status st = CheckKeyPair(own); !st.ok()) return st.WithContext("own key pair");
  VNVRAM_RETURN_IF_ERROR(SetKey(s, ZMQ_CURVE_SERVERKEY, server_public_z85, "ZMQ_CURVE_SERVERKEY"));
  VNVRAM_RETURN_IF_ERROR(SetKey(s, ZMQ_CURVE_PUBLICKEY, own.public_z85, "ZMQ_CURVE_PUBLICKEY"));
  return SetKey(s, ZMQ_CURVE_SECRETKEY, own.secret_z85, "ZMQ_CURVE_SECRETKEY");
}

}  // namespace vnvram::replication
