// nvram-tool: the operator's command for vnvram devices (attach, detach,
// list), multipath (failover, monitor), replication (promote, status,
// inspect) and replication keys (keygen). Runs in dom0 (or as dom0 of a sim
// host).
//
//   nvram-tool [--platform SPEC] attach <frontend-domid> --backend <domid>
//              --devid N --size 1M --volume <uuid> [--priority 0..255]
//   nvram-tool [--platform SPEC] detach <frontend-domid> <devid>
//              [--timeout S] [--force]
//   nvram-tool [--platform SPEC] list [--json]
//   nvram-tool [--platform SPEC] failover <domid> <volume-uuid|devid>
//              [--to DEVID] [--timeout S] [--force] [--json]
//   nvram-tool [--platform SPEC] monitor [--json] [--domain D]
//   nvram-tool keygen --out FILE [--force]
//   nvram-tool keygen --public-of FILE
//   nvram-tool [--platform SPEC] promote --volume <uuid> [--backend D] [--force]
//              [--timeout-ms N]
//   nvram-tool [--platform SPEC] status [--backend D] [--domain D] [--json]
//   nvram-tool [--platform SPEC] volume create|destroy|list ...
//   nvram-tool [--platform SPEC] cluster status [--cluster FILE] [--json]
//   nvram-tool --version
//   nvram-tool [--platform SPEC] create CFG [--xl PATH] [--timeout S] [-- XL-OPTIONS]
//   nvram-tool [--platform SPEC] watch [--config-dir DIR] [--ready-fd FD]
//              [--close-timeout S] [--log-file FILE]
//   nvram-tool inspect --cluster FILE --host ID --volume <uuid> --offset O
//              --length L [--key-file FILE] [--timeout-ms N] [--hex]
//
// Every value is parsed strictly; a bad one is a one-line error naming it.
// Exit status: 0 success, 1 runtime failure (failover: any result but ok,
// or no answer), 2 usage error (cli_support.h). Reference: docs/nvram-tool.md
// and nvram-tool(8).
#include <fmt/format.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <exception>
#include <nlohmann/json.hpp>
#include <string>

#include "backend/replication/curve.h"
#include "common/log.h"
#include "common/parse.h"
#include "common/version.h"
#include "platform/platform.h"
#include "tools/nvram-tool/cli_support.h"
#include "tools/nvram-tool/cluster_command.h"
#include "tools/nvram-tool/failover_request.h"
#include "tools/nvram-tool/monitor.h"
#include "tools/nvram-tool/replication_admin.h"
#include "tools/nvram-tool/status_command.h"
#include "tools/nvram-tool/toolstack.h"
#include "tools/nvram-tool/volume_command.h"
#include "tools/nvram-tool/xl_commands.h"

