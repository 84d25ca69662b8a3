#include "xenstore-schema/emit_markdown.h"

#include <map>
#include <sstream>

namespace vnvram::schema {

namespace {

std::string Wrap(std::string_view text, size_t width, std::string_view indent) {
  std::ostringstream o;
  std::string line;
  std::istringstream words{std::string(text)};
  std::string w;
  while (words >> w) {
    if (!line.empty() && indent.size() + line.size() + 1 + w.size() > width) {
      o << indent << line << "\n";
      line.clear();
    }
    line += (line.empty() ? "" : " ") + w;
  }
  if (!line.empty()) o << indent << line << "\n";
  return o.str();
}

std::string StateNames(const Schema& s, const std::vector<int>& states) {
  std::string out;
  for (int v : states) out += (out.empty() ? "" : ", ") + s.FindState(v)->name;
  return out;
}

std::string Paragraphs(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& l : lines) out += l + "\n";
  return out;
}

std::string DescribeRequired(const Schema& s, const KeySpec& k) {
  std::string out;
  switch (k.required.kind) {
    case Required::Kind::kAlways: out = "always"; break;
    case Required::Kind::kOptional: out = "no (optional)"; break;
    case Required::Kind::kInStates: out = StateNames(s, k.required.states); break;
  }
  return out;
}

std::string DescribePerm(const TreeSpec& t) {
  std::string out = "owner {" + t.owner + "}, others " + std::string(AccessName(t.others));
  for (const auto& a : t.acl) out += ", {" + a.dom + "} " + std::string(AccessName(a.access));
  return out;
}

}  // namespace

std::string DescribeType(const ValueType& t) {
  auto range = [&](std::string_view what) {
    std::string out(what);
    if (t.has_range) {
      // Appended piecewise: GCC 12 -O3 warns falsely (-Wrestrict) on " " + string.
      out += ' ';
      out += std::to_string(t.min);
      out += "..";
      out += std::to_string(t.max);
    }
    return out;
  };
  switch (t.kind) {
    case ValueKind::kUint: return range(t.has_range ? "uint" : "uint (64-bit)");
    case ValueKind::kSize: {
      std::string out = range("size in bytes");
      if (t.multiple_of) out += ", multiple of " + std::to_string(t.multiple_of);
      return out;
    }
    case ValueKind::kEnum: {
      std::string out;
      for (const auto& v : t.values) out += (out.empty() ? "" : " | ") + ("\"" + v.value + "\"");
      return out;
    }
    case ValueKind::kUuid: return "uuid (lower-case 8-4-4-4-12 hex)";
    case ValueKind::kDomId: return "domid 0..32751";
    case ValueKind::kDevId: return "devid 0..2147483647";
    case ValueKind::kGrantRef: return "grant-ref (uint32)";
    case ValueKind::kEvtchnPort: return "evtchn-port (uint32, not 0)";
    case ValueKind::kState: return "XenbusState 0..8";
    case ValueKind::kBool01: return "\"0\" | \"1\"";
    case ValueKind::kString:
      return "string, printable ASCII, at most " + std::to_string(t.max_len) + " bytes";
    case ValueKind::kName: return "name [A-Za-z0-9._-], 1.." + std::to_string(t.max_len) + " bytes";
    case ValueKind::kPath: return "absolute path, equal to " + t.equals + "(...)";
    case ValueKind::kIndex: return "index";
  }
  return "?";
}

