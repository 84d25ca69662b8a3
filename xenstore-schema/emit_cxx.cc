#include "xenstore-schema/emit_cxx.h"

#include <set>
#include <sstream>

namespace vnvram::schema {

namespace {

std::string CxxString(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

std::string CamelCase(std::string_view s) {
  std::string out;
  bool up = true;
  for (char c : s) {
    if (c == '-' || c == '_' || c == '/' || c == '.') {
      up = true;
      continue;
    }
    out += up ? static_cast<char>(std::toupper(static_cast<unsigned char>(c))) : c;
    up = false;
  }
  return out;
}

std::string ParamType(ValueKind k) {
  switch (k) {
    case ValueKind::kDomId: return "DomId";
    case ValueKind::kDevId: return "DevId";
    case ValueKind::kUuid: return "const Uuid&";
    case ValueKind::kName: return "std::string_view";
    default: return "uint32_t";
  }
}

std::string ParamText(ValueKind k, const std::string& param) {
  switch (k) {
    case ValueKind::kUuid: return param + ".ToString()";
    case ValueKind::kName: return param;
    default: return "std::to_string(" + param + ")";
  }
}

// "DomId f, DevId dev" for the placeholders of `p`.
std::string ParamList(const Schema& s, const PathPattern& p) {
  std::string out;
  for (const auto& ph : p.Placeholders()) {
    const PlaceholderSpec* spec = s.FindPlaceholder(ph);
    if (!out.empty()) out += ", ";
    out += ParamType(spec->kind) + " " + spec->param;
  }
  return out;
}

// Statements appending pattern `p` to std::string `var`; when `root` is
// set, the domain root is taken from kDomainRoot.
std::string AppendBody(const Schema& s, const PathPattern& p, const std::string& var,
                       bool from_root) {
  std::ostringstream o;
  std::string lit;
  size_t first = 0;
  if (from_root) {
    first = SplitPath(s.domain_root).size();
  }
  auto flush = [&] {
    if (!lit.empty()) o << "  " << var << " += " << CxxString(lit) << ";\n";
    lit.clear();
  };
  for (size_t i = first; i < p.segments().size(); ++i) {
    const auto& seg = p.segments()[i];
    if (i > 0 || p.absolute()) lit += '/';
    lit += seg.prefix;
    if (!seg.placeholder.empty()) {
      flush();
      const PlaceholderSpec* spec = s.FindPlaceholder(seg.placeholder);
      o << "  " << var << " += " << ParamText(spec->kind, spec->param) << ";\n";
    }
    lit += seg.suffix;
  }
  flush();
  return o.str();
}

std::string Comment(std::string_view text, std::string_view indent = "") {
  std::ostringstream o;
  std::string line;
  std::istringstream words{std::string(text)};
  std::string w;
  while (words >> w) {
    if (!line.empty() && line.size() + 1 + w.size() > 90) {
      o << indent << "// " << line << "\n";
      line.clear();
    }
    line += (line.empty() ? "" : " ") + w;
  }
  if (!line.empty()) o << indent << "// " << line << "\n";
  return o.str();
}

void EmitStates(const Schema& s, std::ostringstream& o) {
  o << "// XenbusState values (xen/io/xenbus.h).\n";
  o << "enum class XenbusState : uint8_t {\n";
  for (const auto& st : s.states) {
    o << "  k" << st.name << " = " << st.value << ",  // " << st.meaning << "\n";
  }
  o << "};\n";
  o << "inline constexpr int kXenbusStateCount = " << s.states.size() << ";\n\n";
  o << "constexpr std::string_view XenbusStateName(XenbusState s) {\n  switch (s) {\n";
  for (const auto& st : s.states) {
    o << "    case XenbusState::k" << st.name << ": return " << CxxString(st.name) << ";\n";
  }
  o << "  }\n  return \"?\";\n}\n\n";
  o << "// The two ends of a device.\nenum class End : uint8_t { kFrontend, kBackend };\n\n";
  o << "struct StateTransition {\n  XenbusState from;\n  XenbusState to;\n};\n\n";
  for (const auto& e : s.ends) {
    const std::string name = CamelCase(e.name);
    o << "// States the " << e.name << " uses.\n";
    o << "inline constexpr std::array<XenbusState, " << e.used_states.size() << "> k" << name
      << "UsedStates = {{";
    for (size_t i = 0; i < e.used_states.size(); ++i) {
      o << (i ? ", " : "") << "XenbusState::k" << s.FindState(e.used_states[i])->name;
    }
    o << "}};\n";
    o << "// Transitions the " << e.name
      << " may make (writing the same state again is a no-op).\n";
    o << "inline constexpr std::array<StateTransition, " << e.transitions.size() << "> k" << name
      << "Transitions = {{\n";
    for (const auto& t : e.transitions) {
      o << "    {XenbusState::k" << s.FindState(t.from)->name << ", XenbusState::k"
        << s.FindState(t.to)->name << "},  // " << t.why << "\n";
    }
    o << "}};\n\n";
  }
  o << "constexpr bool IsStateUsedBy(End end, XenbusState s) {\n"
       "  const auto& used = end == End::kFrontend ? kFrontendUsedStates : kBackendUsedStates;\n"
       "  for (XenbusState u : used) {\n    if (u == s) return true;\n  }\n  return false;\n}\n\n";
  o << "// Whether `end` may go from `from` to `to` (from == to is always allowed).\n"
       "constexpr bool IsAllowedTransition(End end, XenbusState from, XenbusState to) {\n"
       "  if (from == to) return true;\n"
       "  if (end == End::kFrontend) {\n"
       "    for (const auto& t : kFrontendTransitions) {\n"
       "      if (t.from == from && t.to == to) return true;\n    }\n    return false;\n  }\n"
       "  for (const auto& t : kBackendTransitions) {\n"
       "    if (t.from == from && t.to == to) return true;\n  }\n  return false;\n}\n\n";
}

void EmitKey(const Schema& s, const KeySpec& k, std::ostringstream& o) {
  o << Comment(k.name + ": " + k.meaning + " [writer " + k.writer + ", " +
                   std::string(ValueKindName(k.type.kind)) + "]",
               "");
  const auto ph = k.pattern.Placeholders();
  if (ph.empty()) {
    o << "inline constexpr std::string_view k" << k.cxx << " = " << CxxString(k.name) << ";\n";
  } else {
    if (k.index) {
      const auto& seg = k.pattern.segments().back();
      o << "inline constexpr std::string_view k" << k.cxx << "Prefix = " << CxxString(seg.prefix)
        << ";\n";
    }
    o << "inline std::string " << k.cxx << "(" << ParamList(s, k.pattern) << ") {\n";
    o << "  std::string k;\n" << AppendBody(s, k.pattern, "k", false) << "  return k;\n}\n";
  }
  if (k.type.has_range) {
    o << "inline constexpr uint64_t k" << k.cxx << "Min = " << k.type.min << "u;\n";
    o << "inline constexpr uint64_t k" << k.cxx << "Max = " << k.type.max << "u;\n";
  }
  if (k.type.multiple_of != 0) {
    o << "inline constexpr uint64_t k" << k.cxx << "MultipleOf = " << k.type.multiple_of << "u;\n";
  }
  if (k.type.max_len != 0) {
    o << "inline constexpr size_t k" << k.cxx << "MaxLen = " << k.type.max_len << ";\n";
  }
  if (k.default_value) {
    o << "inline constexpr std::string_view k" << k.cxx
      << "Default = " << CxxString(*k.default_value) << ";\n";
  }
  if (k.type.kind == ValueKind::kEnum) {
    for (const auto& v : k.type.values) {
      o << "inline constexpr std::string_view k" << k.cxx << v.cxx << " = " << CxxString(v.value)
        << ";\n";
    }
    o << "inline constexpr std::array<std::string_view, " << k.type.values.size() << "> k" << k.cxx
      << "Values = {{";
    for (size_t i = 0; i < k.type.values.size(); ++i) {
      o << (i ? ", " : "") << "k" << k.cxx << k.type.values[i].cxx;
    }
    o << "}};\n";
  }
}

void EmitTree(const Schema& s, const TreeSpec& t, std::ostringstream& o) {
  o << "// ---- " << t.title << ": " << t.base.text() << " ----\n";
  o << "inline std::string " << t.builder << "(" << ParamList(s, t.base) << ") {\n";
  o << "  std::string p(kDomainRoot);\n" << AppendBody(s, t.base, "p", true) << "  return p;\n}\n";
  std::string params = ParamList(s, t.base);
  std::string args;
  for (const auto& ph : t.base.Placeholders()) {
    args += (args.empty() ? "" : ", ") + s.FindPlaceholder(ph)->param;
  }
  o << "inline std::string " << t.key_builder << "(" << params << (params.empty() ? "" : ", ")
    << "std::string_view key) {\n";
  o << "  std::string p = " << t.builder << "(" << args << ");\n";
  o << "  p += '/';\n  p += key;\n  return p;\n}\n\n";
  o << "namespace " << t.ns << " {\n\n";
  o << "inline constexpr std::string_view kDirPattern = " << CxxString(t.base.text()) << ";\n\n";
  std::set<std::string> dirs;
  for (const auto& k : t.keys) {
    const auto& segs = k.pattern.segments();
    std::string prefix;
    for (size_t i = 0; i + 1 < segs.size(); ++i) {
      if (!segs[i].placeholder.empty()) break;
      prefix += (prefix.empty() ? "" : "/") + segs[i].prefix;
      dirs.insert(prefix);
    }
  }
  for (const auto& d : dirs) {
    o << "// Directory holding the " << d << "/ keys.\n";
    o << "inline constexpr std::string_view k" << CamelCase(d) << "Dir = " << CxxString(d) << ";\n";
  }
  if (!dirs.empty()) o << "\n";
  for (const auto& k : t.keys) {
    EmitKey(s, k, o);
    o << "\n";
  }
  o << "}  // namespace " << t.ns << "\n\n";
}

}  // namespace

std::string EmitCxxHeader(const Schema& s) {
  std::ostringstream o;
  o << "// vnvram_schema_gen.h: GENERATED by vnvram-schema-gen from\n"
       "// xenstore-schema/vnvram-schema.json. Do not edit; include\n"
       "// \"xenstore-schema/schema.h\". Constants and pure functions only;\n"
       "// thread-safe.\n"
       "#pragma once\n\n"
       "#include <array>\n#include <cstddef>\n#include <cstdint>\n#include <string>\n"
       "#include <string_view>\n\n#include \"common/parse.h\"\n\n"
       "namespace vnvram::schema {\n\n";
  o << "inline constexpr int kSchemaVersion = " << s.version << ";\n";
  o << "inline constexpr std::string_view kDeviceType = " << CxxString(s.device_type) << ";\n";
  o << "inline constexpr std::string_view kDomainRoot = " << CxxString(s.domain_root) << ";\n\n";
  EmitStates(s, o);
  o << "// ---- Directories ----\n";
  for (const auto& d : s.dirs) {
    o << Comment(d.pattern.text() + ": " + d.meaning);
    o << "inline std::string " << d.builder << "(" << ParamList(s, d.pattern) << ") {\n";
    o << "  std::string p(kDomainRoot);\n"
      << AppendBody(s, d.pattern, "p", true) << "  return p;\n}\n";
  }
  o << "\n";
  for (const auto& t : s.trees) EmitTree(s, t, o);
  o << "}  // namespace vnvram::schema\n";
  return o.str();
}

Result<std::string> EmitEmbeddedJson(std::string_view json_text) {
  constexpr std::string_view kDelim = "vnvram_schema";
  if (json_text.find(std::string(")") + std::string(kDelim) + "\"") != std::string_view::npos) {
    return Status::InvalidArgument("schema text contains the raw-string delimiter");
  }
  std::ostringstream o;
  o << "// GENERATED by vnvram-schema-gen: the schema JSON, embedded so that the\n"
       "// validator needs no file at run time.\n"
       "#include \"xenstore-schema/schema.h\"\n\n"
       "namespace vnvram::schema {\n\n"
       "std::string_view EmbeddedSchemaJson() {\n"
       "  static constexpr char kJson[] = R\""
    << kDelim << "(" << json_text << ")" << kDelim
    << "\";\n"
       "  return std::string_view(kJson, sizeof(kJson) - 1);\n}\n\n"
       "}  // namespace vnvram::schema\n";
  return o.str();
}

}  // namespace vnvram::schema
