#include "xenstore-schema/validator.h"

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <utility>

#include "xenstore-schema/schema.h"
#include "xenstore-schema/value_check.h"

namespace vnvram::schema {

namespace {

using platform::Perm;
using platform::PermEntry;

class SchemaPlaceholders final : public PlaceholderChecker {
 public:
  explicit SchemaPlaceholders(const Schema& s) : schema_(s) {}
  bool Accepts(std::string_view name, std::string_view text) const override {
    const PlaceholderSpec* p = schema_.FindPlaceholder(name);
    return p != nullptr && PlaceholderAccepts(p->kind, text);
  }

 private:
  const Schema& schema_;
};

struct NodeInfo {
  std::string value;
  std::optional<std::vector<PermEntry>> perms;
};

struct Hit {
  const KeySpec* spec = nullptr;
  Bindings bindings;  // the key's own placeholders (index, host)
  std::string path;
  std::string value;
};

struct Instance {
  const TreeSpec* tree = nullptr;
  std::string path;                 // real path of the base directory
  Bindings bindings;                // base placeholders plus bound ones
  std::map<std::string, Hit> keys;  // by relative name as found
  std::vector<std::string> nodes;   // real paths of all nodes in the instance
  std::optional<int> state;         // parsed state key, when valid
};

char PermLetter(Perm p) {
  switch (p) {
    case Perm::kNone: return 'n';
    case Perm::kRead: return 'r';
    case Perm::kWrite: return 'w';
    case Perm::kBoth: return 'b';
  }
  return '?';
}

Perm ToPerm(Access a) {
  switch (a) {
    case Access::kNone: return Perm::kNone;
    case Access::kRead: return Perm::kRead;
    case Access::kWrite: return Perm::kWrite;
    case Access::kBoth: return Perm::kBoth;
  }
  return Perm::kNone;
}

std::string FormatPerms(const std::vector<PermEntry>& perms) {
  std::string out;
  for (const auto& e : perms) {
    out += (out.empty() ? "" : ",") + std::string(1, PermLetter(e.perm)) + std::to_string(e.domid);
  }
  return out.empty() ? "(none)" : out;
}

std::string JoinRel(const std::vector<std::string_view>& segs, size_t from) {
  std::string out;
  for (size_t i = from; i < segs.size(); ++i) {
    if (i > from) out += '/';
    out += segs[i];
  }
  return out;
}

class Run {
 public:
  Run(const Schema& s, const ValidatorOptions& o, TreeSource& src)
      : s_(s), o_(o), src_(src), checker_(s) {
    root_ = o.domain_root.empty() ? s.domain_root : o.domain_root;
    if (root_.size() > 1 && root_.back() == '/') root_.pop_back();
  }

  Result<std::vector<Finding>> Go() {
    VNVRAM_RETURN_IF_ERROR(Collect());
    Classify();
    for (auto& [path, inst] : instances_) CheckInstance(inst);
    CheckDevicePairs();
    CheckMultipath();
    std::sort(findings_.begin(), findings_.end(), [](const Finding& a, const Finding& b) {
      return std::tie(a.path, a.rule, a.message) < std::tie(b.path, b.rule, b.message);
    });
    findings_.erase(std::unique(findings_.begin(), findings_.end()), findings_.end());
    return std::move(findings_);
  }

 private:
  void Add(std::string path, std::string_view rule, std::string message) {
    findings_.push_back(Finding{std::move(path), std::string(rule), std::move(message)});
  }

  // Real path <-> the schema's spelling (domain root replaced).
  std::string ToSchema(std::string_view real) const {
    return s_.domain_root + std::string(real.substr(root_.size()));
  }
  std::string ToReal(std::string_view schema_path) const {
    return root_ + std::string(schema_path.substr(s_.domain_root.size()));
  }

