// nvram-tool: the operator's command for vnvram devices (minimal version:
// attach, detach, list). Runs in dom0 (or as dom0 of a sim host).
//
//   nvram-tool [--platform SPEC] attach <frontend-domid> --backend <domid>
//              --devid N --size 1M --volume <uuid>
//   nvram-tool [--platform SPEC] detach <frontend-domid> <devid>
//              [--timeout S] [--force]
//   nvram-tool [--platform SPEC] list [--json]
//
// Every value is parsed strictly; a bad one is a one-line error naming it.
// Exit status: 0 success, 1 runtime failure, 2 usage error.
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <exception>
#include <nlohmann/json.hpp>
#include <string>

#include "common/log.h"
#include "common/parse.h"
#include "platform/platform.h"
#include "tools/nvram-tool/toolstack.h"

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

std::string Opt(const std::optional<uint64_t>& v) {
  return v ? std::to_string(*v) : "-";
}

int Main(int argc, char** argv) {
  CLI::App app{"nvram-tool: manage vnvram devices"};
  app.require_subcommand(1);
  std::string platform_spec;
  app.add_option("--platform", platform_spec,
                 "xen or sim:<dir>:<domid> (default $VNVRAM_PLATFORM, else xen)");

  std::string a_front, a_back, a_dev, a_size, a_vol;
  CLI::App* attach =
      app.add_subcommand("attach", "create a device (frontend and backend directories)");
  attach->add_option("frontend-domid", a_front, "guest domain")->required();
  attach->add_option("--backend", a_back, "backend (driver) domain")->required();
  attach->add_option("--devid", a_dev, "xenbus device id")->required();
  attach->add_option("--size", a_size, "region size, e.g. 1M, 64MiB, 4096")->required();
  attach->add_option("--volume", a_vol, "volume UUID")->required();

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

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    return UsageError(std::string(e.what()) + " (see --help)");
  }

  vnvram::log::Init("nvram-tool", vnvram::log::Level::kWarn);

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
    spec = {*f, *b, *dev, *vol, *size};
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

  auto platform = vnvram::platform::OpenPlatform(platform_spec);
  if (!platform.ok()) return Failure(platform.status());
  auto xs = (*platform)->OpenXenStore();
  if (!xs.ok()) return Failure(xs.status().WithContext("opening xenstore"));

  if (attach->parsed()) {
    if (Status s = vnvram::tools::Attach(**xs, spec); !s.ok()) return Failure(s);
    std::printf("attached device %u of domain %u (backend domain %u, %s, volume %s)\n", spec.dev,
                unsigned{spec.frontend}, unsigned{spec.backend},
                vnvram::FormatSize(spec.size).c_str(), spec.volume.ToString().c_str());
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
