#include "xenstore-schema/source_lint.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace vnvram::schema {

namespace {

bool LooksLikeKey(std::string_view s) {
  if (s.size() < 2) return false;
  if (!(s[0] >= 'a' && s[0] <= 'z')) return false;
  for (char c : s) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '/';
    if (!ok) return false;
  }
  return s.back() != '/' && s.back() != '-';
}

bool HasSeparator(std::string_view s) {
  return s.find('-') != std::string_view::npos || s.find('/') != std::string_view::npos;
}

bool CallsXenStore(std::string_view stmt) {
  static constexpr std::string_view kCalls[] = {"Read(",           "Write(",     "Mkdir(",
                                                "Remove(",         "Directory(", "GetPermissions(",
                                                "SetPermissions(", "Watch(",     "Unwatch("};
  for (auto c : kCalls) {
    size_t pos = 0;
    while ((pos = stmt.find(c, pos)) != std::string_view::npos) {
      // A method call: preceded by '.', '>' (->) or "::"; not part of a longer
      // name such as ReadFile( or fWrite(.
      if (pos > 0 && (stmt[pos - 1] == '.' || stmt[pos - 1] == '>' || stmt[pos - 1] == ':')) {
        return true;
      }
      pos += c.size();
    }
  }
  return false;
}

std::string_view LineAt(std::string_view text, size_t offset) {
  const size_t start = text.rfind('\n', offset == 0 ? 0 : offset - 1);
  const size_t b = start == std::string_view::npos ? 0 : start + 1;
  const size_t e = text.find('\n', offset);
  return text.substr(b, (e == std::string_view::npos ? text.size() : e) - b);
}

}  // namespace

std::vector<SourceLiteral> ExtractLiterals(std::string_view t) {
  std::vector<SourceLiteral> out;
  int line = 1;
  size_t stmt = 0;
  bool line_start = true;  // only whitespace so far on this line
  size_t i = 0;
  const size_t n = t.size();
  auto advance = [&](size_t k) {
    for (size_t j = 0; j < k && i < n; ++j, ++i) {
      if (t[i] == '\n') line++;
    }
  };
  while (i < n) {
    const char c = t[i];
    if (c == '\n') {
      line_start = true;
      advance(1);
      continue;
    }
    if (c == ' ' || c == '\t' || c == '\r') {
      advance(1);
      continue;
    }
    if (line_start && c == '#') {  // preprocessor line, with continuations
      while (i < n && t[i] != '\n') {
        if (t[i] == '\\' && i + 1 < n && t[i + 1] == '\n') advance(1);
        advance(1);
      }
      continue;
    }
    line_start = false;
    if (c == '/' && i + 1 < n && t[i + 1] == '/') {
      while (i < n && t[i] != '\n') advance(1);
      continue;
    }
    if (c == '/' && i + 1 < n && t[i + 1] == '*') {
      advance(2);
      while (i < n && !(t[i] == '*' && i + 1 < n && t[i + 1] == '/')) advance(1);
      advance(2);
      continue;
    }
    if (c == ';' || c == '{' || c == '}') {
      advance(1);
      stmt = i;
      continue;
    }
    if (c == '\'') {
      // Character literal, unless a digit separator (1'000).
      if (i > 0 && std::isalnum(static_cast<unsigned char>(t[i - 1])) &&
          !(t[i - 1] == 'u' || t[i - 1] == 'U' || t[i - 1] == 'L' || t[i - 1] == '8')) {
        advance(1);
        continue;
      }
      advance(1);
      while (i < n && t[i] != '\'' && t[i] != '\n') advance(t[i] == '\\' ? 2 : 1);
      advance(1);
      continue;
    }
    if (c == 'R' && i + 1 < n && t[i + 1] == '"' &&
        (i == 0 || !(std::isalnum(static_cast<unsigned char>(t[i - 1])) || t[i - 1] == '_') ||
         t[i - 1] == 'u' || t[i - 1] == 'U' || t[i - 1] == 'L' || t[i - 1] == '8')) {
      const size_t open = t.find('(', i + 2);
      if (open == std::string_view::npos) break;
      const std::string close = ")" + std::string(t.substr(i + 2, open - i - 2)) + "\"";
      const size_t end = t.find(close, open + 1);
      SourceLiteral lit{
          std::string(t.substr(open + 1, (end == std::string_view::npos ? n : end) - open - 1)),
          line, i, stmt};
      out.push_back(std::move(lit));
      advance((end == std::string_view::npos ? n : end + close.size()) - i);
      continue;
    }
    if (c == '"') {
      const size_t start = i;
      const int start_line = line;
      advance(1);
      std::string text;
      while (i < n && t[i] != '"' && t[i] != '\n') {
        if (t[i] == '\\' && i + 1 < n) {
          text += t[i];
          text += t[i + 1];
          advance(2);
        } else {
          text += t[i];
          advance(1);
        }
      }
      advance(1);
      out.push_back(SourceLiteral{std::move(text), start_line, start, stmt});
      continue;
    }
    advance(1);
  }
  return out;
}

const std::vector<std::string>& SourceLint::PathRuleDirs() {
  static const std::vector<std::string> kDirs = {"tests"};
  return kDirs;
}

const std::vector<std::string>& SourceLint::StrictDirs() {
  static const std::vector<std::string> kDirs = {"backend", "frontend", "tools", "include"};
  return kDirs;
}

