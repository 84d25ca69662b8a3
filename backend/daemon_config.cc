#include "backend/daemon_config.h"

#include <unistd.h>

#include <array>
#include <fstream>
#include <set>
#include <sstream>

#include "common/parse.h"
#include "vnvram/vnvramif.h"

namespace vnvram::backend {

namespace {

// The config keys (the command line's long option names without "--").
constexpr std::string_view kKeyPlatform = "platform";
constexpr std::string_view kKeyVaultDir = "vault-dir";
constexpr std::string_view kKeyHostId = "host-id";  // schema-lint: allow (config key)
constexpr std::string_view kKeyVaultInterval = "vault-interval";
constexpr std::string_view kKeyLogLevel = "log-level";
constexpr std::string_view kKeyLogFile = "log-file";
constexpr std::string_view kKeyStatsInterval = "stats-interval-ms";
constexpr std::string_view kKeyMaxRingPageOrder = "max-ring-page-order";  // schema-lint: allow
constexpr std::string_view kKeyCopyMode = "copy-mode";
constexpr std::string_view kKeyCluster = "cluster";
constexpr std::string_view kKeyKeyFile = "key-file";
constexpr std::string_view kKeyPersistTimeout = "persist-timeout-ms";
constexpr std::string_view kKeyPersistSpin = "persist-spin-us";
constexpr std::string_view kKeyRingSpin = "ring-spin-us";
constexpr std::string_view kKeyReplicaOnly = "replica-only";

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

Status BadValue(std::string_view key, std::string_view value, const Status& why) {
  return Status::InvalidArgument(std::string(key) + " = '" + std::string(value) +
                                 "': " + why.message());
}

// Host ids are names: 1..64 of [A-Za-z0-9._-], starting alphanumeric.
Status CheckName(std::string_view s) {
  if (s.empty() || s.size() > 64) return Status::InvalidArgument("expected 1..64 characters");
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    const bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (!alnum && (i == 0 || (c != '.' && c != '_' && c != '-'))) {
      return Status::InvalidArgument("expected letters, digits, '.', '_' or '-'");
    }
  }
  return Status::Ok();
}

}  // namespace

Status ApplyConfigValue(std::string_view key, std::string_view value, ConfigOverrides* out) {
  if (key == kKeyPlatform) {
    if (value != "xen" && value.rfind("sim:", 0) != 0) {
      return BadValue(key, value, Status::InvalidArgument("expected xen or sim:<dir>:<domid>"));
    }
    out->platform = std::string(value);
  } else if (key == kKeyVaultDir) {
    if (value.empty()) return BadValue(key, value, Status::InvalidArgument("empty path"));
    out->vault_dir = std::string(value);
  } else if (key == kKeyHostId) {
    if (Status s = CheckName(value); !s.ok()) return BadValue(key, value, s);
    out->host_id = std::string(value);
  } else if (key == kKeyVaultInterval) {
    auto v = ParseU64InRange(value, 0, 7 * 24 * 3600, "seconds");
    if (!v.ok()) return BadValue(key, value, v.status());
    out->vault_interval = std::chrono::seconds(*v);
  } else if (key == kKeyLogLevel) {
    auto v = log::ParseLevel(value);
    if (!v.ok()) return BadValue(key, value, v.status());
    out->log_level = *v;
  } else if (key == kKeyLogFile) {
    // Absolute: a daemon's working directory is no place to guess.
    if (value.empty() || value.front() != '/') {
      return BadValue(key, value, Status::InvalidArgument("expected an absolute path"));
    }
    out->log_file = std::string(value);
  } else if (key == kKeyStatsInterval) {
    auto v = ParseU64InRange(value, 10, 3600 * 1000, "milliseconds");
    if (!v.ok()) return BadValue(key, value, v.status());
    out->stats_interval = std::chrono::milliseconds(*v);
  } else if (key == kKeyMaxRingPageOrder) {
    auto v = ParseU64InRange(value, 0, VNVRAMIF_MAX_RING_PAGE_ORDER, "page order");
    if (!v.ok()) return BadValue(key, value, v.status());
    out->max_ring_page_order = static_cast<uint32_t>(*v);
  } else if (key == kKeyCopyMode) {
    auto v = ParseBool01(value, "flag");
    if (!v.ok()) return BadValue(key, value, v.status());
    out->copy_mode = *v;
  } else if (key == kKeyCluster) {
    if (value.empty()) return BadValue(key, value, Status::InvalidArgument("empty path"));
    out->cluster_file = std::string(value);
  } else if (key == kKeyKeyFile) {
    if (value.empty()) return BadValue(key, value, Status::InvalidArgument("empty path"));
    out->key_file = std::string(value);
  } else if (key == kKeyPersistTimeout) {
    auto v = ParseU64InRange(value, 10, 600 * 1000, "milliseconds");
    if (!v.ok()) return BadValue(key, value, v.status());
    out->persist_timeout = std::chrono::milliseconds(*v);
  } else if (key == kKeyPersistSpin) {
    auto v = ParseU64InRange(value, 0, 100 * 1000, "microseconds");
    if (!v.ok()) return BadValue(key, value, v.status());
    out->persist_spin = std::chrono::microseconds(*v);
  } else if (key == kKeyRingSpin) {
    auto v = ParseU64InRange(value, 0, 100 * 1000, "microseconds");
    if (!v.ok()) return BadValue(key, value, v.status());
    out->ring_spin = std::chrono::microseconds(*v);
  } else if (key == kKeyReplicaOnly) {
    auto v = ParseBool01(value, "flag");
    if (!v.ok()) return BadValue(key, value, v.status());
    out->replica_only = *v;
  } else {
    return Status::InvalidArgument("unknown key '" + std::string(key) + "'");
  }
  return Status::Ok();
}

