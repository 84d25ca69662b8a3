// VolumeRegion: one volume's memory: the granted region pages, the
// read-only page-directory pages and the persist sink. Constant after
// Create() except the sink (thread-safe) and the region bytes, which the
// guest and the ring worker change at will.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "backend/persist_sink.h"
#include "common/parse.h"
#include "common/result.h"
#include "platform/grant.h"

namespace vnvram::backend {

// The region pages are allocated and granted to the frontend domain through
// the platform's grant-sharing call; the directory pages list their refs.
// A region outlives the connections of the devices that serve it.
class VolumeRegion {
 public:
  // Shares `pages` zeroed region pages writable with `grantee` and builds
  // the directory pages (read-only). `start_seq` seeds the durable
  // sequence; `from_vault` says the vault already holds the region at that
  // sequence (the caller fills the bytes). kResourceExhausted when the
  // platform's limit is reached.
  static Result<std::unique_ptr<VolumeRegion>> Create(platform::GrantSharer& sharer,
                                                      const Uuid& volume, DomId grantee,
                                                      uint64_t pages, uint64_t start_seq = 0,
                                                      bool from_vault = false);

  // A region whose content and sink come from elsewhere (the replication
  // engine): `make_sink` fills the new region's bytes and returns the sink
  // persists go through. Such a region is never vaulted by the registry.
  using SinkFactory = std::function<Result<std::unique_ptr<PersistSink>>(std::span<std::byte>)>;
  static Result<std::unique_ptr<VolumeRegion>> CreateWithSink(platform::GrantSharer& sharer,
                                                              const Uuid& volume, DomId grantee,
                                                              uint64_t pages,
                                                              const SinkFactory& make_sink);

  VolumeRegion(const VolumeRegion&) = delete;
  VolumeRegion& operator=(const VolumeRegion&) = delete;

  const Uuid& volume() const { return volume_; }
  DomId grantee() const { return region_->grantee(); }
  std::span<std::byte> bytes() { return region_->data().first(size_); }
  uint64_t size() const { return size_; }
  uint64_t pages() const { return size_ / platform::kPageSize; }
  std::span<const platform::GrantRef> dir_refs() const { return dir_->refs(); }
  PersistSink& sink() { return *sink_; }
  uint64_t durable_seq() const { return sink_->DurableSeq(); }

  // Vault bookkeeping (control thread only): whether the vault file holds
  // this region as of its current durable sequence.
  bool vault_current() const {
    return external_sink_ || (vaulted_ && vaulted_seq_ == durable_seq());
  }
  // True when the sink came from a SinkFactory (replicated volume).
  bool external_sink() const { return external_sink_; }
  void set_vaulted(uint64_t seq) {
    vaulted_ = true;
    vaulted_seq_ = seq;
  }

 private:
  VolumeRegion(const Uuid& volume, uint64_t size, std::unique_ptr<platform::SharedPages> region,
               std::unique_ptr<platform::SharedPages> dir, uint64_t start_seq, bool from_vault)
      : volume_(volume),
        size_(size),
        region_(std::move(region)),
        dir_(std::move(dir)),
        sink_(std::make_unique<LocalPersistSink>(start_seq)),
        vaulted_(from_vault),
        vaulted_seq_(start_seq) {}
  VolumeRegion(const Uuid& volume, uint64_t size, std::unique_ptr<platform::SharedPages> region,
               std::unique_ptr<platform::SharedPages> dir)
      : volume_(volume), size_(size), region_(std::move(region)), dir_(std::move(dir)) {}
  static Result<
      std::pair<std::unique_ptr<platform::SharedPages>, std::unique_ptr<platform::SharedPages>>>
  SharePages(platform::GrantSharer& sharer, DomId grantee, uint64_t pages);

  const Uuid volume_;
  const uint64_t size_;
  const std::unique_ptr<platform::SharedPages> region_;
  const std::unique_ptr<platform::SharedPages> dir_;
  std::unique_ptr<PersistSink> sink_;
  bool external_sink_ = false;
  bool vaulted_ = false;
  uint64_t vaulted_seq_ = 0;
};

}  // namespace vnvram::backend
