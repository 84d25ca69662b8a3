// Store: the sim xenstore's engine, an in-memory tree with C xenstored's
// semantics (permissions, implicit parents, watches with the initial event,
// @introduceDomain/@releaseDomain, transactions that fail with EAGAIN only on
// a real conflict, default quotas). It owns the tree, the connections'
// watches and transactions, and a queue of watch events the caller drains.
// Pure library, no I/O. Thread-compatible: one thread at a time (the daemon
// calls it from its single event loop; unit tests from the test thread).
// Every error is a Status whose sys_errno() is an xsd_errors errno.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/parse.h"
#include "common/result.h"
#include "platform/sim/store/node_perms.h"

namespace vnvram::sim {

using ConnId = uint64_t;
using TxId = uint32_t;  // 0: not in a transaction

// C xenstored 4.17's defaults. They bind unprivileged (non-dom0) callers.
struct Quotas {
  size_t nodes_per_domain = 1000;     // ENOSPC
  size_t watches_per_domain = 128;    // E2BIG
  size_t transactions_per_conn = 10;  // ENOSPC
  size_t max_entry_size = 2048;       // ENOSPC: node record size, as C xenstored counts it
  size_t perms_per_node = 5;          // ENOSPC
};

// A watch event for one connection: `path` as the watcher registered it
// (relative when the watch was relative), `token` as given.
struct StoreEvent {
  ConnId conn = 0;
  std::string path;
  std::string token;
};

struct Listing {
  uint64_t generation = 0;
  std::vector<std::string> children;
};

class Store {
 public:
  explicit Store(Quotas quotas = {});

  // A connection acting as `domid`; dom0 connections are privileged.
  ConnId Connect(DomId domid);
  // Drops the connection's watches, transactions and queued events.
  void Disconnect(ConnId conn);

  // Node operations. `path` absolute or relative to the caller's home;
  // `tx` 0 or a transaction this connection started (ENOENT otherwise).
  Result<std::string> Read(ConnId conn, TxId tx, std::string_view path);
  Status Write(ConnId conn, TxId tx, std::string_view path, std::string_view value);
  Status Mkdir(ConnId conn, TxId tx, std::string_view path);
  Status Remove(ConnId conn, TxId tx, std::string_view path);
  Result<Listing> Directory(ConnId conn, TxId tx, std::string_view path);
  // Node paths and the special "@introduceDomain"/"@releaseDomain".
  Result<NodePerms> GetPerms(ConnId conn, TxId tx, std::string_view path);
  Status SetPerms(ConnId conn, TxId tx, std::string_view path, const NodePerms& perms);

  // Registers a watch and queues its initial event (after the caller's ack).
  Status Watch(ConnId conn, std::string_view path, std::string_view token);
  Status Unwatch(ConnId conn, std::string_view path, std::string_view token);
  // Drops all watches and transactions of the connection.
  void ResetWatches(ConnId conn);

  // `current_tx` is the tx id of the request (EBUSY when non-zero).
  Result<TxId> TransactionStart(ConnId conn, TxId current_tx);
  // commit=false aborts. EAGAIN when a node the transaction read or wrote
  // changed since; the transaction is gone either way.
  Status TransactionEnd(ConnId conn, TxId tx, bool commit);

  // Domain bookkeeping (privileged callers only: EACCES otherwise).
  // Introduce fires @introduceDomain for a domain not yet known.
  Status Introduce(ConnId conn, DomId domid);
  // ENOENT for an unknown domain; fires @releaseDomain.
  Status Release(ConnId conn, DomId domid);
  Result<bool> IsIntroduced(ConnId conn, DomId domid) const;

  // Events queued since the last call, in order.
  std::vector<StoreEvent> DrainEvents();

  DomId DomainOf(ConnId conn) const;
  size_t NodeCountOwnedBy(DomId domid) const;
  const Quotas& quotas() const { return quotas_; }

 private:
  struct Node {
    std::string value;
    std::vector<std::string> children;
    NodePerms perms;
    uint64_t generation = 0;
  };
  static constexpr uint64_t kNoGeneration = ~uint64_t{0};

  // A change whose watches fire now, or at commit inside a transaction.
  struct PendingFire {
    std::string path;
    bool exact = false;
    NodePerms perms;  // the node's permissions when it changed
  };

  struct Tx {
    std::unordered_map<std::string, std::optional<Node>> overlay;  // nullopt: removed
    std::unordered_map<std::string, uint64_t> seen;  // base generation at first access
    std::map<DomId, long> entry_delta;
    std::vector<PendingFire> fires;
  };

  struct WatchReg {
    std::string node;  // canonical path or "@..."
    std::string token;
    bool relative = false;
  };

  struct Conn {
    DomId domid = 0;
    bool privileged = false;
    std::vector<WatchReg> watches;
    std::map<TxId, Tx> txs;
  };

  // Resolves the connection and transaction of a request.
  Result<std::pair<Conn*, Tx*>> Begin(ConnId conn, TxId tx);

  const Node* Lookup(Tx* tx, const std::string& path);
  void Put(Tx* tx, const std::string& path, Node node);
  void Erase(Tx* tx, const std::string& path);
  long EntryCount(Tx* tx, DomId domid) const;
  size_t EntrySize(const Node& n) const;

  // The node if `c` has `need` access; else ENOENT/EACCES as C xenstored
  // decides (the nearest existing ancestor tells whether to hide ENOENT).
  Result<const Node*> Access(const Conn& c, Tx* tx, const std::string& path, uint8_t need);
  Status Create(const Conn& c, Tx* tx, const std::string& path, std::string_view value);
  void Fire(Tx* tx, PendingFire f);
  void FireNow(const PendingFire& f);
  bool WatchPermitted(const Conn& c, const PendingFire& f);
  std::string WatchPathFor(const Conn& c, const WatchReg& w, const std::string& node) const;
  size_t WatchCount(DomId domid) const;
  const NodePerms* SpecialPerms(std::string_view path) const;

  Quotas quotas_;
  std::unordered_map<std::string, Node> nodes_;
  std::map<DomId, long> entries_;  // nodes owned per domain
  std::map<ConnId, Conn> conns_;
  std::set<DomId> introduced_;
  std::map<std::string, NodePerms, std::less<>> special_perms_;
  std::vector<StoreEvent> events_;
  uint64_t generation_ = 0;
  ConnId next_conn_ = 1;
  TxId next_tx_ = 1;
};

}  // namespace vnvram::sim
