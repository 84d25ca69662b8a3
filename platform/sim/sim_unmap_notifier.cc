#include "platform/sim/sim_unmap_notifier.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "platform/sim/sim_layout.h"

namespace vnvram::sim {

namespace {

// glibc 2.36's <sys/pidfd.h> lacks C linkage for C++; call the syscall
// (async-signal-safe).
int PidfdOpen(pid_t pid, unsigned flags) {
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, flags));
}

// Appends the decimal form of `v` at `out` (async-signal-safe).
char* AppendDecimal(char* out, uint32_t v) {
  char tmp[16];
  int n = 0;
  do {
    tmp[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  while (n > 0) *out++ = tmp[--n];
  return out;
}

// Sends one event datagram to the peer of the port whose state word is at
// `word` (async-signal-safe: used by the watchdog child).
void SendEventAt(const uint64_t* word, const char* prefix) {
  const uint64_t w =
      std::atomic_ref<uint64_t>(*const_cast<uint64_t*>(word)).load(std::memory_order_acquire);
  if (PortWordState(w) != PortState::kInterdomain) return;  // dropped, as on Xen
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const size_t plen = std::strlen(prefix);
  if (plen + 24 >= sizeof addr.sun_path) return;
  std::memcpy(addr.sun_path, prefix, plen);
  char* p = AppendDecimal(addr.sun_path + plen, PortWordRemote(w));
  *p++ = '/';
  p = AppendDecimal(p, PortWordRemotePort(w));
  *p = '\0';
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return;
  const char one = 1;
  (void)::sendto(fd, &one, 1, MSG_DONTWAIT | MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&addr),
                 sizeof addr);
  ::close(fd);
}

[[noreturn]] void WatchdogMain(pid_t parent, int quit_fd, volatile std::byte* byte,
                               const uint64_t* word, const char* prefix) {
  // Keep only the quit pipe: stdout/stderr held open would stall ctest,
  // and inherited locks or sockets would look alive.
  if (quit_fd != 0) {
    ::dup2(quit_fd, 0);
    quit_fd = 0;
  }
  ::close_range(1, ~0U, 0);
  ::prctl(PR_SET_NAME, "vnvram-notify", 0, 0, 0);  // how it shows in ps
  const int pidfd = PidfdOpen(parent, 0);
  bool parent_died = ::getppid() != parent;
  while (!parent_died) {
    pollfd fds[2] = {{quit_fd, POLLIN, 0}, {pidfd, POLLIN, 0}};
    const int n = ::poll(fds, pidfd >= 0 ? 2 : 1, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      _exit(1);
    }
    if (fds[0].revents != 0) {
      char c = 0;
      const ssize_t r = ::read(quit_fd, &c, 1);
      if (r == 1) _exit(0);  // disarmed
      if (r < 0 && errno == EINTR) continue;
      parent_died = true;  // EOF: every write end closed
    }
    if (pidfd >= 0 && fds[1].revents != 0) parent_died = true;
  }
  if (byte != nullptr) *byte = std::byte{0};
  if (word != nullptr) SendEventAt(word, prefix);
  _exit(0);
}

}  // namespace

Result<std::unique_ptr<UnmapNotifier>> UnmapNotifier::Arm(const std::string& dir, DomId self,
                                                          std::byte* page,
                                                          const platform::UnmapNotify& notify) {
  std::unique_ptr<UnmapNotifier> n(new UnmapNotifier());
  n->creator_ = ::getpid();
  if (notify.byte_offset) {
    if (*notify.byte_offset >= platform::kPageSize) {
      return Status::OutOfRange("unmap notify: byte offset " + std::to_string(*notify.byte_offset) +
                                " outside the page");
    }
    n->byte_ = page + *notify.byte_offset;
  }
  if (notify.port) {
    VNVRAM_ASSIGN_OR_RETURN(n->ports_, PortTable::Open(dir, self));
    VNVRAM_ASSIGN_OR_RETURN(auto snap, n->ports_->Lookup(*notify.port));
    if (snap.state != PortState::kUnbound && snap.state != PortState::kInterdomain) {
      return Status(Code::kInvalidArgument,
                    "unmap notify: port " + std::to_string(*notify.port) + " is not bound", EINVAL);
    }
    const std::string prefix = dir + "/evtchn/";
    if (prefix.size() + 24 >= sizeof(sockaddr_un::sun_path)) {
      return Status::InvalidArgument("unmap notify: sim directory path too long for a socket");
    }
    std::memcpy(n->evtchn_prefix_, prefix.c_str(), prefix.size() + 1);
    n->port_word_ = n->ports_->WordAddress(*notify.port);
  }
  if (n->byte_ == nullptr && n->port_word_ == nullptr) return n;

  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return Status::FromErrno(errno, "unmap notify: pipe2");
  const pid_t parent = ::getpid();
  const pid_t child = ::fork();
  if (child < 0) {
    const int err = errno;
    ::close(fds[0]);
    ::close(fds[1]);
    return Status::FromErrno(err, "unmap notify: fork watchdog");
  }
  if (child == 0) WatchdogMain(parent, fds[0], n->byte_, n->port_word_, n->evtchn_prefix_);
  ::close(fds[0]);
  n->watchdog_ = child;
  n->quit_fd_ = fds[1];
  return n;
}

UnmapNotifier::~UnmapNotifier() {
  Disarm();
}

void UnmapNotifier::Disarm() {
  if (::getpid() != creator_ || watchdog_ < 0) return;
  const char q = 'q';
  while (::write(quit_fd_, &q, 1) < 0 && errno == EINTR) {
  }
  ::close(quit_fd_);
  quit_fd_ = -1;
  while (::waitpid(watchdog_, nullptr, 0) < 0 && errno == EINTR) {
  }
  watchdog_ = -1;
}

void UnmapNotifier::ClearByte() {
  if (::getpid() != creator_ || byte_ == nullptr) return;
  *byte_ = std::byte{0};
}

void UnmapNotifier::SendEvent() {
  if (::getpid() != creator_ || port_word_ == nullptr) return;
  SendEventAt(port_word_, evtchn_prefix_);
}

}  // namespace vnvram::sim
