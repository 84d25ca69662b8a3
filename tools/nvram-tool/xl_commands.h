// XlCommands: the xl-integration subcommands of nvram-tool, `create` (see
// create.h) and `watch` (see watcher.h), registered on the tool's CLI11 app
// and run when parsed. Owns the option values; one per process.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace vnvram::tools {

class XlCommands {
 public:
  // Registers the subcommands on `app`; `platform_spec` is the tool's
  // --platform value, read when a command runs.
  XlCommands(CLI::App& app, const std::string& platform_spec);
  // After parsing: the exit status of the subcommand that was given, or
  // nullopt when it was none of these.
  std::optional<int> RunIfParsed();

 private:
  int Create();
  int Watch();

  const std::string& platform_spec_;
  CLI::App* create_ = nullptr;
  CLI::App* watch_ = nullptr;
  std::string c_config_, c_xl_, c_timeout_ = "30";
  std::vector<std::string> c_xl_args_;
  std::string w_dir_, w_ready_fd_, w_close_timeout_ = "5", w_log_file_;
};

}  // namespace vnvram::tools
