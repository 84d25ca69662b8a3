// VolumeCommand: `nvram-tool volume create|destroy|list`. A volume is an
// entry of the cluster file (uuid, name, size, replicas, policy; see
// docs/replication.md): create and destroy edit the file atomically
// (cluster_file_edit.h), list joins it with the local vnvramd's state
// (cluster_view.h). vnvramd reads the file only at start: a change takes
// effect when the replicas' vnvramd are restarted with the new file.
// Used by one thread.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>

#include "tools/nvram-tool/cli_support.h"

namespace vnvram::tools {

std::unique_ptr<Command> AddVolumeCommand(CLI::App& app);

}  // namespace vnvram::tools
