// The vnvram= setting of an xl domain config (vnvram.cfg(5)): a reader of
// xl's config syntax that finds `name` and `vnvram` and skips every other
// setting, and the strict parser of each vnvram device spec. Pure
// functions of their input (ReadXlConfigFile reads one file); thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/parse.h"
#include "common/result.h"

namespace vnvram::tools {

// A config file larger than this is refused (xl configs are a few KiB).
inline constexpr size_t kXlConfigMaxBytes = 1u << 20;
// At most this many vnvram= entries, and paths per entry.
inline constexpr size_t kMaxVnvramEntries = 16;
inline constexpr size_t kMaxPathsPerVolume = 8;
// Domain names as xl accepts them here: 1..64 of [A-Za-z0-9_.-], not all
// digits (an all-digit backend is a domain id).
inline constexpr size_t kDomainNameMax = 64;

// A backend domain as the config names it: an id, or a name resolved in
// xenstore (/local/domain/*/name) when the device is attached.
using BackendRef = std::variant<DomId, std::string>;
std::string FormatBackendRef(const BackendRef& b);

struct VnvramPath {
  BackendRef backend = DomId{0};
  DevId devid = 0;
  bool devid_given = false;          // false: AssignDevids chooses it
  std::optional<uint32_t> priority;  // 0..255; absent = the schema default
};

// One vnvram= list entry: one volume and its paths.
struct VnvramVolume {
  Uuid volume;
  uint64_t size = 0;
  std::vector<VnvramPath> paths;
  int line = 0;  // where the entry starts in the config file (0: none)
};

// Parses one device spec, e.g. "volume=UUID, size=64M, backend=0, devid=1"
// or "volume=UUID, size=64M, paths=0:0:10+drv1:1:5". Errors are one line
// naming the bad key or value (the reader adds the file and line).
Result<VnvramVolume> ParseVnvramSpec(std::string_view spec);

// Across all entries of one config: a volume may appear in one entry only,
// explicit devids must differ, and each path without a devid gets the
// lowest devid no other path uses (in config order).
Status AssignDevids(std::vector<VnvramVolume>* volumes);

struct XlConfig {
  std::string source;               // file name, for messages
  std::optional<std::string> name;  // the `name` setting
  int name_line = 0;
  std::vector<VnvramVolume> volumes;  // in config order
};

// Reads xl config text: `key = value` settings ended by a newline or ';',
// values that are numbers, '...' or "..." strings (backslash escapes),
// bare words, or [ ... ] lists of those over any number of lines, with a
// trailing comma allowed; '#' comments. `key += [..]` appends to a list.
// Only `name` and `vnvram` are interpreted; each may be set once. Errors:
// "SOURCE:LINE: message".
Result<XlConfig> ParseXlConfig(std::string_view text, std::string_view source);
Result<XlConfig> ReadXlConfigFile(const std::string& path);

// Whether `s` is a valid domain name (see kDomainNameMax).
bool IsValidDomainName(std::string_view s);

}  // namespace vnvram::tools
