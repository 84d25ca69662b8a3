#include "bench/sim_cluster.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/unique_fd.h"

extern char** environ;

namespace vnvram::bench {
namespace {

Result<uint16_t> FreePort() {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  if (fd.get() < 0 || ::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
      ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    return Status::FromErrno(errno, "pick a free loopback port");
  }
  return ntohs(a.sin_port);
}

// fork + execve with `env` added; stdout/stderr to `out_fd`; `keep_fd`
// stays open in the child.
Result<pid_t> Spawn(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                    int out_fd, int keep_fd) {
  std::vector<std::string> args = argv;
  std::vector<char*> cargv;
  cargv.reserve(args.size() + 1);
  for (auto& a : args) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  std::vector<std::string> envs;
  for (char** e = environ; *e != nullptr; ++e) envs.emplace_back(*e);
  envs.insert(envs.end(), env.begin(), env.end());
  std::vector<char*> cenv;
  cenv.reserve(envs.size() + 1);
  for (auto& e : envs) cenv.push_back(e.data());
  cenv.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) return Status::FromErrno(errno, "fork");
  if (pid == 0) {
    const int devnull = ::open("/dev/null", O_RDONLY);
    ::dup2(devnull, 0);
    ::dup2(out_fd, 1);
    ::dup2(out_fd, 2);
    if (keep_fd >= 0) ::fcntl(keep_fd, F_SETFD, 0);
    ::execve(cargv[0], cargv.data(), cenv.data());
    ::_exit(127);
  }
  return pid;
}

}  // namespace

Result<std::unique_ptr<Daemon>> Daemon::Start(std::vector<std::string> argv,
                                              const std::string& log_path,
                                              const std::vector<std::string>& env) {
  int ready[2];
  if (::pipe2(ready, O_CLOEXEC) != 0) return Status::FromErrno(errno, "pipe2");
  UniqueFd rd(ready[0]);
  UniqueFd wr(ready[1]);
  UniqueFd log(::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
  if (log.get() < 0) return Status::FromErrno(errno, "open " + log_path);
  argv.push_back("--ready-fd");
  argv.push_back(std::to_string(wr.get()));
  VNVRAM_ASSIGN_OR_RETURN(const pid_t pid, Spawn(argv, env, log.get(), wr.get()));
  std::unique_ptr<Daemon> d(new Daemon());
  d->pid_ = pid;
  ::close(wr.release());
  pollfd p{rd.get(), POLLIN, 0};
  char byte = 0;
  if (::poll(&p, 1, 20000) != 1 || ::read(rd.get(), &byte, 1) != 1) {
    return Status::Unavailable(argv[0] + " did not get ready within 20 s (see " + log_path + ")");
  }
  return d;
}

Daemon::~Daemon() {
  if (pid_ <= 0) return;
  // Up to 5 s for an orderly exit, waiting on the process itself (a pidfd
  // becomes readable when it exits), then SIGKILL.
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0)));
  ::kill(pid_, SIGTERM);
  pollfd exited{pidfd.get(), POLLIN, 0};
  if (pidfd.get() < 0 || ::poll(&exited, 1, 5000) != 1) ::kill(pid_, SIGKILL);
  ::waitpid(pid_, nullptr, 0);
}

void Daemon::Kill() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