  Status Collect() {
    std::vector<std::string> domains;
    if (o_.domains.empty()) {
      auto listed = src_.Directory(root_);
      if (!listed.ok()) return listed.status().WithContext("listing " + root_);
      domains = std::move(listed).value();
    } else {
      for (DomId d : o_.domains) domains.push_back(std::to_string(d));
    }
    for (const auto& name : domains) {
      if (!PlaceholderAccepts(ValueKind::kDomId, name)) continue;
      walked_domains_.insert(name);
      for (const auto& dir : s_.dirs) {
        if (!dir.owned) continue;
        Bindings b{{dir.pattern.Placeholders().front(), name}};
        auto p = dir.pattern.Format(b);
        if (!p.ok()) return p.status();
        owned_.insert(ToReal(*p));
        VNVRAM_RETURN_IF_ERROR(Walk(ToReal(*p), 0));
      }
    }
    return {};
  }

  Status Walk(const std::string& path, size_t depth) {
    if (too_big_) return {};
    if (nodes_.size() >= o_.max_nodes || depth > o_.max_depth) {
      too_big_ = true;
      Add(path, kRuleTooBig,
          "walk stopped: more than " + std::to_string(o_.max_nodes) + " nodes or deeper than " +
              std::to_string(o_.max_depth));
      return {};
    }
    auto value = src_.Read(path);
    if (!value.ok()) {
      if (value.status().code() == Code::kNotFound) return {};
      if (value.status().code() == Code::kPermissionDenied) {
        Add(path, kRuleUnreadable, "cannot read: " + value.status().message());
        return {};
      }
      return value.status().WithContext("reading " + path);
    }
    NodeInfo info;
    info.value = std::move(value).value();
    auto perms = src_.GetPermissions(path);
    if (perms.ok()) {
      info.perms = std::move(perms).value();
    } else if (perms.status().code() == Code::kNotFound) {
      return {};
    } else if (perms.status().code() == Code::kPermissionDenied) {
      Add(path, kRuleUnreadable, "cannot read permissions: " + perms.status().message());
    } else {
      return perms.status().WithContext("permissions of " + path);
    }
    nodes_.emplace(path, std::move(info));
    auto children = src_.Directory(path);
    if (!children.ok()) {
      if (children.status().code() == Code::kNotFound) return {};
      if (children.status().code() == Code::kPermissionDenied) {
        Add(path, kRuleUnreadable, "cannot list: " + children.status().message());
        return {};
      }
      return children.status().WithContext("listing " + path);
    }
    for (const auto& c : *children) {
      if (c.empty() || c.find('/') != std::string::npos) {
        Add(path, kRuleUnknownKey, "child with an invalid name");
        continue;
      }
      std::string child = path;
      child += '/';
      child += c;
      VNVRAM_RETURN_IF_ERROR(Walk(child, depth + 1));
    }
    return {};
  }

  void Classify() {
    for (const auto& [path, info] : nodes_) {
      if (owned_.contains(path)) continue;
      const std::string sp = ToSchema(path);
      const auto segs = SplitPath(sp);
      if (ClassifyInTree(path, segs, info)) continue;
      bool on_the_way = false;
      for (const auto& d : s_.dirs) {
        Bindings b;
        on_the_way = on_the_way || d.pattern.MatchPrefix(segs, checker_, &b);
      }
      for (const auto& t : s_.trees) {
        Bindings b;
        on_the_way = on_the_way || t.base.MatchPrefix(segs, checker_, &b);
      }
      if (!on_the_way) Add(path, kRuleUnknownKey, "not in the xenstore schema");
    }
  }

  bool ClassifyInTree(const std::string& path, const std::vector<std::string_view>& segs,
                      const NodeInfo& info) {
    for (const auto& t : s_.trees) {
      const size_t n = t.base.segments().size();
      if (segs.size() < n) continue;
      Bindings b;
      const std::vector<std::string_view> head(segs.begin(), segs.begin() + n);
      if (!t.base.Match(head, checker_, &b)) continue;
      auto base_sp = t.base.Format(b);
      const std::string base = ToReal(base_sp.ok() ? *base_sp : std::string());
      Instance& inst = instances_[base];
      if (inst.tree == nullptr) {
        inst.tree = &t;
        inst.path = base;
        inst.bindings = b;
      }
      inst.nodes.push_back(path);
      if (segs.size() == n) return true;
      const std::vector<std::string_view> rel(segs.begin() + n, segs.end());
      for (const auto& k : t.keys) {
        Bindings kb;
        if (k.pattern.Match(rel, checker_, &kb)) {
          inst.keys[JoinRel(segs, n)] = Hit{&k, std::move(kb), path, info.value};
          return true;
        }
      }
      for (const auto& k : t.keys) {
        Bindings kb;
        if (rel.size() < k.pattern.segments().size() && k.pattern.MatchPrefix(rel, checker_, &kb)) {
          return true;  // a directory such as statistics/ or replica/<host>/
        }
      }
      Add(path, kRuleUnknownKey, "not a key of the " + t.id + " directory");
      return true;
    }
    return false;
  }

