// Reads a Linux kernel module parameter (/sys/module/<module>/parameters/
// <param>), which is where the Xen drivers keep their limits: gntalloc's
// `limit` (pages one domain may share) and gntdev's `limit` (grants per
// mapping request). Used to turn a bare errno into an error that names the
// limit. Pure function of the filesystem; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace vnvram::xen {

// nullopt when the module is not loaded or the value is not a decimal.
std::optional<uint64_t> ReadModuleParam(std::string_view module, std::string_view param);

}  // namespace vnvram::xen