Status RunTool(const std::vector<std::string>& argv) {
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return Status::FromErrno(errno, "pipe2");
  UniqueFd rd(out[0]);
  UniqueFd wr(out[1]);
  VNVRAM_ASSIGN_OR_RETURN(const pid_t pid, Spawn(argv, {}, wr.get(), -1));
  ::close(wr.release());
  std::string text;
  char buf[512];
  for (;;) {
    pollfd p{rd.get(), POLLIN, 0};
    if (::poll(&p, 1, 10000) != 1) {
      ::kill(pid, SIGKILL);
      break;
    }
    const ssize_t n = ::read(rd.get(), buf, sizeof(buf));
    if (n <= 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return Status::Ok();
  while (!text.empty() && text.back() == '\n') text.pop_back();
  return Status::Internal(argv[0] + " " + (argv.size() > 1 ? argv[1] : "") + ": " + text);
}

Result<std::unique_ptr<BenchCluster>> BenchCluster::Start(const std::string& bin_dir,
                                                          const std::string& work_dir,
                                                          const std::vector<BenchHost>& hosts,
                                                          const std::vector<BenchVolume>& volumes,
                                                          const ClusterSettings& settings) {
  std::unique_ptr<BenchCluster> c(new BenchCluster());
  c->bin_ = bin_dir;
  c->work_ = work_dir;
  c->vnvramd_args_ = settings.vnvramd_args;
  c->keep_ = settings.keep;
  std::error_code ec;
  std::filesystem::create_directories(work_dir, ec);
  if (ec) return Status::IoError("create " + work_dir + ": " + ec.message());
  uint64_t pages = 0;
  for (const BenchVolume& v : volumes) pages += v.size / 4096 + 8;
  // The sim's gntalloc limit, per domain: every region must fit.
  c->env_.push_back("VNVRAM_SIM_GNTALLOC_LIMIT=" + std::to_string(pages + 1024));

  nlohmann::json j;
  j["version"] = 1;
  j["settings"] = {{"heartbeat-interval-ms", settings.heartbeat_interval_ms},
                   {"peer-expiry-ms", settings.peer_expiry_ms}};
  j["hosts"] = nlohmann::json::array();
  for (const BenchHost& h : hosts) {
    VNVRAM_ASSIGN_OR_RETURN(const uint16_t port, FreePort());
    j["hosts"].push_back({{"id", h.id}, {"endpoint", "tcp://127.0.0.1:" + std::to_string(port)}});
  }
  j["volumes"] = nlohmann::json::array();
  for (const BenchVolume& v : volumes) {
    if (v.replicas.empty()) continue;
    j["volumes"].push_back({{"uuid", v.uuid},
                            {"name", v.name},
                            {"size", v.size},
                            {"replicas", v.replicas},
                            {"policy", v.policy}});
  }
  c->cluster_file_ = work_dir + "/cluster.json";
  std::ofstream(c->cluster_file_) << j.dump(2) << "\n";
  for (const BenchHost& h : hosts) VNVRAM_RETURN_IF_ERROR(c->StartHost(h));
  return c;
}

Status BenchCluster::StartHost(const BenchHost& h) {
  const std::string dir = work_ + "/" + h.id;
  std::filesystem::create_directories(dir + "/vault");
  std::vector<std::string> argv{bin_ + "/vnvramd"};
  if (h.serves_guests) {
    const std::string xs = SimDir(h.id);
    std::filesystem::create_directories(xs);
    std::vector<std::string> xargv{bin_ + "/vnvram-xenstored", "--socket-dir", xs, "--log-level",
                                   "warn"};
    for (uint32_t g = 1; g <= h.guests; ++g) {
      xargv.insert(xargv.end(), {"--domain", std::to_string(g)});
    }
    VNVRAM_ASSIGN_OR_RETURN(auto x, Daemon::Start(xargv, dir + "/xenstored.log", env_));
    xenstored_[h.id] = std::move(x);
    argv.insert(argv.end(), {"--platform", "sim:" + xs + ":0"});
  } else {
    argv.push_back("--replica-only");
  }
  argv.insert(argv.end(), {"--vault-dir", dir + "/vault", "--host-id", h.id, "--cluster",
                           cluster_file_, "--log-level", "warn"});
  argv.insert(argv.end(), vnvramd_args_.begin(), vnvramd_args_.end());
  VNVRAM_ASSIGN_OR_RETURN(auto d, Daemon::Start(argv, dir + "/vnvramd.log", env_));
  vnvramd_[h.id] = std::move(d);
  return Status::Ok();
}

BenchCluster::~BenchCluster() {
  vnvramd_.clear();
  xenstored_.clear();
  std::error_code ec;
  if (!keep_) std::filesystem::remove_all(work_, ec);
}

std::string BenchCluster::SimDir(const std::string& host) const {
  return work_ + "/" + host + "/xs";
}

std::string BenchCluster::GuestPlatform(const std::string& host, uint32_t guest) const {
  return "sim:" + SimDir(host) + ":" + std::to_string(guest);
}

Status BenchCluster::Attach(const std::string& host, uint32_t devid, const BenchVolume& volume,
                            uint32_t guest) {
  return Tool(host,
              {"attach", std::to_string(guest), "--backend", "0", "--devid", std::to_string(devid),
               "--size", std::to_string(volume.size), "--volume", volume.uuid});
}

Status BenchCluster::Tool(const std::string& host, const std::vector<std::string>& args) const {
  std::vector<std::string> argv{bin_ + "/nvram-tool", "--platform", "sim:" + SimDir(host) + ":0"};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunTool(argv);
}

Status BenchCluster::KillVnvramd(const std::string& host) {
  auto it = vnvramd_.find(host);
  if (it == vnvramd_.end()) return Status::NotFound("no vnvramd on host " + host);
  it->second->Kill();
  vnvramd_.erase(it);
  return Status::Ok();
}

pid_t BenchCluster::VnvramdPid(const std::string& host) const {
  auto it = vnvramd_.find(host);
  return it == vnvramd_.end() ? -1 : it->second->pid();
}

}  // namespace vnvram::bench