std::string EmitMarkdown(const Schema& s) {
  std::ostringstream o;
  o << "# " << s.doc.title << "\n\n";
  o << "<!-- GENERATED from xenstore-schema/vnvram-schema.json by vnvram-schema-gen; do not edit. "
       "-->\n\n";
  o << Paragraphs(s.doc.intro) << "\n";
  o << "## Conventions\n\n" << Paragraphs(s.doc.conventions) << "\n";

  o << "### Placeholders\n\n| placeholder | type | meaning |\n| --- | --- | --- |\n";
  for (const auto& p : s.placeholders) {
    o << "| `{" << p.name << "}` | " << ValueKindName(p.kind) << " | " << p.meaning << " |\n";
  }
  o << "\n### Writers\n\n| writer | who |\n| --- | --- |\n";
  for (const auto& w : s.writers) o << "| " << w.name << " | " << w.meaning << " |\n";
  o << "\n### Directories\n\n| builder | path | scanned by the validator | meaning |\n"
       "| --- | --- | --- | --- |\n";
  for (const auto& d : s.dirs) {
    o << "| `" << d.builder << "` | `" << d.pattern.text() << "` | " << (d.owned ? "yes" : "-")
      << " | " << d.meaning << " |\n";
  }
  o << "\nThere are no dom0-global `/vnvram/...` nodes: every node lives under the\n"
       "domain that owns it, so xenstored's per-domain permissions and quotas apply.\n\n";

  o << "## The xenbus state machine\n\n| value | state | meaning |\n| --- | --- | --- |\n";
  for (const auto& st : s.states) {
    o << "| " << st.value << " | " << st.name << " | " << st.meaning << " |\n";
  }
  for (const auto& e : s.ends) {
    o << "\n### " << e.name << " transitions\n\nStates used: " << StateNames(s, e.used_states)
      << ".\n\n| from | to | when |\n| --- | --- | --- |\n";
    for (const auto& t : e.transitions) {
      o << "| " << s.FindState(t.from)->name << " | " << s.FindState(t.to)->name << " | " << t.why
        << " |\n";
    }
  }
  o << "\n### State pairs\n\nPairs (frontend, backend) the validator knows. `illegal` pairs are\n"
       "findings; `transient` pairs happen during restarts and are reported only\n"
       "with `--transient`.\n\n| frontend | backend | verdict | why |\n| --- | --- | --- | --- |\n";
  for (const auto& p : s.state_pairs) {
    o << "| " << StateNames(s, p.frontend) << " | " << StateNames(s, p.backend) << " | "
      << (p.illegal ? "illegal" : "transient") << " | " << p.why << " |\n";
  }
  o << "\n## Startup sequence\n\n```text\n" << Paragraphs(s.doc.startup_diagram) << "```\n\n";

  for (const auto& t : s.trees) {
    o << "## " << t.title << "\n\n";
    o << "```text\n" << t.base.text() << "\n```\n\n";
    o << Paragraphs(t.intro) << "\n";
    if (!t.reserved.empty()) o << "**Status:** " << t.reserved << ".\n\n";
    o << "- Builders: `" << t.builder << "(...)`, `" << t.key_builder
      << "(..., key)`; constants in `vnvram::schema::" << t.ns << "`.\n";
    o << "- Permissions of the directory and every node in it: " << DescribePerm(t) << ".\n";
    for (const auto& [ph, key] : t.bind) {
      o << "- `{" << ph << "}` is the value of `" << key << "`.\n";
    }
    if (!t.end.empty()) {
      o << "- State: `" << t.state_key << "`, the " << t.end << "'s XenbusState.\n";
    }
    o << "\n";
    std::vector<std::string> order;
    std::map<std::string, std::vector<const KeySpec*>> by_section;
    for (const auto& k : t.keys) {
      if (!by_section.contains(k.section)) order.push_back(k.section);
      by_section[k.section].push_back(&k);
    }
    for (const auto& section : order) {
      o << "### " << t.title << ": " << section << "\n\n```text\n";
      bool first = true;
      for (const KeySpec* k : by_section[section]) {
        if (!first) o << "\n";
        first = false;
        o << k->name << "\n";
        o << "     Values:       " << DescribeType(k->type) << "\n";
        if (k->default_value) o << "     Default:      \"" << *k->default_value << "\"\n";
        o << "     Writer:       " << k->writer << "\n";
        o << "     Required in:  " << DescribeRequired(s, *k) << "\n";
        if (k->when) {
          std::string cond = k->when->key;
          if (k->when->min && k->when->max) {
            cond += " in " + std::to_string(*k->when->min) + ".." + std::to_string(*k->when->max);
          } else if (k->when->max && *k->when->max == 0) {
            cond += " == 0";
          } else if (k->when->min) {
            cond += " >= " + std::to_string(*k->when->min);
          } else {
            cond += " <= " + std::to_string(*k->when->max);
          }
          o << "     Only when:    " << cond << " (absent counts as its default)\n";
        }
        if (k->index) {
          o << "     Index:        0 <= " << k->index->placeholder << " < "
            << (k->index->pow2 ? "2^" : "") << k->index->count_key << "\n";
        }
        if (k->issue != t.issue) o << "     Issue:        " << k->issue << "\n";
        o << "\n" << Wrap(k->meaning, 78, "     ");
        for (const auto& v : k->type.values) {
          if (!v.meaning.empty()) o << Wrap("\"" + v.value + "\": " + v.meaning, 78, "       ");
        }
      }
      o << "```\n\n";
    }
  }

  o << "## Invariants\n\nChecked by `vnvram-schema-check` across nodes and devices, besides\n"
       "unknown keys, types, ranges, required keys per state and permissions:\n\n";
  for (const auto& inv : s.invariants) o << "- `" << inv.id << "`: " << inv.meaning << ".\n";
  o << "\n## Code uses only schema paths\n\n" << Paragraphs(s.doc.lint_rule);
  return o.str();
}

}  // namespace vnvram::schema
