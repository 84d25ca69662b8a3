#include "platform/sim/xenstored/xenstored_server.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <exception>

#include "common/log.h"
#include "platform/sim/store/node_path.h"
#include "platform/sim/store/xen_xs_wire.h"
#include "platform/sim/store/xs_errors.h"

namespace vnvram::sim {

namespace {

Status MakeDir(const std::string& path) {
  if (::mkdir(path.c_str(), 0755) == 0 || errno == EEXIST) {
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return Status::Ok();
    return Status::FailedPrecondition(path + ": exists and is not a directory");
  }
  return Status::FromErrno(errno, "mkdir " + path);
}

Result<DomId> ParseDomArg(std::string_view s) {
  auto d = ParseDomId(s, "domain id");
  if (!d.ok()) return XsError(EINVAL, d.status().message());
  return *d;
}

std::string Ack() {
  std::string ack = "OK";
  ack.push_back('\0');
  return ack;
}

}  // namespace

XenstoredServer::XenstoredServer(XenstoredOptions options)
    : options_(std::move(options)), store_(options_.quotas) {
  admin_ = store_.Connect(0);
}

XenstoredServer::~XenstoredServer() {
  for (auto& [id, c] : clients_) {
    if (c->fd >= 0) ::close(c->fd);
  }
  clients_.clear();
  for (auto& [dom, l] : listeners_) {
    if (l.fd >= 0) ::close(l.fd);
    ::unlink(l.path.c_str());
  }
  listeners_.clear();
  ::rmdir((options_.socket_dir + "/domain").c_str());
}

Status XenstoredServer::AddListener(DomId domid, bool privileged) {
  if (listeners_.count(domid) != 0) return Status::Ok();
  Listener l;
  l.domid = domid;
  l.path = privileged ? options_.socket_dir + "/socket"
                      : options_.socket_dir + "/domain/" + std::to_string(domid);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (l.path.size() >= sizeof(addr.sun_path)) {
    return Status::InvalidArgument("socket path " + l.path + " is too long for a Unix socket");
  }
  std::memcpy(addr.sun_path, l.path.c_str(), l.path.size() + 1);
  l.fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (l.fd < 0) return Status::FromErrno(errno, "socket");
  // A socket someone still answers on belongs to a running daemon: do not
  // steal it. One nobody answers on is left over from a crash: replace it.
  {
    const int probe = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const bool live =
        probe >= 0 && ::connect(probe, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
    if (probe >= 0) ::close(probe);
    if (live) {
      ::close(l.fd);
      return Status::FailedPrecondition(l.path + " is served by another running xenstored");
    }
  }
  ::unlink(l.path.c_str());
  if (::bind(l.fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::listen(l.fd, 64) != 0) {
    const int err = errno;
    ::close(l.fd);
    return Status::FromErrno(err, "bind/listen " + l.path);
  }
  listeners_.emplace(domid, std::move(l));
  return Status::Ok();
}

void XenstoredServer::RemoveListener(DomId domid) {
  auto it = listeners_.find(domid);
  if (it == listeners_.end() || domid == 0) return;
  ::close(it->second.fd);
  ::unlink(it->second.path.c_str());
  listeners_.erase(it);
}

Status XenstoredServer::Listen() {
  if (options_.socket_dir.empty()) return Status::InvalidArgument("--socket-dir is required");
  VNVRAM_RETURN_IF_ERROR(MakeDir(options_.socket_dir));
  VNVRAM_RETURN_IF_ERROR(MakeDir(options_.socket_dir + "/domain"));
  VNVRAM_RETURN_IF_ERROR(AddListener(0, /*privileged=*/true));
  for (DomId d : options_.domains) {
    if (d == 0 || d >= kDomIdFirstReserved) {
      return Status::InvalidArgument("--domain " + std::to_string(d) +
                                     ": must be between 1 and 32751");
    }
    VNVRAM_RETURN_IF_ERROR(IntroduceDomain(d));
  }
  store_.DrainEvents();  // nobody is watching yet
  return Status::Ok();
}

Status XenstoredServer::IntroduceDomain(DomId domid) {
  VNVRAM_RETURN_IF_ERROR(AddListener(domid, /*privileged=*/false));
  VNVRAM_RETURN_IF_ERROR(store_.Introduce(admin_, domid));
  // The sim stands in for the toolstack: a new domain gets a home it owns.
  const std::string home = DomainPath(domid);
  if (!store_.Read(admin_, 0, home).ok()) {
    VNVRAM_RETURN_IF_ERROR(store_.Mkdir(admin_, 0, home));
    VNVRAM_RETURN_IF_ERROR(store_.SetPerms(admin_, 0, home, {{domid, kAccessNone}}));
  }
  return Status::Ok();
}

void XenstoredServer::ReleaseDomain(DomId domid) {
  RemoveListener(domid);
  for (auto& [id, c] : clients_) {
    if (c->domid == domid) Kill(*c, "domain released");
  }
}

// ---- event loop ----

Status XenstoredServer::Run(int stop_fd) {
  std::vector<pollfd> fds;
  std::vector<const Listener*> lfds;
  std::vector<Client*> cfds;
  for (;;) {
    fds.clear();
    lfds.clear();
    cfds.clear();
    fds.push_back(pollfd{stop_fd, POLLIN, 0});
    for (const auto& [dom, l] : listeners_) {
      fds.push_back(pollfd{l.fd, POLLIN, 0});
      lfds.push_back(&l);
    }
    for (auto& [id, c] : clients_) {
      short events = POLLIN;
      if (c->out.size() > c->out_off) events |= POLLOUT;
      fds.push_back(pollfd{c->fd, events, 0});
      cfds.push_back(c.get());
    }
    const int n = ::poll(fds.data(), fds.size(), -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, "poll");
    }
    if (fds[0].revents != 0) {
      spdlog::info("stop requested; shutting down");
      return Status::Ok();
    }
    // Accepting may add listeners' clients; collect first, act after.
    std::vector<const Listener*> ready_listeners;
    for (size_t i = 0; i < lfds.size(); ++i) {
      if (fds[1 + i].revents & POLLIN) ready_listeners.push_back(lfds[i]);
    }
    const size_t base = 1 + lfds.size();
    for (size_t i = 0; i < cfds.size(); ++i) {
      Client& c = *cfds[i];
      const short re = fds[base + i].revents;
      if (c.dead || re == 0) continue;
      if (re & (POLLIN | POLLHUP | POLLERR)) OnReadable(c);
      if (!c.dead && (re & POLLOUT)) OnWritable(c);
      if (!c.dead && c.out.size() > c.out_off) OnWritable(c);
    }
    for (const Listener* l : ready_listeners) {
      // A listener can vanish while handling a RELEASE above.
      bool alive = false;
      for (const auto& [dom, x] : listeners_) alive = alive || (&x == l);
      if (alive) Accept(*l);
    }
    Reap();
  }
}

void XenstoredServer::Accept(const Listener& l) {
  for (;;) {
    const int fd = ::accept4(l.fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        spdlog::warn("accept on {}: {}", l.path, std::strerror(errno));
      }
      return;
    }
    auto c = std::make_unique<Client>();
    c->fd = fd;
    c->domid = l.domid;
    c->conn = store_.Connect(l.domid);
    spdlog::debug("client {} connected as dom{}", c->conn, l.domid);
    clients_.emplace(c->conn, std::move(c));
  }
}

void XenstoredServer::Kill(Client& c, std::string_view why) {
  if (c.dead) return;
  if (why != "closed") spdlog::warn("dropping client {} (dom{}): {}", c.conn, c.domid, why);
  c.dead = true;
}

void XenstoredServer::Reap() {
  for (auto it = clients_.begin(); it != clients_.end();) {
    if (it->second->dead) {
      ::close(it->second->fd);
      store_.Disconnect(it->first);
      it = clients_.erase(it);
    } else {
      ++it;
    }
  }
}

void XenstoredServer::OnReadable(Client& c) {
  char buf[16384];
  for (int rounds = 0; rounds < 16 && !c.dead; ++rounds) {
    const ssize_t got = ::recv(c.fd, buf, sizeof(buf), 0);
    if (got == 0) {
      Kill(c, "closed");
      return;
    }
    if (got < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      if (errno == EINTR) continue;
      Kill(c, std::strerror(errno));
      return;
    }
    size_t pos = 0;
    const auto n = static_cast<size_t>(got);
    while (pos < n && !c.dead) {
      if (!c.in_body) {
        const size_t take = std::min(kXsHeaderSize - c.hdr_got, n - pos);
        std::memcpy(c.hdr_raw + c.hdr_got, buf + pos, take);
        c.hdr_got += take;
        pos += take;
        if (c.hdr_got < kXsHeaderSize) break;
        c.hdr = DecodeXsHeader(std::span<const uint8_t, kXsHeaderSize>(c.hdr_raw));
        // Reject before allocating anything for the body.
        if (c.hdr.len > kXsPayloadMax) {
          Kill(c, "header announces " + std::to_string(c.hdr.len) + " bytes (max 4096)");
          return;
        }
        if (c.hdr.type >= XS_TYPE_COUNT) {
          Kill(c, "unknown message type " + std::to_string(c.hdr.type));
          return;
        }
        c.in_body = true;
        c.body.clear();
        c.body.reserve(c.hdr.len);
      }
      const size_t take = std::min<size_t>(c.hdr.len - c.body.size(), n - pos);
      c.body.append(buf + pos, take);
      pos += take;
      if (c.body.size() == c.hdr.len) {
        c.in_body = false;
        c.hdr_got = 0;
        try {
          Dispatch(c, c.hdr, c.body);
        } catch (const std::exception& e) {
          Kill(c, std::string("internal error: ") + e.what());
        } catch (...) {
          Kill(c, "internal error");
        }
        DeliverEvents();
      }
    }
  }
}

void XenstoredServer::OnWritable(Client& c) {
  while (c.out.size() > c.out_off) {
    const ssize_t sent =
        ::send(c.fd, c.out.data() + c.out_off, c.out.size() - c.out_off, MSG_NOSIGNAL);
    if (sent < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      if (errno == EINTR) continue;
      Kill(c, std::string("send: ") + std::strerror(errno));
      return;
    }
    c.out_off += static_cast<size_t>(sent);
  }
  if (c.out_off == c.out.size()) {
    c.out.clear();
    c.out_off = 0;
  } else if (c.out_off > (1u << 16)) {
    c.out.erase(0, c.out_off);
    c.out_off = 0;
  }
}

void XenstoredServer::Reply(Client& c, const XsHeader& req, uint32_t type,
                            std::string_view payload) {
  if (c.dead) return;
  if (payload.size() > kXsPayloadMax) {
    ReplyError(c, req, XsError(E2BIG, "reply larger than XENSTORE_PAYLOAD_MAX"));
    return;
  }
  XsHeader h = req;
  h.type = type;
  c.out += EncodeXsMessage(h, payload);
  if (c.out.size() - c.out_off > options_.max_client_backlog) Kill(c, "not reading its replies");
}

void XenstoredServer::ReplyError(Client& c, const XsHeader& req, const Status& s) {
  const int err = XsErrnoOf(s);
  spdlog::debug("client {} {}: {} ({})", c.conn, XsTypeName(req.type), XsErrorName(err),
                s.message());
  std::string payload(XsErrorName(err));
  payload.push_back('\0');
  Reply(c, req, XS_ERROR, payload);
}

void XenstoredServer::DeliverEvents() {
  for (auto& ev : store_.DrainEvents()) {
    auto it = clients_.find(ev.conn);
    if (it == clients_.end() || it->second->dead) continue;
    Client& c = *it->second;
    std::string payload = ev.path;
    payload.push_back('\0');
    payload += ev.token;
    payload.push_back('\0');
    if (payload.size() > kXsPayloadMax) continue;  // as C xenstored: drop it
    c.out += EncodeXsMessage(XsHeader{XS_WATCH_EVENT, 0, 0, 0}, payload);
    if (c.out.size() - c.out_off > options_.max_client_backlog) {
      Kill(c, "not reading its watch events");
    }
  }
}

// ---- dispatch ----

const XenstoredServer::HandlerEntry* XenstoredServer::LookupHandler(uint32_t type) {
  static const std::array<HandlerEntry, XS_TYPE_COUNT> kTable = [] {
    std::array<HandlerEntry, XS_TYPE_COUNT> t{};
    t[XS_DIRECTORY] = {&XenstoredServer::DoDirectory, false};
    t[XS_READ] = {&XenstoredServer::DoRead, false};
    t[XS_GET_PERMS] = {&XenstoredServer::DoGetPerms, false};
    t[XS_WATCH] = {&XenstoredServer::DoWatch, false};
    t[XS_UNWATCH] = {&XenstoredServer::DoUnwatch, false};
    t[XS_TRANSACTION_START] = {&XenstoredServer::DoTransactionStart, false};
    t[XS_TRANSACTION_END] = {&XenstoredServer::DoTransactionEnd, false};
    t[XS_INTRODUCE] = {&XenstoredServer::DoIntroduce, true};
    t[XS_RELEASE] = {&XenstoredServer::DoRelease, true};
    t[XS_GET_DOMAIN_PATH] = {&XenstoredServer::DoGetDomainPath, false};
    t[XS_WRITE] = {&XenstoredServer::DoWrite, false};
    t[XS_MKDIR] = {&XenstoredServer::DoMkdir, false};
    t[XS_RM] = {&XenstoredServer::DoRm, false};
    t[XS_SET_PERMS] = {&XenstoredServer::DoSetPerms, false};
    t[XS_IS_DOMAIN_INTRODUCED] = {&XenstoredServer::DoIsDomainIntroduced, true};
    t[XS_RESUME] = {&XenstoredServer::DoResume, true};
    t[XS_RESET_WATCHES] = {&XenstoredServer::DoResetWatches, false};
    t[XS_DIRECTORY_PART] = {&XenstoredServer::DoDirectoryPart, false};
    // CONTROL, SET_TARGET and the reply-only WATCH_EVENT/ERROR: ENOSYS.
    return t;
  }();
  return type < XS_TYPE_COUNT ? &kTable[type] : nullptr;
}

void XenstoredServer::Dispatch(Client& c, const XsHeader& hdr, std::string_view payload) {
  spdlog::trace("client {} dom{} {} tx {} len {}", c.conn, c.domid, XsTypeName(hdr.type), hdr.tx_id,
                hdr.len);
  const HandlerEntry* h = LookupHandler(hdr.type);
  if (h == nullptr || h->fn == nullptr) {
    ReplyError(c, hdr, XsError(ENOSYS, XsTypeName(hdr.type)));
    return;
  }
  // The one privilege check: dom0-only operations.
  if (h->privileged && c.domid != 0) {
    ReplyError(c, hdr, XsError(EACCES, std::string(XsTypeName(hdr.type)) + " needs dom0"));
    return;
  }
  Result<std::string> r = (this->*(h->fn))(c, hdr, payload);
  if (!r.ok()) {
    ReplyError(c, hdr, r.status());
    return;
  }
  Reply(c, hdr, hdr.type, *r);
}

namespace {
Status BadArgs(std::string_view op) {
  return XsError(EINVAL, std::string(op) + ": malformed arguments");
}
}  // namespace

Result<std::string> XenstoredServer::DoRead(Client& c, const XsHeader& h, std::string_view p) {
  auto path = XsOneArg(p);
  if (!path) return BadArgs("READ");
  return store_.Read(c.conn, h.tx_id, *path);
}

Result<std::string> XenstoredServer::DoWrite(Client& c, const XsHeader& h, std::string_view p) {
  const size_t nul = p.find('\0');
  if (nul == std::string_view::npos) return BadArgs("WRITE");
  VNVRAM_RETURN_IF_ERROR(store_.Write(c.conn, h.tx_id, p.substr(0, nul), p.substr(nul + 1)));
  return Ack();
}

Result<std::string> XenstoredServer::DoMkdir(Client& c, const XsHeader& h, std::string_view p) {
  auto path = XsOneArg(p);
  if (!path) return BadArgs("MKDIR");
  VNVRAM_RETURN_IF_ERROR(store_.Mkdir(c.conn, h.tx_id, *path));
  return Ack();
}

Result<std::string> XenstoredServer::DoRm(Client& c, const XsHeader& h, std::string_view p) {
  auto path = XsOneArg(p);
  if (!path) return BadArgs("RM");
  VNVRAM_RETURN_IF_ERROR(store_.Remove(c.conn, h.tx_id, *path));
  return Ack();
}

Result<std::string> XenstoredServer::DoDirectory(Client& c, const XsHeader& h, std::string_view p) {
  auto path = XsOneArg(p);
  if (!path) return BadArgs("DIRECTORY");
  VNVRAM_ASSIGN_OR_RETURN(Listing l, store_.Directory(c.conn, h.tx_id, *path));
  std::string out;
  for (const auto& name : l.children) {
    out += name;
    out.push_back('\0');
  }
  // Too long for one reply: the client falls back to DIRECTORY_PART.
  if (out.size() > kXsPayloadMax) return XsError(E2BIG, "directory listing too long");
  return out;
}

Result<std::string> XenstoredServer::DoDirectoryPart(Client& c, const XsHeader& h,
                                                     std::string_view p) {
  const auto args = XsStrings(p);
  if (args.size() != 2) return BadArgs("DIRECTORY_PART");
  auto off_r = ParseU32(args[1], "offset");
  if (!off_r.ok()) return XsError(EINVAL, off_r.status().message());
  const size_t off = *off_r;
  VNVRAM_ASSIGN_OR_RETURN(Listing l, store_.Directory(c.conn, h.tx_id, args[0]));
  std::string children;
  for (const auto& name : l.children) {
    children += name;
    children.push_back('\0');
  }
  // As C xenstored: "<generation>\0" then whole names from `off` while they
  // fit; a final empty string marks the end of the list.
  std::string out = std::to_string(l.generation);
  out.push_back('\0');
  if (off >= children.size()) {
    out.push_back('\0');
    return out;
  }
  const size_t maxlen = kXsPayloadMax - out.size() - 1;
  size_t len = 0;
  while (off + len < children.size()) {
    const size_t end = children.find('\0', off + len);
    const size_t name_len = end - (off + len);
    if (len + name_len >= maxlen) break;
    len += name_len + 1;
  }
  if (len == 0) return XsError(E2BIG, "child name too long for DIRECTORY_PART");
  out.append(children, off, len);
  if (off + len == children.size()) out.push_back('\0');
  return out;
}

Result<std::string> XenstoredServer::DoGetPerms(Client& c, const XsHeader& h, std::string_view p) {
  auto path = XsOneArg(p);
  if (!path) return BadArgs("GET_PERMS");
  VNVRAM_ASSIGN_OR_RETURN(NodePerms perms, store_.GetPerms(c.conn, h.tx_id, *path));
  std::string out;
  for (const auto& e : perms) {
    out += FormatNodePerm(e);
    out.push_back('\0');
  }
  return out;
}

Result<std::string> XenstoredServer::DoSetPerms(Client& c, const XsHeader& h, std::string_view p) {
  const auto args = XsStrings(p);
  if (args.size() < 2) return BadArgs("SET_PERMS");
  NodePerms perms;
  for (size_t i = 1; i < args.size(); ++i) {
    VNVRAM_ASSIGN_OR_RETURN(NodePerm e, ParseNodePerm(args[i]));
    perms.push_back(e);
  }
  VNVRAM_RETURN_IF_ERROR(store_.SetPerms(c.conn, h.tx_id, args[0], perms));
  return Ack();
}

Result<std::string> XenstoredServer::DoWatch(Client& c, const XsHeader&, std::string_view p) {
  const auto args = XsStrings(p);
  if (args.size() != 2) return BadArgs("WATCH");
  VNVRAM_RETURN_IF_ERROR(store_.Watch(c.conn, args[0], args[1]));
  return Ack();  // the initial event follows the ack (DeliverEvents)
}

Result<std::string> XenstoredServer::DoUnwatch(Client& c, const XsHeader&, std::string_view p) {
  const auto args = XsStrings(p);
  if (args.size() != 2) return BadArgs("UNWATCH");
  VNVRAM_RETURN_IF_ERROR(store_.Unwatch(c.conn, args[0], args[1]));
  return Ack();
}

Result<std::string> XenstoredServer::DoTransactionStart(Client& c, const XsHeader& h,
                                                        std::string_view) {
  VNVRAM_ASSIGN_OR_RETURN(TxId id, store_.TransactionStart(c.conn, h.tx_id));
  std::string out = std::to_string(id);
  out.push_back('\0');
  return out;
}

Result<std::string> XenstoredServer::DoTransactionEnd(Client& c, const XsHeader& h,
                                                      std::string_view p) {
  auto arg = XsOneArg(p);
  if (!arg || (*arg != "T" && *arg != "F")) return BadArgs("TRANSACTION_END");
  VNVRAM_RETURN_IF_ERROR(store_.TransactionEnd(c.conn, h.tx_id, *arg == "T"));
  return Ack();
}

Result<std::string> XenstoredServer::DoIntroduce(Client&, const XsHeader&, std::string_view p) {
  const auto args = XsStrings(p);
  if (args.size() < 3) return BadArgs("INTRODUCE");
  VNVRAM_ASSIGN_OR_RETURN(DomId domid, ParseDomArg(args[0]));
  // The ring page and event channel mean nothing on the sim; check them
  // strictly all the same.
  if (!ParseU64(args[1], "mfn").ok() || !ParseU32(args[2], "event channel").ok()) {
    return BadArgs("INTRODUCE");
  }
  if (domid == 0) return XsError(EINVAL, "cannot introduce dom0");
  auto s = IntroduceDomain(domid);
  if (!s.ok()) {
    if (s.sys_errno() != 0) return s;
    spdlog::error("introduce dom{}: {}", domid, s.ToString());
    return XsError(EIO, s.message());
  }
  spdlog::info("introduced dom{}", domid);
  return Ack();
}

Result<std::string> XenstoredServer::DoRelease(Client&, const XsHeader&, std::string_view p) {
  auto arg = XsOneArg(p);
  if (!arg) return BadArgs("RELEASE");
  VNVRAM_ASSIGN_OR_RETURN(DomId domid, ParseDomArg(*arg));
  if (domid == 0) return XsError(EINVAL, "cannot release dom0");
  VNVRAM_RETURN_IF_ERROR(store_.Release(admin_, domid));
  ReleaseDomain(domid);
  spdlog::info("released dom{}", domid);
  return Ack();
}

Result<std::string> XenstoredServer::DoGetDomainPath(Client&, const XsHeader&, std::string_view p) {
  auto arg = XsOneArg(p);
  if (!arg) return BadArgs("GET_DOMAIN_PATH");
  VNVRAM_ASSIGN_OR_RETURN(DomId domid, ParseDomArg(*arg));
  std::string out = DomainPath(domid);
  out.push_back('\0');
  return out;
}

Result<std::string> XenstoredServer::DoIsDomainIntroduced(Client& c, const XsHeader&,
                                                          std::string_view p) {
  auto arg = XsOneArg(p);
  if (!arg) return BadArgs("IS_DOMAIN_INTRODUCED");
  VNVRAM_ASSIGN_OR_RETURN(DomId domid, ParseDomArg(*arg));
  VNVRAM_ASSIGN_OR_RETURN(bool yes, store_.IsIntroduced(c.conn, domid));
  std::string out = yes ? "T" : "F";
  out.push_back('\0');
  return out;
}

Result<std::string> XenstoredServer::DoResume(Client& c, const XsHeader&, std::string_view p) {
  auto arg = XsOneArg(p);
  if (!arg) return BadArgs("RESUME");
  VNVRAM_ASSIGN_OR_RETURN(DomId domid, ParseDomArg(*arg));
  VNVRAM_ASSIGN_OR_RETURN(bool yes, store_.IsIntroduced(c.conn, domid));
  if (!yes) return XsError(ENOENT, "domain " + std::to_string(domid) + " is not introduced");
  return Ack();
}

Result<std::string> XenstoredServer::DoResetWatches(Client& c, const XsHeader&, std::string_view) {
  store_.ResetWatches(c.conn);
  return Ack();
}

}  // namespace vnvram::sim
