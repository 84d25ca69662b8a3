// Tests of the schema JSON and its model: it parses, it is self-consistent,
// the loader rejects malformed schemas, and it carries what issues 3, 5 and
// 6 need.
#define BOOST_TEST_MODULE schema_test
#include <boost/test/unit_test.hpp>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

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

// Parses the schema after `edit` changed its JSON; returns the status.
template <typename Edit>
Status ParseEdited(Edit edit) {
  nlohmann::json j = nlohmann::json::parse(EmbeddedSchemaJson());
  edit(j);
  auto r = ParseSchema(j.dump());
  return r.ok() ? Status() : r.status();
}

nlohmann::json& TreeJson(nlohmann::json& j, std::string_view id) {
  for (auto& t : j["trees"]) {
    if (t["id"] == id) return t;
  }
  throw std::runtime_error("no tree");
}

BOOST_AUTO_TEST_SUITE(SchemaModel)

BOOST_AUTO_TEST_CASE(EmbeddedSchemaParsesAndMatchesTheSourceFile) {
  const Schema& s = BuiltinSchema();
  BOOST_TEST(s.version == 1);
  BOOST_TEST(s.device_type == "vnvram");
  BOOST_TEST(std::string(EmbeddedSchemaJson()) == ReadFile(VNVRAM_SCHEMA_JSON_PATH));
}

