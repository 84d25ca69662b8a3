#include "xenstore-schema/finding.h"

#include <nlohmann/json.hpp>

namespace vnvram::schema {

std::string FormatFindingsText(const std::vector<Finding>& findings) {
  std::string out;
  for (const auto& f : findings) out += f.path + ": " + f.rule + ": " + f.message + "\n";
  return out;
}

std::string FormatFindingsJson(const std::vector<Finding>& findings) {
  nlohmann::ordered_json list = nlohmann::ordered_json::array();
  for (const auto& f : findings) {
    list.push_back({{"path", f.path}, {"rule", f.rule}, {"message", f.message}});
  }
  nlohmann::ordered_json doc = {{"count", findings.size()}, {"findings", std::move(list)}};
  // Replace invalid UTF-8 rather than throw: paths come from the store.
  return doc.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
}

}  // namespace vnvram::schema
