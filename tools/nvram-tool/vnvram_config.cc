#include "tools/nvram-tool/vnvram_config.h"

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "xenstore-schema/schema.h"

namespace vnvram::tools {
namespace {

namespace be = schema::be;
namespace fe = schema::fe;

// ---- the device spec ----

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::vector<std::string_view> Split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  for (;;) {
    const size_t at = s.find(sep);
    out.push_back(s.substr(0, at));
    if (at == std::string_view::npos) return out;
    s.remove_prefix(at + 1);
  }
}

Status Bad(std::string_view msg) {
  return Status::InvalidArgument(msg);
}

Result<BackendRef> ParseBackend(std::string_view v, std::string_view what) {
  if (!v.empty() && v.find_first_not_of("0123456789") == std::string_view::npos) {
    auto d = ParseDomId(v, what);
    if (!d.ok()) return d.status();
    return BackendRef{*d};
  }
  if (!IsValidDomainName(v)) {
    return Bad(std::string(what) + " " + QuoteForError(v) +
               ": expected a domain id (0..32751) or a domain name");
  }
  return BackendRef{std::string(v)};
}

Result<uint32_t> ParsePriority(std::string_view v, std::string_view what) {
  auto p = ParseU64InRange(v, 0, fe::kPathPriorityMax, what);
  if (!p.ok()) return p.status();
  return static_cast<uint32_t>(*p);
}

// "BACKEND[:DEVID[:PRIORITY]]".
Result<VnvramPath> ParsePath(std::string_view text) {
  const auto parts = Split(text, ':');
  if (parts.size() > 3) {
    return Bad("paths: " + QuoteForError(text) + ": expected BACKEND[:DEVID[:PRIORITY]]");
  }
  VnvramPath p;
  VNVRAM_ASSIGN_OR_RETURN(p.backend, ParseBackend(parts[0], "paths: backend"));
  if (parts.size() >= 2) {
    auto d = ParseDevId(parts[1], "paths: devid");
    if (!d.ok()) return d.status();
    p.devid = *d;
    p.devid_given = true;
  }
  if (parts.size() == 3) {
    VNVRAM_ASSIGN_OR_RETURN(p.priority, ParsePriority(parts[2], "paths: priority"));
  }
  return p;
}

constexpr std::string_view kKeys[] = {"volume", "size", "backend", "devid", "priority", "paths"};

}  // namespace

std::string FormatBackendRef(const BackendRef& b) {
  if (const DomId* d = std::get_if<DomId>(&b)) return std::to_string(*d);
  return std::get<std::string>(b);
}

bool IsValidDomainName(std::string_view s) {
  if (s.empty() || s.size() > kDomainNameMax) return false;
  if (s.find_first_not_of("0123456789") == std::string_view::npos) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-';
  });
}

