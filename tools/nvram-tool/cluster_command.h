// ClusterCommand: `nvram-tool cluster status [--cluster FILE] [--backend B]
// [--json]`: every host of the cluster file with its endpoint and the link
// state the local vnvramd sees, every volume with its replica group and, as
// far as this host knows, its primary, epoch and replicas' states, and
// where the running vnvramd and the file disagree. JSON schema in
// docs/nvram-tool.md. Used by one thread.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>

#include "tools/nvram-tool/cli_support.h"

namespace vnvram::tools {

std::unique_ptr<Command> AddClusterCommand(CLI::App& app);

}  // namespace vnvram::tools
