// Emits docs/xenstore-schema.md from a parsed Schema, in the manner of the
// comments in Xen's io/blkif.h: per key its values, default, writer and
// notes, plus the state machine and the startup diagram. Pure; thread-safe.
#pragma once

#include <string>

#include "xenstore-schema/model.h"

namespace vnvram::schema {

std::string EmitMarkdown(const Schema& schema);

// "uint 0..4", "size in bytes 4096..1073741824, multiple of 4096", ...
std::string DescribeType(const ValueType& type);

}  // namespace vnvram::schema
