// SourceLint: finds xenstore paths and keys written as string literals in
// product sources instead of coming from schema.h, and keys used with
// XenStore calls that the schema does not have. The rules are stated in the
// schema's doc.lint_rule (docs/xenstore-schema.md, "Code uses only schema
// paths"). A SourceLint is immutable after construction; thread-safe.
#pragma once

#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "xenstore-schema/model.h"

namespace vnvram::schema {

struct LintOffender {
  std::string file;  // relative to the repository root
  int line = 0;
  std::string rule;  // path-literal, key-literal, xenstore-call-literal
  std::string literal;
  std::string message;
};

// A string literal as the lexer found it.
struct SourceLiteral {
  std::string text;       // contents between the quotes, escapes left as written
  int line = 0;           // 1-based line of the opening quote
  size_t offset = 0;      // byte offset of the opening quote
  size_t stmt_start = 0;  // byte offset just after the previous ';', '{' or '}'
};

// Literals in C/C++ source text, skipping comments, character literals and
// preprocessor lines; raw strings included.
std::vector<SourceLiteral> ExtractLiterals(std::string_view text);

class SourceLint {
 public:
  explicit SourceLint(const Schema& schema);

  // Checks one file. `strict` applies the product-directory rules (key
  // literals and XenStore-call literals) besides the path-literal rule.
  std::vector<LintOffender> CheckText(std::string_view text, std::string_view file,
                                      bool strict) const;
  // Walks `root` (a repository checkout) and checks the C/C++ sources of
  // StrictDirs() and PathRuleDirs(), skipping build*/ and hidden directories.
  Result<std::vector<LintOffender>> CheckTree(const std::string& root) const;

  // Top-level directories whose files get every rule (the product code).
  static const std::vector<std::string>& StrictDirs();
  // Further top-level directories that get the path-literal rule only (the
  // black-box tests). Everything else (platform/, common/: generic layers
  // below the schema that cannot include schema.h) is not scanned.
  static const std::vector<std::string>& PathRuleDirs();
  static constexpr std::string_view kAllowMarker = "schema-lint: allow";

 private:
  std::string domain_root_;
  std::vector<std::string> path_fragments_;           // "device/vnvram", ...
  std::set<std::string, std::less<>> distinct_keys_;  // keys and stems with '-' or '/'
  std::set<std::string, std::less<>> word_keys_;      // one-word keys
};

}  // namespace vnvram::schema
