#include "tools/nvram-tool/cluster_file_edit.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <set>

#include "backend/replication/host_id.h"

namespace vnvram::tools {

namespace {

using OrderedJson = nlohmann::ordered_json;

// Closes an fd on scope exit.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  int release() {
    const int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  int fd_;
};

std::string DirOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

std::string BaseOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// The cluster file opened and exclusively locked. The lock is on the inode:
// an editor that renamed a new file over the path while we waited leaves us
// holding the old one, so the path is checked again after the lock.
struct LockedFile {
  std::unique_ptr<Fd> fd;
  struct stat st {};
  std::string text;
};

Result<LockedFile> OpenLocked(const std::string& path) {
  for (int attempt = 0; attempt < 100; ++attempt) {
    auto fd = std::make_unique<Fd>(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd->get() < 0) return Status::FromErrno(errno, "open cluster file " + path);
    while (::flock(fd->get(), LOCK_EX) != 0) {
      if (errno != EINTR) return Status::FromErrno(errno, "lock cluster file " + path);
    }
    LockedFile f;
    struct stat now {};
    if (::fstat(fd->get(), &f.st) != 0) return Status::FromErrno(errno, "stat " + path);
    if (::stat(path.c_str(), &now) != 0) {
      if (errno == ENOENT) continue;  // renamed away while we waited
      return Status::FromErrno(errno, "stat " + path);
    }
    if (now.st_dev != f.st.st_dev || now.st_ino != f.st.st_ino) continue;
    if (!S_ISREG(f.st.st_mode)) {
      return Status::InvalidArgument("cluster file " + path + " is not a regular file");
    }
    char buf[8192];
    for (;;) {
      const ssize_t n = ::read(fd->get(), buf, sizeof buf);
      if (n < 0) {
        if (errno == EINTR) continue;
        return Status::FromErrno(errno, "read cluster file " + path);
      }
      if (n == 0) break;
      f.text.append(buf, static_cast<size_t>(n));
      if (f.text.size() > replication::kMaxClusterFileSize) {
        return Status::InvalidArgument(path + ": larger than " +
                                       std::to_string(replication::kMaxClusterFileSize) + " bytes");
      }
    }
    f.fd = std::move(fd);
    return f;
  }
  return Status::Aborted("cluster file " + path +
                         " kept being replaced while waiting for its lock");
}

Status WriteAll(int fd, const std::string& text, const std::string& what) {
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, "write " + what);
    }
    done += static_cast<size_t>(n);
  }
  return {};
}

// Writes `text` next to `path` and renames it over `path` (the locked file
// `f` gives the mode and owner), then syncs the directory.
Status ReplaceFile(const std::string& path, const LockedFile& f, const std::string& text) {
  const std::string dir = DirOf(path);
  std::string tmpl = dir + "/." + BaseOf(path) + ".XXXXXX";
  Fd tmp(::mkostemp(tmpl.data(), O_CLOEXEC));
  if (tmp.get() < 0) return Status::FromErrno(errno, "create a temporary file in " + dir);
  auto fail = [&](Status s) {
    ::unlink(tmpl.c_str());
    return s;
  };
  if (::fchmod(tmp.get(), f.st.st_mode & 07777) != 0) {
    return fail(Status::FromErrno(errno, "chmod " + tmpl));
  }
  // Keep the owner when we may (root); another user's file stays theirs
  // only if we are root, so EPERM is not an error.
  if (::fchown(tmp.get(), f.st.st_uid, f.st.st_gid) != 0 && errno != EPERM) {
    return fail(Status::FromErrno(errno, "chown " + tmpl));
  }
  if (Status s = WriteAll(tmp.get(), text, tmpl); !s.ok()) return fail(s);
  if (::fsync(tmp.get()) != 0) return fail(Status::FromErrno(errno, "fsync " + tmpl));
  if (::close(tmp.release()) != 0) return fail(Status::FromErrno(errno, "close " + tmpl));
  if (::rename(tmpl.c_str(), path.c_str()) != 0) {
    return fail(Status::FromErrno(errno, "rename " + tmpl + " to " + path));
  }
  Fd d(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (d.get() < 0 || ::fsync(d.get()) != 0) {
    return Status::FromErrno(errno, "fsync directory " + dir + " (the new file is in place)");
  }
  return {};
}

// Runs `change` on the locked, validated file and writes the result. A
// symbolic link is followed: its target is replaced, the link stays.
Status Edit(const std::string& given,
            const std::function<Status(const replication::ClusterConfig&, OrderedJson&)>& change) {
  char* resolved = ::realpath(given.c_str(), nullptr);
  if (resolved == nullptr) return Status::FromErrno(errno, "open cluster file " + given);
  const std::string path = resolved;
  std::free(resolved);  // NOLINT(cppcoreguidelines-no-malloc): realpath's buffer
  VNVRAM_ASSIGN_OR_RETURN(LockedFile f, OpenLocked(path));
  VNVRAM_ASSIGN_OR_RETURN(const replication::ClusterConfig before,
                          replication::ParseClusterConfig(f.text, path));
  OrderedJson doc;
  try {
    doc = OrderedJson::parse(f.text);
  } catch (const OrderedJson::exception& e) {
    return Status::InvalidArgument(path + ": not valid JSON: " + e.what());
  }
  VNVRAM_RETURN_IF_ERROR(change(before, doc));
  const std::string text = doc.dump(2) + "\n";
  if (auto after = replication::ParseClusterConfig(text, path); !after.ok()) {
    return after.status().WithContext("the changed cluster file would not be valid");
  }
  return ReplaceFile(path, f, text);
}

}  // namespace