Result<ConfigOverrides> ParseConfigText(std::string_view text, std::string_view name) {
  ConfigOverrides out;
  std::set<std::string, std::less<>> seen;
  size_t line_no = 0;
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    ++line_no;
    const std::string where = std::string(name) + ":" + std::to_string(line_no) + ": ";
    line = Trim(line);
    if (line.empty() || line.front() == '#') continue;
    if (line.find('\0') != std::string_view::npos) {
      return Status::InvalidArgument(where + "NUL byte in line");
    }
    const size_t eq = line.find('=');
    if (eq == std::string_view::npos) {
      return Status::InvalidArgument(where + "expected 'key = value', got '" + std::string(line) +
                                     "'");
    }
    const std::string_view key = Trim(line.substr(0, eq));
    const std::string_view value = Trim(line.substr(eq + 1));
    if (key.empty()) return Status::InvalidArgument(where + "missing key before '='");
    if (seen.count(key) != 0) {
      return Status::InvalidArgument(where + "key '" + std::string(key) + "' given twice");
    }
    seen.emplace(key);
    if (Status s = ApplyConfigValue(key, value, &out); !s.ok()) {
      return Status::InvalidArgument(where + s.message());
    }
  }
  return out;
}

Result<ConfigOverrides> ParseConfigFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return Status::NotFound("cannot open config file " + path);
  std::stringstream ss;
  ss << f.rdbuf();
  if (f.bad()) return Status::IoError("cannot read config file " + path);
  const std::string text = ss.str();
  if (text.size() > (1u << 20)) return Status::InvalidArgument(path + ": larger than 1 MiB");
  return ParseConfigText(text, path);
}

Result<DaemonConfig> MergeConfig(const ConfigOverrides& file, const ConfigOverrides& cli) {
  DaemonConfig c;
  auto pick = [](const auto& a, const auto& b, auto& dst) {
    if (b) {
      dst = *b;
    } else if (a) {
      dst = *a;
    }
  };
  pick(file.platform, cli.platform, c.platform);
  pick(file.vault_dir, cli.vault_dir, c.vault_dir);
  pick(file.host_id, cli.host_id, c.host_id);
  pick(file.vault_interval, cli.vault_interval, c.vault_interval);
  pick(file.log_level, cli.log_level, c.log_level);
  pick(file.log_file, cli.log_file, c.log_file);
  pick(file.stats_interval, cli.stats_interval, c.stats_interval);
  pick(file.max_ring_page_order, cli.max_ring_page_order, c.max_ring_page_order);
  pick(file.copy_mode, cli.copy_mode, c.copy_mode);
  pick(file.cluster_file, cli.cluster_file, c.cluster_file);
  pick(file.key_file, cli.key_file, c.key_file);
  pick(file.persist_timeout, cli.persist_timeout, c.persist_timeout);
  pick(file.persist_spin, cli.persist_spin, c.persist_spin);
  pick(file.ring_spin, cli.ring_spin, c.ring_spin);
  pick(file.replica_only, cli.replica_only, c.replica_only);
  if (c.replica_only) {
    if (c.cluster_file.empty()) {
      return Status::InvalidArgument(
          "replica-only needs a cluster file (--cluster or 'cluster =')");
    }
  } else if (c.platform.empty()) {
    return Status::InvalidArgument("platform is required (--platform or 'platform =')");
  }
  if (c.vault_dir.empty()) {
    return Status::InvalidArgument("vault-dir is required (--vault-dir or 'vault-dir =')");
  }
  if (c.host_id.empty()) {
    std::array<char, 256> host{};
    if (::gethostname(host.data(), host.size() - 1) != 0) host[0] = '\0';
    c.host_id = host.data();
    if (c.host_id.size() > 64) c.host_id.resize(64);
    if (!CheckName(c.host_id).ok()) c.host_id = "localhost";
  }
  return c;
}

}  // namespace vnvram::backend
