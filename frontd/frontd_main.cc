// vnvram-frontd: exports a vnvram volume to the guest kernel as a block
// device over the NBD protocol (docs/frontd.md), on a Unix socket and
// optionally on TCP loopback:
//
//   vnvram-frontd [--platform xen|sim:DIR:DOMID] (--devid N | --volume UUID)
//                 --socket PATH [--tcp HOST:PORT] [--name EXPORT]
//                 [--ready-file PATH] [--timeout-ms N] [--read-only]
//
// Once listening it prints one line, "vnvram-frontd: serving <uuid> (<size>
// bytes) on unix:<path>[ tcp:<host>:<port>]", and writes the same line to
// --ready-file (tmp + rename). SIGTERM/SIGINT: stop accepting, finish the
// requests in hand, persist everything written, close the device, remove
// the socket (and the ready file), exit 0. Bad arguments: one line, exit 2;
// a failure to open or to listen: one line, exit 1.
#include <fcntl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>
#include <optional>
#include <string>

#include "common/file_io.h"
#include "common/log.h"
#include "common/parse.h"
#include "common/unique_fd.h"
#include "frontd/device_export.h"
#include "frontd/listen_socket.h"
#include "frontd/nbd_server.h"
#include "vnvram/vnvram.hpp"

namespace {

using vnvram::Status;

int UsageError(const std::string& msg) {
  std::fprintf(stderr, "vnvram-frontd: %s\n", msg.c_str());
  return 2;
}

int Failure(const std::string& what, const Status& s) {
  std::fprintf(stderr, "vnvram-frontd: %s: %s\n", what.c_str(), s.ToString().c_str());
  return 1;
}

// "xen", "sim:<dir>:<domid>", or empty (libvnvram's default).
Status CheckPlatform(const std::string& spec) {
  if (spec.empty() || spec == "xen") return Status::Ok();
  if (spec.rfind("sim:", 0) == 0) {
    const std::string rest = spec.substr(4);
    const size_t colon = rest.rfind(':');
    if (colon != std::string::npos && colon != 0) {
      auto d = vnvram::ParseDomId(std::string_view(rest).substr(colon + 1), "--platform domid");
      if (d.ok()) return Status::Ok();
      return d.status();
    }
  }
  return Status::InvalidArgument("--platform " + vnvram::QuoteForError(spec) +
                                 ": expected xen or sim:DIR:DOMID");
}

// An export name: 1..256 printable bytes (the protocol's SHOULD).
Status CheckName(const std::string& name) {
  if (name.empty() || name.size() > 256) {
    return Status::InvalidArgument("--name " + vnvram::QuoteForError(name) +
                                   ": 1 to 256 bytes expected");
  }
  for (const char c : name) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      return Status::InvalidArgument("--name " + vnvram::QuoteForError(name) +
                                     ": control characters are not allowed");
    }
  }
  return Status::Ok();
}

// Writes `line` to `path` atomically: a temporary file beside it, renamed.
Status WriteReadyFile(const std::string& path, const std::string& line) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  vnvram::UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (fd.get() < 0) return Status::FromErrno(errno, "open " + tmp);
  const std::string text = line + "\n";
  Status s = vnvram::WriteAll(fd.get(), std::as_bytes(std::span(text.data(), text.size())), tmp);
  if (s.ok() && ::fsync(fd.get()) != 0) s = Status::FromErrno(errno, "fsync " + tmp);
  if (s.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) {
    s = Status::FromErrno(errno, "rename " + tmp + " to " + path);
  }
  if (!s.ok()) (void)::unlink(tmp.c_str());
  return s;
}

