#include <cstdlib>
#include <iostream>

#include "xenstore-schema/model.h"
#include "xenstore-schema/schema.h"

namespace vnvram::schema {

const Schema& BuiltinSchema() {
  static const Schema* const kSchema = [] {
    auto parsed = ParseSchema(EmbeddedSchemaJson());
    if (!parsed.ok()) {
      // Unreachable: vnvram-schema-gen refused to build with a bad schema.
      std::cerr << "vnvram: embedded xenstore schema is invalid: " << parsed.status().ToString()
                << "\n";
      std::abort();
    }
    return new Schema(std::move(parsed).value());
  }();
  return *kSchema;
}

Result<XenbusState> ParseXenbusState(std::string_view value) {
  auto v = ParseU32(value, "xenbus state");
  if (!v.ok()) return v.status();
  if (*v >= static_cast<uint32_t>(kXenbusStateCount) || std::to_string(*v) != value) {
    return Status::InvalidArgument("xenbus state '" + std::string(value) + "': not 0..8");
  }
  return static_cast<XenbusState>(*v);
}

std::string_view XenbusStateValue(XenbusState s) {
  static constexpr std::string_view kValues[] = {"0", "1", "2", "3", "4", "5", "6", "7", "8"};
  const auto i = static_cast<size_t>(s);
  return i < std::size(kValues) ? kValues[i] : "0";
}

}  // namespace vnvram::schema
