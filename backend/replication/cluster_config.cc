#include "backend/replication/cluster_config.h"

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string_view>
#include <utility>
#include <vector>

#include "backend/replication/host_id.h"
#include "common/parse.h"

namespace vnvram::replication {

namespace {

using Json = nlohmann::json;

constexpr std::string_view kZ85Alphabet =
    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";

std::string Quote(std::string_view s) {
  return QuoteForError(s, 80);
}

// Whether `v` nests deeper than `limit` levels, found without recursion.
bool NestsDeeperThan(const Json& v, size_t limit) {
  std::vector<std::pair<const Json*, size_t>> todo{{&v, 0}};
  while (!todo.empty()) {
    const auto [j, depth] = todo.back();
    todo.pop_back();
    if (!j->is_structured()) continue;
    if (depth >= limit) return true;
    for (const Json& child : *j) todo.emplace_back(&child, depth + 1);
  }
  return false;
}

// A value for an error message. Json::dump() recurses once per level of
// nesting, so a deeply nested value (a hostile or broken file) is shown as
// "[...]" or "{...}" rather than overflowing the stack.
std::string Show(const Json& v) {
  constexpr size_t kMaxShownDepth = 16;
  if (v.is_string()) return Quote(v.get<std::string>());
  if (NestsDeeperThan(v, kMaxShownDepth)) return v.is_array() ? "[...]" : "{...}";
  return Quote(v.dump());
}

bool IsPowerOfTwo(uint64_t v) {
  return v != 0 && (v & (v - 1)) == 0;
}

bool IsDigit(char c) {
  return c >= '0' && c <= '9';
}

bool IsHexDigit(char c) {
  return IsDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

bool IsIpv4(std::string_view h) {
  int parts = 0;
  while (true) {
    size_t n = 0;
    while (n < h.size() && IsDigit(h[n])) ++n;
    if (n == 0 || n > 3 || (n > 1 && h[0] == '0')) return false;
    if (!ParseU64InRange(h.substr(0, n), 0, 255).ok()) return false;
    ++parts;
    h.remove_prefix(n);
    if (h.empty()) return parts == 4;
    if (h[0] != '.' || parts == 4) return false;
    h.remove_prefix(1);
  }
}

bool IsIpv6(std::string_view h) {
  if (h.size() < 2 || h.size() > 45) return false;
  size_t colons = 0;
  for (char c : h) {
    if (c == ':') {
      ++colons;
    } else if (!IsHexDigit(c) && c != '.') {
      return false;
    }
  }
  return colons >= 2 && colons <= 7;
}

bool IsDnsName(std::string_view h) {
  if (h.empty() || h.size() > 253) return false;
  bool all_numeric = true;
  while (true) {
    const size_t dot = h.find('.');
    const std::string_view label = h.substr(0, dot);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') {
      return false;
    }
    for (char c : label) {
      const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
      if (!alpha && !IsDigit(c) && c != '-') return false;
      if (!IsDigit(c)) all_numeric = false;
    }
    if (dot == std::string_view::npos) break;
    h.remove_prefix(dot + 1);
  }
  return !all_numeric;  // "1.2.3" is a bad address, not a name
}

// Reads one JSON object field by field; Finish() rejects fields nobody read,
// so that a misspelt key is an error rather than a silent default.
class Fields {
 public:
  Fields(const Json& obj, std::string path) : obj_(obj), path_(std::move(path)) {}
  const Json* Get(const std::string& key) {
    seen_.insert(key);
    auto it = obj_.find(key);
    return it == obj_.end() ? nullptr : &*it;
  }
  Status Finish() const {
    for (auto it = obj_.begin(); it != obj_.end(); ++it) {
      if (!seen_.count(it.key()))
        return Status::InvalidArgument(path_ + ": unknown key " + Quote(it.key()));
    }
    return {};
  }

