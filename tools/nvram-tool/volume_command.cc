#include "tools/nvram-tool/volume_command.h"

#include <nlohmann/json.hpp>

#include "backend/replication/host_id.h"
#include "tools/nvram-tool/cluster_file_edit.h"
#include "tools/nvram-tool/cluster_view.h"
#include "tools/nvram-tool/toolstack.h"

namespace vnvram::tools {

namespace {

using Json = nlohmann::json;

Json U64OrNull(const std::string& text) {
  auto n = ParseU64(text);
  return n.ok() ? Json(*n) : Json(nullptr);
}

// "a,b,c" -> hosts; every element must be non-empty.
Result<std::vector<std::string>> SplitReplicas(const std::string& text) {
  std::vector<std::string> out;
  if (text.empty()) return Status::InvalidArgument("--replicas '': empty (give host ids, a,b,c)");
  size_t start = 0;
  for (;;) {
    const size_t comma = text.find(',', start);
    const std::string host = text.substr(start, comma == std::string::npos ? comma : comma - start);
    if (!replication::IsValidHostId(host)) {
      return Status::InvalidArgument("--replicas " + QuoteForError(text) + ": host id " +
                                     QuoteForError(host) +
                                     " is not 1..64 of [A-Za-z0-9._-] starting alphanumeric");
    }
    out.push_back(host);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

Status RequireNonEmpty(const std::string& value, const std::string& option) {
  if (value.empty()) return Status::InvalidArgument(option + " '': empty");
  return {};
}

// The devices on this host (every domain, as dom0 sees them) that lead to
// `volume`, as "domain F devid N" strings.
Result<std::vector<std::string>> LocalUsers(const std::string& platform_spec, const Uuid& volume) {
  auto session = OpenXenStoreSession(platform_spec);
  if (!session.ok()) return session.status();
  auto devices = List(*session->xs);
  if (!devices.ok()) return devices.status();
  std::vector<std::string> users;
  for (const auto& d : *devices) {
    auto u = ParseUuid(d.volume);
    if (u.ok() && *u == volume) {
      users.push_back("domain " + std::to_string(d.frontend) + " devid " + std::to_string(d.dev));
    }
  }
  return users;
}

Json VolumeListJson(const ClusterView& view) {
  Json j;
  j["cluster_file"] = view.cluster_file;
  j["local_host"] = view.local_host() ? Json(*view.local_host()) : Json(nullptr);
  j["local_view_error"] = view.no_local_view.empty() ? Json(nullptr) : Json(view.no_local_view);
  j["volumes"] = Json::array();
  for (const auto& v : view.config.volumes) {
    Json jv = {{"uuid", v.uuid.ToString()},
               {"name", v.name},
               {"size", v.size},
               {"policy", std::string(replication::PolicyName(v.policy))},
               {"replicas", v.replicas},
               {"local_state", std::string(LocalVolumeStateName(view.StateOf(v)))}};
    if (const auto* p = view.Published(v.uuid)) {
      jv["local"] = {{"role", p->role},
                     {"epoch", U64OrNull(p->epoch)},
                     {"sequence", U64OrNull(p->sequence)},
                     {"serving", p->serving == "1"}};
    } else {
      jv["local"] = nullptr;
    }
    j["volumes"].push_back(std::move(jv));
  }
  j["drift"] = view.Drift();
  return j;
}

void PrintVolumeList(const ClusterView& view) {
  std::printf("%-36s %-16s %-8s %-6s %-24s %s\n", "uuid", "name", "size", "policy", "replicas",
              "here");
  for (const auto& v : view.config.volumes) {
    std::string replicas;
    for (const auto& r : v.replicas) replicas += (replicas.empty() ? "" : ",") + r;
    std::string here(LocalVolumeStateName(view.StateOf(v)));
    if (const auto* p = view.Published(v.uuid)) {
      here = p->role + " epoch " + p->epoch + " sequence " + p->sequence +
             (p->serving == "1" ? " serving" : "");
    }
    std::printf("%-36s %-16s %-8s %-6s %-24s %s\n", v.uuid.ToString().c_str(), v.name.c_str(),
                FormatSize(v.size).c_str(), std::string(replication::PolicyName(v.policy)).c_str(),
                replicas.c_str(), here.c_str());
  }
  for (const auto& d : view.Drift()) std::printf("note: %s\n", d.c_str());
}

class VolumeCommand : public Command {
 public:
  explicit VolumeCommand(CLI::App& app) {
    sub_ = app.add_subcommand("volume",
                              "replicated volumes of the cluster file: create, destroy, list");
    sub_->require_subcommand(1);
    const std::string cluster_help =
        "cluster file (default $VNVRAM_CLUSTER, else /etc/vnvram/cluster.json)";

    create_ = sub_->add_subcommand(
        "create", "add a volume to the cluster file (atomically) and print its UUID");
    create_->add_option("--cluster", c_cluster_, cluster_help);
    create_->allow_extras();
    create_->add_option("--name", c_name_, "(required) volume name, 1..64 of [A-Za-z0-9._-]");
    create_->add_option("--size", c_size_,
                        "(required) size: 4K..1G, a multiple of 4096 (4096, 64M, 1G)");
    create_->add_option(
        "--replicas", c_replicas_,
        "(required) host ids of the replica group, the initial primary first (a,b,c)");
    create_->add_option("--policy", c_policy_, "sync (default) or async");
    c_uuid_opt_ = create_->add_option("--uuid", c_uuid_, "the volume's UUID (default: random)");

    destroy_ = sub_->add_subcommand(
        "destroy", "remove a volume from the cluster file (refused while a device uses it here)");
    destroy_->allow_extras();
    destroy_->add_option("volume", d_volume_, "(required) the volume's UUID or name");
    destroy_->add_option("--cluster", d_cluster_, cluster_help);
    destroy_->add_flag("--force", d_force_,
                       "remove it without checking this host's devices (or without xenstore)");

    list_ = sub_->add_subcommand(
        "list", "the cluster file's volumes and, where the local vnvramd holds one, its state");
    list_->allow_extras();
    list_->add_option("--cluster", l_cluster_, cluster_help);
    list_->add_option("--backend", l_backend_,
                      "domain running the local vnvramd (default: this domain)");
    list_->add_flag("--json", l_json_, "machine-readable output (schema: docs/nvram-tool.md)");
  }

  bool Parsed() const override { return sub_->parsed(); }

  int Run(const std::string& platform_spec) override {
    if (create_->parsed()) return Create();
    if (destroy_->parsed()) return Destroy(platform_spec);
    return List(platform_spec);
  }

 private:
  int Create() {
    if (Status s = RejectExtras(create_); !s.ok()) return UsageError(s.message());
    for (const char* o : {"--name", "--size", "--replicas"}) {
      if (Status s = Require(create_, o); !s.ok()) return UsageError(s.message());
    }
    auto cluster = ParseClusterFile(create_, c_cluster_);
    if (!cluster.ok()) return UsageError(cluster.status().message());
    NewVolume v;
    if (!replication::IsValidHostId(c_name_)) {
      return UsageError("--name " + QuoteForError(c_name_) +
                        ": not 1..64 of [A-Za-z0-9._-] starting alphanumeric");
    }
    v.name = c_name_;
    if (Status s = RequireNonEmpty(c_size_, "--size"); !s.ok()) return UsageError(s.message());
    auto size = ParseSize(c_size_, "--size");
    if (!size.ok()) return UsageError(size.status().message());
    if (*size < 4096 || *size > replication::kMaxVolumeSize || *size % 4096 != 0) {
      return UsageError("--size " + QuoteForError(c_size_) + ": not a multiple of 4096 in 4K..1G");
    }
    v.size = *size;
    auto replicas = SplitReplicas(c_replicas_);
    if (!replicas.ok()) return UsageError(replicas.status().message());
    v.replicas = std::move(replicas).value();
    if (c_policy_ == "sync") {
      v.policy = replication::Policy::kSync;
    } else if (c_policy_ == "async") {
      v.policy = replication::Policy::kAsync;
    } else {
      return UsageError("--policy " + QuoteForError(c_policy_) + ": not sync or async");
    }
    if (c_uuid_opt_->count() != 0) {
      auto u = ParseUuid(c_uuid_, "--uuid");
      if (!u.ok()) return UsageError(u.status().message());
      if (u->IsNil()) return UsageError("--uuid " + c_uuid_ + ": the nil UUID is not a volume");
      v.uuid = *u;
    }
    auto uuid = AddVolumeToClusterFile(*cluster, v);
    if (!uuid.ok()) {
      // A bad value against the file (a duplicate name, an unknown host) is
      // a usage error too: nothing was changed.
      if (uuid.status().code() == Code::kInvalidArgument &&
          uuid.status().message().rfind("--", 0) == 0) {
        return UsageError(uuid.status().message());
      }
      return Failure(uuid.status());
    }
    std::printf("%s\n", uuid->ToString().c_str());
    return kExitOk;
  }

  int Destroy(const std::string& platform_spec) {
    if (Status s = RejectExtras(destroy_); !s.ok()) return UsageError(s.message());
    if (Status s = Require(destroy_, "volume"); !s.ok()) return UsageError(s.message());
    auto cluster = ParseClusterFile(destroy_, d_cluster_);
    if (!cluster.ok()) return UsageError(cluster.status().message());
    if (d_volume_.empty()) return UsageError("volume '': empty (a UUID or a name)");
    const VolumeSelector which = SelectVolume(d_volume_);
    if (std::holds_alternative<std::string>(which) && !replication::IsValidHostId(d_volume_)) {
      return UsageError("volume " + QuoteForError(d_volume_) +
                        ": neither a UUID nor a volume name");
    }
    auto removed = RemoveVolumeFromClusterFile(
        *cluster, which, [&](const replication::VolumeEntry& e) -> Status {
          if (d_force_) return {};
          auto users = LocalUsers(platform_spec, e.uuid);
          if (!users.ok()) {
            return Status(users.status().code(),
                          "cannot check this host's devices for volume " + e.uuid.ToString() +
                              ": " + users.status().message() + " (--force skips the check)");
          }
          if (!users->empty()) {
            std::string list;
            for (const auto& u : *users) list += (list.empty() ? "" : ", ") + u;
            return Status::FailedPrecondition("volume " + e.name + " (" + e.uuid.ToString() +
                                              ") is in use by " + list +
                                              " (detach first, or --force)");
          }
          return {};
        });
    if (!removed.ok()) return Failure(removed.status());
    std::printf("removed volume %s (%s) from %s\n", removed->name.c_str(),
                removed->uuid.ToString().c_str(), cluster->c_str());
    return kExitOk;
  }

  int List(const std::string& platform_spec) {
    if (Status s = RejectExtras(list_); !s.ok()) return UsageError(s.message());
    auto cluster = ParseClusterFile(list_, l_cluster_);
    if (!cluster.ok()) return UsageError(cluster.status().message());
    auto b = ParseLocalBackend(list_, l_backend_);
    if (!b.ok()) return UsageError(b.status().message());
    auto view = LoadClusterView(*cluster, platform_spec, *b);
    if (!view.ok()) return Failure(view.status());
    if (l_json_) {
      std::printf("%s\n", VolumeListJson(*view).dump(2).c_str());
    } else {
      PrintVolumeList(*view);
    }
    return kExitOk;
  }

  CLI::App* sub_ = nullptr;
  CLI::App* create_ = nullptr;
  CLI::App* destroy_ = nullptr;
  CLI::App* list_ = nullptr;
  std::string c_cluster_, c_name_, c_size_, c_replicas_, c_policy_ = "sync", c_uuid_;
  CLI::Option* c_uuid_opt_ = nullptr;
  std::string d_cluster_, d_volume_;
  bool d_force_ = false;
  std::string l_cluster_, l_backend_;
  bool l_json_ = false;
};

}  // namespace

std::unique_ptr<Command> AddVolumeCommand(CLI::App& app) {
  return std::make_unique<VolumeCommand>(app);
}

}  // namespace vnvram::tools