  // The value of sibling `key` in `inst` as a number, or its default.
  std::optional<uint64_t> Number(const Instance& inst, std::string_view key) const {
    const KeySpec* spec = inst.tree->FindKey(key);
    if (spec == nullptr) return std::nullopt;
    auto it = inst.keys.find(std::string(key));
    if (it != inst.keys.end()) return NumericValue(spec->type, it->second.value);
    if (spec->default_value) return NumericValue(spec->type, *spec->default_value);
    return std::nullopt;
  }

  static std::string Bound(const Instance& inst, const std::string& ph) {
    auto it = inst.bindings.find(ph);
    return it == inst.bindings.end() ? std::string() : it->second;
  }

  const Hit* Key(const Instance& inst, std::string_view key) const {
    auto it = inst.keys.find(std::string(key));
    return it == inst.keys.end() ? nullptr : &it->second;
  }

  // nullopt when the condition cannot be decided (sibling invalid).
  std::optional<bool> WhenHolds(const Instance& inst, const KeySpec& k) const {
    if (!k.when) return true;
    auto v = Number(inst, k.when->key);
    if (!v) return std::nullopt;
    if (k.when->min && *v < *k.when->min) return false;
    if (k.when->max && *v > *k.when->max) return false;
    return true;
  }

  std::optional<uint64_t> IndexCount(const Instance& inst, const KeySpec& k) const {
    auto v = Number(inst, k.index->count_key);
    if (!v) return std::nullopt;
    if (k.index->pow2) return *v < 32 ? std::optional<uint64_t>(uint64_t{1} << *v) : std::nullopt;
    return v;
  }

  void CheckInstance(Instance& inst) {
    const TreeSpec& t = *inst.tree;
    for (const auto& [ph, key] : t.bind) {
      const Hit* h = Key(inst, key);
      if (h != nullptr && PlaceholderAccepts(ValueKind::kDomId, h->value)) {
        inst.bindings[ph] = h->value;
      }
    }
    for (const auto& [name, hit] : inst.keys) CheckHit(inst, hit);
    if (!t.end.empty()) {
      const Hit* st = Key(inst, t.state_key);
      if (st != nullptr && !CheckValue(st->spec->type, st->value)) {
        inst.state = static_cast<int>(*NumericValue(st->spec->type, st->value));
        const EndSpec* end = s_.FindEnd(t.end);
        if (std::count(end->used_states.begin(), end->used_states.end(), *inst.state) == 0) {
          Add(st->path, "state-used-by-end",
              "the " + t.end + " never uses state " + std::to_string(*inst.state) + " (" +
                  s_.FindState(*inst.state)->name + ")");
        }
      }
    }
    CheckRequired(inst);
    if (o_.check_perms) CheckPerms(inst);
    if (t.end == "backend") CheckGeometry(inst);
  }