 private:
  const Json& obj_;
  std::string path_;
  std::set<std::string> seen_;
};

class Parser {
 public:
  explicit Parser(std::string_view source) : source_(source) {}

  Result<ClusterConfig> Parse(std::string_view text) {
    Json root;
    std::string duplicate;
    // Duplicate keys are an error (nlohmann keeps the last silently): a
    // stack of the keys seen in each open object.
    std::vector<std::set<std::string>> open;
    auto callback = [&](int, Json::parse_event_t ev, Json& parsed) {
      switch (ev) {
        case Json::parse_event_t::object_start: open.emplace_back(); break;
        case Json::parse_event_t::object_end:
          if (!open.empty()) open.pop_back();
          break;
        case Json::parse_event_t::key:
          if (!open.empty() && !open.back().insert(parsed.get<std::string>()).second &&
              duplicate.empty()) {
            duplicate = parsed.get<std::string>();
          }
          break;
        default: break;
      }
      return true;
    };
    try {
      root = Json::parse(text.begin(), text.end(), callback);
    } catch (const Json::exception& e) {
      // nlohmann's message ends with the text of the bad token ("last
      // read: ..."), which can be most of the file: shortened, printable.
      return Error("not valid JSON: " + Printable(e.what(), 200));
    }
    if (!duplicate.empty()) return Error("key " + Quote(duplicate) + " given twice");
    if (!root.is_object()) return Error("the top level must be an object");

    ClusterConfig c;
    Fields top(root, std::string(source_));
    const Json* version = top.Get("version");
    if (version == nullptr) return Error("missing key 'version'");
    if (!version->is_number_unsigned() || version->get<uint64_t>() != 1) {
      return Error("version " + Show(*version) + ": only version 1 is known");
    }
    if (const Json* s = top.Get("settings")) VNVRAM_RETURN_IF_ERROR(Settings(*s, &c.settings));
    const Json* hosts = top.Get("hosts");
    if (hosts == nullptr) return Error("missing key 'hosts'");
    VNVRAM_RETURN_IF_ERROR(Hosts(*hosts, &c));
    const Json* volumes = top.Get("volumes");
    if (volumes == nullptr) return Error("missing key 'volumes'");
    VNVRAM_RETURN_IF_ERROR(Volumes(*volumes, &c));
    VNVRAM_RETURN_IF_ERROR(top.Finish());
    return c;
  }

 private:
  Status Error(const std::string& what) const {
    return Status::InvalidArgument(std::string(source_) + ": " + what);
  }
  Status Bad(const std::string& path, const Json& value, const std::string& why) const {
    return Error(path + " " + Show(value) + ": " + why);
  }

  Result<uint32_t> UInt(const std::string& path, const Json& v, uint64_t lo, uint64_t hi) const {
    if (!v.is_number_unsigned() || v.get<uint64_t>() < lo || v.get<uint64_t>() > hi) {
      return Bad(path, v, "not an integer in " + std::to_string(lo) + ".." + std::to_string(hi));
    }
    return static_cast<uint32_t>(v.get<uint64_t>());
  }

  // A size: an integer of bytes, or a string ParseSize reads ("64M").
  Result<uint64_t> Size(const std::string& path, const Json& v) const {
    if (v.is_number_unsigned()) return v.get<uint64_t>();
    if (v.is_string()) {
      auto s = ParseSize(v.get<std::string>(), path);
      if (!s.ok()) return Bad(path, v, "not a size (bytes, or a number with K, M or G)");
      return *s;
    }
    return Bad(path, v, "not a size (bytes, or a number with K, M or G)");
  }

  Result<std::string> String(const std::string& path, const Json& v) const {
    if (!v.is_string()) return Bad(path, v, "not a string");
    return v.get<std::string>();
  }