Result<Uuid> RandomUuid() {
  Uuid u;
  size_t got = 0;
  while (got < u.bytes.size()) {
    const ssize_t n = ::getrandom(u.bytes.data() + got, u.bytes.size() - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, "getrandom");
    }
    got += static_cast<size_t>(n);
  }
  u.bytes[6] = static_cast<uint8_t>((u.bytes[6] & 0x0f) | 0x40);  // version 4
  u.bytes[8] = static_cast<uint8_t>((u.bytes[8] & 0x3f) | 0x80);  // RFC 4122 variant
  return u;
}

Status CheckNewVolume(const replication::ClusterConfig& c, const NewVolume& v) {
  if (!replication::IsValidHostId(v.name)) {
    return Status::InvalidArgument("--name " + QuoteForError(v.name) +
                                   ": not 1..64 of [A-Za-z0-9._-] starting alphanumeric");
  }
  for (const auto& e : c.volumes) {
    if (e.name == v.name) {
      return Status::InvalidArgument("--name " + QuoteForError(v.name) +
                                     ": the cluster file has a volume of that name (" +
                                     e.uuid.ToString() + ")");
    }
  }
  if (v.size < 4096 || v.size > replication::kMaxVolumeSize || v.size % 4096 != 0) {
    return Status::InvalidArgument("--size " + std::to_string(v.size) +
                                   ": not a multiple of 4096 in 4K..1G");
  }
  if (v.replicas.empty() || v.replicas.size() > replication::kMaxReplicas) {
    return Status::InvalidArgument("--replicas: " + std::to_string(v.replicas.size()) +
                                   " hosts, expected 1.." +
                                   std::to_string(replication::kMaxReplicas));
  }
  std::set<std::string> seen;
  for (const auto& h : v.replicas) {
    if (c.FindHost(h) == nullptr) {
      return Status::InvalidArgument("--replicas " + QuoteForError(h) +
                                     ": not a host id listed in the cluster file's hosts");
    }
    if (!seen.insert(h).second) {
      return Status::InvalidArgument("--replicas " + QuoteForError(h) + ": host listed twice");
    }
  }
  if (v.uuid) {
    if (v.uuid->IsNil()) return Status::InvalidArgument("--uuid " + v.uuid->ToString() + ": nil");
    if (const auto* e = c.FindVolume(*v.uuid)) {
      return Status::InvalidArgument("--uuid " + v.uuid->ToString() +
                                     ": the cluster file has a volume with that UUID (" + e->name +
                                     ")");
    }
  }
  return {};
}

Result<Uuid> AddVolumeToClusterFile(const std::string& path, const NewVolume& v) {
  Uuid uuid;
  if (v.uuid) {
    uuid = *v.uuid;
  } else {
    VNVRAM_ASSIGN_OR_RETURN(uuid, RandomUuid());
  }
  Status s = Edit(path, [&](const replication::ClusterConfig& c, OrderedJson& doc) -> Status {
    NewVolume checked = v;
    checked.uuid = uuid;
    VNVRAM_RETURN_IF_ERROR(CheckNewVolume(c, checked));
    OrderedJson entry;
    entry["uuid"] = uuid.ToString();
    entry["name"] = v.name;
    entry["size"] = v.size;
    entry["replicas"] = v.replicas;
    entry["policy"] = std::string(replication::PolicyName(v.policy));
    doc["volumes"].push_back(std::move(entry));
    return {};
  });
  if (!s.ok()) return s;
  return uuid;
}

VolumeSelector SelectVolume(const std::string& text) {
  if (auto u = ParseUuid(text); u.ok()) return *u;
  return text;
}

std::string DescribeSelector(const VolumeSelector& s) {
  if (const Uuid* u = std::get_if<Uuid>(&s)) return "volume " + u->ToString();
  return "volume named " + QuoteForError(std::get<std::string>(s));
}

Result<replication::VolumeEntry> RemoveVolumeFromClusterFile(
    const std::string& path, const VolumeSelector& which,
    const std::function<Status(const replication::VolumeEntry&)>& may_remove) {
  replication::VolumeEntry removed;
  Status s = Edit(path, [&](const replication::ClusterConfig& c, OrderedJson& doc) -> Status {
    size_t index = c.volumes.size();
    for (size_t i = 0; i < c.volumes.size(); ++i) {
      const auto& e = c.volumes[i];
      const bool match = std::holds_alternative<Uuid>(which)
                             ? e.uuid == std::get<Uuid>(which)
                             : e.name == std::get<std::string>(which);
      if (match) index = i;
    }
    if (index == c.volumes.size()) {
      return Status::NotFound(DescribeSelector(which) + " is not in " + path);
    }
    VNVRAM_RETURN_IF_ERROR(may_remove(c.volumes[index]));
    removed = c.volumes[index];
    // The parser accepted the file: volumes is an array in file order.
    doc["volumes"].erase(index);
    return {};
  });
  if (!s.ok()) return s;
  return removed;
}

}  // namespace vnvram::tools
