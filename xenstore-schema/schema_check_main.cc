// vnvram-schema-check: checks a live xenstore tree (real Xen or the sim
// platform) against the vnvram xenstore schema and prints one line per
// finding. Exit status: 0 clean, 1 findings, 2 usage or connection error.
#include <CLI/CLI.hpp>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "platform/platform.h"
#include "xenstore-schema/model.h"
#include "xenstore-schema/schema.h"
#include "xenstore-schema/validator.h"
#include "xenstore-schema/xenstore_tree_source.h"

namespace {

constexpr int kExitClean = 0;
constexpr int kExitFindings = 1;
constexpr int kExitError = 2;

int Fail(const std::string& what) {
  std::cerr << "vnvram-schema-check: " << what << "\n";
  return kExitError;
}

}  // namespace

static int Run(int argc, char** argv) {
  CLI::App app{"Check a live xenstore tree against the vnvram xenstore schema.",
               "vnvram-schema-check"};
  std::string platform_spec;
  std::string root;
  std::string schema_file;
  bool json = false;
  bool transient = false;
  bool no_perms = false;
  bool no_snapshot = false;
  std::vector<unsigned> domains;
  app.add_option("--platform", platform_spec,
                 "xen | sim:<dir>:<domid> (default: $VNVRAM_PLATFORM, else xen)");
  app.add_option("--root", root, "domain root to walk (default /local/domain)");
  app.add_option("--domain", domains,
                 "check only this domain's nodes (repeatable; default: every domain under "
                 "the root, or the caller's own domain when it may not list the root)");
  app.add_option("--schema", schema_file, "schema JSON to use instead of the built-in one");
  app.add_flag("--json", json, "print findings as JSON");
  app.add_flag("--transient", transient, "also report transient state pairs");
  app.add_flag("--no-perms", no_perms, "skip permission checks");
  app.add_flag("--no-snapshot", no_snapshot, "read outside a transaction");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? kExitClean : kExitError;
  }

  vnvram::schema::Schema loaded;
  const vnvram::schema::Schema* schema = &vnvram::schema::BuiltinSchema();
  if (!schema_file.empty()) {
    std::ifstream in(schema_file, std::ios::binary);
    if (!in) return Fail("cannot read " + schema_file);
    std::ostringstream ss;
    ss << in.rdbuf();
    auto parsed = vnvram::schema::ParseSchema(ss.str());
    if (!parsed.ok()) return Fail(schema_file + ": " + parsed.status().ToString());
    loaded = std::move(parsed).value();
    schema = &loaded;
  }
  if (!root.empty() && (root.front() != '/' || root.find("//") != std::string::npos)) {
    return Fail("--root '" + root + "': must be an absolute path");
  }

  auto platform = vnvram::platform::OpenPlatform(platform_spec);
  if (!platform.ok()) return Fail(platform.status().ToString());
  auto xs = (*platform)->OpenXenStore();
  if (!xs.ok()) return Fail(xs.status().ToString());
  auto source = vnvram::schema::XenStoreTreeSource::Open(**xs, !no_snapshot);
  if (!source.ok()) return Fail(source.status().ToString());

  vnvram::schema::ValidatorOptions options;
  options.domain_root = root;
  options.check_perms = !no_perms;
  options.report_transient = transient;
  for (unsigned d : domains) {
    if (d >= vnvram::kDomIdFirstReserved)
      return Fail("--domain " + std::to_string(d) + ": not a domain id");
    options.domains.push_back(static_cast<vnvram::DomId>(d));
  }
  vnvram::schema::Validator validator(*schema, options);
  auto findings = validator.Check(**source);
  if (!findings.ok() && findings.status().code() == vnvram::Code::kPermissionDenied &&
      options.domains.empty()) {
    // A guest may not list the domain root: check its own subtree.
    options.domains.push_back((*platform)->self_domid());
    findings = vnvram::schema::Validator(*schema, options).Check(**source);
  }
  if (!findings.ok()) return Fail(findings.status().ToString());

  if (json) {
    std::cout << vnvram::schema::FormatFindingsJson(*findings);
  } else {
    std::cout << vnvram::schema::FormatFindingsText(*findings);
    std::cerr << "vnvram-schema-check: " << findings->size() << " finding"
              << (findings->size() == 1 ? "" : "s") << "\n";
  }
  return findings->empty() ? kExitClean : kExitFindings;
}

int main(int argc, char** argv) {
  try {
    return Run(argc, argv);
  } catch (const std::exception& e) {
    return Fail(std::string("internal error: ") + e.what());
  } catch (...) {
    return Fail("internal error");
  }
}
