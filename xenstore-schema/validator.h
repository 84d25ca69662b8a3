// Validator: checks a xenstore tree against the schema. It walks every
// vnvram-owned directory of every domain under the domain root and reports
// unknown keys, values of the wrong type or range, required keys missing for
// the owning end's state, wrong permissions, and broken invariants (paths and
// volumes that disagree between ends, illegal state pairs, bad region
// geometry). A Validator is immutable after construction and may be shared
// between threads; each Check() call uses its TreeSource from one thread.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "common/parse.h"
#include "common/result.h"
#include "xenstore-schema/finding.h"
#include "xenstore-schema/model.h"
#include "xenstore-schema/tree_source.h"

namespace vnvram::schema {

struct ValidatorOptions {
  // The directory holding one node per domain; empty means the schema's
  // domain_root ("/local/domain"). Lets a test or a copy of a tree live
  // elsewhere.
  std::string domain_root;
  // Domains to check; empty means every domain listed under the domain
  // root (which a guest is not allowed to list: it names itself here).
  std::vector<DomId> domains;
  bool check_perms = true;
  // Also report state pairs the schema calls transient.
  bool report_transient = false;
  // Hostile or runaway trees: stop walking after this many nodes or this
  // depth below an owned directory, with a tree-too-big finding.
  size_t max_nodes = 200000;
  size_t max_depth = 12;
};

class Validator {
 public:
  explicit Validator(const Schema& schema, ValidatorOptions options = {});

  // Findings sorted by path, then rule; empty when the tree is clean. Nodes
  // that vanish during the walk are skipped; nodes the caller may not read
  // are findings (unreadable). Returns an error only when the source fails
  // otherwise (the connection broke, the domain root cannot be listed).
  Result<std::vector<Finding>> Check(TreeSource& source) const;

 private:
  const Schema& schema_;
  ValidatorOptions options_;
};

}  // namespace vnvram::schema