SourceLint::SourceLint(const Schema& s) : domain_root_(s.domain_root) {
  std::set<std::string> frags;
  const size_t root_segs = SplitPath(s.domain_root).size();
  auto add_fragments = [&](const PathPattern& p) {
    std::string run;
    int count = 0;
    for (size_t i = root_segs; i < p.segments().size(); ++i) {
      const auto& seg = p.segments()[i];
      if (seg.placeholder.empty()) {
        run += (run.empty() ? "" : "/") + seg.prefix;
        ++count;
        if (count >= 2) frags.insert(run);
      } else {
        run.clear();
        count = 0;
      }
    }
  };
  for (const auto& d : s.dirs) add_fragments(d.pattern);
  for (const auto& t : s.trees) add_fragments(t.base);
  // Keep the shortest fragments: "device/vnvram" covers "device/vnvram/x".
  for (const auto& f : frags) {
    const bool covered = std::any_of(frags.begin(), frags.end(), [&](const std::string& g) {
      return g != f && f.find(g) != std::string::npos;
    });
    if (!covered) path_fragments_.push_back(f);
  }
  for (const auto& t : s.trees) {
    for (const auto& k : t.keys) {
      if (k.pattern.Placeholders().empty()) {
        (HasSeparator(k.name) ? distinct_keys_ : word_keys_).insert(k.name);
      } else {
        const auto& seg = k.pattern.segments();
        std::string stem;
        for (const auto& sg : seg) {
          if (!sg.placeholder.empty()) {
            stem += sg.prefix;
            break;
          }
          stem += sg.prefix + "/";
        }
        if (HasSeparator(stem) && stem.size() > 2) distinct_keys_.insert(stem);
      }
    }
  }
}

std::vector<LintOffender> SourceLint::CheckText(std::string_view text, std::string_view file,
                                                bool strict) const {
  std::vector<LintOffender> out;
  for (const auto& lit : ExtractLiterals(text)) {
    if (LineAt(text, lit.offset).find(kAllowMarker) != std::string_view::npos) continue;
    auto offend = [&](std::string_view rule, std::string message) {
      out.push_back(LintOffender{std::string(file), lit.line, std::string(rule), lit.text,
                                 std::move(message)});
    };
    bool done = false;
    for (const auto& f : path_fragments_) {
      if (lit.text.find(f) != std::string::npos) {
        offend("path-literal", "contains '" + f + "': build the path with schema.h");
        done = true;
        break;
      }
    }
    if (done || !strict) continue;
    if (lit.text.rfind(domain_root_, 0) == 0) {
      offend("path-literal", "starts with " + domain_root_ + ": build the path with schema.h");
      continue;
    }
    if (distinct_keys_.contains(lit.text)) {
      offend("key-literal", "schema key written as a literal: use the schema.h constant");
      continue;
    }
    if (!LooksLikeKey(lit.text)) continue;
    const std::string_view stmt = text.substr(lit.stmt_start, lit.offset - lit.stmt_start);
    if (!CallsXenStore(stmt)) continue;
    if (word_keys_.contains(lit.text)) {
      offend("xenstore-call-literal", "schema key written as a literal: use the schema.h constant");
    } else if (HasSeparator(lit.text)) {
      offend("xenstore-call-literal", "key used with a XenStore call is not in the schema");
    }
  }
  return out;
}

Result<std::vector<LintOffender>> SourceLint::CheckTree(const std::string& root) const {
  namespace fs = std::filesystem;
  std::vector<LintOffender> out;
  std::error_code ec;
  fs::recursive_directory_iterator it(root, fs::directory_options::skip_permission_denied, ec);
  if (ec) return Status::IoError("cannot walk " + root + ": " + ec.message());
  static const std::set<std::string> kSkipTop = {"xenstore-schema", "docs"};
  static const std::set<std::string> kExt = {".h", ".hh", ".hpp", ".c", ".cc", ".cpp", ".cxx"};
  for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) return Status::IoError("walking " + root + ": " + ec.message());
    const fs::path rel = fs::relative(it->path(), root, ec);
    const std::string name = it->path().filename().string();
    if (it->is_directory(ec)) {
      const bool top = it.depth() == 0;
      if (name.starts_with(".") || name.starts_with("build") || (top && kSkipTop.contains(name))) {
        it.disable_recursion_pending();
      }
      continue;
    }
    if (!it->is_regular_file(ec) || !kExt.contains(it->path().extension().string())) continue;
    std::ifstream in(it->path(), std::ios::binary);
    if (!in) return Status::IoError("cannot read " + it->path().string());
    std::ostringstream ss;
    ss << in.rdbuf();
    const std::string top = rel.begin() == rel.end() ? "" : rel.begin()->string();
    const auto& strict_dirs = StrictDirs();
    const bool strict = std::find(strict_dirs.begin(), strict_dirs.end(), top) != strict_dirs.end();
    const auto& path_dirs = PathRuleDirs();
    if (!strict && std::find(path_dirs.begin(), path_dirs.end(), top) == path_dirs.end()) continue;
    auto found = CheckText(ss.str(), rel.string(), strict);
    out.insert(out.end(), found.begin(), found.end());
  }
  std::sort(out.begin(), out.end(), [](const LintOffender& a, const LintOffender& b) {
    return std::tie(a.file, a.line) < std::tie(b.file, b.line);
  });
  return out;
}

}  // namespace vnvram::schema
