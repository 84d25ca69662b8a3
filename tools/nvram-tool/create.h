// Create: `nvram-tool create CFG [-- XL-OPTIONS]`, the deterministic way to
// start a domain with its vnvram devices: parse vnvram= (before xl runs),
// `xl create -p`, attach every path, wait for each backend's InitWait,
// `xl unpause`; on any failure detach what was attached and `xl destroy`.
// Runs xl as child processes; one call at a time per process.
#pragma once

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "common/result.h"
#include "platform/xenstore.h"
#include "tools/nvram-tool/vnvram_config.h"

namespace vnvram::tools {

struct CreateOptions {
  std::string config_path;
  std::vector<std::string> xl_args;  // passed to `xl create` after the config
  std::string xl;                    // xl to run; "" = "xl" found in PATH
  std::chrono::milliseconds ready_timeout{30000};
  std::chrono::milliseconds detach_timeout{5000};
  // Readable when the caller is asked to stop (a signalfd of SIGINT and
  // SIGTERM, blocked by the caller): a failure like any other, so the
  // domain is torn down. -1: none. xl runs with those signals unblocked.
  int stop_fd = -1;
};

// The xl binary: `explicit_path` when given (must be executable), else
// the first executable "xl" in $PATH. kNotFound with a one-line reason.
Result<std::string> FindXl(const std::string& explicit_path);

// Checks the extra xl arguments: options that would make `xl create` block
// or not create a domain (-c, -F, -n, -f, -e) are refused, as is vnvram=
// (xl ignores it; put it in the config file). A `name=...` argument
// overrides the config's name, as it does for xl; returns the name to use.
Result<std::string> EffectiveDomainName(const XlConfig& config,
                                        const std::vector<std::string>& xl_args);

struct CreateResult {
  DomId domid = 0;
  std::string name;
  size_t devices = 0;
};

// The whole sequence (see the header comment). `config` is the parsed
// options.config_path; xl's own output goes to this process's stdout and
// stderr; progress lines go to `log` (may be null).
Result<CreateResult> CreateDomain(platform::XenStore& xs, const XlConfig& config,
                                  const CreateOptions& options, std::FILE* log);

}  // namespace vnvram::tools
