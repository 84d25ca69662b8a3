#include "xenstore-schema/model.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>
#include <utility>

#include "xenstore-schema/value_check.h"

namespace vnvram::schema {

namespace {

using Json = nlohmann::json;

// A JSON object read field by field; Finish() rejects fields nobody asked
// for, so a typo in the schema is an error rather than a silent default.
class Obj {
 public:
  Obj(const Json& j, std::string where) : j_(j), where_(std::move(where)) {}

  Status Check() const {
    if (!j_.is_object()) return Err("expected an object");
    return {};
  }
  const std::string& where() const { return where_; }
  std::string At(std::string_view field) const { return where_ + "." + std::string(field); }
  Status Err(std::string_view msg) const {
    return Status::InvalidArgument(where_ + ": " + std::string(msg));
  }
  bool Has(const char* f) {
    seen_.insert(f);
    return j_.contains(f);
  }
  const Json* Get(const char* f) {
    seen_.insert(f);
    auto it = j_.find(f);
    return it == j_.end() ? nullptr : &*it;
  }

  Result<std::string> Str(const char* f, bool required = true) {
    const Json* v = Get(f);
    if (v == nullptr) {
      if (required) return Err(std::string("missing field '") + f + "'");
      return std::string();
    }
    if (!v->is_string()) return Err(std::string("field '") + f + "' must be a string");
    return v->get<std::string>();
  }
  Result<uint64_t> U64(const char* f, bool* present = nullptr) {
    const Json* v = Get(f);
    if (present != nullptr) *present = v != nullptr;
    if (v == nullptr) {
      if (present != nullptr) return uint64_t{0};
      return Err(std::string("missing field '") + f + "'");
    }
    if (!v->is_number_unsigned()) {
      return Err(std::string("field '") + f + "' must be an unsigned integer");
    }
    return v->get<uint64_t>();
  }
  Result<bool> Bool(const char* f) {
    const Json* v = Get(f);
    if (v == nullptr || !v->is_boolean()) {
      return Err(std::string("field '") + f + "' must be true or false");
    }
    return v->get<bool>();
  }
  Result<std::vector<std::string>> Lines(const char* f, bool required = true) {
    const Json* v = Get(f);
    std::vector<std::string> out;
    if (v == nullptr) {
      if (required) return Err(std::string("missing field '") + f + "'");
      return out;
    }
    if (!v->is_array()) return Err(std::string("field '") + f + "' must be an array of strings");
    for (const auto& e : *v) {
      if (!e.is_string()) return Err(std::string("field '") + f + "' must hold strings only");
      out.push_back(e.get<std::string>());
    }
    return out;
  }
  Status Finish() const {
    for (auto it = j_.begin(); it != j_.end(); ++it) {
      if (!seen_.contains(it.key())) return Err("unknown field '" + it.key() + "'");
    }
    return {};
  }

