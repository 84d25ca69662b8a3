#include "frontd/listen_socket.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/parse.h"
#include "common/unique_fd.h"

namespace vnvram::frontd {
namespace {

constexpr int kBacklog = 64;

Result<sockaddr_un> UnixAddress(const std::string& path) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(a.sun_path)) {
    return Status::InvalidArgument("--socket " + QuoteForError(path) + ": a socket path has 1 to " +
                                   std::to_string(sizeof(a.sun_path) - 1) + " bytes");
  }
  std::memcpy(a.sun_path, path.data(), path.size());
  return a;
}

// A socket file at `path` that nobody serves any more is removed; a live
// one, or a file of another kind, is an error.
Status ClearStaleSocket(const std::string& path, const sockaddr_un& a) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return Status::Ok();
    return Status::FromErrno(errno, "lstat " + path);
  }
  if (!S_ISSOCK(st.st_mode)) {
    return Status::AlreadyExists("--socket " + path + " exists and is not a socket");
  }
  UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (probe.get() < 0) return Status::FromErrno(errno, "socket(AF_UNIX)");
  if (::connect(probe.get(), reinterpret_cast<const sockaddr*>(&a), sizeof a) == 0) {
    return Status::AlreadyExists("--socket " + path + " is served by another process");
  }
  if (errno != ECONNREFUSED) return Status::FromErrno(errno, "connect " + path);
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return Status::FromErrno(errno, "unlink stale socket " + path);
  }
  return Status::Ok();
}

}  // namespace

std::string LoopbackAddress::HostForDisplay() const {
  return family == AF_INET6 ? "[::1]" : "127.0.0.1";
}

Result<LoopbackAddress> ParseLoopbackAddress(std::string_view spec) {
  const size_t colon = spec.rfind(':');
  if (colon == std::string_view::npos) {
    return Status::InvalidArgument("--tcp " + QuoteForError(spec) + ": expected HOST:PORT");
  }
  const std::string_view host = spec.substr(0, colon);
  LoopbackAddress a;
  if (host == "127.0.0.1" || host == "localhost") {
    a.family = AF_INET;
  } else if (host == "::1" || host == "[::1]") {
    a.family = AF_INET6;
  } else {
    return Status::InvalidArgument("--tcp " + QuoteForError(spec) + ": host " +
                                   QuoteForError(host) +
                                   " is not loopback (127.0.0.1, ::1 or localhost only)");
  }
  auto port = ParseU16(spec.substr(colon + 1), "--tcp port");
  if (!port.ok()) return port.status();
  a.port = *port;
  return a;
}

Result<int> ListenUnix(const std::string& path) {
  VNVRAM_ASSIGN_OR_RETURN(const sockaddr_un a, UnixAddress(path));
  VNVRAM_RETURN_IF_ERROR(ClearStaleSocket(path, a));
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (fd.get() < 0) return Status::FromErrno(errno, "socket(AF_UNIX)");
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) {
    return Status::FromErrno(errno, "bind " + path);
  }
  // Owner only, before listen(): nobody can connect in between (a bound
  // socket that does not listen refuses connections).
  if (::chmod(path.c_str(), 0600) != 0) {
    const int err = errno;
    (void)::unlink(path.c_str());
    return Status::FromErrno(err, "chmod 0600 " + path);
  }
  if (::listen(fd.get(), kBacklog) != 0) {
    const int err = errno;
    (void)::unlink(path.c_str());
    return Status::FromErrno(err, "listen " + path);
  }
  return fd.release();
}

Result<int> ListenTcp(const LoopbackAddress& address, uint16_t* port) {
  UniqueFd fd(::socket(address.family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (fd.get() < 0) return Status::FromErrno(errno, "socket(AF_INET)");
  const int one = 1;
  (void)::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  const std::string where = "tcp:" + address.HostForDisplay() + ":" + std::to_string(address.port);
  if (address.family == AF_INET6) {
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    a.sin6_addr = in6addr_loopback;
    a.sin6_port = htons(address.port);
    (void)::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) {
      return Status::FromErrno(errno, "bind " + where);
    }
  } else {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(address.port);
    if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) {
      return Status::FromErrno(errno, "bind " + where);
    }
  }
  if (::listen(fd.get(), kBacklog) != 0) return Status::FromErrno(errno, "listen " + where);
  sockaddr_storage bound{};
  socklen_t len = sizeof bound;
  if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&bound), &len) != 0) {
    return Status::FromErrno(errno, "getsockname " + where);
  }
  *port = address.family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port)
                                     : ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  return fd.release();
}

}  // namespace vnvram::frontd
