#include "platform/sim/sim_grant_mapper.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <unordered_map>
#include <vector>

#include "platform/sim/sim_layout.h"
#include "platform/sim/sim_owner_token.h"
#include "platform/sim/sim_unmap_notifier.h"

namespace vnvram::sim {

namespace {

using platform::GrantRef;
using platform::kPageSize;

class SimGrantMapping final : public platform::GrantMapping {
 public:
  SimGrantMapping(DomId granter, std::byte* data, size_t pages)
      : granter_(granter), data_(data), pages_(pages), creator_(::getpid()) {}

  ~SimGrantMapping() override {
    // gntdev's order: clear the byte, unmap, send the event.
    if (notifier_) {
      notifier_->Disarm();
      notifier_->ClearByte();
    }
    ::munmap(data_, pages_ * kPageSize);
    if (notifier_ && ::getpid() == creator_) notifier_->SendEvent();
  }

  std::span<std::byte> data() override { return {data_, pages_ * kPageSize}; }
  DomId granter() const override { return granter_; }

  void set_notifier(std::unique_ptr<UnmapNotifier> n) { notifier_ = std::move(n); }

 private:
  const DomId granter_;
  std::byte* const data_;
  const size_t pages_;
  const pid_t creator_;
  std::unique_ptr<UnmapNotifier> notifier_;
};

std::string RefName(DomId granter, GrantRef ref) {
  return "grant ref " + std::to_string(ref) + " of domain " + std::to_string(granter);
}

}  // namespace

Result<std::unique_ptr<SimGrantMapper>> SimGrantMapper::Open(const std::string& dir, DomId self) {
  if (self >= kDomIdFirstReserved) {
    return Status::InvalidArgument("sim grant mapper: domain " + std::to_string(self) +
                                   " is reserved");
  }
  VNVRAM_RETURN_IF_ERROR(MakeDirs(dir + "/grants"));
  return std::unique_ptr<SimGrantMapper>(new SimGrantMapper(dir, self));
}

Result<std::shared_ptr<GrantTable>> SimGrantMapper::TableOf(DomId granter) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = tables_.find(granter);
  if (it != tables_.end()) return it->second;
  VNVRAM_ASSIGN_OR_RETURN(auto table, GrantTable::Open(dir_, granter));
  tables_.emplace(granter, table);
  return table;
}

