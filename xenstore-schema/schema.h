// The xenstore schema for product code: key-name constants, path builders
// (FrontendDir, BackendDir, BackendKey, ...), the XenbusState enum and its
// transition table, all generated from vnvram-schema.json, plus access to the
// schema itself. Product code takes every xenstore path and key from here,
// never from a literal (schema_test enforces it). Thread-safe: constants,
// pure functions and an immutable, lazily parsed Schema.
#pragma once

#include <optional>
#include <string_view>

#include "common/parse.h"
#include "common/result.h"
#include "xenstore-schema/vnvram_schema_gen.h"

namespace vnvram::schema {

struct Schema;

// The schema JSON as it was at build time.
std::string_view EmbeddedSchemaJson();

// The embedded schema, parsed once (the build already proved it parses).
const Schema& BuiltinSchema();

// Strictly parses a state node's value ("4" -> kConnected); kInvalidArgument
// for anything that is not 0..8 in canonical decimal.
Result<XenbusState> ParseXenbusState(std::string_view value);
// The value to write for `s` ("4").
std::string_view XenbusStateValue(XenbusState s);

}  // namespace vnvram::schema
