// The committed docs/xenstore-schema.md is the generator's output for the
// current schema, and names every key.
#include <boost/test/unit_test.hpp>
#include <fstream>
#include <sstream>

#include "xenstore-schema/emit_markdown.h"
#include "xenstore-schema/model.h"
#include "xenstore-schema/schema.h"

namespace vnvram::schema {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

BOOST_AUTO_TEST_SUITE(SchemaDoc)

BOOST_AUTO_TEST_CASE(CommittedDocMatchesTheSchema) {
  const std::string committed = ReadFile(VNVRAM_SCHEMA_DOC);
  const std::string generated = ReadFile(VNVRAM_SCHEMA_GENERATED_DOC);
  BOOST_REQUIRE(!generated.empty());
  BOOST_TEST(committed == generated,
             "docs/xenstore-schema.md is stale: run `cmake --build <build> --target "
             "vnvram-schema-doc` and commit the result");
}

BOOST_AUTO_TEST_CASE(DocNamesEveryKeyAndState) {
  const std::string doc = EmitMarkdown(BuiltinSchema());
  for (const auto& t : BuiltinSchema().trees) {
    BOOST_TEST(doc.find(t.base.text()) != std::string::npos, t.base.text());
    for (const auto& k : t.keys) {
      BOOST_TEST(doc.find("\n" + k.name + "\n") != std::string::npos, k.name);
    }
  }
  for (const auto& s : BuiltinSchema().states) BOOST_TEST(doc.find(s.name) != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace vnvram::schema
