// Finding: one problem the validator found in a xenstore tree: the node's
// path, the rule it breaks and a one-line message. A value type; thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace vnvram::schema {

// Rules a finding can name (besides the invariant ids of the schema and the
// value rules bad-type, out-of-range, bad-value of value_check.h).
inline constexpr std::string_view kRuleUnknownKey = "unknown-key";
inline constexpr std::string_view kRuleMissingKey = "missing-key";
inline constexpr std::string_view kRuleUnexpectedKey = "unexpected-key";
inline constexpr std::string_view kRuleBadPerms = "bad-perms";
inline constexpr std::string_view kRuleUnreadable = "unreadable";
inline constexpr std::string_view kRuleTooBig = "tree-too-big";

struct Finding {
  std::string path;
  std::string rule;
  std::string message;
  bool operator==(const Finding&) const = default;
};

// "path: rule: message" lines.
std::string FormatFindingsText(const std::vector<Finding>& findings);
// {"findings": [{"path":..,"rule":..,"message":..}], "count": N}
std::string FormatFindingsJson(const std::vector<Finding>& findings);

}  // namespace vnvram::schema
