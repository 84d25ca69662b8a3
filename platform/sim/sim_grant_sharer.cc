#include "platform/sim/sim_grant_sharer.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <unordered_map>
#include <vector>

#include "platform/sim/sim_layout.h"
#include "platform/sim/sim_unmap_notifier.h"

namespace vnvram::sim {

namespace {

using platform::GrantRef;
using platform::kPageSize;

class SimSharedPages final : public platform::SharedPages {
 public:
  SimSharedPages(std::shared_ptr<GrantTable> table, std::shared_ptr<OwnerToken> token,
                 DomId grantee, std::vector<GrantRef> refs, std::byte* data, size_t pages,
                 std::string path)
      : table_(std::move(table)),
        token_(std::move(token)),
        grantee_(grantee),
        refs_(std::move(refs)),
        data_(data),
        pages_(pages),
        path_(std::move(path)),
        creator_(::getpid()) {}

  ~SimSharedPages() override {
    if (::getpid() == creator_) {
      // gntalloc's order: clear the byte, send the event, end access.
      if (notifier_) {
        notifier_->Disarm();
        notifier_->ClearByte();
        notifier_->SendEvent();
      }
      for (GrantRef ref : refs_) table_->Release(ref);
      ::unlink(path_.c_str());
      table_->UnreservePages(pages_);
    }
    notifier_.reset();
    ::munmap(data_, pages_ * kPageSize);
  }

  std::span<std::byte> data() override { return {data_, pages_ * kPageSize}; }
  std::span<const GrantRef> refs() const override { return refs_; }
  DomId grantee() const override { return grantee_; }

  void set_notifier(std::unique_ptr<UnmapNotifier> n) { notifier_ = std::move(n); }