  void CheckHit(const Instance& inst, const Hit& hit) {
    const KeySpec& k = *hit.spec;
    if (auto p = CheckValue(k.type, hit.value)) {
      Add(hit.path, p->rule, p->message);
    } else if (k.type.kind == ValueKind::kPath) {
      const TreeSpec* target = nullptr;
      for (const auto& t : s_.trees) {
        if (t.builder == k.type.equals) target = &t;
      }
      if (target == nullptr) return;  // ParseSchema guarantees a target
      auto expected = target->base.Format(inst.bindings);
      // A tree checked under a moved domain root may still name the
      // canonical root in its values (a copy); accept either spelling.
      if (expected.ok() && ToReal(*expected) != hit.value && *expected != hit.value) {
        const std::string rule =
            inst.tree->end == "frontend" ? "backend-path-matches" : "frontend-path-matches";
        Add(hit.path, rule, "is '" + hit.value + "', expected '" + ToReal(*expected) + "'");
      }
    }
    if (auto holds = WhenHolds(inst, k); holds.has_value() && !*holds) {
      Add(hit.path, kRuleUnexpectedKey,
          "only allowed when " + k.when->key +
              (k.when->min         ? " >= " + std::to_string(*k.when->min)
               : *k.when->max == 0 ? std::string(" is 0 or absent")
                                   : " <= " + std::to_string(*k.when->max)));
    }
    if (k.index) {
      auto count = IndexCount(inst, k);
      auto it = hit.bindings.find(k.index->placeholder);
      if (count && it != hit.bindings.end()) {
        auto idx = ParseU64(it->second);
        if (idx.ok() && *idx >= *count) {
          Add(hit.path, kRuleUnexpectedKey,
              "index " + it->second + " not below " + std::to_string(*count) + " (from " +
                  k.index->count_key + ")");
        }
      }
    }
  }

  void CheckRequired(const Instance& inst) {
    for (const auto& k : inst.tree->keys) {
      bool needed = false;
      switch (k.required.kind) {
        case Required::Kind::kAlways: needed = true; break;
        case Required::Kind::kOptional: needed = false; break;
        case Required::Kind::kInStates:
          needed = inst.state &&
                   std::count(k.required.states.begin(), k.required.states.end(), *inst.state) > 0;
          break;
      }
      if (!needed) continue;
      auto holds = WhenHolds(inst, k);
      if (!holds.value_or(false)) continue;
      const std::string why = k.required.kind == Required::Kind::kAlways
                                  ? "required"
                                  : "required in state " + s_.FindState(*inst.state)->name;
      if (k.index) {
        auto count = IndexCount(inst, k);
        if (!count) continue;
        const uint64_t limit = std::min<uint64_t>(*count, 4096);
        for (uint64_t i = 0; i < limit; ++i) {
          auto name = k.pattern.Format({{k.index->placeholder, std::to_string(i)}});
          if (name.ok() && Key(inst, *name) == nullptr) {
            Add(inst.path + "/" + *name, kRuleMissingKey, why);
          }
        }
      } else if (k.pattern.Placeholders().empty() && Key(inst, k.name) == nullptr) {
        Add(inst.path + "/" + k.name, kRuleMissingKey, why);
      }
    }
  }

  void CheckPerms(const Instance& inst) {
    const TreeSpec& t = *inst.tree;
    auto dom = [&](const std::string& ph) -> std::optional<DomId> {
      auto it = inst.bindings.find(ph);
      if (it == inst.bindings.end()) return std::nullopt;
      auto d = ParseDomId(it->second);
      return d.ok() ? std::optional<DomId>(*d) : std::nullopt;
    };
    const auto owner = dom(t.owner);
    if (!owner) return;  // the binding key is missing or bad: already a finding
    std::vector<PermEntry> expected{{*owner, ToPerm(t.others)}};
    for (const auto& a : t.acl) {
      auto d = dom(a.dom);
      if (!d) return;
      if (*d != *owner) expected.push_back(PermEntry{*d, ToPerm(a.access)});
    }
    for (const auto& path : inst.nodes) {
      auto it = nodes_.find(path);
      if (it == nodes_.end() || !it->second.perms) continue;
      const auto& actual = *it->second.perms;
      bool ok = !actual.empty() && actual.front() == expected.front();
      for (size_t i = 1; ok && i < expected.size(); ++i) {
        ok = std::find(actual.begin() + 1, actual.end(), expected[i]) != actual.end();
      }
      for (size_t i = 1; ok && i < actual.size(); ++i) {
        ok = std::find(expected.begin() + 1, expected.end(), actual[i]) != expected.end();
      }
      if (!ok) {
        Add(path, kRuleBadPerms,
            "permissions " + FormatPerms(actual) + ", expected " + FormatPerms(expected));
      }
    }
  }

