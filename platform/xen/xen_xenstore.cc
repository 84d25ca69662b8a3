#include "platform/xen/xen_xenstore.h"

#include <sys/stat.h>

// libxenstore's header has no C++ linkage guard.
extern "C" {
#include <xenstore.h>
}

#include <cerrno>
#include <cstdlib>
#include <mutex>
#include <new>

namespace vnvram::xen {

namespace {

using platform::Perm;
using platform::PermEntry;
using platform::TxId;
using platform::WatchEvent;

// libxenstore returns malloc'd memory; this frees it.
struct FreeDeleter {
  void operator()(void* p) const { std::free(p); }
};
template <typename T>
using Malloced = std::unique_ptr<T, FreeDeleter>;

struct HandleCloser {
  void operator()(xs_handle* h) const { xs_close(h); }
};

// Status for a failed libxenstore call: errno names the reason (EAGAIN on
// a transaction end becomes kAborted through FromErrno).
Status Fail(int err, std::string_view call, std::string_view path) {
  std::string what(call);
  if (!path.empty()) {
    what += ' ';
    what += path;
  }
  return Status::FromErrno(err == 0 ? EIO : err, what);
}

unsigned int PermBits(Perm p) {
  switch (p) {
    case Perm::kNone: return XS_PERM_NONE;
    case Perm::kRead: return XS_PERM_READ;
    case Perm::kWrite: return XS_PERM_WRITE;
    case Perm::kBoth: return XS_PERM_READ | XS_PERM_WRITE;
  }
  return XS_PERM_NONE;
}

Perm PermFromBits(unsigned int bits) {
  const bool r = (bits & XS_PERM_READ) != 0;
  const bool w = (bits & XS_PERM_WRITE) != 0;
  if (r && w) return Perm::kBoth;
  if (r) return Perm::kRead;
  if (w) return Perm::kWrite;
  return Perm::kNone;
}

// libxenstore's calls take NUL-terminated strings; a path with an embedded
// NUL would be silently truncated, so refuse it.
Status CheckNoNul(std::string_view s, std::string_view what) {
  if (s.find('\0') != std::string_view::npos) {
    return Status::InvalidArgument(std::string(what) + " contains a NUL byte");
  }
  return Status::Ok();
}

class XenXenStore final : public platform::XenStore {
 public:
  explicit XenXenStore(xs_handle* h) : h_(h) {
    // libxenstore 4.17: xs_fileno() only creates the watch pipe (the reader
    // thread is started by the first xs_watch(), which from then on owns
    // the socket's input and queues events; xs_check_watch() pops them
    // without blocking). Make the pipe now so WatchFd() is stable and events
    // queued before the first ReadWatch() still make it readable.
    watch_fd_ = xs_fileno(h_.get());
  }

  Result<std::string> Read(TxId tx, std::string_view path) override {
    const std::string p(path);
    VNVRAM_RETURN_IF_ERROR(CheckNoNul(path, "path"));
    unsigned int len = 0;
    errno = 0;
    Malloced<char> v(static_cast<char*>(xs_read(h_.get(), tx, p.c_str(), &len)));
    if (!v) return Fail(errno, "xs_read", p);
    return std::string(v.get(), len);
  }

  Status Write(TxId tx, std::string_view path, std::string_view value) override {
    const std::string p(path);
    VNVRAM_RETURN_IF_ERROR(CheckNoNul(path, "path"));
    errno = 0;
    if (!xs_write(h_.get(), tx, p.c_str(), value.data(), static_cast<unsigned int>(value.size()))) {
      return Fail(errno, "xs_write", p);
    }
    return Status::Ok();
  }

  Status Mkdir(TxId tx, std::string_view path) override {
    const std::string p(path);
    VNVRAM_RETURN_IF_ERROR(CheckNoNul(path, "path"));
    errno = 0;
    if (!xs_mkdir(h_.get(), tx, p.c_str())) return Fail(errno, "xs_mkdir", p);
    return Status::Ok();
  }