  Status Settings(const Json& s, ReplicationSettings* out) const {
    const std::string base = "settings";
    if (!s.is_object()) return Bad(base, s, "not an object");
    Fields f(s, std::string(source_) + ": " + base);
    if (const Json* v = f.Get("heartbeat-interval-ms")) {
      VNVRAM_ASSIGN_OR_RETURN(out->heartbeat_interval_ms,
                              UInt(base + ".heartbeat-interval-ms", *v, 10, 60000));
    }
    if (const Json* v = f.Get("peer-expiry-ms")) {
      VNVRAM_ASSIGN_OR_RETURN(out->peer_expiry_ms, UInt(base + ".peer-expiry-ms", *v, 30, 600000));
    }
    if (out->peer_expiry_ms < 3 * out->heartbeat_interval_ms) {
      return Error(base + ".peer-expiry-ms " + std::to_string(out->peer_expiry_ms) +
                   ": must be at least 3 heartbeat intervals (" +
                   std::to_string(3 * out->heartbeat_interval_ms) + ")");
    }
    for (auto [key, field] : {std::pair{"max-data", &out->max_data},
                              std::pair{"resync-chunk-size", &out->resync_chunk}}) {
      if (const Json* v = f.Get(key)) {
        const std::string path = base + "." + key;
        VNVRAM_ASSIGN_OR_RETURN(const uint64_t n, Size(path, *v));
        if (!IsPowerOfTwo(n) || n < 4096 || n > (1u << 20)) {
          return Bad(path, *v, "not a power of two in 4K..1M");
        }
        *field = static_cast<uint32_t>(n);
      }
    }
    if (out->resync_chunk > out->max_data) {
      return Error(base + ".resync-chunk-size " + std::to_string(out->resync_chunk) +
                   ": larger than max-data " + std::to_string(out->max_data));
    }
    return f.Finish();
  }

  Status Hosts(const Json& hosts, ClusterConfig* c) const {
    if (!hosts.is_array() || hosts.empty()) return Bad("hosts", hosts, "not a non-empty array");
    std::map<std::string, size_t> ids, endpoints, keys;
    for (size_t i = 0; i < hosts.size(); ++i) {
      const std::string path = "hosts[" + std::to_string(i) + "]";
      const Json& h = hosts[i];
      if (!h.is_object()) return Bad(path, h, "not an object");
      Fields f(h, std::string(source_) + ": " + path);
      HostEntry e;
      const Json* id = f.Get("id");
      if (id == nullptr) return Error(path + ": missing key 'id'");
      VNVRAM_ASSIGN_OR_RETURN(e.id, String(path + ".id", *id));
      if (!IsValidHostId(e.id)) {
        return Bad(path + ".id", *id, "not 1..64 of [A-Za-z0-9._-] starting alphanumeric");
      }
      if (auto [it, fresh] = ids.emplace(e.id, i); !fresh) {
        return Bad(path + ".id", *id,
                   "duplicate host id (also hosts[" + std::to_string(it->second) + "])");
      }
      const Json* ep = f.Get("endpoint");
      if (ep == nullptr) return Error(path + ": missing key 'endpoint'");
      VNVRAM_ASSIGN_OR_RETURN(e.endpoint, String(path + ".endpoint", *ep));
      if (Status s = CheckEndpoint(e.endpoint); !s.ok()) {
        return Bad(path + ".endpoint", *ep, s.message());
      }
      if (auto [it, fresh] = endpoints.emplace(e.endpoint, i); !fresh) {
        return Bad(path + ".endpoint", *ep,
                   "duplicate endpoint (also hosts[" + std::to_string(it->second) + "])");
      }
      if (const Json* k = f.Get("public-key")) {
        VNVRAM_ASSIGN_OR_RETURN(std::string key, String(path + ".public-key", *k));
        if (Status s = CheckCurveKey(key); !s.ok()) {
          return Bad(path + ".public-key", *k, s.message());
        }
        if (auto [it, fresh] = keys.emplace(key, i); !fresh) {
          return Bad(path + ".public-key", *k,
                     "duplicate public key (also hosts[" + std::to_string(it->second) + "])");
        }
        e.public_key = std::move(key);
      }
      VNVRAM_RETURN_IF_ERROR(f.Finish());
      if (i > 0 && e.public_key.has_value() != c->hosts.front().public_key.has_value()) {
        return Error(path + ": public-key must be given for every host or for none (hosts[0] " +
                     (c->hosts.front().public_key ? "has" : "has none") + ")");
      }
      c->hosts.push_back(std::move(e));
    }
    return {};
  }