Result<VnvramVolume> ParseVnvramSpec(std::string_view spec) {
  if (Trim(spec).empty()) return Bad("empty vnvram spec (expected volume=UUID, size=SIZE, ...)");
  std::map<std::string, std::string, std::less<>> kv;
  for (std::string_view item : Split(spec, ',')) {
    item = Trim(item);
    if (item.empty()) return Bad("empty item between commas");
    const size_t eq = item.find('=');
    if (eq == std::string_view::npos) {
      return Bad(QuoteForError(item) + ": expected KEY=VALUE");
    }
    const std::string_view key = Trim(item.substr(0, eq));
    const std::string_view value = Trim(item.substr(eq + 1));
    if (std::find(std::begin(kKeys), std::end(kKeys), key) == std::end(kKeys)) {
      std::string msg = "unknown key " + QuoteForError(key);
      if (key == "policy") {
        msg += " (the replication policy is set per volume in the cluster file)";
      } else {
        msg += " (keys: volume, size, backend, devid, priority, paths)";
      }
      return Bad(msg);
    }
    if (kv.count(key) != 0) return Bad("key '" + std::string(key) + "' given twice");
    if (value.empty()) return Bad("key '" + std::string(key) + "': empty value");
    kv.emplace(std::string(key), std::string(value));
  }
  VnvramVolume v;
  auto it = kv.find("volume");
  if (it == kv.end()) return Bad("missing key 'volume' (the volume's UUID)");
  auto u = ParseUuid(it->second, "volume");
  if (!u.ok()) return u.status();
  if (u->IsNil()) return Bad("volume " + it->second + ": the nil UUID is not a volume");
  v.volume = *u;

  it = kv.find("size");
  if (it == kv.end()) return Bad("missing key 'size' (e.g. size=64M)");
  auto size = ParseSize(it->second, "size");
  if (!size.ok()) return size.status();
  if (*size < be::kSizeMin || *size > be::kSizeMax || *size % be::kSizeMultipleOf != 0) {
    return Bad("size " + QuoteForError(it->second) + ": must be a multiple of 4K in [4K, 1G]");
  }
  v.size = *size;

  if (auto p = kv.find("paths"); p != kv.end()) {
    for (const char* k : {"backend", "devid", "priority"}) {
      if (kv.count(k) != 0) {
        return Bad(std::string("key '") + k + "' cannot be combined with 'paths'");
      }
    }
    const auto items = Split(p->second, '+');
    if (items.size() > kMaxPathsPerVolume) {
      return Bad("paths: " + std::to_string(items.size()) + " paths, at most " +
                 std::to_string(kMaxPathsPerVolume));
    }
    for (std::string_view item : items) {
      VNVRAM_ASSIGN_OR_RETURN(VnvramPath path, ParsePath(Trim(item)));
      for (const VnvramPath& other : v.paths) {
        if (other.backend == path.backend) {
          return Bad("paths: backend " + FormatBackendRef(path.backend) + " appears twice");
        }
      }
      v.paths.push_back(std::move(path));
    }
    return v;
  }
  VnvramPath path;
  if (auto b = kv.find("backend"); b != kv.end()) {
    VNVRAM_ASSIGN_OR_RETURN(path.backend, ParseBackend(b->second, "backend"));
  }
  if (auto d = kv.find("devid"); d != kv.end()) {
    auto dev = ParseDevId(d->second, "devid");
    if (!dev.ok()) return dev.status();
    path.devid = *dev;
    path.devid_given = true;
  }
  if (auto pr = kv.find("priority"); pr != kv.end()) {
    VNVRAM_ASSIGN_OR_RETURN(path.priority, ParsePriority(pr->second, "priority"));
  }
  v.paths.push_back(std::move(path));
  return v;
}

Status AssignDevids(std::vector<VnvramVolume>* volumes) {
  std::set<DevId> used;
  for (size_t i = 0; i < volumes->size(); ++i) {
    const VnvramVolume& v = (*volumes)[i];
    for (size_t j = 0; j < i; ++j) {
      if ((*volumes)[j].volume == v.volume) {
        return Bad("volume " + v.volume.ToString() +
                   " appears in two entries (list its paths in one entry with paths=)");
      }
    }
    for (const VnvramPath& p : v.paths) {
      if (!p.devid_given) continue;
      if (!used.insert(p.devid).second) {
        return Bad("devid " + std::to_string(p.devid) + " used twice");
      }
    }
  }
  DevId next = 0;
  for (VnvramVolume& v : *volumes) {
    for (VnvramPath& p : v.paths) {
      if (p.devid_given) continue;
      while (used.count(next) != 0) ++next;
      p.devid = next;
      used.insert(next);
    }
  }
  return Status::Ok();
}

// ---- the xl config file ----

