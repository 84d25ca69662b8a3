// XenStoreTreeSource: the validator's TreeSource over a live store through
// platform::XenStore (real xenstored or the sim daemon). With a snapshot it
// reads everything inside one transaction that it aborts at the end, so the
// validator sees one consistent tree. Owned and used by one thread.
#pragma once

#include <memory>

#include "platform/xenstore.h"
#include "xenstore-schema/tree_source.h"

namespace vnvram::schema {

class XenStoreTreeSource final : public TreeSource {
 public:
  // `xs` must outlive the source. With `snapshot`, starts a transaction now.
  static Result<std::unique_ptr<XenStoreTreeSource>> Open(platform::XenStore& xs, bool snapshot);
  ~XenStoreTreeSource() override;
  XenStoreTreeSource(const XenStoreTreeSource&) = delete;
  XenStoreTreeSource& operator=(const XenStoreTreeSource&) = delete;

  Result<std::string> Read(std::string_view path) override;
  Result<std::vector<std::string>> Directory(std::string_view path) override;
  Result<std::vector<platform::PermEntry>> GetPermissions(std::string_view path) override;

 private:
  XenStoreTreeSource(platform::XenStore& xs, platform::TxId tx) : xs_(xs), tx_(tx) {}
  platform::XenStore& xs_;
  platform::TxId tx_;
};

}  // namespace vnvram::schema