Result<std::unique_ptr<platform::GrantMapping>> SimGrantMapper::Map(
    DomId granter, std::span<const GrantRef> refs, bool writable,
    std::optional<platform::UnmapNotify> notify) {
  if (notify && !notify->byte_offset && !notify->port) notify.reset();  // asks for nothing
  if (refs.empty()) return Status::InvalidArgument("map: no grant refs");
  if (refs.size() > kGrantTableCapacity) {
    return Status::InvalidArgument("map: " + std::to_string(refs.size()) + " refs");
  }
  if (granter >= kDomIdFirstReserved) {
    return Status::InvalidArgument("map: granter domain " + std::to_string(granter) +
                                   " is reserved");
  }
  if (notify) {
    if (refs.size() != 1) {
      return Status::NotSupported("map: Xen supports unmap notify on single-page maps only");
    }
    if (notify->byte_offset && !writable) {
      return Status::InvalidArgument("map: unmap notify cannot clear a byte of a read-only map");
    }
  }
  VNVRAM_ASSIGN_OR_RETURN(auto table, TableOf(granter));

  // Validate every ref before touching memory, as the hypervisor does.
  std::vector<GrantSnapshot> snaps;
  snaps.reserve(refs.size());
  std::unordered_map<uint64_t, bool> alive;
  for (GrantRef ref : refs) {
    VNVRAM_ASSIGN_OR_RETURN(auto snap, table->Lookup(ref));
    if (snap.state != GrantState::kGranted) {
      return Status(Code::kNotFound, RefName(granter, ref) + ": not in use", ENOENT);
    }
    if (snap.grantee != self_) {
      return Status(Code::kPermissionDenied,
                    RefName(granter, ref) + ": granted to domain " + std::to_string(snap.grantee) +
                        ", not to " + std::to_string(self_),
                    EPERM);
    }
    if (snap.readonly && writable) {
      return Status(Code::kPermissionDenied,
                    RefName(granter, ref) + ": read-only grant mapped writable", EPERM);
    }
    auto it = alive.find(snap.owner);
    if (it == alive.end()) it = alive.emplace(snap.owner, OwnerAlive(dir_, snap.owner)).first;
    if (!it->second) {
      return Status(Code::kNotFound, RefName(granter, ref) + ": the granting handle has gone",
                    ENOENT);
    }
    snaps.push_back(snap);
  }

  const size_t bytes = refs.size() * kPageSize;
  void* base =
      ::mmap(nullptr, bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (base == MAP_FAILED) return Status::FromErrno(errno, "map: reserve address range");
  auto* data = static_cast<std::byte*>(base);
  auto fail = [&](Status s) -> Status {
    ::munmap(base, bytes);
    return s;
  };

  // Open each backing file once.
  struct OpenFile {
    int fd;
    uint64_t pages;
  };
  std::unordered_map<uint64_t, OpenFile> files;
  auto close_files = [&]() {
    for (auto& [id, f] : files) ::close(f.fd);
    files.clear();
  };
  const int prot = PROT_READ | (writable ? PROT_WRITE : 0);
  for (size_t i = 0; i < snaps.size(); ++i) {
    const GrantSnapshot& snap = snaps[i];
    auto it = files.find(snap.file_id);
    if (it == files.end()) {
      const std::string path = GrantPagesPath(dir_, granter, snap.file_id);
      const int fd = ::open(path.c_str(), (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC);
      if (fd < 0) {
        const int err = errno;
        close_files();
        if (err == ENOENT) {
          return fail(Status(Code::kNotFound, RefName(granter, snap.ref) + ": revoked", ENOENT));
        }
        return fail(Status::FromErrno(err, "map: open " + path));
      }
      struct stat st {};
      if (::fstat(fd, &st) != 0) {
        const int err = errno;
        ::close(fd);
        close_files();
        return fail(Status::FromErrno(err, "map: fstat " + path));
      }
      it = files.emplace(snap.file_id, OpenFile{fd, static_cast<uint64_t>(st.st_size) / kPageSize})
               .first;
    }
    if (snap.page >= it->second.pages) {
      close_files();
      return fail(Status::Corruption(RefName(granter, snap.ref) + ": page " +
                                     std::to_string(snap.page) + " beyond its backing file"));
    }
    void* p = ::mmap(data + i * kPageSize, kPageSize, prot, MAP_SHARED | MAP_FIXED, it->second.fd,
                     static_cast<off_t>(snap.page) * static_cast<off_t>(kPageSize));
    if (p == MAP_FAILED) {
      const int err = errno;
      close_files();
      return fail(Status::FromErrno(err, "map: mmap " + RefName(granter, snap.ref)));
    }
  }
  close_files();

  // A ref revoked (and perhaps reused) while we mapped must not count.
  for (const GrantSnapshot& snap : snaps) {
    if (!table->Unchanged(snap)) {
      return fail(
          Status(Code::kNotFound, RefName(granter, snap.ref) + ": revoked while mapping", ENOENT));
    }
  }

  auto mapping = std::make_unique<SimGrantMapping>(granter, data, refs.size());
  if (notify) {
    auto armed = UnmapNotifier::Arm(dir_, self_, data, *notify);
    if (!armed.ok()) return armed.status().WithContext("map");  // mapping unmaps itself
    mapping->set_notifier(std::move(*armed));
  }
  return std::unique_ptr<platform::GrantMapping>(std::move(mapping));
}

}  // namespace vnvram::sim
