// DaemonConfig: strict "key = value" parsing and command-line precedence.
#define BOOST_TEST_MODULE daemon_config
#include "backend/daemon_config.h"

#include <boost/test/unit_test.hpp>

namespace vnvram::backend {
namespace {

BOOST_AUTO_TEST_CASE(ParsesEveryKeyWithCommentsAndSpaces) {
  auto c = ParseConfigText(
      "# vnvramd\n\n platform = sim:/tmp/x:0 \nvault-dir=/var/lib/v\n"
      "vault-interval = 30\r\nlog-level = debug\nstats-interval-ms = 500\n"
      "copy-mode = 0\nring-spin-us = 0\npersist-spin-us = 120\n"
      "log-file = /var/log/vnvram/vnvramd.log\n",
      "t.conf");
  BOOST_TEST_REQUIRE(c.ok(), c.status().ToString());
  BOOST_TEST(*c->platform == "sim:/tmp/x:0");
  BOOST_TEST(*c->vault_dir == "/var/lib/v");
  BOOST_TEST(c->vault_interval->count() == 30);
  BOOST_TEST((*c->log_level == log::Level::kDebug));
  BOOST_TEST(c->stats_interval->count() == 500);
  BOOST_TEST(*c->copy_mode == false);
  BOOST_TEST(c->ring_spin->count() == 0);
  BOOST_TEST(c->persist_spin->count() == 120);
  BOOST_TEST(*c->log_file == "/var/log/vnvram/vnvramd.log");
}

BOOST_AUTO_TEST_CASE(ErrorsNameTheFileLineKeyAndValue) {
  struct Case {
    const char* text;
    const char* expect;
  };
  for (const Case c :
       {Case{"bogus = 1\n", "t.conf:1: unknown key 'bogus'"},
        Case{"\nvault-interval = -1\n", "t.conf:2: vault-interval = '-1'"},
        Case{"vault-interval = 99999999\n", "vault-interval = '99999999'"},
        Case{"log-level = loud\n", "log-level = 'loud'"},
        Case{"platform = kvm\n", "platform = 'kvm'"},
        Case{"copy-mode = yes\n", "copy-mode = 'yes'"},
        Case{"ring-spin-us = 100001\n", "ring-spin-us = '100001'"},
        Case{"vault-dir = \n", "vault-dir = ''"},
        Case{"log-file = vnvramd.log\n", "log-file = 'vnvramd.log': expected an absolute path"},
        Case{"log-file =\n", "log-file = ''"}, Case{"platform\n", "expected 'key = value'"},
        Case{" = x\n", "missing key"},
        Case{"log-level = info\nlog-level = info\n", "given twice"}}) {
    auto r = ParseConfigText(c.text, "t.conf");
    BOOST_TEST_REQUIRE(!r.ok(), c.text);
    BOOST_TEST(r.status().message().find(c.expect) != std::string::npos, r.status().message());
    BOOST_TEST(r.status().message().find('\n') == std::string::npos);
  }
}

BOOST_AUTO_TEST_CASE(CommandLineWinsAndRequiredSettingsAreChecked) {
  ConfigOverrides file, cli;
  BOOST_TEST_REQUIRE(ApplyConfigValue("platform", "xen", &file).ok());
  BOOST_TEST_REQUIRE(ApplyConfigValue("vault-dir", "/a", &file).ok());
  BOOST_TEST_REQUIRE(ApplyConfigValue("vault-dir", "/b", &cli).ok());
  auto c = MergeConfig(file, cli);
  BOOST_TEST_REQUIRE(c.ok(), c.status().ToString());
  BOOST_TEST(c->vault_dir == "/b");
  BOOST_TEST(c->platform == "xen");
  BOOST_TEST(!c->host_id.empty());
  BOOST_TEST(c->log_file.empty());  // default: stderr
  BOOST_TEST_REQUIRE(ApplyConfigValue("log-file", "/var/log/a.log", &file).ok());
  BOOST_TEST_REQUIRE(ApplyConfigValue("log-file", "/tmp/b.log", &cli).ok());
  c = MergeConfig(file, cli);
  BOOST_TEST_REQUIRE(c.ok(), c.status().ToString());
  BOOST_TEST(c->log_file == "/tmp/b.log");
  BOOST_TEST(!MergeConfig({}, cli).ok());
  BOOST_TEST(MergeConfig(file, {}).ok());
}

BOOST_AUTO_TEST_CASE(ReplicaOnlyNeedsAClusterFileInsteadOfAPlatform) {
  ConfigOverrides file, cli;
  BOOST_TEST_REQUIRE(ApplyConfigValue("vault-dir", "/v", &file).ok());
  BOOST_TEST_REQUIRE(ApplyConfigValue("replica-only", "1", &cli).ok());
  // No cluster file: the error names what is missing.
  auto c = MergeConfig(file, cli);
  BOOST_TEST_REQUIRE(!c.ok());
  BOOST_TEST(c.status().message().find("replica-only needs a cluster file") != std::string::npos,
             c.status().message());
  // With one, no platform is needed.
  BOOST_TEST_REQUIRE(ApplyConfigValue("cluster", "/etc/vnvram/cluster.json", &file).ok());
  c = MergeConfig(file, cli);
  BOOST_TEST_REQUIRE(c.ok(), c.status().ToString());
  BOOST_TEST(c->replica_only);
  BOOST_TEST(c->platform.empty());
  BOOST_TEST(c->cluster_file == "/etc/vnvram/cluster.json");
  // vault-dir stays required.
  ConfigOverrides no_vault;
  BOOST_TEST_REQUIRE(ApplyConfigValue("cluster", "/c.json", &no_vault).ok());
  BOOST_TEST(!MergeConfig(no_vault, cli).ok());
  // The file may say it too; the command line wins.
  auto f = ParseConfigText("replica-only = 1\ncluster = /c.json\nvault-dir = /v\n", "w.conf");
  BOOST_TEST_REQUIRE(f.ok(), f.status().ToString());
  BOOST_TEST(*f->replica_only);
  c = MergeConfig(*f, {});
  BOOST_TEST_REQUIRE(c.ok(), c.status().ToString());
  BOOST_TEST(c->replica_only);
  ConfigOverrides off;
  BOOST_TEST_REQUIRE(ApplyConfigValue("replica-only", "0", &off).ok());
  BOOST_TEST(!MergeConfig(*f, off).ok());  // a full daemon needs a platform
  // Strict values.
  auto bad = ParseConfigText("replica-only = yes\n", "w.conf");
  BOOST_TEST_REQUIRE(!bad.ok());
  BOOST_TEST(bad.status().message().find("w.conf:1: replica-only = 'yes'") != std::string::npos,
             bad.status().message());
  // Without replica-only the platform is required as before.
  BOOST_TEST(!MergeConfig(file, {}).ok());
}

}  // namespace
}  // namespace vnvram::backend