  void CheckGeometry(const Instance& inst) {
    const Hit* size = Key(inst, be::kRegionSize);
    const Hit* pages = Key(inst, be::kRegionPages);
    const Hit* dirs = Key(inst, be::kPageDirRefs);
    if (size == nullptr || pages == nullptr) return;
    auto sz = NumericValue(size->spec->type, size->value);
    auto pg = NumericValue(pages->spec->type, pages->value);
    if (!sz || !pg) return;
    if (*sz != *pg * 4096) {
      Add(size->path, "region-geometry",
          "region-size " + size->value + " is not region-pages (" + pages->value + ") * 4096");
    }
    if (dirs == nullptr) return;
    auto nd = NumericValue(dirs->spec->type, dirs->value);
    const uint64_t want = (*pg + 1023) / 1024;
    if (nd && *nd != want) {
      Add(dirs->path, "region-geometry",
          "page-dir-refs " + dirs->value + ", expected " + std::to_string(want) + " for " +
              pages->value + " pages");
    }
  }

  const Instance* FindInstance(const TreeSpec* tree, const Bindings& b) const {
    if (tree == nullptr) return nullptr;
    auto p = tree->base.Format(b);
    if (!p.ok()) return nullptr;
    auto it = instances_.find(ToReal(*p));
    return it == instances_.end() || it->second.tree != tree ? nullptr : &it->second;
  }

  const TreeSpec* TreeOfEnd(std::string_view end) const {
    for (const auto& t : s_.trees) {
      if (t.end == end) return &t;
    }
    return nullptr;
  }

  void CheckPair(const Instance* fe, const Instance* be) {
    std::optional<int> fs = fe == nullptr ? std::optional<int>(0) : fe->state;
    std::optional<int> bs = be == nullptr ? std::optional<int>(0) : be->state;
    if (!fs || !bs) return;  // a missing or bad state node is already a finding
    for (const auto& p : s_.state_pairs) {
      if (std::count(p.frontend.begin(), p.frontend.end(), *fs) == 0 ||
          std::count(p.backend.begin(), p.backend.end(), *bs) == 0) {
        continue;
      }
      if (!p.illegal && !o_.report_transient) return;
      const std::string where = fe != nullptr ? fe->path : be->path;
      Add(where, "state-pair",
          std::string(p.illegal ? "" : "transient: ") + "frontend " + s_.FindState(*fs)->name +
              ", backend " + s_.FindState(*bs)->name + ": " + p.why);
      return;
    }
  }

