// VolumeRegistry: the volumes this daemon holds, by UUID: acquire (held,
// restored from the vault, or new), vault, and release (vault, then free,
// with the last device). Control thread only (not thread-safe).
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "backend/volume_region.h"
#include "common/parse.h"
#include "common/result.h"
#include "platform/grant.h"

namespace vnvram::backend {

// Volumes whose bytes live in the replication engine: their regions are
// filled from the engine's copy and persist through its sink, and the
// engine vaults them (implemented by the daemon over replication::Engine).
class ReplicatedVolumes {
 public:
  virtual ~ReplicatedVolumes() = default;
  // The volume's size when it is replicated on this host.
  virtual std::optional<uint64_t> ReplicatedSize(const Uuid& volume) const = 0;
  virtual Result<std::unique_ptr<PersistSink>> Attach(const Uuid& volume,
                                                      std::span<std::byte> region) = 0;
};

class VolumeRegistry {
 public:
  VolumeRegistry(platform::GrantSharer& sharer, std::string vault_dir,
                 ReplicatedVolumes* replicated = nullptr)
      : sharer_(sharer), vault_dir_(std::move(vault_dir)), replicated_(replicated) {}

  // The region of `volume`, granted to `grantee`. A region held for another
  // domain is kFailedPrecondition. Without a region in memory, the vault
  // file is used when there is one (kCorruption, naming the file, when it
  // fails a check: a corrupt vault is never used and never replaced by an
  // empty region); else a new region of `size_if_new` bytes is allocated
  // (kInvalidArgument when nullopt). A replicated volume's region comes
  // from the engine instead (its size must match the cluster file's).
  Result<std::shared_ptr<VolumeRegion>> Acquire(const Uuid& volume, DomId grantee,
                                                std::optional<uint64_t> size_if_new);

  // Drops one device's reference (and resets `region`). When no device
  // uses the region any more it is vaulted (unless the vault is current),
  // then freed.
  void Release(std::shared_ptr<VolumeRegion>& region);

  // Vaults every region (only those not vaulted at their current durable
  // sequence when `only_changed`). Returns the first error; tries all.
  Status VaultAll(bool only_changed);
  Status Vault(VolumeRegion& region);

  size_t size() const { return regions_.size(); }

 private:
  platform::GrantSharer& sharer_;
  const std::string vault_dir_;
  ReplicatedVolumes* const replicated_;
  std::map<std::string, std::shared_ptr<VolumeRegion>> regions_;  // by canonical UUID
};

}  // namespace vnvram::backend