namespace {

using vnvram::Status;

int UsageError(const std::string& msg) {
  std::fprintf(stderr, "nvram-tool: %s\n", msg.c_str());
  return 2;
}

int Failure(const Status& s) {
  std::fprintf(stderr, "nvram-tool: %s\n", s.ToString().c_str());
  return 1;
}

// monitor: until SIGINT or SIGTERM, which the caller blocked (in every
// thread: before the platform starts any) and hands over as a signalfd.
int MonitorCommand(vnvram::platform::XenStore& xs, const vnvram::tools::MonitorOptions& options,
                   int signal_fd) {
  Status s = vnvram::tools::RunMonitor(xs, options, stdout, stderr, signal_fd);
  if (!s.ok()) return Failure(s);
  return 0;
}

int FailoverCommand(vnvram::platform::XenStore& xs, const vnvram::tools::FailoverSpec& spec,
                    bool json) {
  auto r = vnvram::tools::RequestFailover(xs, spec);
  if (!r.ok()) return Failure(r.status());
  if (json) {
    std::printf("%s\n", vnvram::tools::FormatFailoverJson(*r).c_str());
  } else if (r->answered) {
    std::printf("%s\n", vnvram::tools::FormatFailoverLine(*r).c_str());
  } else {
    std::fprintf(stderr, "nvram-tool: %s\n", r->message.c_str());
  }
  return r->ok() ? 0 : 1;
}

std::string Opt(const std::optional<uint64_t>& v) {
  return v ? std::to_string(*v) : "-";
}

// keygen: writes a CurveZMQ key pair (mode 0600) and prints its public key,
// or prints the public key of an existing key file. Needs no platform.
int Keygen(const std::string& out, const std::string& public_of, bool force) {
  namespace repl = vnvram::replication;
  if (!public_of.empty()) {
    auto pair = repl::LoadKeyFile(public_of);
    if (!pair.ok()) return Failure(pair.status());
    std::printf("%s\n", pair->public_z85.c_str());
    return 0;
  }
  auto pair = repl::GenerateCurveKeyPair();
  if (!pair.ok()) return Failure(pair.status());
  if (Status s = repl::WriteKeyFile(out, *pair, force); !s.ok()) {
    if (s.code() == vnvram::Code::kAlreadyExists) {
      return Failure(Status(s.code(), s.message() + " (--force replaces it)"));
    }
    return Failure(s);
  }
  std::printf("%s\n", pair->public_z85.c_str());
  return 0;
}

int InspectCommand(const std::string& cluster, const std::string& host, const std::string& key,
                   const std::string& vol, const std::string& off, const std::string& len,
                   const std::string& timeout, bool hex, bool json) {
  vnvram::tools::InspectSpec spec;
  spec.cluster_file = cluster;
  spec.host = host;
  spec.key_file = key;
  auto u = vnvram::ParseUuid(vol, "--volume");
  if (!u.ok()) return UsageError(u.status().message());
  auto o = vnvram::ParseSize(off, "--offset");
  if (!o.ok()) return UsageError(o.status().message());
  auto l = vnvram::ParseSize(len, "--length");
  if (!l.ok()) return UsageError(l.status().message());
  if (*l == 0 || *l > (1u << 20)) return UsageError("--length '" + len + "': expected 1..1M");
  auto t = vnvram::ParseU64InRange(timeout, 1, 3600 * 1000, "--timeout-ms");
  if (!t.ok()) return UsageError(t.status().message());
  spec.volume = *u;
  spec.offset = *o;
  spec.length = static_cast<uint32_t>(*l);
  spec.timeout = std::chrono::milliseconds(*t);
  auto r = vnvram::tools::Inspect(spec);
  if (!r.ok()) return Failure(r.status());
  if (r->data.empty()) {
    return Failure(Status::OutOfRange(host + " holds no such range of volume " + vol));
  }
  if (json) {
    std::string bytes;
    if (hex) {
      for (std::byte b : r->data) bytes += fmt::format("{:02x}", static_cast<unsigned>(b));
    }
    char crc[9];
    std::snprintf(crc, sizeof crc, "%08x", r->crc32c);
    nlohmann::json j = {
        {"host", host},          {"volume", spec.volume.ToString()},
        {"epoch", r->epoch},     {"sequence", r->sequence},
        {"offset", spec.offset}, {"length", r->data.size()},
        {"crc32c", crc},         {"hex", hex ? nlohmann::json(bytes) : nlohmann::json(nullptr)}};
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  std::printf("host %s epoch %llu sequence %llu offset %llu length %zu crc32c %08x\n", host.c_str(),
              static_cast<unsigned long long>(r->epoch),
              static_cast<unsigned long long>(r->sequence),
              static_cast<unsigned long long>(spec.offset), r->data.size(), r->crc32c);
  if (hex) {
    for (size_t i = 0; i < r->data.size(); ++i) {
      std::printf("%02x%s", static_cast<unsigned>(r->data[i]), (i % 32 == 31) ? "\n" : "");
    }
    if (r->data.size() % 32 != 0) std::printf("\n");
  }
  return 0;
}

int Main(int argc, char** argv) {
  CLI::App app{"nvram-tool: manage vnvram devices"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("nvram-tool ") + vnvram::kVersion);
  std::string platform_spec;
  app.add_option("--platform", platform_spec,
                 "xen or sim:<dir>:<domid> (default $VNVRAM_PLATFORM, else xen)");
  vnvram::tools::XlCommands xl_commands(app, platform_spec);  // create, watch

  std::string a_front, a_back, a_dev, a_size, a_vol, a_prio;
  CLI::App* attach =
      app.add_subcommand("attach", "create a device (frontend and backend directories)");
  attach->add_option("frontend-domid", a_front, "guest domain")->required();
  attach->add_option("--backend", a_back, "backend (driver) domain")->required();
  attach->add_option("--devid", a_dev, "xenbus device id")->required();
  attach->add_option("--size", a_size, "region size, e.g. 1M, 64MiB, 4096")->required();
  attach->add_option("--volume", a_vol, "volume UUID")->required();
  CLI::Option* a_prio_opt = attach->add_option(
      "--priority", a_prio, "path priority among the volume's paths, 0..255 (higher wins)");

  std::string d_front, d_dev, d_timeout = "10";
  bool d_force = false;
  CLI::App* detach = app.add_subcommand("detach", "close a device and remove its directories");
  detach->add_option("frontend-domid", d_front, "guest domain")->required();
  detach->add_option("devid", d_dev, "xenbus device id")->required();
  detach->add_option("--timeout", d_timeout,
                     "seconds to wait for the backend to close (default 10)");
  detach->add_flag("--force", d_force, "remove the directories even if the backend did not close");

  bool l_json = false;
  CLI::App* list = app.add_subcommand("list", "list every vnvram device");
  list->add_flag("--json", l_json, "machine-readable output");

  std::string f_dom, f_vol, f_to, f_timeout = "10";
  bool f_force = false, f_json = false;
  CLI::App* failover = app.add_subcommand(
      "failover", "ask a guest's frontend to move a volume to another path, wait for the outcome");
  failover->add_option("domain", f_dom, "guest domain")->required();
  failover->add_option("volume", f_vol, "volume UUID, or the devid of one of its paths")
      ->required();
  CLI::Option* f_to_opt =
      failover->add_option("--to", f_to, "devid of the path to use (default: the best standby)");
  failover->add_option("--timeout", f_timeout,
                       "seconds the frontend may take (default 10); the tool waits 2 s more");
  failover->add_flag("--force", f_force,
                     "the old primary may be unreachable (the majority rule still applies)");
  failover->add_flag("--json", f_json, "machine-readable output");

  std::string m_dom;
  bool m_json = false;
  CLI::App* monitor = app.add_subcommand(
      "monitor", "print one line per vnvram xenstore change until SIGINT or SIGTERM");
  CLI::Option* m_dom_opt = monitor->add_option(
      "--domain", m_dom, "only this domain's directories and the backends serving it");
  monitor->add_flag("--json", m_json, "one JSON object per line");

  std::string k_out, k_public_of;
  bool k_force = false;
  CLI::App* keygen = app.add_subcommand(
      "keygen", "write a CurveZMQ key pair for replication and print its public key");
  CLI::Option* k_out_opt =
      keygen->add_option("--out", k_out, "key file to write (mode 0600); prints the public key");
  CLI::Option* k_pub_opt =
      keygen->add_option("--public-of", k_public_of, "print the public key of this key file");
  CLI::Option* k_force_opt = keygen->add_flag("--force", k_force, "replace an existing --out file");
  k_out_opt->excludes(k_pub_opt);
  k_force_opt->needs(k_out_opt);

  std::string p_vol, p_backend, p_timeout = "30000";
  bool p_force = false;
  CLI::App* promote = app.add_subcommand(
      "promote", "make the local vnvramd primary of a replicated volume for a new epoch");
  promote->add_option("--volume", p_vol, "volume UUID")->required();
  promote->add_option("--backend", p_backend, "domain running vnvramd (default: this domain)");
  promote->add_flag("--force", p_force,
                    "promote without a majority: acknowledged persists held only by unreachable "
                    "hosts may be lost");
  promote->add_option("--timeout-ms", p_timeout, "how long to wait (default 30000)");

  std::string i_cluster, i_host, i_key, i_vol, i_off, i_len, i_timeout = "5000";
  bool i_hex = false, i_json = false;
  CLI::App* inspect = app.add_subcommand(
      "inspect", "read a range of a host's copy of a volume over ZeroMQ (crc32c and sequence)");
  inspect->add_option("--cluster", i_cluster,
                      "cluster file (default $VNVRAM_CLUSTER, else /etc/vnvram/cluster.json)");
  inspect->add_option("--host", i_host, "host to ask")->required();
  inspect->add_option("--key-file", i_key, "CurveZMQ key pair (when the cluster has keys)");
  inspect->add_option("--volume", i_vol, "volume UUID")->required();
  inspect->add_option("--offset", i_off, "byte offset")->required();
  inspect->add_option("--length", i_len, "bytes (at most the cluster's max-data)")->required();
  inspect->add_option("--timeout-ms", i_timeout, "how long to wait (default 5000)");
  inspect->add_flag("--hex", i_hex, "also print the bytes in hex");
  inspect->add_flag("--json", i_json, "machine-readable output (schema: docs/nvram-tool.md)");

  // Subcommands in files of their own (cli_support.h's Command).
  auto status_cmd = vnvram::tools::AddStatusCommand(app);
  auto volume_cmd = vnvram::tools::AddVolumeCommand(app);
  auto cluster_cmd = vnvram::tools::AddClusterCommand(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // CLI11 reports a missing subcommand before the word it did not know:
    // name that word instead.
    const CLI::App* deepest = &app;
    for (bool deeper = true; deeper;) {
      deeper = false;
      for (const CLI::App* sub : deepest->get_subcommands()) {
        deepest = sub;
        deeper = true;
        break;
      }
    }
    if (!deepest->remaining().empty() && deepest->get_require_subcommand_min() > 0 &&
        deepest->get_subcommands().empty()) {
      return UsageError("unknown command '" + deepest->remaining().front() + "' (see " +
                        (deepest == &app ? std::string("") : deepest->get_name() + " ") +
                        "--help)");
    }
    if (deepest != &app && deepest->get_require_subcommand_min() > 0 &&
        deepest->get_subcommands().empty()) {
      return UsageError(deepest->get_name() + ": a subcommand is required (see " +
                        deepest->get_name() + " --help)");
    }
    return UsageError(std::string(e.what()) + " (see --help)");
  }

  vnvram::log::Init("nvram-tool", vnvram::log::Level::kWarn);
  if (auto rc = xl_commands.RunIfParsed()) return *rc;

  if (keygen->parsed()) {
    if (k_out_opt->count() == 0 && k_pub_opt->count() == 0) {
      return UsageError("keygen: give --out FILE or --public-of FILE (see --help)");
    }
    if (k_out_opt->count() != 0 && k_out.empty()) return UsageError("--out '': empty file name");
    if (k_pub_opt->count() != 0 && k_public_of.empty()) {
      return UsageError("--public-of '': empty file name");
    }
    return Keygen(k_out, k_public_of, k_force);
  }

  for (auto* cmd : {status_cmd.get(), volume_cmd.get(), cluster_cmd.get()}) {
    if (cmd->Parsed()) return cmd->Run(platform_spec);
  }

  if (inspect->parsed()) {
    auto file = vnvram::tools::ParseClusterFile(inspect, i_cluster);
    if (!file.ok()) return UsageError(file.status().message());
    return InspectCommand(*file, i_host, i_key, i_vol, i_off, i_len, i_timeout, i_hex, i_json);
  }

  // Parse every argument before touching xenstore.
  vnvram::tools::AttachSpec spec;
  vnvram::DomId d_front_id = 0;
  vnvram::DevId d_dev_id = 0;
  vnvram::tools::DetachOptions dopts;
  if (attach->parsed()) {
    auto f = vnvram::ParseDomId(a_front, "frontend-domid");
    if (!f.ok()) return UsageError(f.status().message());
    auto b = vnvram::ParseDomId(a_back, "--backend");
    if (!b.ok()) return UsageError(b.status().message());
    auto dev = vnvram::ParseDevId(a_dev, "--devid");
    if (!dev.ok()) return UsageError(dev.status().message());
    auto size = vnvram::ParseSize(a_size, "--size");
    if (!size.ok()) return UsageError(size.status().message());
    auto vol = vnvram::ParseUuid(a_vol, "--volume");
    if (!vol.ok()) return UsageError(vol.status().message());
    spec = {*f, *b, *dev, *vol, *size, std::nullopt};
    if (a_prio_opt->count() != 0) {
      auto prio = vnvram::ParseU64InRange(a_prio, 0, 255, "--priority");
      if (!prio.ok()) return UsageError(prio.status().message());
      spec.priority = static_cast<uint32_t>(*prio);
    }
  } else if (detach->parsed()) {
    auto f = vnvram::ParseDomId(d_front, "frontend-domid");
    if (!f.ok()) return UsageError(f.status().message());
    auto dev = vnvram::ParseDevId(d_dev, "devid");
    if (!dev.ok()) return UsageError(dev.status().message());
    auto t = vnvram::ParseU64InRange(d_timeout, 1, 3600, "--timeout");
    if (!t.ok()) return UsageError(t.status().message());
    d_front_id = *f;
    d_dev_id = *dev;
    dopts.timeout = std::chrono::seconds(*t);
    dopts.force = d_force;
  }

  vnvram::Uuid p_uuid;
  std::optional<vnvram::DomId> backend_id;
  std::chrono::milliseconds p_wait{0};
  if (promote->parsed()) {
    auto vol = vnvram::ParseUuid(p_vol, "--volume");
    if (!vol.ok()) return UsageError(vol.status().message());
    auto b = vnvram::tools::ParseLocalBackend(promote, p_backend);
    if (!b.ok()) return UsageError(b.status().message());
    auto t = vnvram::ParseU64InRange(p_timeout, 1, 3600 * 1000, "--timeout-ms");
    if (!t.ok()) return UsageError(t.status().message());
    p_uuid = *vol;
    backend_id = *b;
    p_wait = std::chrono::milliseconds(*t);
  }

  vnvram::tools::FailoverSpec fspec;
  if (failover->parsed()) {
    auto d = vnvram::ParseDomId(f_dom, "domain");
    if (!d.ok()) return UsageError(d.status().message());
    fspec.domain = *d;
    // All digits: a devid; anything else must be a UUID.
    if (!f_vol.empty() && f_vol.find_first_not_of("0123456789") == std::string::npos) {
      auto dev = vnvram::ParseDevId(f_vol, "devid");
      if (!dev.ok()) return UsageError(dev.status().message());
      fspec.volume = *dev;
    } else {
      auto u = vnvram::ParseUuid(f_vol, "volume");
      if (!u.ok()) return UsageError(u.status().message() + " (a volume UUID or a devid)");
      fspec.volume = *u;
    }
    if (f_to_opt->count() != 0) {
      auto to = vnvram::ParseDevId(f_to, "--to");
      if (!to.ok()) return UsageError(to.status().message());
      fspec.to = *to;
    }
    auto t = vnvram::ParseU64InRange(f_timeout, 1, 3600, "--timeout");
    if (!t.ok()) return UsageError(t.status().message());
    fspec.timeout = std::chrono::seconds(*t);
    fspec.force = f_force;
  }
  vnvram::tools::MonitorOptions mopts;
  int signal_fd = -1;
  if (monitor->parsed()) {
    mopts.json = m_json;
    if (m_dom_opt->count() != 0) {
      auto d = vnvram::ParseDomId(m_dom, "--domain");
      if (!d.ok()) return UsageError(d.status().message());
      mopts.domain = *d;
    }
    // Before the platform starts a thread: every thread inherits the mask.
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    if (pthread_sigmask(SIG_BLOCK, &stop, nullptr) != 0 ||
        (signal_fd = signalfd(-1, &stop, SFD_CLOEXEC)) < 0) {
      return Failure(Status::FromErrno(errno, "signalfd"));
    }
  }

  auto platform = vnvram::platform::OpenPlatform(platform_spec);
  if (!platform.ok()) return Failure(platform.status());
  auto xs = (*platform)->OpenXenStore();
  if (!xs.ok()) return Failure(xs.status().WithContext("opening xenstore"));

  if (promote->parsed()) {
    auto r = vnvram::tools::Promote(**xs, backend_id.value_or((*platform)->self_domid()), p_uuid,
                                    p_force, p_wait);
    if (!r.ok()) return Failure(r.status());
    std::printf("promote request %llu: %s\n", static_cast<unsigned long long>(r->request),
                r->result.c_str());
    return r->result == "ok" ? 0 : 1;
  }
  if (failover->parsed()) return FailoverCommand(**xs, fspec, f_json);
  if (monitor->parsed()) {
    const int rc = MonitorCommand(**xs, mopts, signal_fd);
    ::close(signal_fd);
    return rc;
  }

  if (attach->parsed()) {
    if (Status s = vnvram::tools::Attach(**xs, spec); !s.ok()) return Failure(s);
    std::printf("attached device %u of domain %u (backend domain %u, %s, volume %s%s)\n", spec.dev,
                unsigned{spec.frontend}, unsigned{spec.backend},
                vnvram::FormatSize(spec.size).c_str(), spec.volume.ToString().c_str(),
                spec.priority ? (", priority " + std::to_string(*spec.priority)).c_str() : "");
    return 0;
  }
  if (detach->parsed()) {
    if (Status s = vnvram::tools::Detach(**xs, d_front_id, d_dev_id, dopts); !s.ok()) {
      return Failure(s);
    }
    std::printf("detached device %u of domain %u\n", d_dev_id, unsigned{d_front_id});
    return 0;
  }
  auto devices = vnvram::tools::List(**xs);
  if (!devices.ok()) return Failure(devices.status());
  if (l_json) {
    nlohmann::json arr = nlohmann::json::array();
    for (const auto& d : *devices) {
      nlohmann::json j;
      j["frontend_domid"] = d.frontend;
      j["devid"] = d.dev;
      j["backend_domid"] = d.backend ? nlohmann::json(*d.backend) : nlohmann::json(nullptr);
      j["volume"] = d.volume;
      j["frontend_state"] = d.frontend_state;
      j["backend_state"] = d.backend_state;
      j["online"] = d.online == "1";
      j["region_size"] = d.region_size ? nlohmann::json(*d.region_size) : nlohmann::json(nullptr);
      j["durable_sequence"] =
          d.durable_seq ? nlohmann::json(*d.durable_seq) : nlohmann::json(nullptr);
      j["error"] = d.error;
      arr.push_back(std::move(j));
    }
    std::printf("%s\n", arr.dump(2).c_str());
    return 0;
  }
  std::printf("%-6s %-5s %-7s %-36s %-12s %-12s %-6s %-10s %s\n", "domid", "devid", "backend",
              "volume", "frontend", "backend", "online", "size", "durable-seq");
  for (const auto& d : *devices) {
    std::printf("%-6u %-5u %-7s %-36s %-12s %-12s %-6s %-10s %s\n", unsigned{d.frontend}, d.dev,
                d.backend ? std::to_string(*d.backend).c_str() : "-", d.volume.c_str(),
                d.frontend_state.c_str(), d.backend_state.c_str(),
                d.online.empty() ? "-" : d.online.c_str(),
                d.region_size ? vnvram::FormatSize(*d.region_size).c_str() : "-",
                Opt(d.durable_seq).c_str());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return Main(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "nvram-tool: fatal: %s\n", e.what());
  } catch (...) {
    std::fprintf(stderr, "nvram-tool: fatal: unknown exception\n");
  }
  return 1;
}
