// Host ids as the cluster file, HELLO and EPOCH_PROPOSE carry them: 1..64
// characters of [A-Za-z0-9._-], the first alphanumeric (the rule vnvramd's
// host-id setting and the xenstore schema's `name` type follow). Pure;
// thread-safe.
#pragma once

#include <string_view>

namespace vnvram::replication {

inline constexpr size_t kHostIdMaxLength = 64;

bool IsValidHostId(std::string_view id);

}  // namespace vnvram::replication