  Status Volumes(const Json& volumes, ClusterConfig* c) const {
    if (!volumes.is_array()) return Bad("volumes", volumes, "not an array");
    std::map<std::string, size_t> uuids, names;
    for (size_t i = 0; i < volumes.size(); ++i) {
      const std::string path = "volumes[" + std::to_string(i) + "]";
      const Json& v = volumes[i];
      if (!v.is_object()) return Bad(path, v, "not an object");
      Fields f(v, std::string(source_) + ": " + path);
      VolumeEntry e;

      const Json* uuid = f.Get("uuid");
      if (uuid == nullptr) return Error(path + ": missing key 'uuid'");
      VNVRAM_ASSIGN_OR_RETURN(const std::string uuid_text, String(path + ".uuid", *uuid));
      auto u = ParseUuid(uuid_text);
      if (!u.ok()) return Bad(path + ".uuid", *uuid, "not a UUID (8-4-4-4-12 hex digits)");
      if (u->IsNil()) return Bad(path + ".uuid", *uuid, "the nil UUID is not a volume");
      e.uuid = *u;
      if (auto [it, fresh] = uuids.emplace(e.uuid.ToString(), i); !fresh) {
        return Bad(path + ".uuid", *uuid,
                   "duplicate volume UUID (also volumes[" + std::to_string(it->second) + "])");
      }

      const Json* name = f.Get("name");
      if (name == nullptr) return Error(path + ": missing key 'name'");
      VNVRAM_ASSIGN_OR_RETURN(e.name, String(path + ".name", *name));
      if (!IsValidHostId(e.name)) {
        return Bad(path + ".name", *name, "not 1..64 of [A-Za-z0-9._-] starting alphanumeric");
      }
      if (auto [it, fresh] = names.emplace(e.name, i); !fresh) {
        return Bad(path + ".name", *name,
                   "duplicate volume name (also volumes[" + std::to_string(it->second) + "])");
      }

      const Json* size = f.Get("size");
      if (size == nullptr) return Error(path + ": missing key 'size'");
      VNVRAM_ASSIGN_OR_RETURN(e.size, Size(path + ".size", *size));
      if (e.size < 4096 || e.size > kMaxVolumeSize || e.size % 4096 != 0) {
        return Bad(path + ".size", *size, "not a multiple of 4096 in 4K..1G");
      }

      const Json* replicas = f.Get("replicas");
      if (replicas == nullptr) return Error(path + ": missing key 'replicas'");
      if (!replicas->is_array() || replicas->empty() || replicas->size() > kMaxReplicas) {
        return Bad(path + ".replicas", *replicas,
                   "not an array of 1.." + std::to_string(kMaxReplicas) + " host ids");
      }
      for (size_t r = 0; r < replicas->size(); ++r) {
        const std::string rpath = path + ".replicas[" + std::to_string(r) + "]";
        VNVRAM_ASSIGN_OR_RETURN(std::string host, String(rpath, (*replicas)[r]));
        if (c->FindHost(host) == nullptr) {
          return Bad(rpath, (*replicas)[r], "not a host id listed in hosts");
        }
        if (e.HasReplica(host)) return Bad(rpath, (*replicas)[r], "host listed twice");
        e.replicas.push_back(std::move(host));
      }

      if (const Json* policy = f.Get("policy")) {
        VNVRAM_ASSIGN_OR_RETURN(const std::string p, String(path + ".policy", *policy));
        if (p == "sync") {
          e.policy = Policy::kSync;
        } else if (p == "async") {
          e.policy = Policy::kAsync;
        } else {
          return Bad(path + ".policy", *policy, "not 'sync' or 'async'");
        }
      }
      VNVRAM_RETURN_IF_ERROR(f.Finish());
      c->volumes.push_back(std::move(e));
    }
    return {};
  }

