// CLI support shared by nvram-tool's command files: the documented exit
// codes, the one-line error printers (stderr, "nvram-tool: ..."), opening
// the --platform's xenstore, and a Command a file registers on the CLI11
// app and main.cc runs once parsed. Stateless helpers; a Command is used by
// one thread.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>

#include "common/parse.h"
#include "common/result.h"
#include "common/status.h"
#include "platform/platform.h"
#include "tools/nvram-tool/cluster_view.h"

namespace vnvram::tools {

// Exit codes of every nvram-tool command (docs/nvram-tool.md, nvram-tool(8)).
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;  // a runtime failure (xenstore, file, daemon, peer)
inline constexpr int kExitUsage = 2;    // a bad command line: nothing was changed

// One line on stderr; returns kExitUsage.
inline int UsageError(const std::string& msg) {
  std::fprintf(stderr, "nvram-tool: %s\n", msg.c_str());
  return kExitUsage;
}

// One line on stderr; returns kExitFailure.
inline int Failure(const Status& s) {
  std::fprintf(stderr, "nvram-tool: %s\n", s.ToString().c_str());
  return kExitFailure;
}

// Subcommands registered with allow_extras() and no required() options, so
// that an unknown argument is reported (by this, first) rather than a
// missing option CLI11 would name before it.
inline Status RejectExtras(const CLI::App* cmd) {
  const std::vector<std::string> extra = cmd->remaining();
  if (extra.empty()) return {};
  return Status::InvalidArgument("unknown argument " + QuoteForError(extra.front()) + " (see " +
                                 cmd->get_name() + " --help)");
}

// A required option's check: "--name is required (see create --help)".
inline Status Require(const CLI::App* cmd, const std::string& option) {
  if (cmd->get_option(option)->count() != 0) return {};
  return Status::InvalidArgument(option + " is required (see " + cmd->get_name() + " --help)");
}

// --backend of a command that reads the local vnvramd: the domain given,
// or nullopt when the option is absent, which means this domain (nvram-tool
// runs beside the vnvramd it asks about: 0 in dom0, N in driver domain N).
inline Result<std::optional<DomId>> ParseLocalBackend(const CLI::App* cmd,
                                                      const std::string& value) {
  if (cmd->get_option("--backend")->count() == 0) return std::optional<DomId>();
  auto b = ParseDomId(value, "--backend");
  if (!b.ok()) return b.status();
  return std::optional<DomId>(*b);
}

// --cluster of a command that reads the cluster file: the file given, else
// DefaultClusterFile() ($VNVRAM_CLUSTER, else /etc/vnvram/cluster.json);
// kInvalidArgument for an empty name.
inline Result<std::string> ParseClusterFile(const CLI::App* cmd, const std::string& value) {
  if (cmd->get_option("--cluster")->count() == 0) return DefaultClusterFile();
  if (value.empty()) return Status::InvalidArgument("--cluster '': empty file name");
  return value;
}

// The platform named by --platform and a xenstore handle on it (the
// platform must outlive the handle).
struct XenStoreSession {
  std::unique_ptr<platform::Platform> platform;
  std::unique_ptr<platform::XenStore> xs;
};
inline Result<XenStoreSession> OpenXenStoreSession(const std::string& platform_spec) {
  XenStoreSession s;
  auto p = platform::OpenPlatform(platform_spec);
  if (!p.ok()) return p.status();
  s.platform = std::move(p).value();
  auto xs = s.platform->OpenXenStore();
  if (!xs.ok()) return xs.status().WithContext("opening xenstore");
  s.xs = std::move(xs).value();
  return s;
}

// A subcommand registered by its own file: main.cc asks Parsed() after
// CLI11's parse and then calls Run() with the global --platform value.
class Command {
 public:
  virtual ~Command() = default;
  virtual bool Parsed() const = 0;
  virtual int Run(const std::string& platform_spec) = 0;
};

}  // namespace vnvram::tools