  Status Remove(TxId tx, std::string_view path) override {
    const std::string p(path);
    VNVRAM_RETURN_IF_ERROR(CheckNoNul(path, "path"));
    errno = 0;
    if (!xs_rm(h_.get(), tx, p.c_str())) return Fail(errno, "xs_rm", p);
    return Status::Ok();
  }

  Result<std::vector<std::string>> Directory(TxId tx, std::string_view path) override {
    const std::string p(path);
    VNVRAM_RETURN_IF_ERROR(CheckNoNul(path, "path"));
    unsigned int num = 0;
    errno = 0;
    Malloced<char*> list(xs_directory(h_.get(), tx, p.c_str(), &num));
    if (!list) return Fail(errno, "xs_directory", p);
    std::vector<std::string> out;
    out.reserve(num);
    for (unsigned int i = 0; i < num; ++i) out.emplace_back(list.get()[i]);
    return out;
  }

  Result<std::vector<PermEntry>> GetPermissions(TxId tx, std::string_view path) override {
    const std::string p(path);
    VNVRAM_RETURN_IF_ERROR(CheckNoNul(path, "path"));
    unsigned int num = 0;
    errno = 0;
    Malloced<xs_permissions> perms(xs_get_permissions(h_.get(), tx, p.c_str(), &num));
    if (!perms) return Fail(errno, "xs_get_permissions", p);
    std::vector<PermEntry> out;
    out.reserve(num);
    for (unsigned int i = 0; i < num; ++i) {
      const xs_permissions& e = perms.get()[i];
      if (e.id >= kDomIdFirstReserved) {
        return Status::Corruption("xs_get_permissions " + p + ": domain id " +
                                  std::to_string(e.id) + " out of range");
      }
      out.push_back(PermEntry{static_cast<DomId>(e.id), PermFromBits(e.perms)});
    }
    return out;
  }

  Status SetPermissions(TxId tx, std::string_view path, std::span<const PermEntry> perms) override {
    const std::string p(path);
    VNVRAM_RETURN_IF_ERROR(CheckNoNul(path, "path"));
    if (perms.empty()) return Status::InvalidArgument("xs_set_permissions " + p + ": no entries");
    std::vector<xs_permissions> raw(perms.size());
    for (size_t i = 0; i < perms.size(); ++i) {
      raw[i].id = perms[i].domid;
      raw[i].perms = PermBits(perms[i].perm);
    }
    errno = 0;
    if (!xs_set_permissions(h_.get(), tx, p.c_str(), raw.data(),
                            static_cast<unsigned int>(raw.size()))) {
      return Fail(errno, "xs_set_permissions", p);
    }
    return Status::Ok();
  }

  Result<TxId> TransactionStart() override {
    errno = 0;
    const xs_transaction_t t = xs_transaction_start(h_.get());
    if (t == XBT_NULL) return Fail(errno, "xs_transaction_start", "");
    return static_cast<TxId>(t);
  }

  Status TransactionEnd(TxId tx, bool commit) override {
    errno = 0;
    if (!xs_transaction_end(h_.get(), tx, /*abort=*/!commit)) {
      const int err = errno;
      if (err == EAGAIN) {
        return Status(Code::kAborted, "xs_transaction_end: conflict, retry the transaction",
                      EAGAIN);
      }
      return Fail(err, "xs_transaction_end", "");
    }
    return Status::Ok();
  }

  Status Watch(std::string_view path, std::string_view token) override {
    const std::string p(path), t(token);
    VNVRAM_RETURN_IF_ERROR(CheckNoNul(path, "path"));
    VNVRAM_RETURN_IF_ERROR(CheckNoNul(token, "token"));
    errno = 0;
    if (!xs_watch(h_.get(), p.c_str(), t.c_str())) return Fail(errno, "xs_watch", p);
    return Status::Ok();
  }

  Status Unwatch(std::string_view path, std::string_view token) override {
    const std::string p(path), t(token);
    VNVRAM_RETURN_IF_ERROR(CheckNoNul(path, "path"));
    VNVRAM_RETURN_IF_ERROR(CheckNoNul(token, "token"));
    errno = 0;
    if (!xs_unwatch(h_.get(), p.c_str(), t.c_str())) return Fail(errno, "xs_unwatch", p);
    return Status::Ok();
  }

