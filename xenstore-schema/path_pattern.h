// PathPattern: a xenstore path or key name with typed placeholders, as the
// schema writes them ("/local/domain/{F}/device/vnvram/{devid}",
// "ring-ref{i}", "replica/{host}/state"). Parses, matches concrete paths and
// formats. Immutable after Parse; thread-safe.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace vnvram::schema {

// Placeholder name -> its text in a concrete path ("F" -> "3").
using Bindings = std::map<std::string, std::string>;

// Decides whether `text` is a valid value for placeholder `name`.
class PlaceholderChecker {
 public:
  virtual ~PlaceholderChecker() = default;
  virtual bool Accepts(std::string_view name, std::string_view text) const = 0;
};

class PathPattern {
 public:
  // One '/'-separated segment: literal text with at most one placeholder,
  // e.g. {"ring-ref", "i", ""} or {"vnvram", "", ""}.
  struct Segment {
    std::string prefix;
    std::string placeholder;  // empty: the segment is the literal prefix
    std::string suffix;
  };

  // `text` may start with '/' (absolute) or not (relative key name). Each
  // segment is non-empty and holds at most one "{name}".
  static Result<PathPattern> Parse(std::string_view text);

  const std::string& text() const { return text_; }
  bool absolute() const { return absolute_; }
  const std::vector<Segment>& segments() const { return segments_; }
  // Placeholder names in order of appearance.
  std::vector<std::string> Placeholders() const;

  // Matches all of `segs` against the whole pattern; on success adds the
  // placeholder values to `out` (a placeholder already bound must agree).
  bool Match(const std::vector<std::string_view>& segs, const PlaceholderChecker& checker,
             Bindings* out) const;
  // Matches `segs` against the first segs.size() segments (segs is a
  // directory on the way to something this pattern names).
  bool MatchPrefix(const std::vector<std::string_view>& segs, const PlaceholderChecker& checker,
                   Bindings* out) const;
  // Substitutes every placeholder; kInvalidArgument if one is unbound.
  Result<std::string> Format(const Bindings& b) const;

 private:
  bool MatchRange(const std::vector<std::string_view>& segs, size_t n,
                  const PlaceholderChecker& checker, Bindings* out) const;

  std::string text_;
  bool absolute_ = false;
  std::vector<Segment> segments_;
};

// Splits "/a/b/c" or "a/b" into {"a","b","c"}; empty segments are kept so
// that "a//b" does not match anything.
std::vector<std::string_view> SplitPath(std::string_view path);

}  // namespace vnvram::schema
