#include "platform/xen/xen_module_param.h"

#include <fstream>
#include <string>

#include "common/parse.h"

namespace vnvram::xen {

std::optional<uint64_t> ReadModuleParam(std::string_view module, std::string_view param) {
  std::string path = "/sys/module/";
  path += module;
  path += "/parameters/";
  path += param;
  std::ifstream in(path);
  std::string line;
  if (!in || !std::getline(in, line)) return std::nullopt;
  auto value = ParseU64(line, path);
  if (!value.ok()) return std::nullopt;
  return *value;
}

}  // namespace vnvram::xen