  int WatchFd() override { return watch_fd_; }

  Result<std::optional<WatchEvent>> ReadWatch() override {
    errno = 0;
    Malloced<char*> ev(xs_check_watch(h_.get()));
    if (!ev) {
      if (errno == EAGAIN) return std::optional<WatchEvent>();
      // EINVAL with nothing queued: the reader thread lost the connection.
      return Status(Code::kUnavailable, "xs_check_watch: xenstore connection lost", errno);
    }
    WatchEvent out;
    out.path = ev.get()[XS_WATCH_PATH];
    out.token = ev.get()[XS_WATCH_TOKEN];
    return std::optional<WatchEvent>(std::move(out));
  }

  Result<std::string> GetDomainPath(DomId domid) override {
    errno = 0;
    Malloced<char> p(xs_get_domain_path(h_.get(), domid));
    if (!p) return Fail(errno, "xs_get_domain_path", std::to_string(domid));
    return std::string(p.get());
  }

  Result<bool> IsDomainIntroduced(DomId domid) override {
    // libxenstore folds errors into "false"; errno tells them apart (it is
    // left untouched when the daemon answers "F").
    errno = 0;
    const bool yes = xs_is_domain_introduced(h_.get(), domid);
    if (!yes && errno != 0) {
      return Fail(errno, "xs_is_domain_introduced", std::to_string(domid));
    }
    return yes;
  }

 private:
  std::unique_ptr<xs_handle, HandleCloser> h_;
  int watch_fd_ = -1;
};

Result<std::unique_ptr<platform::XenStore>> Wrap(xs_handle* h, std::string_view what) {
  if (h == nullptr) return Fail(errno, "xs_open", what);
  std::unique_ptr<xs_handle, HandleCloser> owned(h);
  auto* store = new (std::nothrow) XenXenStore(owned.release());
  if (store == nullptr) return Status::ResourceExhausted("xs_open: out of memory");
  if (store->WatchFd() < 0) {
    const int err = errno;
    delete store;
    return Fail(err, "xs_fileno", what);
  }
  return std::unique_ptr<platform::XenStore>(store);
}

// Serialises every xs_open: OpenXenStoreAt points libxenstore at a socket
// through XENSTORED_PATH, which is process-wide state.
std::mutex& OpenMutex() {
  static std::mutex m;
  return m;
}

}  // namespace

Result<std::unique_ptr<platform::XenStore>> OpenXenStore() {
  std::lock_guard<std::mutex> lock(OpenMutex());
  errno = 0;
  return Wrap(xs_open(0), "default transport");
}

Result<std::unique_ptr<platform::XenStore>> OpenXenStoreAt(const std::string& socket_path) {
  if (socket_path.empty()) return Status::InvalidArgument("xenstore socket path is empty");
  // libxenstore 4.17's xs_open stats XENSTORED_PATH and connects when it is
  // a socket but opens it as a device otherwise; only a socket is wanted.
  struct stat st {};
  if (::stat(socket_path.c_str(), &st) != 0) {
    return Status::FromErrno(errno, "xenstore socket " + socket_path);
  }
  if (!S_ISSOCK(st.st_mode)) {
    return Status::InvalidArgument("xenstore socket " + socket_path + ": not a Unix socket");
  }

  std::lock_guard<std::mutex> lock(OpenMutex());
  const char* old = std::getenv("XENSTORED_PATH");
  const std::optional<std::string> saved = old ? std::optional<std::string>(old) : std::nullopt;
  if (::setenv("XENSTORED_PATH", socket_path.c_str(), 1) != 0) {
    return Status::FromErrno(errno, "setenv XENSTORED_PATH");
  }
  errno = 0;
  xs_handle* h = xs_open(0);
  const int open_errno = errno;
  if (saved) {
    ::setenv("XENSTORED_PATH", saved->c_str(), 1);
  } else {
    ::unsetenv("XENSTORED_PATH");
  }
  errno = open_errno;
  return Wrap(h, socket_path);
}

}  // namespace vnvram::xen
