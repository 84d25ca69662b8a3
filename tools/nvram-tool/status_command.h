// StatusCommand: `nvram-tool status [--backend B] [--domain D] [--json]`,
// everything one backend domain's vnvramd publishes: the daemon instance,
// each replicated volume (role, epoch, sequence, replicas, risk) with the
// paths that lead to it, the peers' link states, and every device it serves
// with its guest, states, role, epoch and statistics. JSON schema in
// docs/nvram-tool.md. Used by one thread.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>

#include "tools/nvram-tool/cli_support.h"

namespace vnvram::tools {

std::unique_ptr<Command> AddStatusCommand(CLI::App& app);

}  // namespace vnvram::tools