 private:
  const Json& j_;
  std::string where_;
  std::set<std::string, std::less<>> seen_;
};

bool ValidCxxIdent(std::string_view s) {
  if (s.empty()) return false;
  if (!((s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z'))) return false;
  for (char c : s) {
    const bool ok =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    if (!ok) return false;
  }
  return true;
}

Result<Access> ParseAccess(std::string_view s, const std::string& where) {
  if (s == "none") return Access::kNone;
  if (s == "read") return Access::kRead;
  if (s == "write") return Access::kWrite;
  if (s == "both") return Access::kBoth;
  return Status::InvalidArgument(where + ": access '" + std::string(s) +
                                 "' must be none, read, write or both");
}

Result<int> StateByName(const Schema& s, const Json& j, const std::string& where) {
  if (!j.is_string()) return Status::InvalidArgument(where + ": state name must be a string");
  auto v = s.StateValue(j.get<std::string>());
  if (!v) {
    return Status::InvalidArgument(where + ": unknown state '" + j.get<std::string>() + "'");
  }
  return *v;
}

Result<std::vector<int>> StateList(const Schema& s, const Json* j, const std::string& where) {
  if (j == nullptr || !j->is_array() || j->empty()) {
    return Status::InvalidArgument(where + ": expected a non-empty array of state names");
  }
  std::vector<int> out;
  for (const auto& e : *j) {
    VNVRAM_ASSIGN_OR_RETURN(int v, StateByName(s, e, where));
    out.push_back(v);
  }
  return out;
}

Result<ValueType> ParseType(const Json& j, const std::string& where) {
  Obj o(j, where);
  VNVRAM_RETURN_IF_ERROR(o.Check());
  ValueType t;
  VNVRAM_ASSIGN_OR_RETURN(std::string kind, o.Str("kind"));
  VNVRAM_ASSIGN_OR_RETURN(t.kind, ParseValueKind(kind));
  if (t.kind == ValueKind::kIndex) return o.Err("kind 'index' is for placeholders only");
  bool has_min = false;
  bool has_max = false;
  VNVRAM_ASSIGN_OR_RETURN(uint64_t mn, o.U64("min", &has_min));
  VNVRAM_ASSIGN_OR_RETURN(uint64_t mx, o.U64("max", &has_max));
  bool has_mult = false;
  VNVRAM_ASSIGN_OR_RETURN(uint64_t mult, o.U64("multiple_of", &has_mult));
  bool has_len = false;
  VNVRAM_ASSIGN_OR_RETURN(uint64_t len, o.U64("max_len", &has_len));
  const bool numeric = t.kind == ValueKind::kUint || t.kind == ValueKind::kSize;
  if ((has_min || has_max) && !numeric) return o.Err("min/max only apply to uint and size");
  if (has_mult && t.kind != ValueKind::kSize) return o.Err("multiple_of only applies to size");
  if (has_min) t.min = mn;
  if (has_max) t.max = mx;
  t.has_range = has_min || has_max;
  if (t.min > t.max) return o.Err("min > max");
  if (has_mult) {
    if (mult == 0) return o.Err("multiple_of must be positive");
    t.multiple_of = mult;
  }
  if (t.kind == ValueKind::kSize && !has_max) return o.Err("size needs max");
  if (t.kind == ValueKind::kString || t.kind == ValueKind::kName) {
    if (!has_len || len == 0 || len > 4096) return o.Err("string/name needs max_len in 1..4096");
    t.max_len = static_cast<size_t>(len);
  } else if (has_len) {
    return o.Err("max_len only applies to string and name");
  }
  if (const Json* vals = o.Get("values"); vals != nullptr) {
    if (t.kind != ValueKind::kEnum) return o.Err("values only apply to enum");
    if (!vals->is_array() || vals->empty()) return o.Err("values must be a non-empty array");
    std::set<std::string> seen_v;
    std::set<std::string> seen_c;
    size_t n = 0;
    for (const auto& v : *vals) {
      Obj vo(v, o.At("values") + "[" + std::to_string(n++) + "]");
      VNVRAM_RETURN_IF_ERROR(vo.Check());
      EnumValue e;
      VNVRAM_ASSIGN_OR_RETURN(e.value, vo.Str("value"));
      VNVRAM_ASSIGN_OR_RETURN(e.cxx, vo.Str("cxx"));
      VNVRAM_ASSIGN_OR_RETURN(e.meaning, vo.Str("meaning", false));
      VNVRAM_RETURN_IF_ERROR(vo.Finish());
      if (e.value.empty()) return vo.Err("empty enum value");
      if (!ValidCxxIdent(e.cxx)) return vo.Err("cxx '" + e.cxx + "' is not an identifier");
      if (!seen_v.insert(e.value).second) return vo.Err("duplicate value '" + e.value + "'");
      if (!seen_c.insert(e.cxx).second) return vo.Err("duplicate cxx '" + e.cxx + "'");
      t.values.push_back(std::move(e));
    }
  } else if (t.kind == ValueKind::kEnum) {
    return o.Err("enum needs values");
  }
  VNVRAM_ASSIGN_OR_RETURN(t.equals, o.Str("equals", t.kind == ValueKind::kPath));
  if (!t.equals.empty() && t.kind != ValueKind::kPath) return o.Err("equals only applies to path");
  VNVRAM_RETURN_IF_ERROR(o.Finish());
  return t;
}

Result<KeySpec> ParseKey(const Schema& s, const TreeSpec& tree, const Json& j,
                         const std::string& where) {
  Obj o(j, where);
  VNVRAM_RETURN_IF_ERROR(o.Check());
  KeySpec k;
  VNVRAM_ASSIGN_OR_RETURN(k.name, o.Str("name"));
  VNVRAM_ASSIGN_OR_RETURN(k.pattern, PathPattern::Parse(k.name));
  if (k.pattern.absolute()) return o.Err("key name must be relative");
  VNVRAM_ASSIGN_OR_RETURN(k.cxx, o.Str("cxx"));
  if (!ValidCxxIdent(k.cxx)) return o.Err("cxx '" + k.cxx + "' is not an identifier");
  VNVRAM_ASSIGN_OR_RETURN(k.section, o.Str("section"));
  VNVRAM_ASSIGN_OR_RETURN(k.writer, o.Str("writer"));
  const bool writer_known = std::any_of(s.writers.begin(), s.writers.end(),
                                        [&](const WriterSpec& w) { return w.name == k.writer; });
  if (!writer_known) return o.Err("unknown writer '" + k.writer + "'");
  const Json* type = o.Get("type");
  if (type == nullptr) return o.Err("missing field 'type'");
  VNVRAM_ASSIGN_OR_RETURN(k.type, ParseType(*type, o.At("type")));
  const Json* req = o.Get("required");
  if (req == nullptr) return o.Err("missing field 'required'");
  if (req->is_string() && req->get<std::string>() == "always") {
    k.required.kind = Required::Kind::kAlways;
  } else if (req->is_string() && req->get<std::string>() == "optional") {
    k.required.kind = Required::Kind::kOptional;
  } else if (req->is_object()) {
    Obj ro(*req, o.At("required"));
    k.required.kind = Required::Kind::kInStates;
    VNVRAM_ASSIGN_OR_RETURN(k.required.states, StateList(s, ro.Get("in_states"), ro.where()));
    VNVRAM_RETURN_IF_ERROR(ro.Finish());
    if (tree.end.empty()) return o.Err("required in_states needs a tree with a state");
    const EndSpec* end = s.FindEnd(tree.end);
    for (int st : k.required.states) {
      if (std::find(end->used_states.begin(), end->used_states.end(), st) ==
          end->used_states.end()) {
        return o.Err("required in a state the " + tree.end + " never uses");
      }
    }
  } else {
    return o.Err("required must be \"always\", \"optional\" or {\"in_states\": [...]}");
  }
  if (o.Has("default")) {
    VNVRAM_ASSIGN_OR_RETURN(std::string d, o.Str("default"));
    if (auto p = CheckValue(k.type, d)) return o.Err("default invalid: " + p->message);
    k.default_value = std::move(d);
  }
  if (const Json* w = o.Get("when"); w != nullptr) {
    Obj wo(*w, o.At("when"));
    VNVRAM_RETURN_IF_ERROR(wo.Check());
    When when;
    VNVRAM_ASSIGN_OR_RETURN(when.key, wo.Str("key"));
    bool has_min = false;
    bool has_max = false;
    VNVRAM_ASSIGN_OR_RETURN(uint64_t mn, wo.U64("min", &has_min));
    VNVRAM_ASSIGN_OR_RETURN(uint64_t mx, wo.U64("max", &has_max));
    if (!has_min && !has_max) return wo.Err("when needs min or max");
    if (has_min) when.min = mn;
    if (has_max) when.max = mx;
    VNVRAM_RETURN_IF_ERROR(wo.Finish());
    k.when = std::move(when);
  }
  if (const Json* ix = o.Get("index"); ix != nullptr) {
    Obj io(*ix, o.At("index"));
    VNVRAM_RETURN_IF_ERROR(io.Check());
    IndexSpec spec;
    VNVRAM_ASSIGN_OR_RETURN(spec.placeholder, io.Str("placeholder"));
    VNVRAM_ASSIGN_OR_RETURN(spec.count_key, io.Str("count_key"));
    VNVRAM_ASSIGN_OR_RETURN(std::string count, io.Str("count"));
    if (count == "pow2") {
      spec.pow2 = true;
    } else if (count != "value") {
      return io.Err("count must be \"value\" or \"pow2\"");
    }
    VNVRAM_RETURN_IF_ERROR(io.Finish());
    const auto ph = k.pattern.Placeholders();
    if (std::find(ph.begin(), ph.end(), spec.placeholder) == ph.end()) {
      return io.Err("index placeholder {" + spec.placeholder + "} not in the key name");
    }
    k.index = std::move(spec);
  }
  VNVRAM_ASSIGN_OR_RETURN(k.meaning, o.Str("meaning"));
  if (k.meaning.empty()) return o.Err("empty meaning");
  bool has_issue = false;
  VNVRAM_ASSIGN_OR_RETURN(uint64_t issue, o.U64("issue", &has_issue));
  k.issue = has_issue ? static_cast<int>(issue) : tree.issue;
  VNVRAM_RETURN_IF_ERROR(o.Finish());
  for (const auto& ph : k.pattern.Placeholders()) {
    if (s.FindPlaceholder(ph) == nullptr) return o.Err("unknown placeholder {" + ph + "}");
  }
  return k;
}

Status CheckTreeConsistency(const Schema& s, const TreeSpec& t, const std::string& where) {
  auto err = [&](const std::string& m) { return Status::InvalidArgument(where + ": " + m); };
  std::set<std::string> names;
  std::set<std::string> cxx;
  for (const auto& k : t.keys) {
    if (!names.insert(k.name).second) return err("duplicate key '" + k.name + "'");
    if (!cxx.insert(k.cxx).second) return err("duplicate cxx '" + k.cxx + "'");
  }
  // No key may be a directory on the way to another key.
  for (const auto& a : t.keys) {
    for (const auto& b : t.keys) {
      if (&a != &b && b.name.size() > a.name.size() &&
          b.name.compare(0, a.name.size(), a.name) == 0 && b.name[a.name.size()] == '/') {
        return err("key '" + a.name + "' is also a directory of '" + b.name + "'");
      }
    }
  }
  const auto base_ph = t.base.Placeholders();
  auto bound = [&](const std::string& ph) {
    return std::find(base_ph.begin(), base_ph.end(), ph) != base_ph.end() || t.bind.contains(ph);
  };
  for (const auto& [ph, key] : t.bind) {
    const KeySpec* k = t.FindKey(key);
    if (k == nullptr || k->type.kind != ValueKind::kDomId) {
      std::string m = "bind {";
      m += ph;
      m += "} needs a domid key, '";
      m += key;
      m += "' is not one";
      return err(m);
    }
    if (std::find(base_ph.begin(), base_ph.end(), ph) != base_ph.end()) {
      return err("bind {" + ph + "} is already in the base path");
    }
  }
  if (!bound(t.owner)) return err("owner {" + t.owner + "} is not bound");
  for (const auto& a : t.acl) {
    if (!bound(a.dom)) return err("acl {" + a.dom + "} is not bound");
  }
  if (!t.end.empty()) {
    if (s.FindEnd(t.end) == nullptr) return err("unknown end '" + t.end + "'");
    const KeySpec* st = t.FindKey(t.state_key);
    if (st == nullptr || st->type.kind != ValueKind::kState) {
      return err("state_key '" + t.state_key + "' is not a state key of this tree");
    }
  } else if (!t.state_key.empty()) {
    return err("state_key without end");
  }
  for (const auto& k : t.keys) {
    if (k.type.kind == ValueKind::kState && t.end.empty()) {
      return err("state key '" + k.name + "' in a tree without an end");
    }
    if (k.when) {
      const KeySpec* c = t.FindKey(k.when->key);
      if (c == nullptr || c->type.kind != ValueKind::kUint) {
        return err("key '" + k.name + "': when.key '" + k.when->key + "' is not a uint key");
      }
    }
    if (k.index) {
      const KeySpec* c = t.FindKey(k.index->count_key);
      if (c == nullptr || c->type.kind != ValueKind::kUint || !c->type.has_range) {
        return err("key '" + k.name + "': count_key must be a uint key with a range");
      }
      if (k.index->pow2 && c->type.max > 16) return err("key '" + k.name + "': pow2 count too big");
      const auto* ph = s.FindPlaceholder(k.index->placeholder);
      if (ph == nullptr || ph->kind != ValueKind::kIndex) {
        return err("key '" + k.name + "': index placeholder must be of type index");
      }
    } else {
      for (const auto& ph : k.pattern.Placeholders()) {
        const auto* p = s.FindPlaceholder(ph);
        if (p->kind == ValueKind::kIndex) {
          return err("key '" + k.name + "': index placeholder without an index spec");
        }
      }
    }
    if (k.type.kind == ValueKind::kPath) {
      bool found = false;
      for (const auto& other : s.trees) found = found || other.builder == k.type.equals;
      if (!found) return err("key '" + k.name + "': equals names no tree builder");
    }
  }
  return {};
}

}  // namespace

std::string_view ValueKindName(ValueKind k) {
  switch (k) {
    case ValueKind::kUint: return "uint";
    case ValueKind::kSize: return "size";
    case ValueKind::kEnum: return "enum";
    case ValueKind::kUuid: return "uuid";
    case ValueKind::kDomId: return "domid";
    case ValueKind::kDevId: return "devid";
    case ValueKind::kGrantRef: return "grant-ref";
    case ValueKind::kEvtchnPort: return "evtchn-port";
    case ValueKind::kState: return "state";
    case ValueKind::kBool01: return "bool01";
    case ValueKind::kString: return "string";
    case ValueKind::kName: return "name";
    case ValueKind::kPath: return "path";
    case ValueKind::kIndex: return "index";
  }
  return "?";
}

Result<ValueKind> ParseValueKind(std::string_view s) {
  for (int i = 0; i <= static_cast<int>(ValueKind::kIndex); ++i) {
    const auto k = static_cast<ValueKind>(i);
    if (ValueKindName(k) == s) return k;
  }
  return Status::InvalidArgument("unknown value type '" + std::string(s) + "'");
}

std::string_view AccessName(Access a) {
  switch (a) {
    case Access::kNone: return "none";
    case Access::kRead: return "read";
    case Access::kWrite: return "write";
    case Access::kBoth: return "both";
  }
  return "?";
}

const KeySpec* TreeSpec::FindKey(std::string_view name) const {
  for (const auto& k : keys) {
    if (k.name == name) return &k;
  }
  return nullptr;
}

const TreeSpec* Schema::FindTree(std::string_view id) const {
  for (const auto& t : trees) {
    if (t.id == id) return &t;
  }
  return nullptr;
}

const PlaceholderSpec* Schema::FindPlaceholder(std::string_view name) const {
  for (const auto& p : placeholders) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

const EndSpec* Schema::FindEnd(std::string_view name) const {
  for (const auto& e : ends) {
    if (e.name == name) return &e;
  }
  return nullptr;
}

const StateSpec* Schema::FindState(int value) const {
  for (const auto& st : states) {
    if (st.value == value) return &st;
  }
  return nullptr;
}

std::optional<int> Schema::StateValue(std::string_view name) const {
  for (const auto& st : states) {
    if (st.name == name) return st.value;
  }
  return std::nullopt;
}

bool Schema::HasInvariant(std::string_view id) const {
  return std::any_of(invariants.begin(), invariants.end(),
                     [&](const InvariantSpec& i) { return i.id == id; });
}

const std::vector<std::string_view>& KnownInvariants() {
  static const std::vector<std::string_view> kKnown = {
      "backend-path-matches", "frontend-path-matches", "volume-matches", "ring-order-within-max",
      "region-geometry",      "state-used-by-end",     "state-pair",     "single-active-path"};
  return kKnown;
}

Result<Schema> ParseSchema(std::string_view json_text) {
  const Json root = Json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded()) return Status::InvalidArgument("schema: not valid JSON");
  Obj o(root, "schema");
  VNVRAM_RETURN_IF_ERROR(o.Check());
  Schema s;
  VNVRAM_ASSIGN_OR_RETURN(std::string magic, o.Str("schema"));
  if (magic != "vnvram-xenstore") return o.Err("field 'schema' must be \"vnvram-xenstore\"");
  VNVRAM_ASSIGN_OR_RETURN(uint64_t version, o.U64("version"));
  if (version != 1) return o.Err("unsupported version " + std::to_string(version));
  s.version = static_cast<int>(version);
  VNVRAM_ASSIGN_OR_RETURN(s.device_type, o.Str("device_type"));
  VNVRAM_ASSIGN_OR_RETURN(s.domain_root, o.Str("domain_root"));
  if (s.domain_root.empty() || s.domain_root.front() != '/' || s.domain_root.back() == '/') {
    return o.Err("domain_root must be absolute without a trailing '/'");
  }

  // doc
  {
    const Json* d = o.Get("doc");
    if (d == nullptr) return o.Err("missing field 'doc'");
    Obj doc(*d, "schema.doc");
    VNVRAM_RETURN_IF_ERROR(doc.Check());
    VNVRAM_ASSIGN_OR_RETURN(s.doc.title, doc.Str("title"));
    VNVRAM_ASSIGN_OR_RETURN(s.doc.intro, doc.Lines("intro"));
    VNVRAM_ASSIGN_OR_RETURN(s.doc.conventions, doc.Lines("conventions"));
    VNVRAM_ASSIGN_OR_RETURN(s.doc.startup_diagram, doc.Lines("startup_diagram"));
    VNVRAM_ASSIGN_OR_RETURN(s.doc.lint_rule, doc.Lines("lint_rule"));
    VNVRAM_RETURN_IF_ERROR(doc.Finish());
  }

  auto array = [&](const char* f) -> Result<const Json*> {
    const Json* a = o.Get(f);
    if (a == nullptr || !a->is_array())
      return o.Err(std::string("field '") + f + "' must be an array");
    return a;
  };

  // placeholders
  {
    VNVRAM_ASSIGN_OR_RETURN(const Json* a, array("placeholders"));
    size_t n = 0;
    for (const auto& j : *a) {
      Obj po(j, "schema.placeholders[" + std::to_string(n++) + "]");
      VNVRAM_RETURN_IF_ERROR(po.Check());
      PlaceholderSpec p;
      VNVRAM_ASSIGN_OR_RETURN(p.name, po.Str("name"));
      VNVRAM_ASSIGN_OR_RETURN(std::string type, po.Str("type"));
      VNVRAM_ASSIGN_OR_RETURN(p.kind, ParseValueKind(type));
      VNVRAM_ASSIGN_OR_RETURN(p.param, po.Str("param"));
      VNVRAM_ASSIGN_OR_RETURN(p.meaning, po.Str("meaning"));
      VNVRAM_RETURN_IF_ERROR(po.Finish());
      const bool ok_kind = p.kind == ValueKind::kDomId || p.kind == ValueKind::kDevId ||
                           p.kind == ValueKind::kUuid || p.kind == ValueKind::kName ||
                           p.kind == ValueKind::kIndex;
      if (!ok_kind) return po.Err("placeholder type must be domid, devid, uuid, name or index");
      if (!ValidCxxIdent(p.param)) return po.Err("param is not an identifier");
      if (s.FindPlaceholder(p.name) != nullptr) return po.Err("duplicate placeholder");
      s.placeholders.push_back(std::move(p));
    }
  }
  // writers
  {
    VNVRAM_ASSIGN_OR_RETURN(const Json* a, array("writers"));
    size_t n = 0;
    for (const auto& j : *a) {
      Obj wo(j, "schema.writers[" + std::to_string(n++) + "]");
      VNVRAM_RETURN_IF_ERROR(wo.Check());
      WriterSpec w;
      VNVRAM_ASSIGN_OR_RETURN(w.name, wo.Str("name"));
      VNVRAM_ASSIGN_OR_RETURN(w.meaning, wo.Str("meaning"));
      VNVRAM_RETURN_IF_ERROR(wo.Finish());
      s.writers.push_back(std::move(w));
    }
    for (const char* need : {"toolstack", "frontend", "backend", "tool"}) {
      if (std::none_of(s.writers.begin(), s.writers.end(),
                       [&](const WriterSpec& w) { return w.name == need; })) {
        return o.Err(std::string("writer '") + need + "' missing");
      }
    }
  }
  // states
  {
    VNVRAM_ASSIGN_OR_RETURN(const Json* a, array("states"));
    size_t n = 0;
    for (const auto& j : *a) {
      Obj so(j, "schema.states[" + std::to_string(n) + "]");
      VNVRAM_RETURN_IF_ERROR(so.Check());
      StateSpec st;
      VNVRAM_ASSIGN_OR_RETURN(uint64_t v, so.U64("value"));
      st.value = static_cast<int>(v);
      VNVRAM_ASSIGN_OR_RETURN(st.name, so.Str("name"));
      VNVRAM_ASSIGN_OR_RETURN(st.meaning, so.Str("meaning"));
      VNVRAM_RETURN_IF_ERROR(so.Finish());
      if (v != n) return so.Err("states must be listed in order 0..8");
      if (!ValidCxxIdent(st.name)) return so.Err("state name must be an identifier");
      s.states.push_back(std::move(st));
      ++n;
    }
    if (s.states.size() != 9) return o.Err("states must list the 9 XenbusState values 0..8");
  }
  // ends
  {
    VNVRAM_ASSIGN_OR_RETURN(const Json* a, array("ends"));
    size_t n = 0;
    for (const auto& j : *a) {
      Obj eo(j, "schema.ends[" + std::to_string(n++) + "]");
      VNVRAM_RETURN_IF_ERROR(eo.Check());
      EndSpec e;
      VNVRAM_ASSIGN_OR_RETURN(e.name, eo.Str("name"));
      VNVRAM_ASSIGN_OR_RETURN(e.used_states, StateList(s, eo.Get("used_states"), eo.where()));
      const Json* tr = eo.Get("transitions");
      if (tr == nullptr || !tr->is_array()) return eo.Err("transitions must be an array");
      size_t m = 0;
      for (const auto& tj : *tr) {
        Obj to(tj, eo.At("transitions") + "[" + std::to_string(m++) + "]");
        VNVRAM_RETURN_IF_ERROR(to.Check());
        Transition t;
        const Json* from = to.Get("from");
        const Json* dest = to.Get("to");
        if (from == nullptr || dest == nullptr) return to.Err("needs from and to");
        VNVRAM_ASSIGN_OR_RETURN(t.from, StateByName(s, *from, to.where()));
        VNVRAM_ASSIGN_OR_RETURN(t.to, StateByName(s, *dest, to.where()));
        VNVRAM_ASSIGN_OR_RETURN(t.why, to.Str("why"));
        VNVRAM_RETURN_IF_ERROR(to.Finish());
        auto used = [&](int st) {
          return std::find(e.used_states.begin(), e.used_states.end(), st) != e.used_states.end();
        };
        if (!(used(t.from) || t.from == 0) || !used(t.to)) {
          return to.Err("transition between states this end does not use");
        }
        if (t.from == t.to) return to.Err("a transition must change the state");
        for (const auto& prev : e.transitions) {
          if (prev.from == t.from && prev.to == t.to) return to.Err("duplicate transition");
        }
        e.transitions.push_back(std::move(t));
      }
      VNVRAM_RETURN_IF_ERROR(eo.Finish());
      if (s.FindEnd(e.name) != nullptr) return eo.Err("duplicate end");
      s.ends.push_back(std::move(e));
    }
    if (s.FindEnd("frontend") == nullptr || s.FindEnd("backend") == nullptr) {
      return o.Err("ends must describe frontend and backend");
    }
  }
  // state pairs
  {
    VNVRAM_ASSIGN_OR_RETURN(const Json* a, array("state_pairs"));
    size_t n = 0;
    for (const auto& j : *a) {
      Obj po(j, "schema.state_pairs[" + std::to_string(n++) + "]");
      VNVRAM_RETURN_IF_ERROR(po.Check());
      StatePair p;
      VNVRAM_ASSIGN_OR_RETURN(p.frontend, StateList(s, po.Get("frontend"), po.At("frontend")));
      VNVRAM_ASSIGN_OR_RETURN(p.backend, StateList(s, po.Get("backend"), po.At("backend")));
      VNVRAM_ASSIGN_OR_RETURN(std::string verdict, po.Str("verdict"));
      if (verdict != "illegal" && verdict != "transient") {
        return po.Err("verdict must be illegal or transient");
      }
      p.illegal = verdict == "illegal";
      VNVRAM_ASSIGN_OR_RETURN(p.why, po.Str("why"));
      VNVRAM_RETURN_IF_ERROR(po.Finish());
      for (const auto& prev : s.state_pairs) {
        for (int f : p.frontend) {
          for (int b : p.backend) {
            if (std::count(prev.frontend.begin(), prev.frontend.end(), f) &&
                std::count(prev.backend.begin(), prev.backend.end(), b)) {
              return po.Err("state pair listed twice");
            }
          }
        }
      }
      s.state_pairs.push_back(std::move(p));
    }
  }
  std::set<std::string> builders;
  // dirs
  {
    VNVRAM_ASSIGN_OR_RETURN(const Json* a, array("dirs"));
    size_t n = 0;
    for (const auto& j : *a) {
      Obj dobj(j, "schema.dirs[" + std::to_string(n++) + "]");
      VNVRAM_RETURN_IF_ERROR(dobj.Check());
      DirSpec d;
      VNVRAM_ASSIGN_OR_RETURN(d.builder, dobj.Str("builder"));
      VNVRAM_ASSIGN_OR_RETURN(std::string pat, dobj.Str("pattern"));
      VNVRAM_ASSIGN_OR_RETURN(d.pattern, PathPattern::Parse(pat));
      VNVRAM_ASSIGN_OR_RETURN(d.owned, dobj.Bool("owned"));
      VNVRAM_ASSIGN_OR_RETURN(d.meaning, dobj.Str("meaning"));
      VNVRAM_RETURN_IF_ERROR(dobj.Finish());
      if (!ValidCxxIdent(d.builder) || !builders.insert(d.builder).second) {
        return dobj.Err("builder missing, invalid or duplicate");
      }
      if (pat.rfind(s.domain_root + "/", 0) != 0) return dobj.Err("pattern outside domain_root");
      if (d.owned && d.pattern.Placeholders().size() != 1) {
        return dobj.Err("an owned dir has exactly one placeholder (the domain)");
      }
      for (const auto& ph : d.pattern.Placeholders()) {
        if (s.FindPlaceholder(ph) == nullptr) return dobj.Err("unknown placeholder {" + ph + "}");
      }
      s.dirs.push_back(std::move(d));
    }
  }
  // trees
  {
    VNVRAM_ASSIGN_OR_RETURN(const Json* a, array("trees"));
    size_t n = 0;
    std::set<std::string> ids;
    std::set<std::string> namespaces;
    // Trees first without keys, so that path keys can name any tree builder.
    std::vector<std::pair<const Json*, std::string>> key_arrays;
    for (const auto& j : *a) {
      const std::string where = "schema.trees[" + std::to_string(n++) + "]";
      Obj to(j, where);
      VNVRAM_RETURN_IF_ERROR(to.Check());
      TreeSpec t;
      VNVRAM_ASSIGN_OR_RETURN(t.id, to.Str("id"));
      VNVRAM_ASSIGN_OR_RETURN(t.title, to.Str("title"));
      VNVRAM_ASSIGN_OR_RETURN(uint64_t issue, to.U64("issue"));
      t.issue = static_cast<int>(issue);
      VNVRAM_ASSIGN_OR_RETURN(t.reserved, to.Str("reserved", false));
      VNVRAM_ASSIGN_OR_RETURN(std::string base, to.Str("base"));
      VNVRAM_ASSIGN_OR_RETURN(t.base, PathPattern::Parse(base));
      if (base.rfind(s.domain_root + "/", 0) != 0) return to.Err("base outside domain_root");
      for (const auto& ph : t.base.Placeholders()) {
        if (s.FindPlaceholder(ph) == nullptr) return to.Err("unknown placeholder {" + ph + "}");
      }
      VNVRAM_ASSIGN_OR_RETURN(t.builder, to.Str("builder"));
      VNVRAM_ASSIGN_OR_RETURN(t.key_builder, to.Str("key_builder"));
      for (const auto* b : {&t.builder, &t.key_builder}) {
        if (!ValidCxxIdent(*b) || !builders.insert(*b).second) {
          return to.Err("builder '" + *b + "' invalid or duplicate");
        }
      }
      VNVRAM_ASSIGN_OR_RETURN(t.ns, to.Str("namespace"));
      if (!ValidCxxIdent(t.ns) || !namespaces.insert(t.ns).second) {
        return to.Err("namespace invalid or duplicate");
      }
      VNVRAM_ASSIGN_OR_RETURN(t.end, to.Str("end"));
      VNVRAM_ASSIGN_OR_RETURN(t.state_key, to.Str("state_key"));
      const Json* bind = to.Get("bind");
      if (bind == nullptr || !bind->is_object()) return to.Err("bind must be an object");
      for (auto it = bind->begin(); it != bind->end(); ++it) {
        if (!it.value().is_string()) return to.Err("bind values must be key names");
        if (s.FindPlaceholder(it.key()) == nullptr) return to.Err("bind of unknown placeholder");
        t.bind.emplace(it.key(), it.value().get<std::string>());
      }
      const Json* perms = to.Get("perms");
      if (perms == nullptr) return to.Err("missing field 'perms'");
      Obj pobj(*perms, to.At("perms"));
      VNVRAM_RETURN_IF_ERROR(pobj.Check());
      VNVRAM_ASSIGN_OR_RETURN(t.owner, pobj.Str("owner"));
      VNVRAM_ASSIGN_OR_RETURN(std::string others, pobj.Str("others"));
      VNVRAM_ASSIGN_OR_RETURN(t.others, ParseAccess(others, pobj.where()));
      const Json* acl = pobj.Get("acl");
      if (acl == nullptr || !acl->is_array()) return pobj.Err("acl must be an array");
      for (const auto& e : *acl) {
        Obj eo(e, pobj.At("acl"));
        VNVRAM_RETURN_IF_ERROR(eo.Check());
        AclEntry entry;
        VNVRAM_ASSIGN_OR_RETURN(entry.dom, eo.Str("dom"));
        VNVRAM_ASSIGN_OR_RETURN(std::string perm, eo.Str("perm"));
        VNVRAM_ASSIGN_OR_RETURN(entry.access, ParseAccess(perm, eo.where()));
        VNVRAM_RETURN_IF_ERROR(eo.Finish());
        t.acl.push_back(std::move(entry));
      }
      VNVRAM_RETURN_IF_ERROR(pobj.Finish());
      VNVRAM_ASSIGN_OR_RETURN(t.intro, to.Lines("intro"));
      const Json* keys = to.Get("keys");
      if (keys == nullptr || !keys->is_array() || keys->empty()) {
        return to.Err("keys must be a non-empty array");
      }
      VNVRAM_RETURN_IF_ERROR(to.Finish());
      if (!ids.insert(t.id).second) return to.Err("duplicate tree id");
      key_arrays.emplace_back(keys, where);
      s.trees.push_back(std::move(t));
    }
    for (size_t i = 0; i < s.trees.size(); ++i) {
      TreeSpec& t = s.trees[i];
      size_t m = 0;
      for (const auto& kj : *key_arrays[i].first) {
        VNVRAM_ASSIGN_OR_RETURN(
            KeySpec k,
            ParseKey(s, t, kj, key_arrays[i].second + ".keys[" + std::to_string(m++) + "]"));
        t.keys.push_back(std::move(k));
      }
    }
    for (const auto& t : s.trees) {
      VNVRAM_RETURN_IF_ERROR(CheckTreeConsistency(s, t, "schema.trees[" + t.id + "]"));
    }
    for (const auto& e : s.ends) {
      const bool has_tree = std::any_of(s.trees.begin(), s.trees.end(),
                                        [&](const TreeSpec& t) { return t.end == e.name; });
      if (!has_tree) return o.Err("no tree for end '" + e.name + "'");
    }
  }
  // invariants
  {
    VNVRAM_ASSIGN_OR_RETURN(const Json* a, array("invariants"));
    size_t n = 0;
    for (const auto& j : *a) {
      Obj io(j, "schema.invariants[" + std::to_string(n++) + "]");
      VNVRAM_RETURN_IF_ERROR(io.Check());
      InvariantSpec inv;
      VNVRAM_ASSIGN_OR_RETURN(inv.id, io.Str("id"));
      VNVRAM_ASSIGN_OR_RETURN(inv.meaning, io.Str("meaning"));
      VNVRAM_RETURN_IF_ERROR(io.Finish());
      const auto& known = KnownInvariants();
      if (std::find(known.begin(), known.end(), inv.id) == known.end()) {
        return io.Err("invariant '" + inv.id + "' is not implemented by the validator");
      }
      if (s.HasInvariant(inv.id)) return io.Err("duplicate invariant");
      s.invariants.push_back(std::move(inv));
    }
  }
  VNVRAM_RETURN_IF_ERROR(o.Finish());
  return s;
}

}  // namespace vnvram::schema
