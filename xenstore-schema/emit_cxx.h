// Emits the generated C++ from a parsed Schema: the header of constants,
// path builders and the xenbus state machine, and the source that embeds the
// schema JSON. Used only by vnvram-schema-gen at build time. Pure functions;
// thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "xenstore-schema/model.h"

namespace vnvram::schema {

// The text of vnvram_schema_gen.h.
std::string EmitCxxHeader(const Schema& schema);
// The text of vnvram_schema_json.cc, defining EmbeddedSchemaJson().
Result<std::string> EmitEmbeddedJson(std::string_view json_text);

}  // namespace vnvram::schema
