#include "xenstore-schema/value_check.h"

#include <string>

#include "common/parse.h"

namespace vnvram::schema {

namespace {

std::string Quote(std::string_view v) {
  constexpr size_t kMaxShown = 64;
  std::string out = "'";
  for (size_t i = 0; i < v.size() && i < kMaxShown; ++i) {
    const unsigned char c = static_cast<unsigned char>(v[i]);
    out += (c >= 0x20 && c < 0x7F) ? static_cast<char>(c) : '?';
  }
  if (v.size() > kMaxShown) out += "...";
  out += "'";
  return out;
}

ValueProblem Problem(std::string_view rule, std::string message) {
  return ValueProblem{std::string(rule), std::move(message)};
}

std::optional<ValueProblem> CheckRange(const ValueType& t, uint64_t v, std::string_view raw) {
  if (v < t.min || v > t.max) {
    return Problem(kRuleOutOfRange, "value " + Quote(raw) + " outside [" + std::to_string(t.min) +
                                        ", " + std::to_string(t.max) + "]");
  }
  if (t.multiple_of != 0 && v % t.multiple_of != 0) {
    return Problem(kRuleOutOfRange,
                   "value " + Quote(raw) + " not a multiple of " + std::to_string(t.multiple_of));
  }
  return std::nullopt;
}

bool Printable(std::string_view s) {
  for (char ch : s) {
    const unsigned char c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c >= 0x7F) return false;
  }
  return true;
}

bool NameChars(std::string_view s) {
  for (char c : s) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_' || c == '.';
    if (!ok) return false;
  }
  return true;
}

}  // namespace

std::optional<ValueProblem> CheckValue(const ValueType& t, std::string_view value) {
  switch (t.kind) {
    case ValueKind::kUint:
    case ValueKind::kSize:
    case ValueKind::kIndex: {
      auto v = ParseU64(value);
      if (!v.ok()) return Problem(kRuleBadType, "not an unsigned decimal: " + Quote(value));
      return CheckRange(t, *v, value);
    }
    case ValueKind::kGrantRef:
    case ValueKind::kEvtchnPort: {
      auto v = ParseU32(value);
      if (!v.ok()) return Problem(kRuleBadType, "not a 32-bit unsigned decimal: " + Quote(value));
      if (t.kind == ValueKind::kEvtchnPort && *v == 0) {
        return Problem(kRuleOutOfRange, "event channel port 0 is never valid");
      }
      return CheckRange(t, *v, value);
    }
    case ValueKind::kDomId: {
      auto v = ParseDomId(value);
      if (!v.ok()) return Problem(kRuleBadType, "not a domain id: " + Quote(value));
      return std::nullopt;
    }
    case ValueKind::kDevId: {
      auto v = ParseDevId(value);
      if (!v.ok()) return Problem(kRuleBadType, "not a device id: " + Quote(value));
      return std::nullopt;
    }
    case ValueKind::kState: {
      auto v = ParseU64(value);
      if (!v.ok()) return Problem(kRuleBadType, "not a XenbusState number: " + Quote(value));
      if (*v > 8)
        return Problem(kRuleOutOfRange, "XenbusState " + Quote(value) + " outside [0, 8]");
      return std::nullopt;
    }
    case ValueKind::kBool01: {
      if (value != "0" && value != "1") {
        return Problem(kRuleBadType, "expected \"0\" or \"1\", got " + Quote(value));
      }
      return std::nullopt;
    }
    case ValueKind::kUuid: {
      auto u = ParseUuid(value);
      if (!u.ok()) return Problem(kRuleBadType, "not a UUID: " + Quote(value));
      if (u->ToString() != value) {
        return Problem(kRuleBadValue, "UUID " + Quote(value) + " not in lower-case canonical form");
      }
      return std::nullopt;
    }
    case ValueKind::kEnum: {
      for (const auto& e : t.values) {
        if (e.value == value) return std::nullopt;
      }
      std::string allowed;
      for (const auto& e : t.values) allowed += (allowed.empty() ? "" : "|") + e.value;
      return Problem(kRuleBadValue, "value " + Quote(value) + " not one of " + allowed);
    }
    case ValueKind::kString: {
      if (value.size() > t.max_len) {
        return Problem(kRuleOutOfRange, "string of " + std::to_string(value.size()) +
                                            " bytes longer than " + std::to_string(t.max_len));
      }
      if (!Printable(value)) return Problem(kRuleBadValue, "string holds non-printable bytes");
      return std::nullopt;
    }
    case ValueKind::kName: {
      if (value.empty() || value.size() > t.max_len || !NameChars(value)) {
        return Problem(kRuleBadValue, "not a name of 1.." + std::to_string(t.max_len) +
                                          " characters [A-Za-z0-9._-]: " + Quote(value));
      }
      return std::nullopt;
    }
    case ValueKind::kPath: {
      if (value.empty() || value.front() != '/' || value.size() > 4096 || !Printable(value)) {
        return Problem(kRuleBadType, "not an absolute xenstore path: " + Quote(value));
      }
      return std::nullopt;
    }
  }
  return Problem(kRuleBadType, "unknown type");
}

bool PlaceholderAccepts(ValueKind kind, std::string_view text) {
  switch (kind) {
    case ValueKind::kDomId: {
      auto v = ParseDomId(text);
      return v.ok() && std::to_string(*v) == text;
    }
    case ValueKind::kDevId: {
      auto v = ParseDevId(text);
      return v.ok() && std::to_string(*v) == text;
    }
    case ValueKind::kIndex: {
      auto v = ParseU32(text);
      return v.ok() && std::to_string(*v) == text;
    }
    case ValueKind::kUuid: {
      auto u = ParseUuid(text);
      return u.ok() && u->ToString() == text;
    }
    case ValueKind::kName: return !text.empty() && text.size() <= 64 && NameChars(text);
    default: return false;
  }
}

std::optional<uint64_t> NumericValue(const ValueType& type, std::string_view value) {
  switch (type.kind) {
    case ValueKind::kUint:
    case ValueKind::kSize:
    case ValueKind::kDomId:
    case ValueKind::kDevId:
    case ValueKind::kGrantRef:
    case ValueKind::kEvtchnPort:
    case ValueKind::kState:
    case ValueKind::kBool01:
    case ValueKind::kIndex: {
      if (CheckValue(type, value).has_value()) return std::nullopt;
      auto v = ParseU64(value);
      if (!v.ok()) return std::nullopt;
      return *v;
    }
    default: return std::nullopt;
  }
}

}  // namespace vnvram::schema