int Main(int argc, char** argv) {
  // Before any thread exists (libvnvram starts some): the stop signals are
  // taken through a signalfd, and a client gone mid-reply is an error
  // value, not SIGPIPE.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  if (::pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr) != 0) {
    return Failure("signals", Status::Internal("pthread_sigmask failed"));
  }
  std::signal(SIGPIPE, SIG_IGN);

  CLI::App app{"vnvram-frontd: export a vnvram volume as an NBD block device"};
  std::string platform, devid, volume, socket_path, tcp, name = "vnvram", ready_file,
                                                         timeout_ms = "10000";
  bool read_only = false;
  app.add_option("--platform", platform,
                 "xen or sim:DIR:DOMID (default $VNVRAM_PLATFORM, else xen)");
  CLI::Option* devid_opt =
      app.add_option("--devid", devid, "xenbus device id of the volume's path");
  CLI::Option* volume_opt = app.add_option("--volume", volume, "volume UUID (all its paths)");
  app.add_option("--socket", socket_path, "Unix socket to listen on")->required();
  CLI::Option* tcp_opt =
      app.add_option("--tcp", tcp, "also listen on TCP HOST:PORT (loopback only; port 0: any)");
  app.add_option("--name", name, "export name (default vnvram; a client's empty name selects it)");
  CLI::Option* ready_opt =
      app.add_option("--ready-file", ready_file, "write the serving line here once listening");
  app.add_option("--timeout-ms", timeout_ms, "libvnvram's per-call deadline (default 10000)");
  app.add_flag("--read-only", read_only, "refuse writes (NBD_FLAG_READ_ONLY)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    return UsageError(std::string(e.what()) + " (see --help)");
  }

  // Every argument is checked before anything is opened.
  if (Status s = CheckPlatform(platform); !s.ok()) return UsageError(s.message());
  vnvram::OpenOptions open;
  open.platform = platform;
  if ((devid_opt->count() == 0) == (volume_opt->count() == 0)) {
    return UsageError("give exactly one of --devid N and --volume UUID");
  }
  if (devid_opt->count() != 0) {
    auto d = vnvram::ParseDevId(devid, "--devid");
    if (!d.ok()) return UsageError(d.status().message());
    open.devid = *d;
  } else {
    auto u = vnvram::ParseUuid(volume, "--volume");
    if (!u.ok()) return UsageError(u.status().message());
    open.volume = u->ToString();
  }
  if (socket_path.empty() || socket_path.size() > 107) {
    return UsageError("--socket " + vnvram::QuoteForError(socket_path) +
                      ": a socket path has 1 to 107 bytes");
  }
  std::optional<vnvram::frontd::LoopbackAddress> tcp_address;
  if (tcp_opt->count() != 0) {
    auto a = vnvram::frontd::ParseLoopbackAddress(tcp);
    if (!a.ok()) return UsageError(a.status().message());
    tcp_address = *a;
  }
  if (Status s = CheckName(name); !s.ok()) return UsageError(s.message());
  if (ready_opt->count() != 0 && ready_file.empty())
    return UsageError("--ready-file '': empty path");
  auto t = vnvram::ParseU64InRange(timeout_ms, 1, 3'600'000, "--timeout-ms");
  if (!t.ok()) return UsageError(t.status().message());
  open.timeout = std::chrono::milliseconds(*t);

  vnvram::log::Init("vnvram-frontd", vnvram::log::Level::kInfo);

  // The sockets before the device: a second vnvram-frontd given a socket
  // that is in use stops here, before it disturbs the device of the first
  // (a second frontend on one device restarts the first one's handshake).
  auto unix_fd = vnvram::frontd::ListenUnix(socket_path);
  if (!unix_fd.ok()) return Failure("listen", unix_fd.status());
  vnvram::UniqueFd unix_listener(*unix_fd);
  auto cleanup_socket = [&] { (void)::unlink(socket_path.c_str()); };
  std::string where = "unix:" + socket_path;
  std::optional<vnvram::UniqueFd> tcp_listener;
  if (tcp_address) {
    uint16_t port = 0;
    auto tcp_fd = vnvram::frontd::ListenTcp(*tcp_address, &port);
    if (!tcp_fd.ok()) {
      cleanup_socket();
      return Failure("listen", tcp_fd.status());
    }
    tcp_listener.emplace(*tcp_fd);
    where += " tcp:" + tcp_address->HostForDisplay() + ":" + std::to_string(port);
  }

  auto device = vnvram::Device::Open(open);
  if (!device.ok()) {
    cleanup_socket();
    return Failure("open", device.status());
  }
  vnvram::Device& dev = **device;
  auto info = dev.info();
  if (!info.ok()) {
    cleanup_socket();
    return Failure("info", info.status());
  }
  const std::string uuid = info->volume;

  auto exp = vnvram::frontd::DeviceExport::Create(dev, {.read_only = read_only});
  if (!exp.ok()) {
    cleanup_socket();
    return Failure("export", exp.status());
  }

  vnvram::frontd::ServerConfig config;
  config.session.export_name = name;
  config.session.description = "vnvram volume " + uuid;
  auto server = vnvram::frontd::NbdServer::Create(**exp, config);
  if (!server.ok()) {
    cleanup_socket();
    return Failure("server", server.status());
  }
  (*server)->AddListener(unix_listener.release(), /*tcp=*/false);
  if (tcp_listener) (*server)->AddListener(tcp_listener->release(), /*tcp=*/true);
  int rc = 0;

  vnvram::UniqueFd sigfd(::signalfd(-1, &stop_signals, SFD_CLOEXEC | SFD_NONBLOCK));
  if (sigfd.get() < 0) {
    cleanup_socket();
    return Failure("signalfd", Status::FromErrno(errno, "signalfd"));
  }

  const std::string line =
      "vnvram-frontd: serving " + uuid + " (" + std::to_string(dev.size()) + " bytes) on " + where;
  // The file first: whoever saw the line may look for the file.
  if (!ready_file.empty()) {
    if (Status s = WriteReadyFile(ready_file, line); !s.ok()) {
      cleanup_socket();
      return Failure("ready file", s);
    }
  }
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);

  if (Status s = (*server)->Run(sigfd.get()); !s.ok()) {
    spdlog::error("serving failed: {}", s.ToString());
    rc = 1;
  }
  spdlog::info("{} connections served, {} refused", (*server)->accepted(), (*server)->refused());
  server->reset();
  // Everything acknowledged to any client is made durable before the
  // device goes away.
  if (Status s = (*exp)->Flush(); !s.ok()) {
    spdlog::error("final flush: {}", s.ToString());
    rc = 1;
  }
  if (Status s = dev.close(); !s.ok()) {
    spdlog::error("close: {}", s.ToString());
    rc = 1;
  }
  cleanup_socket();
  if (!ready_file.empty()) (void)::unlink(ready_file.c_str());
  spdlog::info("stopped");
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return Main(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "vnvram-frontd: fatal: %s\n", e.what());
  }
  return 1;
}
