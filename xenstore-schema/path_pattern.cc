#include "xenstore-schema/path_pattern.h"

#include <utility>

namespace vnvram::schema {

namespace {

bool ValidPlaceholderName(std::string_view n) {
  if (n.empty()) return false;
  for (char c : n) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

bool ValidLiteral(std::string_view s) {
  for (char c : s) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_' || c == '.' || c == '@';
    if (!ok) return false;
  }
  return true;
}

bool MatchSegment(const PathPattern::Segment& seg, std::string_view text,
                  const PlaceholderChecker& checker, Bindings* out) {
  if (seg.placeholder.empty()) return text == seg.prefix;
  if (text.size() <= seg.prefix.size() + seg.suffix.size()) return false;
  if (text.substr(0, seg.prefix.size()) != seg.prefix) return false;
  if (text.substr(text.size() - seg.suffix.size()) != seg.suffix) return false;
  const std::string_view middle =
      text.substr(seg.prefix.size(), text.size() - seg.prefix.size() - seg.suffix.size());
  if (!checker.Accepts(seg.placeholder, middle)) return false;
  auto it = out->find(seg.placeholder);
  if (it != out->end()) return it->second == middle;
  out->emplace(seg.placeholder, std::string(middle));
  return true;
}

}  // namespace

std::vector<std::string_view> SplitPath(std::string_view path) {
  std::vector<std::string_view> out;
  if (!path.empty() && path.front() == '/') path.remove_prefix(1);
  if (path.empty()) return out;
  size_t start = 0;
  while (true) {
    const size_t slash = path.find('/', start);
    if (slash == std::string_view::npos) {
      out.push_back(path.substr(start));
      break;
    }
    out.push_back(path.substr(start, slash - start));
    start = slash + 1;
  }
  return out;
}

Result<PathPattern> PathPattern::Parse(std::string_view text) {
  PathPattern p;
  p.text_ = std::string(text);
  p.absolute_ = !text.empty() && text.front() == '/';
  const auto segs = SplitPath(text);
  if (segs.empty()) return Status::InvalidArgument("path pattern '" + p.text_ + "': empty");
  for (std::string_view s : segs) {
    const std::string where = "path pattern '" + p.text_ + "'";
    if (s.empty()) return Status::InvalidArgument(where + ": empty segment");
    Segment seg;
    const size_t open = s.find('{');
    if (open == std::string_view::npos) {
      if (s.find('}') != std::string_view::npos || !ValidLiteral(s)) {
        return Status::InvalidArgument(where + ": bad segment '" + std::string(s) + "'");
      }
      seg.prefix = std::string(s);
    } else {
      const size_t close = s.find('}', open);
      if (close == std::string_view::npos) {
        return Status::InvalidArgument(where + ": unclosed '{'");
      }
      seg.prefix = std::string(s.substr(0, open));
      seg.placeholder = std::string(s.substr(open + 1, close - open - 1));
      seg.suffix = std::string(s.substr(close + 1));
      if (!ValidPlaceholderName(seg.placeholder)) {
        return Status::InvalidArgument(where + ": bad placeholder name '" + seg.placeholder + "'");
      }
      if (!ValidLiteral(seg.prefix) || !ValidLiteral(seg.suffix)) {
        return Status::InvalidArgument(where + ": more than one placeholder in a segment");
      }
    }
    p.segments_.push_back(std::move(seg));
  }
  return p;
}

std::vector<std::string> PathPattern::Placeholders() const {
  std::vector<std::string> out;
  for (const auto& s : segments_) {
    if (!s.placeholder.empty()) out.push_back(s.placeholder);
  }
  return out;
}

bool PathPattern::MatchRange(const std::vector<std::string_view>& segs, size_t n,
                             const PlaceholderChecker& checker, Bindings* out) const {
  Bindings local = *out;
  for (size_t i = 0; i < n; ++i) {
    if (!MatchSegment(segments_[i], segs[i], checker, &local)) return false;
  }
  *out = std::move(local);
  return true;
}

bool PathPattern::Match(const std::vector<std::string_view>& segs,
                        const PlaceholderChecker& checker, Bindings* out) const {
  if (segs.size() != segments_.size()) return false;
  return MatchRange(segs, segs.size(), checker, out);
}

bool PathPattern::MatchPrefix(const std::vector<std::string_view>& segs,
                              const PlaceholderChecker& checker, Bindings* out) const {
  if (segs.size() > segments_.size()) return false;
  return MatchRange(segs, segs.size(), checker, out);
}

Result<std::string> PathPattern::Format(const Bindings& b) const {
  std::string out;
  bool first = true;
  for (const auto& s : segments_) {
    if (!first || absolute_) out += '/';
    first = false;
    out += s.prefix;
    if (!s.placeholder.empty()) {
      auto it = b.find(s.placeholder);
      if (it == b.end()) {
        return Status::InvalidArgument("path pattern '" + text_ + "': placeholder {" +
                                       s.placeholder + "} unbound");
      }
      out += it->second;
    }
    out += s.suffix;
  }
  return out;
}

}  // namespace vnvram::schema
