#include "xenstore-schema/xenstore_tree_source.h"

namespace vnvram::schema {

Result<std::unique_ptr<XenStoreTreeSource>> XenStoreTreeSource::Open(platform::XenStore& xs,
                                                                     bool snapshot) {
  platform::TxId tx = platform::kNoTx;
  if (snapshot) {
    auto t = xs.TransactionStart();
    if (!t.ok()) return t.status().WithContext("starting a read transaction");
    tx = *t;
  }
  return std::unique_ptr<XenStoreTreeSource>(new XenStoreTreeSource(xs, tx));
}

XenStoreTreeSource::~XenStoreTreeSource() {
  if (tx_ != platform::kNoTx) (void)xs_.TransactionEnd(tx_, /*commit=*/false);
}

Result<std::string> XenStoreTreeSource::Read(std::string_view path) {
  return xs_.Read(tx_, path);
}

Result<std::vector<std::string>> XenStoreTreeSource::Directory(std::string_view path) {
  return xs_.Directory(tx_, path);
}

Result<std::vector<platform::PermEntry>> XenStoreTreeSource::GetPermissions(std::string_view path) {
  return xs_.GetPermissions(tx_, path);
}

}  // namespace vnvram::schema
