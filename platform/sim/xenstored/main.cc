// vnvram-xenstored: the sim platform's xenstore daemon.
//
//   vnvram-xenstored --socket-dir DIR [--domain N ...] [--pid-file F]
//                    [--log-level L] [--ready-fd FD]
//
// Serves DIR/socket (dom0) and DIR/domain/N (domain N). When listening it
// prints "vnvram-xenstored ready DIR" on stdout and, with --ready-fd, writes
// one byte to FD and closes it. SIGTERM/SIGINT stop it cleanly (sockets
// removed). Exit status 0 on a clean stop, 1 on a runtime error, 2 on usage.
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <fstream>
#include <string>
#include <string_view>

#include "common/log.h"
#include "common/parse.h"
#include "platform/sim/xenstored/xenstored_server.h"

namespace {

constexpr std::string_view kUsage =
    "usage: vnvram-xenstored --socket-dir DIR [--domain N ...] [--pid-file F]\n"
    "                        [--log-level trace|debug|info|warn|error|off] [--ready-fd FD]\n";

struct Args {
  vnvram::sim::XenstoredOptions server;
  std::string pid_file;
  vnvram::log::Level level = vnvram::log::Level::kInfo;
  int ready_fd = -1;
};

int UsageError(const std::string& msg) {
  std::fprintf(stderr, "vnvram-xenstored: %s\n%.*s", msg.c_str(), static_cast<int>(kUsage.size()),
               kUsage.data());
  return 2;
}

// Returns 0 when parsed, else the exit code.
int ParseArgs(int argc, char** argv, Args* out) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a == "--help" || a == "-h") {
      std::fwrite(kUsage.data(), 1, kUsage.size(), stdout);
      return -1;
    }
    if (i + 1 >= argc) return UsageError(std::string(a) + ": missing value or unknown option");
    const std::string_view v = argv[++i];
    if (a == "--socket-dir") {
      out->server.socket_dir = std::string(v);
    } else if (a == "--domain") {
      auto d = vnvram::ParseDomId(v, "--domain");
      if (!d.ok()) return UsageError(d.status().message());
      if (*d == 0) return UsageError("--domain 0: dom0 is served on DIR/socket");
      out->server.domains.push_back(*d);
    } else if (a == "--pid-file") {
      out->pid_file = std::string(v);
    } else if (a == "--log-level") {
      auto l = vnvram::log::ParseLevel(v);
      if (!l.ok()) return UsageError(l.status().message());
      out->level = *l;
    } else if (a == "--ready-fd") {
      auto fd = vnvram::ParseU32(v, "--ready-fd");
      if (!fd.ok() || *fd > 1u << 20) return UsageError("--ready-fd: expected a file descriptor");
      out->ready_fd = static_cast<int>(*fd);
    } else {
      return UsageError("unknown option " + std::string(a));
    }
  }
  if (out->server.socket_dir.empty()) return UsageError("--socket-dir is required");
  return 0;
}

int Main(int argc, char** argv) {
  Args args;
  if (const int rc = ParseArgs(argc, argv, &args); rc != 0) return rc < 0 ? 0 : rc;
  vnvram::log::Init("vnvram-xenstored", args.level);

  // Signals arrive through a signalfd that the event loop polls.
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  if (sigprocmask(SIG_BLOCK, &mask, nullptr) != 0) {
    spdlog::error("sigprocmask: {}", std::strerror(errno));
    return 1;
  }
  signal(SIGPIPE, SIG_IGN);
  const int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sfd < 0) {
    spdlog::error("signalfd: {}", std::strerror(errno));
    return 1;
  }

  int rc = 0;
  {
    vnvram::sim::XenstoredServer server(args.server);
    if (auto s = server.Listen(); !s.ok()) {
      spdlog::error("cannot listen: {}", s.ToString());
      close(sfd);
      return 1;
    }
    if (!args.pid_file.empty()) {
      std::ofstream pf(args.pid_file, std::ios::trunc);
      pf << getpid() << "\n";
      if (!pf) spdlog::warn("cannot write pid file {}", args.pid_file);
    }
    spdlog::info("listening in {} ({} domain sockets)", args.server.socket_dir,
                 args.server.domains.size());
    std::printf("vnvram-xenstored ready %s\n", args.server.socket_dir.c_str());
    std::fflush(stdout);
    if (args.ready_fd >= 0) {
      const char byte = 'R';
      while (write(args.ready_fd, &byte, 1) < 0 && errno == EINTR) {
      }
      close(args.ready_fd);
    }
    if (auto s = server.Run(sfd); !s.ok()) {
      spdlog::error("event loop failed: {}", s.ToString());
      rc = 1;
    }
  }  // the server's destructor closes and unlinks the sockets
  if (!args.pid_file.empty()) unlink(args.pid_file.c_str());
  close(sfd);
  spdlog::info("stopped");
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return Main(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "vnvram-xenstored: fatal: %s\n", e.what());
  } catch (...) {
    std::fprintf(stderr, "vnvram-xenstored: fatal: unknown exception\n");
  }
  return 1;
}
