// Tests of the "code uses only schema paths" rule: the lexer, each rule on
// synthetic sources, and the repository itself.
#include "xenstore-schema/source_lint.h"

#include <boost/test/unit_test.hpp>

#include "xenstore-schema/schema.h"

namespace vnvram::schema {
namespace {

std::vector<std::string> Literals(std::string_view text) {
  std::vector<std::string> out;
  for (const auto& l : ExtractLiterals(text)) out.push_back(l.text);
  return out;
}

std::string Dump(const std::vector<LintOffender>& os) {
  std::string out = "\n";
  for (const auto& o : os) {
    out += o.file + ":" + std::to_string(o.line) + ": " + o.rule + ": \"" + o.literal +
           "\": " + o.message + "\n";
  }
  return out;
}

BOOST_AUTO_TEST_SUITE(SourceLintRules)

BOOST_AUTO_TEST_CASE(LexerSkipsCommentsCharsAndPreprocessor) {
  const char* src =
      "#include \"device/vnvram.h\"\n"
      "#define X \\\n  \"continued\"\n"
      "// \"in a comment\"\n"
      "/* \"in a block\" */ int a = 'x'; int b = 1'000;\n"
      "const char* s = \"one\\\"two\";\n"
      "auto r = R\"xy(raw \"text\")xy\";\n"
      "auto u = u8\"utf\";\n";
  const auto lits = Literals(src);
  BOOST_TEST(lits == (std::vector<std::string>{"one\\\"two", "raw \"text\"", "utf"}),
             boost::test_tools::per_element());
  BOOST_TEST(ExtractLiterals(src)[0].line == 6);
}

BOOST_AUTO_TEST_CASE(PathLiteralsAreFlaggedEverywhere) {
  SourceLint lint(BuiltinSchema());
  auto os = lint.CheckText("auto p = \"/local/domain/0/backend/vnvram\";\n", "tests/x.cc",
                           /*strict=*/false);
  BOOST_TEST(os.size() == 1u, Dump(os));
  BOOST_TEST(os[0].rule == "path-literal");
  os = lint.CheckText("auto p = base + \"/vnvram/multipath/\";\n", "tests/t.cc", false);
  BOOST_TEST(os.size() == 1u, Dump(os));
  // A bare domain path is fine outside product directories (a test may
  // name another domain's home).
  os = lint.CheckText("auto p = \"/local/domain/\" + id;\n", "tests/x.cc", false);
  BOOST_TEST(os.empty(), Dump(os));
  os = lint.CheckText("auto p = \"/local/domain/\" + id;\n", "backend/x.cc", true);
  BOOST_TEST(os.size() == 1u, Dump(os));
}

BOOST_AUTO_TEST_CASE(KeyLiteralsAreFlaggedInProductDirectories) {
  SourceLint lint(BuiltinSchema());
  const char* src =
      "auto a = \"max-ring-page-order\";\n"
      "auto b = \"ring-ref\" + std::to_string(i);\n"
      "auto c = \"statistics/requests\";\n"
      "log.Info(\"state changed\");\n";
  auto os = lint.CheckText(src, "backend/device.cc", true);
  BOOST_TEST(os.size() == 3u, Dump(os));
  for (const auto& o : os) BOOST_TEST(o.rule == "key-literal");
  BOOST_TEST(lint.CheckText(src, "tests/x.cc", false).empty());
}

BOOST_AUTO_TEST_CASE(XenStoreCallsWithLiteralKeysAreFlagged) {
  SourceLint lint(BuiltinSchema());
  const char* src =
      "auto s = xs->Read(tx, BackendKey(b, f, d, \"state\"));\n"
      "Status w = xs_.Write(tx,\n    FrontendKey(f, d, \"ring-reff\"), \"1\");\n"
      "auto ok = xs->Read(tx, FrontendKey(f, d, \"ring-reff\"));  // schema-lint: allow\n"
      "auto f = ReadFile(\"state\");\n"
      "auto g = xs->Read(tx, Join(dir, \"hello\"));\n";
  auto os = lint.CheckText(src, "frontend/fe.cc", true);
  BOOST_TEST(os.size() == 2u, Dump(os));
  BOOST_TEST(os[0].rule == "xenstore-call-literal");
  BOOST_TEST(os[0].literal == "state");
  BOOST_TEST(os[0].line == 1);
  BOOST_TEST(os[1].literal == "ring-reff");
  BOOST_TEST(os[1].line == 3);
  BOOST_TEST(os[1].message.find("not in the schema") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(CodeUsesOnlySchemaPaths) {
  SourceLint lint(BuiltinSchema());
  auto os = lint.CheckTree(VNVRAM_SOURCE_DIR);
  BOOST_REQUIRE_MESSAGE(os.ok(), os.status().ToString());
  BOOST_TEST(os->empty(),
             "xenstore paths or keys outside the schema (see docs/xenstore-schema.md, "
             "\"Code uses only schema paths\"):"
                 << Dump(*os));
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace vnvram::schema
