// Value checks: whether a xenstore value (a string) is valid for a schema
// type, with the rule it breaks and a one-line reason when it is not. Pure
// functions over common/parse.h; thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "xenstore-schema/model.h"

namespace vnvram::schema {

// Rule names shared with the validator's findings.
inline constexpr std::string_view kRuleBadType = "bad-type";
inline constexpr std::string_view kRuleOutOfRange = "out-of-range";
inline constexpr std::string_view kRuleBadValue = "bad-value";

struct ValueProblem {
  std::string rule;     // kRuleBadType, kRuleOutOfRange or kRuleBadValue
  std::string message;  // one line naming the value
};

// nullopt when `value` is valid for `type`. kPath values are only checked
// for being an absolute path here; the validator compares them with the
// builder's result.
std::optional<ValueProblem> CheckValue(const ValueType& type, std::string_view value);

// Whether `text` is the canonical spelling of a placeholder of `kind`
// (decimal without leading zeros for numbers, lower-case UUIDs) so that
// every node has exactly one name.
bool PlaceholderAccepts(ValueKind kind, std::string_view text);

// Parses a number-like value (uint, size, domid, devid, grant-ref, port,
// state, bool01) to u64; nullopt for anything else or invalid text.
std::optional<uint64_t> NumericValue(const ValueType& type, std::string_view value);

}  // namespace vnvram::schema