namespace {

enum class Tok { kKey, kAssign, kAppend, kString, kAtom, kOpen, kClose, kComma, kEnd, kEof };

struct Token {
  Tok kind = Tok::kEof;
  std::string text;
  int line = 1;
};

bool IsKeyStart(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
bool IsKeyChar(char c) {
  return IsKeyStart(c) || (c >= '0' && c <= '9') || c == '.';
}
bool IsAtomChar(char c) {
  return IsKeyChar(c) || c == '+' || c == '-' || c == ':' || c == '/';
}

class Lexer {
 public:
  explicit Lexer(std::string_view text) : text_(text) {}

  Result<Token> Next() {
    for (;;) {
      if (pos_ >= text_.size()) return Token{Tok::kEof, "", line_};
      const char c = text_[pos_];
      if (c == ' ' || c == '\t' || c == '\r') {
        ++pos_;
      } else if (c == '#') {
        while (pos_ < text_.size() && text_[pos_] != '\n') ++pos_;
      } else {
        break;
      }
    }
    const int line = line_;
    const char c = text_[pos_];
    if (c == '\n' || c == ';') {
      ++pos_;
      if (c == '\n') ++line_;
      return Token{Tok::kEnd, std::string(1, c), line};
    }
    if (c == '=') return Single(Tok::kAssign, line);
    if (c == '[') return Single(Tok::kOpen, line);
    if (c == ']') return Single(Tok::kClose, line);
    if (c == ',') return Single(Tok::kComma, line);
    if (c == '+' && pos_ + 1 < text_.size() && text_[pos_ + 1] == '=') {
      pos_ += 2;
      return Token{Tok::kAppend, "+=", line};
    }
    if (c == '\'' || c == '"') return String(c, line);
    if (IsAtomChar(c)) {
      const size_t start = pos_;
      bool key = IsKeyStart(c);
      while (pos_ < text_.size() && IsAtomChar(text_[pos_])) {
        key = key && IsKeyChar(text_[pos_]);
        ++pos_;
      }
      return Token{key ? Tok::kKey : Tok::kAtom, std::string(text_.substr(start, pos_ - start)),
                   line};
    }
    return Status::InvalidArgument("unexpected character " + QuoteForError(text_.substr(pos_, 1)));
  }

  // The line an error was found on.
  int line() const { return line_; }

 private:
  Token Single(Tok kind, int line) { return Token{kind, std::string(1, text_[pos_++]), line}; }

  Result<Token> String(char quote, int line) {
    ++pos_;
    std::string out;
    while (pos_ < text_.size()) {
      const char c = text_[pos_++];
      if (c == quote) return Token{Tok::kString, std::move(out), line};
      if (c == '\n') break;
      if (c == '\\') {
        if (pos_ >= text_.size() || text_[pos_] == '\n') break;
        const char e = text_[pos_++];
        out.push_back(e == 'n' ? '\n' : e == 't' ? '\t' : e);
        continue;
      }
      out.push_back(c);
    }
    line_ = line;
    return Status::InvalidArgument("unterminated string");
  }

  std::string_view text_;
  size_t pos_ = 0;
  int line_ = 1;
};

struct Value {
  Tok kind = Tok::kAtom;  // kString, kAtom or kOpen (a list)
  std::string text;
  int line = 0;
  std::vector<Value> items;
};

class Parser {
 public:
  Parser(std::string_view text, std::string_view source) : lex_(text), source_(source) {}

  Result<XlConfig> Run() {
    XlConfig cfg;
    cfg.source = source_;
    int vnvram_line = 0;
    std::vector<std::pair<std::string, int>> specs;
    VNVRAM_RETURN_IF_ERROR(Advance());
    for (;;) {
      if (tok_.kind == Tok::kEof) break;
      if (tok_.kind == Tok::kEnd) {
        VNVRAM_RETURN_IF_ERROR(Advance());
        continue;
      }
      if (tok_.kind != Tok::kKey) return Error(tok_.line, "expected a setting KEY = VALUE");
      const std::string key = tok_.text;
      const int key_line = tok_.line;
      VNVRAM_RETURN_IF_ERROR(Advance());
      if (tok_.kind != Tok::kAssign && tok_.kind != Tok::kAppend) {
        return Error(tok_.line, "expected '=' after '" + key + "'");
      }
      const bool append = tok_.kind == Tok::kAppend;
      VNVRAM_RETURN_IF_ERROR(Advance());
      VNVRAM_ASSIGN_OR_RETURN(Value v, ParseValue(0));
      if (tok_.kind != Tok::kEnd && tok_.kind != Tok::kEof) {
        return Error(tok_.line, "expected the end of the setting '" + key + "'");
      }
      if (key == "name") {
        if (append) return Error(key_line, "name: '+=' applies to lists only");
        if (cfg.name) {
          return Error(key_line,
                       "name set twice (first on line " + std::to_string(cfg.name_line) + ")");
        }
        if (v.kind != Tok::kString || !IsValidDomainName(v.text)) {
          return Error(key_line, "name " + QuoteForError(v.text) +
                                     ": expected a quoted domain name of [A-Za-z0-9_.-]");
        }
        cfg.name = v.text;
        cfg.name_line = key_line;
      } else if (key == "vnvram") {
        if (!append) {
          if (vnvram_line != 0) {
            return Error(key_line, "vnvram set twice (first on line " +
                                       std::to_string(vnvram_line) + "; use += to add entries)");
          }
          vnvram_line = key_line;
        }
        if (v.kind != Tok::kOpen) {
          return Error(key_line, "vnvram: expected a list [ 'spec', ... ]");
        }
        for (const Value& item : v.items) {
          if (item.kind != Tok::kString) {
            return Error(item.line, "vnvram: each entry must be a quoted string");
          }
          specs.emplace_back(item.text, item.line);
        }
      }
    }
    if (specs.size() > kMaxVnvramEntries) {
      return Error(vnvram_line, "vnvram: " + std::to_string(specs.size()) + " entries, at most " +
                                    std::to_string(kMaxVnvramEntries));
    }
    for (const auto& [text, line] : specs) {
      auto vol = ParseVnvramSpec(text);
      if (!vol.ok()) return Error(line, "vnvram: " + vol.status().message());
      vol->line = line;
      cfg.volumes.push_back(std::move(vol).value());
    }
    if (Status s = AssignDevids(&cfg.volumes); !s.ok()) {
      return Error(vnvram_line != 0 ? vnvram_line : specs.front().second, "vnvram: " + s.message());
    }
    return cfg;
  }

 private:
  static constexpr int kMaxDepth = 8;

  Status Advance() {
    auto t = lex_.Next();
    if (!t.ok()) {
      return Error(lex_.line(), t.status().message());
    }
    tok_ = std::move(t).value();
    return Status::Ok();
  }

  Status SkipNewlines() {
    while (tok_.kind == Tok::kEnd && tok_.text == "\n") VNVRAM_RETURN_IF_ERROR(Advance());
    return Status::Ok();
  }

  Result<Value> ParseValue(int depth) {
    Value v;
    v.line = tok_.line;
    if (tok_.kind == Tok::kString || tok_.kind == Tok::kAtom || tok_.kind == Tok::kKey) {
      v.kind = tok_.kind == Tok::kString ? Tok::kString : Tok::kAtom;
      v.text = tok_.text;
      VNVRAM_RETURN_IF_ERROR(Advance());
      return v;
    }
    if (tok_.kind != Tok::kOpen) return Error(tok_.line, "expected a value");
    if (depth >= kMaxDepth) return Error(tok_.line, "lists nested too deeply");
    v.kind = Tok::kOpen;
    VNVRAM_RETURN_IF_ERROR(Advance());
    VNVRAM_RETURN_IF_ERROR(SkipNewlines());
    while (tok_.kind != Tok::kClose) {
      if (tok_.kind == Tok::kEof) {
        return Error(v.line, "list opened here is not closed with ']'");
      }
      VNVRAM_ASSIGN_OR_RETURN(Value item, ParseValue(depth + 1));
      v.items.push_back(std::move(item));
      VNVRAM_RETURN_IF_ERROR(SkipNewlines());
      if (tok_.kind == Tok::kComma) {
        VNVRAM_RETURN_IF_ERROR(Advance());
        VNVRAM_RETURN_IF_ERROR(SkipNewlines());
      } else if (tok_.kind != Tok::kClose) {
        if (tok_.kind == Tok::kEof) {
          return Error(v.line, "list opened here is not closed with ']'");
        }
        return Error(tok_.line, "expected ',' or ']' in a list");
      }
    }
    VNVRAM_RETURN_IF_ERROR(Advance());
    return v;
  }

  Status Error(int line, const std::string& msg) const {
    return Status::InvalidArgument(source_ + ":" + std::to_string(line) + ": " + msg);
  }

  Lexer lex_;
  std::string source_;
  Token tok_;
};

}  // namespace

Result<XlConfig> ParseXlConfig(std::string_view text, std::string_view source) {
  if (text.size() > kXlConfigMaxBytes) {
    return Status::InvalidArgument(std::string(source) + ": larger than " +
                                   FormatSize(kXlConfigMaxBytes));
  }
  if (text.find('\0') != std::string_view::npos) {
    return Status::InvalidArgument(std::string(source) + ": contains a NUL byte");
  }
  return Parser(text, source).Run();
}

Result<XlConfig> ReadXlConfigFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::FromErrno(errno, "cannot open config " + QuoteForError(path, 256));
  std::string text;
  char buf[65536];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    text.append(buf, static_cast<size_t>(in.gcount()));
    if (text.size() > kXlConfigMaxBytes) break;
  }
  if (in.bad()) return Status::IoError("cannot read config " + QuoteForError(path, 256));
  return ParseXlConfig(text, path);
}

}  // namespace vnvram::tools
