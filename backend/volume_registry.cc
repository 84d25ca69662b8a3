#include "backend/volume_registry.h"

#include <cstring>

#include "backend/vault_file.h"
#include "common/log.h"
#include "xenstore-schema/schema.h"

namespace vnvram::backend {

Result<std::shared_ptr<VolumeRegion>> VolumeRegistry::Acquire(const Uuid& volume, DomId grantee,
                                                              std::optional<uint64_t> size_if_new) {
  const std::string key = volume.ToString();
  if (auto it = regions_.find(key); it != regions_.end()) {
    if (it->second->grantee() != grantee) {
      return Status::FailedPrecondition("volume " + key + " is in use by domain " +
                                        std::to_string(it->second->grantee()));
    }
    return it->second;
  }
  if (replicated_ != nullptr) {
    if (std::optional<uint64_t> size = replicated_->ReplicatedSize(volume)) {
      if (size_if_new && *size_if_new != *size) {
        return Status::InvalidArgument("volume " + key + " is " + std::to_string(*size) +
                                       " bytes in the cluster file, not " +
                                       std::to_string(*size_if_new));
      }
      auto r = VolumeRegion::CreateWithSink(
          sharer_, volume, grantee, *size / platform::kPageSize,
          [&](std::span<std::byte> bytes) { return replicated_->Attach(volume, bytes); });
      if (!r.ok()) return r.status();
      std::shared_ptr<VolumeRegion> region = std::move(r).value();
      spdlog::info("volume {}: region of {} bytes from the replicated copy", key, region->size());
      regions_.emplace(key, region);
      return region;
    }
  }
  auto header = ReadVaultHeader(vault_dir_, volume, schema::be::kRegionSizeMax);
  std::shared_ptr<VolumeRegion> region;
  if (header.ok()) {
    auto r =
        VolumeRegion::Create(sharer_, volume, grantee, header->region_size / platform::kPageSize,
                             header->durable_seq, /*from_vault=*/true);
    if (!r.ok()) return r.status();
    // The region is not published yet: a bad checksum leaves nothing behind.
    if (Status s = ReadVaultData(vault_dir_, *header, (*r)->bytes()); !s.ok()) {
      return Status::Corruption("vault " + VaultPath(vault_dir_, volume) +
                                " is corrupt, not used: " + s.message());
    }
    region = std::move(r).value();
    spdlog::info("volume {}: restored {} bytes at sequence {} from {}", key, region->size(),
                 header->durable_seq, VaultPath(vault_dir_, volume));
  } else if (header.status().code() == Code::kNotFound) {
    if (!size_if_new) {
      return Status::InvalidArgument("volume " + key +
                                     " is not held here, has no vault and no size was given");
    }
    auto r = VolumeRegion::Create(sharer_, volume, grantee, *size_if_new / platform::kPageSize);
    if (!r.ok()) return r.status();
    region = std::move(r).value();
    spdlog::info("volume {}: new region of {} bytes", key, region->size());
  } else if (header.status().code() == Code::kCorruption) {
    return Status::Corruption("vault " + VaultPath(vault_dir_, volume) +
                              " is corrupt, not used: " + header.status().message());
  } else {
    return header.status();
  }
  regions_.emplace(key, region);
  return region;
}

void VolumeRegistry::Release(std::shared_ptr<VolumeRegion>& region) {
  if (!region) return;
  const std::string key = region->volume().ToString();
  auto it = regions_.find(key);
  region.reset();
  if (it == regions_.end() || it->second.use_count() > 1) return;
  if (it->second->vault_current()) {
    // Nothing persisted since the last vault (shutdown vaults first).
  } else if (Status s = Vault(*it->second); !s.ok()) {
    spdlog::error("volume {}: vault before freeing failed: {}", key, s.ToString());
  }
  regions_.erase(it);
  spdlog::info("volume {}: region freed", key);
}

Status VolumeRegistry::Vault(VolumeRegion& region) {
  if (region.external_sink()) return Status::Ok();  // the engine vaults it
  // Read the sequence first: the bytes copied afterwards are at least as new.
  const uint64_t seq = region.durable_seq();
  Status s = WriteVault(vault_dir_, region.volume(), seq, region.bytes());
  if (!s.ok()) return s.WithContext("vault volume " + region.volume().ToString());
  region.set_vaulted(seq);
  spdlog::info("volume {}: vaulted {} bytes at sequence {}", region.volume().ToString(),
               region.size(), seq);
  return Status::Ok();
}

Status VolumeRegistry::VaultAll(bool only_changed) {
  Status first;
  for (auto& [key, region] : regions_) {
    if (only_changed && region->vault_current()) continue;
    Status s = Vault(*region);
    if (!s.ok()) {
      spdlog::error("{}", s.ToString());
      if (first.ok()) first = s;
    }
  }
  return first;
}

}  // namespace vnvram::backend
