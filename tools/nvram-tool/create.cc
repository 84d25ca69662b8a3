#include "tools/nvram-tool/create.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "tools/nvram-tool/config_devices.h"

extern char** environ;

namespace vnvram::tools {
namespace {

constexpr size_t kCaptureMax = 64 * 1024;

bool IsExecutableFile(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

struct ProgramOutput {
  int exit_code = -1;  // -1 when killed by a signal
  std::string out;     // stdout when captured
};

// Runs argv (argv[0] a path) and waits for it. Its stderr is ours; its
// stdout is ours too unless `capture`.
Result<ProgramOutput> Run(const std::vector<std::string>& argv, bool capture) {
  std::vector<char*> args;
  args.reserve(argv.size() + 1);
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  int pipefd[2] = {-1, -1};
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  if (capture) {
    if (::pipe2(pipefd, O_CLOEXEC) != 0) {
      posix_spawn_file_actions_destroy(&fa);
      return Status::FromErrno(errno, "pipe");
    }
    posix_spawn_file_actions_adddup2(&fa, pipefd[1], STDOUT_FILENO);
  }
  // xl gets the default signal mask (the caller may block SIGINT/SIGTERM
  // for its signalfd; xl must still die of a ^C).
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, argv[0].c_str(), &fa, &attr, args.data(), environ);
  posix_spawnattr_destroy(&attr);
  posix_spawn_file_actions_destroy(&fa);
  if (capture) ::close(pipefd[1]);
  if (rc != 0) {
    if (capture) ::close(pipefd[0]);
    return Status::FromErrno(rc, "cannot run " + argv[0]);
  }
  ProgramOutput r;
  if (capture) {
    char buf[4096];
    for (;;) {
      const ssize_t n = ::read(pipefd[0], buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      if (r.out.size() < kCaptureMax) r.out.append(buf, static_cast<size_t>(n));
    }
    ::close(pipefd[0]);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return Status::FromErrno(errno, "waitpid");
  }
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

std::string Describe(const std::vector<std::string>& argv) {
  std::string s;
  for (const std::string& a : argv) s += (s.empty() ? "" : " ") + a;
  return Printable(s, 200);
}

Status RunXl(const std::vector<std::string>& argv) {
  auto r = Run(argv, false);
  if (!r.ok()) return r.status();
  if (r->exit_code != 0) {
    return Status::FailedPrecondition(Describe(argv) + " failed (exit status " +
                                      std::to_string(r->exit_code) + ")");
  }
  return Status::Ok();
}

// kAborted once `stop_fd` is readable.
Status CheckStop(int stop_fd) {
  if (stop_fd < 0) return Status::Ok();
  pollfd p{stop_fd, POLLIN, 0};
  if (::poll(&p, 1, 0) == 1 && (p.revents & POLLIN) != 0) {
    return Status::Aborted("interrupted by a signal");
  }
  return Status::Ok();
}

void Log(std::FILE* log, const std::string& line) {
  if (log == nullptr) return;
  std::fprintf(log, "%s\n", line.c_str());
  std::fflush(log);
}

}  // namespace

Result<std::string> FindXl(const std::string& explicit_path) {
  if (!explicit_path.empty()) {
    if (!IsExecutableFile(explicit_path)) {
      return Status::NotFound("--xl " + QuoteForError(explicit_path, 200) +
                              ": not an executable file");
    }
    return explicit_path;
  }
  const char* path = std::getenv("PATH");
  std::string_view dirs = path != nullptr ? path : "";
  while (!dirs.empty()) {
    const size_t colon = dirs.find(':');
    std::string dir(dirs.substr(0, colon));
    dirs = colon == std::string_view::npos ? std::string_view() : dirs.substr(colon + 1);
    if (dir.empty()) continue;
    const std::string candidate = dir + "/xl";
    if (IsExecutableFile(candidate)) return candidate;
  }
  return Status::NotFound(
      "xl not found in PATH (nvram-tool create needs Xen's xl in dom0; --xl PATH names it)");
}

Result<std::string> EffectiveDomainName(const XlConfig& config,
                                        const std::vector<std::string>& xl_args) {
  std::optional<std::string> name = config.name;
  for (const std::string& a : xl_args) {
    if (a.empty()) return Status::InvalidArgument("xl option '': empty argument");
    if (a[0] == '-') {
      for (const char* bad :
           {"-c", "-F", "-n", "-f", "-e", "--console_autoconnect", "--dryrun", "--defconfig"}) {
        const size_t len = std::strlen(bad);
        if (a.compare(0, len, bad) == 0 && (a.size() == len || a[len] == '=' || bad[1] != '-')) {
          return Status::InvalidArgument("xl option " + QuoteForError(a) +
                                         " is not supported by nvram-tool create");
        }
      }
      continue;
    }
    // KEY=VALUE in config syntax, as xl takes it.
    auto extra = ParseXlConfig(a, "xl option");
    if (!extra.ok()) return extra.status();
    if (a.rfind("vnvram", 0) == 0) {
      return Status::InvalidArgument(
          "xl option " + QuoteForError(a) +
          ": vnvram= on the command line is not supported (put it in the config file)");
    }
    if (extra->name) name = extra->name;
  }
  if (!name) {
    return Status::InvalidArgument(config.source +
                                   ": no name = \"...\" setting (nvram-tool create needs the "
                                   "domain's name to find it after xl create)");
  }
  return *name;
}

Result<CreateResult> CreateDomain(platform::XenStore& xs, const XlConfig& config,
                                  const CreateOptions& options, std::FILE* log) {
  CreateResult res;
  VNVRAM_ASSIGN_OR_RETURN(res.name, EffectiveDomainName(config, options.xl_args));
  VNVRAM_ASSIGN_OR_RETURN(const std::string xl, FindXl(options.xl));
  // Backend names are resolved before the domain exists: a typo costs no
  // domain. The frontend id is filled in once xl has made the domain.
  VNVRAM_ASSIGN_OR_RETURN(std::vector<AttachSpec> specs,
                          ResolveDevices(xs, config, kDomIdFirstReserved));

  std::vector<std::string> create = {xl, "create", "-p", options.config_path};
  create.insert(create.end(), options.xl_args.begin(), options.xl_args.end());
  VNVRAM_RETURN_IF_ERROR(RunXl(create));

  auto id = Run({xl, "domid", res.name}, true);
  Status found = id.ok() ? Status::Ok() : id.status();
  if (found.ok()) {
    std::string text = id->out;
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
    auto d = ParseDomId(text, "xl domid output");
    if (id->exit_code != 0 || !d.ok()) {
      found = Status::FailedPrecondition("xl domid " + res.name + " failed (exit status " +
                                         std::to_string(id->exit_code) + ", output " +
                                         QuoteForError(text) + ")");
    } else {
      res.domid = *d;
    }
  }
  if (!found.ok()) {
    (void)RunXl({xl, "destroy", res.name});
    return found.WithContext("domain " + res.name + " destroyed");
  }
  Log(log, "created domain " + res.name + " (id " + std::to_string(res.domid) + "), paused");

  std::vector<AttachSpec> attached;
  Status s;
  for (AttachSpec& spec : specs) {
    spec.frontend = res.domid;
    if (spec.backend == res.domid) {
      s = Status::InvalidArgument("backend domain " + std::to_string(spec.backend) +
                                  " is the new domain itself");
    }
  }
  if (s.ok()) s = CheckStop(options.stop_fd);
  if (s.ok()) s = AttachDevices(xs, specs, &attached);
  if (s.ok()) s = WaitBackendsReady(xs, specs, options.ready_timeout, options.stop_fd);
  if (s.ok()) {
    for (const AttachSpec& spec : specs) {
      Log(log, "device " + std::to_string(spec.dev) + " ready: volume " + spec.volume.ToString() +
                   ", backend domain " + std::to_string(spec.backend) + ", " +
                   FormatSize(spec.size));
    }
    s = CheckStop(options.stop_fd);
    if (s.ok()) s = RunXl({xl, "unpause", std::to_string(res.domid)});
  }
  if (!s.ok()) {
    (void)DetachDevices(xs, attached, options.detach_timeout);
    (void)RunXl({xl, "destroy", std::to_string(res.domid)});
    return s.WithContext("domain " + res.name + " (id " + std::to_string(res.domid) +
                         ") destroyed");
  }
  res.devices = specs.size();
  return res;
}

}  // namespace vnvram::tools