  std::string_view source_;
};

}  // namespace

std::string_view PolicyName(Policy p) {
  return p == Policy::kSync ? "sync" : "async";
}

bool VolumeEntry::HasReplica(std::string_view host) const {
  for (const auto& r : replicas) {
    if (r == host) return true;
  }
  return false;
}

const HostEntry* ClusterConfig::FindHost(std::string_view id) const {
  for (const auto& h : hosts) {
    if (h.id == id) return &h;
  }
  return nullptr;
}

const VolumeEntry* ClusterConfig::FindVolume(const Uuid& uuid) const {
  for (const auto& v : volumes) {
    if (v.uuid == uuid) return &v;
  }
  return nullptr;
}

Status CheckEndpoint(std::string_view ep) {
  constexpr std::string_view kScheme = "tcp://";
  if (ep.size() > 256) return Status::InvalidArgument("longer than 256 characters");
  if (ep.substr(0, kScheme.size()) != kScheme) {
    return Status::InvalidArgument("not tcp://HOST:PORT");
  }
  std::string_view rest = ep.substr(kScheme.size());
  const size_t colon = rest.rfind(':');
  if (colon == std::string_view::npos) return Status::InvalidArgument("no :PORT");
  const std::string_view host = rest.substr(0, colon);
  const std::string_view port = rest.substr(colon + 1);
  auto p = ParseU64InRange(port, 1, 65535, "port");
  if (!p.ok() || port[0] == '0') return Status::InvalidArgument("port is not 1..65535");
  if (host == "*") return Status::InvalidArgument("a wildcard host cannot be connected to");
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    if (!IsIpv6(host.substr(1, host.size() - 2))) {
      return Status::InvalidArgument("bad IPv6 address");
    }
    return {};
  }
  if (IsIpv4(host) || IsDnsName(host)) return {};
  return Status::InvalidArgument("host is not an IPv4 address, [IPv6] address or DNS name");
}

Status CheckCurveKey(std::string_view z85) {
  if (z85.size() != 40) {
    return Status::InvalidArgument("a CurveZMQ public key is 40 Z85 characters, not " +
                                   std::to_string(z85.size()));
  }
  for (size_t group = 0; group < 40; group += 5) {
    uint64_t value = 0;
    for (size_t i = group; i < group + 5; ++i) {
      const size_t digit = kZ85Alphabet.find(z85[i]);
      if (digit == std::string_view::npos) {
        return Status::InvalidArgument("character " + std::to_string(i + 1) +
                                       " is not in the Z85 alphabet");
      }
      value = value * 85 + digit;
    }
    if (value > 0xFFFFFFFFull) {
      return Status::InvalidArgument("characters " + std::to_string(group + 1) + ".." +
                                     std::to_string(group + 5) + " do not encode 4 bytes");
    }
  }
  return {};
}

Result<ClusterConfig> ParseClusterConfig(std::string_view text, std::string_view source) {
  return Parser(source).Parse(text);
}

Result<ClusterConfig> LoadClusterConfig(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::FromErrno(errno, "open cluster file " + path);
  std::string text;
  char buf[8192];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    text.append(buf, static_cast<size_t>(in.gcount()));
    if (text.size() > kMaxClusterFileSize) {
      return Status::InvalidArgument(path + ": larger than " + std::to_string(kMaxClusterFileSize) +
                                     " bytes");
    }
  }
  if (in.bad()) return Status::IoError("read cluster file " + path);
  return ParseClusterConfig(text, path);
}

}  // namespace vnvram::replication
