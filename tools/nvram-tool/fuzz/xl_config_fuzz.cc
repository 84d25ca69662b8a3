// libFuzzer entry point for ParseXlConfig, the reader of an xl domain config
// and of its vnvram= device specs (vnvram_config.h). Input: the whole text
// of a config file. What parses must hold every bound the parser promises
// (entries, paths, sizes, UUIDs, devids, priorities, domain ids and names)
// and must survive a round trip: the volumes written back as canonical
// specs (with the devids the parser assigned) parse to the same volumes. A
// refusal is kInvalidArgument with one line "SOURCE:..." that does not echo
// control bytes. Any disagreement aborts. Built with -fsanitize=fuzzer when
// VNVRAM_FUZZ=ON; otherwise backend/fuzz/fuzz_replay_test.cc replays the
// seed corpus through it. Pure; thread-safe.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>
#include <string_view>
#include <variant>

#include "tools/nvram-tool/vnvram_config.h"
#include "xenstore-schema/schema.h"

namespace {

using vnvram::Code;
using vnvram::DevId;
using vnvram::DomId;
namespace tools = vnvram::tools;

constexpr std::string_view kSource = "fuzz.cfg";

[[noreturn]] void Violation(const char* what) {
  std::fprintf(stderr, "xl_config_fuzz: invariant violated: %s\n", what);
  std::abort();
}

void Check(bool cond, const char* what) {
  if (!cond) Violation(what);
}

bool IsPrintableLine(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char ch) {
    const auto c = static_cast<unsigned char>(ch);
    return c >= 0x20 && c < 0x7F;
  });
}

void CheckVolume(const tools::VnvramVolume& v) {
  namespace be = vnvram::schema::be;
  namespace fe = vnvram::schema::fe;
  Check(!v.volume.IsNil(), "nil volume UUID accepted");
  Check(v.size >= be::kSizeMin && v.size <= be::kSizeMax, "size out of range");
  Check(v.size % be::kSizeMultipleOf == 0, "size not a multiple of the page");
  Check(!v.paths.empty(), "a volume without a path");
  Check(v.paths.size() <= tools::kMaxPathsPerVolume, "too many paths");
  for (size_t i = 0; i < v.paths.size(); ++i) {
    const tools::VnvramPath& p = v.paths[i];
    if (const DomId* d = std::get_if<DomId>(&p.backend)) {
      Check(*d < vnvram::kDomIdFirstReserved, "reserved domain id accepted");
    } else {
      Check(tools::IsValidDomainName(std::get<std::string>(p.backend)), "bad domain name");
    }
    Check(p.devid <= 0x7FFFFFFFu, "devid above 31 bits");
    Check(!p.priority || *p.priority <= fe::kPathPriorityMax, "priority out of range");
    for (size_t j = 0; j < i; ++j) {
      Check(!(v.paths[j].backend == p.backend), "one backend twice in a volume");
    }
  }
}

void CheckConfig(const tools::XlConfig& cfg) {
  Check(cfg.source == kSource, "source not kept");
  if (cfg.name) {
    Check(tools::IsValidDomainName(*cfg.name), "bad name accepted");
    Check(cfg.name_line >= 1, "name without a line");
  }
  Check(cfg.volumes.size() <= tools::kMaxVnvramEntries, "too many entries");
  std::set<DevId> devids;
  for (size_t i = 0; i < cfg.volumes.size(); ++i) {
    const tools::VnvramVolume& v = cfg.volumes[i];
    CheckVolume(v);
    Check(v.line >= 1, "entry without a line");
    for (size_t j = 0; j < i; ++j) {
      Check(!(cfg.volumes[j].volume == v.volume), "one volume in two entries");
    }
    for (const tools::VnvramPath& p : v.paths) {
      Check(devids.insert(p.devid).second, "one devid on two paths");
    }
  }
}

// The volumes as canonical specs with every devid explicit.
std::string Canonical(const tools::XlConfig& cfg) {
  std::string out;
  if (cfg.name) out += "name = \"" + *cfg.name + "\"\n";
  out += "vnvram = [\n";
  for (const tools::VnvramVolume& v : cfg.volumes) {
    out += "  'volume=" + v.volume.ToString() + ", size=" + std::to_string(v.size) + ", paths=";
    for (size_t i = 0; i < v.paths.size(); ++i) {
      const tools::VnvramPath& p = v.paths[i];
      if (i != 0) out += "+";
      out += tools::FormatBackendRef(p.backend) + ":" + std::to_string(p.devid);
      if (p.priority) out += ":" + std::to_string(*p.priority);
    }
    out += "',\n";
  }
  out += "]\n";
  return out;
}

bool SamePaths(const tools::VnvramVolume& a, const tools::VnvramVolume& b) {
  if (a.paths.size() != b.paths.size()) return false;
  for (size_t i = 0; i < a.paths.size(); ++i) {
    const tools::VnvramPath& p = a.paths[i];
    const tools::VnvramPath& q = b.paths[i];
    if (!(p.backend == q.backend) || p.devid != q.devid || p.priority != q.priority) return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto got = tools::ParseXlConfig(text, kSource);
  if (!got.ok()) {
    Check(got.status().code() == Code::kInvalidArgument, "refused with an undocumented code");
    const std::string& m = got.status().message();
    Check(m.rfind(std::string(kSource) + ":", 0) == 0, "refusal does not start with the source");
    Check(IsPrintableLine(m), "refusal is not one printable line");
    Check(m.size() < 1024, "refusal is not bounded");
    return 0;
  }
  CheckConfig(*got);

  if (got->volumes.empty() && !got->name) return 0;
  const std::string canonical = Canonical(*got);
  const auto again = tools::ParseXlConfig(canonical, kSource);
  Check(again.ok(), "the canonical form of a parsed config does not parse");
  CheckConfig(*again);
  Check(again->name == got->name, "name changed in the round trip");
  Check(again->volumes.size() == got->volumes.size(), "entry count changed in the round trip");
  for (size_t i = 0; i < got->volumes.size(); ++i) {
    const tools::VnvramVolume& a = got->volumes[i];
    const tools::VnvramVolume& b = again->volumes[i];
    Check(a.volume == b.volume && a.size == b.size, "volume changed in the round trip");
    Check(SamePaths(a, b), "paths changed in the round trip");
  }
  return 0;
}
