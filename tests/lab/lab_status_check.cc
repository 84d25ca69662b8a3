// vnvram-lab-status-check: the Xen lab's reader of `nvram-tool status
// --json` (issue 9's toolstack scenario, tests/lab/toolstack.sh). Runs in
// dom0, where there is no jq: parses the document on stdin with
// nlohmann-json and checks it against docs/nvram-tool.md's schema and the
// device the scenario made. One line per finding; the last line is
// "RESULT ok ..." or "RESULT fail ...".
//
//   nvram-tool status --domain D --json |
//     vnvram-lab-status-check --domain D --devid N --volume UUID --size BYTES
//                             [--state NAME]
//
// ok when: the document is an object with `backend_domid`, `host_id` and a
// `daemon` whose status is "running"; `devices` holds exactly the devices
// of domain D (the --domain filter), one of them (D, N) with the volume,
// `region_size` BYTES, `online` true, backend and frontend state NAME
// (default Connected), no `error`, and `statistics` with a positive
// `requests` count.
//
// Exit status: 0 ok, 1 a check failed or the input is not JSON, 2 usage.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace {

using Json = nlohmann::json;

struct Expect {
  uint32_t domain = 0;
  uint32_t devid = 0;
  std::string volume;
  uint64_t size = 0;
  std::string state = "Connected";
};

// Collects the failed checks; each is one printed line.
class Checker {
 public:
  void Check(bool ok, const std::string& what) {
    if (!ok) failures_.push_back(what);
  }
  bool ok() const { return failures_.empty(); }
  const std::vector<std::string>& failures() const { return failures_; }

 private:
  std::vector<std::string> failures_;
};

// The value of `key` in object `j` as a string for messages ("absent").
std::string Show(const Json& j, const char* key) {
  if (!j.is_object() || !j.contains(key)) return "absent";
  return j.at(key).dump();
}

bool UintIs(const Json& j, const char* key, uint64_t want) {
  return j.is_object() && j.contains(key) && j.at(key).is_number_unsigned() &&
         j.at(key).get<uint64_t>() == want;
}

bool StringIs(const Json& j, const char* key, const std::string& want) {
  return j.is_object() && j.contains(key) && j.at(key).is_string() &&
         j.at(key).get<std::string>() == want;
}

void CheckDevice(const Json& d, const Expect& e, Checker* c) {
  c->Check(StringIs(d, "volume", e.volume), "device volume " + Show(d, "volume"));
  c->Check(UintIs(d, "region_size", e.size), "device region_size " + Show(d, "region_size"));
  c->Check(d.contains("online") && d.at("online") == true, "device online " + Show(d, "online"));
  c->Check(StringIs(d, "backend_state", e.state),
           "device backend_state " + Show(d, "backend_state"));
  c->Check(StringIs(d, "frontend_state", e.state),
           "device frontend_state " + Show(d, "frontend_state"));
  c->Check(d.contains("error") &&
               (d.at("error").is_null() ||
                (d.at("error").is_string() && d.at("error").get<std::string>().empty())),
           "device error " + Show(d, "error"));
  const bool has_stats = d.contains("statistics") && d.at("statistics").is_object();
  c->Check(has_stats, "device statistics " + Show(d, "statistics"));
  if (has_stats) {
    const Json& s = d.at("statistics");
    c->Check(s.contains("requests") && s.at("requests").is_number_unsigned() &&
                 s.at("requests").get<uint64_t>() > 0,
             "statistics requests " + Show(s, "requests"));
  }
}

int Run(const Expect& e) {
  const std::string text{std::istreambuf_iterator<char>(std::cin), {}};
  Json doc = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) {
    std::printf("RESULT fail stdin is not a JSON document (%zu bytes)\n", text.size());
    return 1;
  }
  Checker c;
  c.Check(doc.is_object(), "the document is not an object");
  if (!doc.is_object()) {
    std::printf("RESULT fail %s\n", c.failures().front().c_str());
    return 1;
  }
  c.Check(doc.contains("backend_domid") && doc.at("backend_domid").is_number_unsigned(),
          "backend_domid " + Show(doc, "backend_domid"));
  c.Check(doc.contains("host_id") && doc.at("host_id").is_string(),
          "host_id " + Show(doc, "host_id"));
  const bool has_daemon = doc.contains("daemon") && doc.at("daemon").is_object();
  c.Check(has_daemon && StringIs(doc.at("daemon"), "status", "running"),
          "daemon " + Show(doc, "daemon"));
  const bool has_devices = doc.contains("devices") && doc.at("devices").is_array();
  c.Check(has_devices, "devices " + Show(doc, "devices"));
  size_t found = 0;
  if (has_devices) {
    for (const Json& d : doc.at("devices")) {
      c.Check(UintIs(d, "frontend_domid", e.domain), "a device of another domain in a --domain " +
                                                         std::to_string(e.domain) +
                                                         " status: " + d.dump());
      if (UintIs(d, "frontend_domid", e.domain) && UintIs(d, "devid", e.devid)) {
        ++found;
        CheckDevice(d, e, &c);
      }
    }
  }
  c.Check(found == 1, "device " + std::to_string(e.domain) + "/" + std::to_string(e.devid) +
                          " listed " + std::to_string(found) + " times");
  for (const std::string& f : c.failures()) std::printf("finding: %s\n", f.c_str());
  if (!c.ok()) {
    std::printf("RESULT fail %zu finding(s), first: %s\n", c.failures().size(),
                c.failures().front().c_str());
    return 1;
  }
  std::printf("RESULT ok dom%u dev %u: volume %s, %llu bytes, %s, daemon %s\n", e.domain, e.devid,
              e.volume.c_str(), static_cast<unsigned long long>(e.size), e.state.c_str(),
              doc.at("daemon").at("status").get<std::string>().c_str());
  return 0;
}

int Main(int argc, char** argv) {
  CLI::App app{"checks `nvram-tool status --json` (stdin) against the lab's device"};
  Expect e;
  app.add_option("--domain", e.domain, "the guest's domain id")->required();
  app.add_option("--devid", e.devid, "its device id")->required();
  app.add_option("--volume", e.volume, "the volume UUID")->required();
  app.add_option("--size", e.size, "the region size in bytes")->required();
  app.add_option("--state", e.state, "expected backend and frontend state name");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& pe) {
    return app.exit(pe) == 0 ? 0 : 2;
  }
  return Run(e);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return Main(argc, argv);
  } catch (const std::exception& ex) {
    std::printf("RESULT fail %s\n", ex.what());
  }
  return 1;
}
