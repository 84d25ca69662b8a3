// The schema model: the in-memory form of vnvram-schema.json (trees of keys
// with writers, types, permissions and requirements; the xenbus state
// machine; invariants). ParseSchema() reads the JSON strictly and checks it
// is self-consistent. A Schema is immutable after parsing and safe to share
// between threads.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "xenstore-schema/path_pattern.h"

namespace vnvram::schema {

enum class ValueKind {
  kUint,        // decimal, [min, max]
  kSize,        // decimal bytes, [min, max], multiple_of
  kEnum,        // one of values
  kUuid,        // RFC 4122 text, lower case
  kDomId,       // 0..32751
  kDevId,       // 0..2^31-1
  kGrantRef,    // 32-bit grant reference
  kEvtchnPort,  // 32-bit event channel port, not 0
  kState,       // XenbusState 0..8
  kBool01,      // "0" or "1"
  kString,      // at most max_len bytes, printable ASCII
  kName,        // [A-Za-z0-9._-], 1..max_len
  kPath,        // must equal the path a builder gives
  kIndex,       // placeholder only: canonical decimal 32-bit index
};

std::string_view ValueKindName(ValueKind k);
Result<ValueKind> ParseValueKind(std::string_view s);

struct EnumValue {
  std::string value;
  std::string cxx;
  std::string meaning;
};

struct ValueType {
  ValueKind kind = ValueKind::kString;
  uint64_t min = 0;
  uint64_t max = UINT64_MAX;
  uint64_t multiple_of = 0;  // 0: no constraint
  size_t max_len = 0;        // kString/kName
  std::vector<EnumValue> values;
  std::string equals;      // kPath: the builder whose result the value must be
  bool has_range = false;  // min/max given in the JSON
};

struct Required {
  enum class Kind { kAlways, kOptional, kInStates };
  Kind kind = Kind::kOptional;
  std::vector<int> states;
};

// A key only belongs while the sibling `key` (or its default) is in
// [min, max].
struct When {
  std::string key;
  std::optional<uint64_t> min;
  std::optional<uint64_t> max;
};

// An indexed key ("ring-ref{i}") exists for i < count, where count is the
// value of `count_key`, or 2^value when pow2.
struct IndexSpec {
  std::string placeholder;
  std::string count_key;
  bool pow2 = false;
};

struct KeySpec {
  std::string name;  // relative pattern text
  PathPattern pattern;
  std::string cxx;
  std::string section;
  std::string writer;
  ValueType type;
  Required required;
  std::optional<std::string> default_value;
  std::optional<When> when;
  std::optional<IndexSpec> index;
  std::string meaning;
  int issue = 0;  // 0: the tree's issue
};

enum class Access { kNone, kRead, kWrite, kBoth };
std::string_view AccessName(Access a);

struct AclEntry {
  std::string dom;  // placeholder name
  Access access = Access::kNone;
};

struct TreeSpec {
  std::string id;
  std::string title;
  int issue = 0;
  std::string reserved;
  PathPattern base;
  std::string builder;
  std::string key_builder;
  std::string ns;
  std::string end;                          // "frontend", "backend" or empty
  std::string state_key;                    // empty when the tree has no state
  std::map<std::string, std::string> bind;  // placeholder -> key holding it
  std::string owner;                        // placeholder name
  Access others = Access::kNone;
  std::vector<AclEntry> acl;
  std::vector<std::string> intro;
  std::vector<KeySpec> keys;

  const KeySpec* FindKey(std::string_view name) const;
};

struct PlaceholderSpec {
  std::string name;
  ValueKind kind = ValueKind::kIndex;
  std::string param;
  std::string meaning;
};

struct StateSpec {
  int value = 0;
  std::string name;
  std::string meaning;
};

struct Transition {
  int from = 0;
  int to = 0;
  std::string why;
};

struct EndSpec {
  std::string name;
  std::vector<int> used_states;
  std::vector<Transition> transitions;
};

struct StatePair {
  std::vector<int> frontend;
  std::vector<int> backend;
  bool illegal = false;
  std::string why;
};

struct DirSpec {
  std::string builder;
  PathPattern pattern;
  bool owned = false;
  std::string meaning;
};

struct WriterSpec {
  std::string name;
  std::string meaning;
};

struct InvariantSpec {
  std::string id;
  std::string meaning;
};

struct DocSpec {
  std::string title;
  std::vector<std::string> intro;
  std::vector<std::string> conventions;
  std::vector<std::string> startup_diagram;
  std::vector<std::string> lint_rule;
};

struct Schema {
  int version = 0;
  std::string device_type;
  std::string domain_root;
  DocSpec doc;
  std::vector<PlaceholderSpec> placeholders;
  std::vector<WriterSpec> writers;
  std::vector<StateSpec> states;
  std::vector<EndSpec> ends;
  std::vector<StatePair> state_pairs;
  std::vector<DirSpec> dirs;
  std::vector<TreeSpec> trees;
  std::vector<InvariantSpec> invariants;

  const TreeSpec* FindTree(std::string_view id) const;
  const PlaceholderSpec* FindPlaceholder(std::string_view name) const;
  const EndSpec* FindEnd(std::string_view name) const;
  const StateSpec* FindState(int value) const;
  std::optional<int> StateValue(std::string_view name) const;
  bool HasInvariant(std::string_view id) const;
};

// The invariant ids the validator implements; the JSON may list only these.
const std::vector<std::string_view>& KnownInvariants();

// Parses and checks the schema text. Errors name the JSON location
// ("trees[1].keys[4].type: ...").
Result<Schema> ParseSchema(std::string_view json_text);

}  // namespace vnvram::schema