 private:
  const std::shared_ptr<GrantTable> table_;
  const std::shared_ptr<OwnerToken> token_;  // the owner id in the entries
  const DomId grantee_;
  const std::vector<GrantRef> refs_;
  std::byte* const data_;
  const size_t pages_;
  const std::string path_;
  const pid_t creator_;
  std::unique_ptr<UnmapNotifier> notifier_;
};

}  // namespace

Result<uint64_t> GntallocLimitFromEnv() {
  const char* env = std::getenv(kGntallocLimitEnv);
  if (env == nullptr) return kDefaultGntallocLimit;
  auto v = ParseU64InRange(env, 1, uint64_t{1} << 40, kGntallocLimitEnv);
  if (!v.ok()) return v.status();
  return *v;
}

Result<std::unique_ptr<SimGrantSharer>> SimGrantSharer::Open(const std::string& dir, DomId self,
                                                             std::optional<uint64_t> limit) {
  if (self >= kDomIdFirstReserved) {
    return Status::InvalidArgument("sim grant sharer: domain " + std::to_string(self) +
                                   " is reserved");
  }
  uint64_t cap = 0;
  if (limit) {
    if (*limit == 0) return Status::InvalidArgument("sim grant sharer: limit 0");
    cap = *limit;
  } else {
    VNVRAM_ASSIGN_OR_RETURN(cap, GntallocLimitFromEnv());
  }
  VNVRAM_ASSIGN_OR_RETURN(auto table, GrantTable::Open(dir, self));
  VNVRAM_ASSIGN_OR_RETURN(auto token, OwnerToken::Create(dir));
  return std::unique_ptr<SimGrantSharer>(
      new SimGrantSharer(dir, self, cap, std::move(table), std::move(token)));
}

size_t SimGrantSharer::ReclaimDead() {
  std::unordered_map<uint64_t, bool> alive;
  size_t reclaimed = 0;
  for (GrantRef ref = kFirstGrantRef; ref < kGrantTableCapacity; ++ref) {
    auto snap = table_->Lookup(ref);
    if (!snap.ok() || snap->state == GrantState::kFree || snap->owner == 0) continue;
    auto it = alive.find(snap->owner);
    if (it == alive.end()) it = alive.emplace(snap->owner, OwnerAlive(dir_, snap->owner)).first;
    if (it->second || !table_->ReleaseIf(ref, snap->control)) continue;
    table_->UnreservePages(1);
    if (snap->state == GrantState::kGranted) {
      ::unlink(GrantPagesPath(dir_, self_, snap->file_id).c_str());
    }
    ++reclaimed;
  }
  return reclaimed;
}

Result<std::unique_ptr<platform::SharedPages>> SimGrantSharer::Share(
    DomId grantee, size_t pages, bool writable, std::optional<platform::UnmapNotify> notify) {
  if (notify && !notify->byte_offset && !notify->port) notify.reset();  // asks for nothing
  if (pages == 0) return Status::InvalidArgument("share: zero pages");
  if (pages > kGrantTableCapacity) {
    return Status(Code::kResourceExhausted,
                  "share: " + std::to_string(pages) + " pages exceed the grant table", ENOSPC);
  }
  if (grantee >= kDomIdFirstReserved) {
    return Status::InvalidArgument("share: grantee domain " + std::to_string(grantee) +
                                   " is reserved");
  }
  if (notify && pages != 1) {
    return Status::NotSupported("share: Xen supports unmap notify on single-page shares only");
  }

  if (!table_->ReservePages(pages, limit_)) {
    ReclaimDead();
    if (!table_->ReservePages(pages, limit_)) {
      return Status(Code::kResourceExhausted,
                    "share " + std::to_string(pages) + " pages: gntalloc limit of " +
                        std::to_string(limit_) + " pages reached (" +
                        std::to_string(table_->PagesInUse()) + " in use by domain " +
                        std::to_string(self_) + ")",
                    ENOSPC);
    }
  }
  std::vector<GrantRef> refs;
  std::byte* data = nullptr;
  std::string path;
  // Undoes whatever was set up when a later step fails.
  auto cleanup = [&]() {
    for (GrantRef ref : refs) table_->Release(ref);
    if (data != nullptr) ::munmap(data, pages * kPageSize);
    if (!path.empty()) ::unlink(path.c_str());
    table_->UnreservePages(pages);
  };

  const uint64_t file_id = table_->NextFileId();
  const std::string candidate = GrantPagesPath(dir_, self_, file_id);
  const int fd = ::open(candidate.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    Status s = Status::FromErrno(errno, "share: create " + candidate);
    cleanup();
    return s;
  }
  path = candidate;
  const size_t bytes = pages * kPageSize;
  if (::ftruncate(fd, static_cast<off_t>(bytes)) != 0) {
    Status s = Status::FromErrno(errno, "share: size " + path);
    ::close(fd);
    cleanup();
    return s;
  }
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  const int mmap_errno = errno;
  ::close(fd);
  if (p == MAP_FAILED) {
    cleanup();
    return Status::FromErrno(mmap_errno, "share: mmap " + path);
  }
  data = static_cast<std::byte*>(p);

  refs.reserve(pages);
  for (size_t i = 0; i < pages; ++i) {
    auto ref = table_->Claim(token_->id(), hint_.load(std::memory_order_relaxed));
    if (!ref.ok()) {
      cleanup();
      return ref.status();
    }
    refs.push_back(*ref);
    hint_.store(*ref + 1 < kGrantTableCapacity ? *ref + 1 : kFirstGrantRef,
                std::memory_order_relaxed);
  }
  for (size_t i = 0; i < pages; ++i) {
    table_->Publish(refs[i], grantee, !writable, file_id, static_cast<uint32_t>(i));
  }

  std::unique_ptr<UnmapNotifier> notifier;
  if (notify) {
    auto armed = UnmapNotifier::Arm(dir_, self_, data, *notify);
    if (!armed.ok()) {
      cleanup();
      return armed.status().WithContext("share");
    }
    notifier = std::move(*armed);
  }
  auto shared = std::make_unique<SimSharedPages>(table_, token_, grantee, std::move(refs), data,
                                                 pages, std::move(path));
  shared->set_notifier(std::move(notifier));
  return std::unique_ptr<platform::SharedPages>(std::move(shared));
}

}  // namespace vnvram::sim