  void CheckDevicePairs() {
    const TreeSpec* fet = TreeOfEnd("frontend");
    const TreeSpec* bet = TreeOfEnd("backend");
    std::set<std::pair<const Instance*, const Instance*>> done;
    for (const auto& [path, inst] : instances_) {
      const Instance* fe = nullptr;
      const Instance* be = nullptr;
      // The peer end lives in another domain; when that domain was not
      // walked (--domain), nothing can be said about the pair.
      if (inst.tree == fet) {
        fe = &inst;
        if (!inst.bindings.contains("B")) continue;  // no usable backend-id: already a finding
        if (!walked_domains_.contains(Bound(inst, "B"))) continue;
        be = FindInstance(bet, inst.bindings);
      } else if (inst.tree == bet) {
        be = &inst;
        if (!walked_domains_.contains(Bound(inst, "F"))) continue;
        fe = FindInstance(fet, inst.bindings);
      } else {
        continue;
      }
      if (!done.insert({fe, be}).second) continue;
      CheckPair(fe, be);
      if (fe == nullptr || be == nullptr) continue;
      const Hit* fv = Key(*fe, fe::kVolume);
      const Hit* bv = Key(*be, be::kVolume);
      if (fv != nullptr && bv != nullptr && fv->value != bv->value) {
        Add(fv->path, "volume-matches", "frontend volume " + fv->value + ", backend " + bv->value);
      }
      auto order = Number(*fe, fe::kRingPageOrder);
      const Hit* max = Key(*be, be::kMaxRingPageOrder);
      if (order && max != nullptr) {
        auto m = NumericValue(max->spec->type, max->value);
        if (m && *order > *m) {
          Add(fe->path + "/" + std::string(fe::kRingPageOrder), "ring-order-within-max",
              "ring-page-order " + std::to_string(*order) + " exceeds the backend's " +
                  "max-ring-page-order " + max->value);
        }
      }
      const Hit* fid = Key(*be, be::kFrontendId);
      auto f = be->bindings.find("F");
      if (fid != nullptr && f != be->bindings.end() && fid->value != f->second &&
          !CheckValue(fid->spec->type, fid->value)) {
        Add(fid->path, "frontend-path-matches",
            "frontend-id " + fid->value + " but the directory is for domain " + f->second);
      }
    }
    // A backend directory whose frontend-id disagrees is caught above only
    // when both exist; check the lone case too.
    for (const auto& [path, inst] : instances_) {
      if (inst.tree != bet) continue;
      if (walked_domains_.contains(Bound(inst, "F")) &&
          FindInstance(fet, inst.bindings) != nullptr) {
        continue;
      }
      const Hit* fid = Key(inst, be::kFrontendId);
      auto f = inst.bindings.find("F");
      if (fid != nullptr && f != inst.bindings.end() && fid->value != f->second &&
          !CheckValue(fid->spec->type, fid->value)) {
        Add(fid->path, "frontend-path-matches",
            "frontend-id " + fid->value + " but the directory is for domain " + f->second);
      }
    }
  }

  void CheckMultipath() {
    const TreeSpec* fet = TreeOfEnd("frontend");
    // At most one active path per (guest, volume).
    std::map<std::pair<std::string, std::string>, std::vector<const Instance*>> active;
    for (const auto& [path, inst] : instances_) {
      if (inst.tree != fet) continue;
      const Hit* role = Key(inst, fe::kPathRole);
      const Hit* vol = Key(inst, fe::kVolume);
      if (role == nullptr || vol == nullptr || role->value != fe::kPathRoleActive) continue;
      active[{Bound(inst, "F"), vol->value}].push_back(&inst);
    }
    for (const auto& [key, list] : active) {
      for (size_t i = 1; i < list.size(); ++i) {
        Add(list[i]->path + "/" + std::string(fe::kPathRole), "single-active-path",
            "volume " + key.second + " already has active path " + list[0]->path);
      }
    }
    const TreeSpec* mpt = s_.FindTree("multipath");
    for (const auto& [path, inst] : instances_) {
      if (inst.tree != mpt) continue;
      const Hit* ap = Key(inst, mp::kActivePath);
      if (ap == nullptr || CheckValue(ap->spec->type, ap->value)) continue;
      Bindings b{{"F", Bound(inst, "F")}, {"devid", ap->value}};
      const Instance* fe = FindInstance(fet, b);
      const Hit* vol = fe == nullptr ? nullptr : Key(*fe, fe::kVolume);
      if (fe == nullptr) {
        Add(ap->path, "single-active-path", "names devid " + ap->value + ", which does not exist");
      } else if (vol != nullptr && vol->value != Bound(inst, "vol")) {
        Add(ap->path, "single-active-path",
            "names devid " + ap->value + ", a path of volume " + vol->value);
      }
    }
  }

  const Schema& s_;
  const ValidatorOptions& o_;
  TreeSource& src_;
  SchemaPlaceholders checker_;
  std::string root_;
  std::set<std::string> owned_;
  std::set<std::string> walked_domains_;
  std::map<std::string, NodeInfo> nodes_;
  std::map<std::string, Instance> instances_;
  std::vector<Finding> findings_;
  bool too_big_ = false;
};

}  // namespace

Validator::Validator(const Schema& schema, ValidatorOptions options)
    : schema_(schema), options_(std::move(options)) {}

Result<std::vector<Finding>> Validator::Check(TreeSource& source) const {
  Run run(schema_, options_, source);
  return run.Go();
}

}  // namespace vnvram::schema