BOOST_AUTO_TEST_CASE(EveryKeyHasWriterTypeAndMeaning) {
  for (const auto& t : BuiltinSchema().trees) {
    BOOST_TEST(!t.keys.empty());
    for (const auto& k : t.keys) {
      BOOST_TEST_CONTEXT(t.id << "/" << k.name) {
        BOOST_TEST(!k.writer.empty());
        BOOST_TEST(!k.meaning.empty());
        BOOST_TEST(!k.section.empty());
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(HandshakeKeysOfIssue3Exist) {
  const Schema& s = BuiltinSchema();
  const TreeSpec* fe = s.FindTree("frontend");
  const TreeSpec* be = s.FindTree("backend");
  BOOST_REQUIRE(fe != nullptr);
  BOOST_REQUIRE(be != nullptr);
  for (const char* k :
       {"backend", "backend-id", "state", "ring-page-order", "ring-ref", "ring-ref{i}",
        "event-channel", "protocol", "volume", "path-priority", "error"}) {
    BOOST_TEST(fe->FindKey(k) != nullptr, "frontend key " << k);
  }
  for (const char* k :
       {"frontend", "frontend-id", "online", "state", "max-ring-page-order", "region-size",
        "region-pages", "page-dir-refs", "page-dir-ref-{i}", "feature-persist", "feature-copy-mode",
        "hotplug-status", "error", "volume", "statistics/requests", "statistics/bytes",
        "statistics/errors", "statistics/persist-latency-p50-ns"}) {
    BOOST_TEST(be->FindKey(k) != nullptr, "backend key " << k);
  }
  BOOST_TEST(s.FindTree("multipath") != nullptr);
  BOOST_TEST(s.FindTree("replication") != nullptr);
  BOOST_TEST(s.FindTree("daemon") != nullptr);
}

BOOST_AUTO_TEST_CASE(GeneratedTransitionTableFollowsBlkif) {
  static_assert(
      IsAllowedTransition(End::kBackend, XenbusState::kInitialising, XenbusState::kInitWait));
  static_assert(
      IsAllowedTransition(End::kFrontend, XenbusState::kInitialising, XenbusState::kInitialised));
  static_assert(
      !IsAllowedTransition(End::kFrontend, XenbusState::kInitialising, XenbusState::kConnected));
  static_assert(
      !IsAllowedTransition(End::kBackend, XenbusState::kInitialising, XenbusState::kConnected));
  static_assert(IsAllowedTransition(End::kBackend, XenbusState::kClosed, XenbusState::kInitWait));
  static_assert(!IsStateUsedBy(End::kFrontend, XenbusState::kInitWait));
  static_assert(!IsStateUsedBy(End::kBackend, XenbusState::kReconfiguring));
  BOOST_TEST(XenbusStateName(XenbusState::kInitWait) == "InitWait");
  // The generated table and the model agree.
  const EndSpec* be = BuiltinSchema().FindEnd("backend");
  BOOST_TEST(be->transitions.size() == kBackendTransitions.size());
}

BOOST_AUTO_TEST_CASE(XenbusStateParsingIsStrict) {
  BOOST_TEST(ParseXenbusState("4").ok());
  BOOST_CHECK(*ParseXenbusState("4") == XenbusState::kConnected);
  for (const char* bad : {"", "9", "04", "4 ", "-1", "x", "4x"}) {
    BOOST_TEST(!ParseXenbusState(bad).ok(), "accepted '" << bad << "'");
  }
  BOOST_TEST(XenbusStateValue(XenbusState::kClosed) == "6");
}

BOOST_AUTO_TEST_CASE(RejectsInvalidJson) {
  BOOST_TEST(!ParseSchema("{").ok());
}

BOOST_AUTO_TEST_CASE(RejectsUnknownFieldNamingWhere) {
  Status s = ParseEdited([](nlohmann::json& j) { TreeJson(j, "backend")["keys"][0]["writr"] = 1; });
  BOOST_TEST(!s.ok());
  BOOST_TEST(s.message().find("writr") != std::string::npos, s.message());
  BOOST_TEST(s.message().find("trees[1].keys[0]") != std::string::npos, s.message());
}

BOOST_AUTO_TEST_CASE(RejectsUnknownWriter) {
  Status s = ParseEdited(
      [](nlohmann::json& j) { TreeJson(j, "frontend")["keys"][0]["writer"] = "guest"; });
  BOOST_TEST(s.message().find("unknown writer") != std::string::npos, s.message());
}

BOOST_AUTO_TEST_CASE(RejectsDefaultOutsideItsType) {
  Status s = ParseEdited([](nlohmann::json& j) {
    for (auto& k : TreeJson(j, "frontend")["keys"]) {
      if (k["name"] == "ring-page-order") k["default"] = "9";
    }
  });
  BOOST_TEST(s.message().find("default invalid") != std::string::npos, s.message());
}

BOOST_AUTO_TEST_CASE(RejectsDuplicateKey) {
  Status s = ParseEdited([](nlohmann::json& j) {
    auto& keys = TreeJson(j, "frontend")["keys"];
    auto copy = keys[0];
    copy["cxx"] = "Other";
    keys.push_back(copy);
  });
  BOOST_TEST(s.message().find("duplicate key") != std::string::npos, s.message());
}

BOOST_AUTO_TEST_CASE(RejectsInvariantTheValidatorDoesNotImplement) {
  Status s = ParseEdited([](nlohmann::json& j) {
    j["invariants"].push_back({{"id", "moon-phase"}, {"meaning", "x"}});
  });
  BOOST_TEST(s.message().find("moon-phase") != std::string::npos, s.message());
}

BOOST_AUTO_TEST_CASE(RejectsRequiredInAStateTheEndNeverUses) {
  Status s = ParseEdited([](nlohmann::json& j) {
    for (auto& k : TreeJson(j, "frontend")["keys"]) {
      if (k["name"] == "event-channel") k["required"] = {{"in_states", {"InitWait"}}};
    }
  });
  BOOST_TEST(s.message().find("never uses") != std::string::npos, s.message());
}

BOOST_AUTO_TEST_CASE(RejectsTransitionToUnusedState) {
  Status s = ParseEdited([](nlohmann::json& j) {
    j["ends"][0]["transitions"].push_back(
        {{"from", "Initialising"}, {"to", "Reconfiguring"}, {"why", "x"}});
  });
  BOOST_TEST(!s.ok());
}

BOOST_AUTO_TEST_CASE(RejectsKeyThatIsAlsoADirectory) {
  Status s = ParseEdited([](nlohmann::json& j) {
    TreeJson(j, "backend")["keys"].push_back({{"name", "statistics"},
                                              {"cxx", "Stats"},
                                              {"section", "x"},
                                              {"writer", "backend"},
                                              {"type", {{"kind", "uint"}}},
                                              {"required", "optional"},
                                              {"meaning", "x"}});
  });
  BOOST_TEST(s.message().find("also a directory") != std::string::npos, s.message());
}

BOOST_AUTO_TEST_CASE(RejectsPathPatternWithTwoPlaceholdersInASegment) {
  BOOST_TEST(!PathPattern::Parse("a/{i}{j}").ok());
  BOOST_TEST(!PathPattern::Parse("a//b").ok());
  BOOST_TEST(!PathPattern::Parse("a/{").ok());
  BOOST_TEST(PathPattern::Parse("/local/domain/{F}/x-{i}").ok());
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace vnvram::schema
