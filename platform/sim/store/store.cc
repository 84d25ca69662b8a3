#include "platform/sim/store/store.h"

#include <cerrno>
#include <functional>

#include "platform/sim/store/node_path.h"
#include "platform/sim/store/xs_errors.h"

namespace vnvram::sim {

namespace {
constexpr std::string_view kIntroduce = "@introduceDomain";
constexpr std::string_view kRelease = "@releaseDomain";

std::string Quote(std::string_view path) {
  return "'" + std::string(path.substr(0, 128)) + "'";
}
}  // namespace

Store::Store(Quotas quotas) : quotas_(quotas) {
  // The tree C xenstored starts with: "/", "/tool", "/tool/xenstored",
  // owned by dom0 and closed to everyone else.
  const NodePerms root_perms{{0, kAccessNone}};
  Put(nullptr, "/", Node{"", {"tool"}, root_perms, 0});
  Put(nullptr, "/tool", Node{"", {"xenstored"}, root_perms, 0});
  Put(nullptr, "/tool/xenstored", Node{"", {}, root_perms, 0});
  special_perms_[std::string(kIntroduce)] = root_perms;
  special_perms_[std::string(kRelease)] = root_perms;
}

ConnId Store::Connect(DomId domid) {
  const ConnId id = next_conn_++;
  Conn c;
  c.domid = domid;
  c.privileged = domid == 0;
  conns_.emplace(id, std::move(c));
  return id;
}

void Store::Disconnect(ConnId conn) {
  conns_.erase(conn);
  std::erase_if(events_, [conn](const StoreEvent& e) { return e.conn == conn; });
}

DomId Store::DomainOf(ConnId conn) const {
  auto it = conns_.find(conn);
  return it == conns_.end() ? 0 : it->second.domid;
}

size_t Store::NodeCountOwnedBy(DomId domid) const {
  auto it = entries_.find(domid);
  return it == entries_.end() || it->second < 0 ? 0 : static_cast<size_t>(it->second);
}

Result<std::pair<Store::Conn*, Store::Tx*>> Store::Begin(ConnId conn, TxId tx) {
  auto it = conns_.find(conn);
  if (it == conns_.end()) return XsError(EINVAL, "unknown connection");
  Tx* t = nullptr;
  if (tx != 0) {
    auto tit = it->second.txs.find(tx);
    if (tit == it->second.txs.end()) {
      return XsError(ENOENT, "transaction " + std::to_string(tx) + " does not exist");
    }
    t = &tit->second;
  }
  return std::make_pair(&it->second, t);
}

// ---- node storage, with the transaction overlay ----

const Store::Node* Store::Lookup(Tx* tx, const std::string& path) {
  if (tx != nullptr) {
    auto o = tx->overlay.find(path);
    if (o != tx->overlay.end()) return o->second ? &*o->second : nullptr;
  }
  auto it = nodes_.find(path);
  if (tx != nullptr) {
    tx->seen.try_emplace(path, it == nodes_.end() ? kNoGeneration : it->second.generation);
  }
  return it == nodes_.end() ? nullptr : &it->second;
}

void Store::Put(Tx* tx, const std::string& path, Node node) {
  const Node* old = Lookup(tx, path);
  auto& counts = tx != nullptr ? tx->entry_delta : entries_;
  if (old != nullptr && !old->perms.empty()) counts[old->perms[0].domid] -= 1;
  if (!node.perms.empty()) counts[node.perms[0].domid] += 1;
  node.generation = ++generation_;
  if (tx != nullptr) {
    tx->overlay[path] = std::move(node);
  } else {
    nodes_[path] = std::move(node);
  }
}

void Store::Erase(Tx* tx, const std::string& path) {
  const Node* old = Lookup(tx, path);
  if (old == nullptr) return;
  auto& counts = tx != nullptr ? tx->entry_delta : entries_;
  if (!old->perms.empty()) counts[old->perms[0].domid] -= 1;
  if (tx != nullptr) {
    tx->overlay[path] = std::nullopt;
  } else {
    nodes_.erase(path);
  }
}

long Store::EntryCount(Tx* tx, DomId domid) const {
  long n = 0;
  if (auto it = entries_.find(domid); it != entries_.end()) n += it->second;
  if (tx != nullptr) {
    if (auto it = tx->entry_delta.find(domid); it != tx->entry_delta.end()) n += it->second;
  }
  return n;
}

size_t Store::EntrySize(const Node& n) const {
  // C xenstored's record: a 24-byte header, 8 bytes per permission, the
  // value and the NUL-separated child names.
  size_t size = 24 + 8 * n.perms.size() + n.value.size();
  for (const auto& c : n.children) size += c.size() + 1;
  return size;
}

// ---- permission checks ----

Result<const Store::Node*> Store::Access(const Conn& c, Tx* tx, const std::string& path,
                                         uint8_t need) {
  const Node* node = Lookup(tx, path);
  if (node != nullptr) {
    if ((AccessFor(c.domid, c.privileged, node->perms) & need) != need) {
      return XsError(EACCES, Quote(path));
    }
    return node;
  }
  // Say ENOENT only to a caller the nearest existing ancestor lets in.
  std::string p = path;
  const Node* ancestor = nullptr;
  while (ancestor == nullptr && p != "/") {
    p = ParentPath(p);
    ancestor = Lookup(tx, p);
  }
  if (ancestor != nullptr && (AccessFor(c.domid, c.privileged, ancestor->perms) & need) != 0) {
    return XsError(ENOENT, Quote(path));
  }
  return XsError(EACCES, Quote(path));
}

// ---- node operations ----

Result<std::string> Store::Read(ConnId conn, TxId tx, std::string_view path) {
  VNVRAM_ASSIGN_OR_RETURN(auto ct, Begin(conn, tx));
  const Conn& c = *ct.first;
  VNVRAM_ASSIGN_OR_RETURN(std::string name, CanonicalNodePath(path, c.domid, c.privileged));
  VNVRAM_ASSIGN_OR_RETURN(const Node* node, Access(c, ct.second, name, kAccessRead));
  return node->value;
}

Status Store::Create(const Conn& c, Tx* tx, const std::string& path, std::string_view value) {
  // The missing nodes from `path` up to the first existing ancestor.
  std::vector<std::string> missing{path};
  std::string parent_path = ParentPath(path);
  const Node* parent = Lookup(tx, parent_path);
  while (parent == nullptr) {
    missing.push_back(parent_path);
    parent_path = ParentPath(parent_path);
    parent = Lookup(tx, parent_path);
  }
  if (!c.privileged && EntryCount(tx, c.domid) + static_cast<long>(missing.size()) >
                           static_cast<long>(quotas_.nodes_per_domain)) {
    return XsError(ENOSPC, "node quota of domain " + std::to_string(c.domid));
  }
  // New nodes inherit the parent's permissions; unprivileged domains own
  // what they create.
  NodePerms perms = parent->perms;
  if (!c.privileged && !perms.empty()) perms[0].domid = c.domid;

  Node updated_parent = *parent;
  updated_parent.children.emplace_back(BaseName(missing.back()));
  std::vector<std::pair<std::string, Node>> created;
  for (size_t i = missing.size(); i-- > 0;) {
    Node n;
    n.perms = perms;
    if (i == 0) {
      n.value.assign(value);
    } else {
      n.children.emplace_back(BaseName(missing[i - 1]));
    }
    created.emplace_back(missing[i], std::move(n));
  }
  if (!c.privileged) {
    if (EntrySize(updated_parent) >= quotas_.max_entry_size) {
      return XsError(ENOSPC, "entry size of " + Quote(parent_path));
    }
    for (const auto& [p, n] : created) {
      if (EntrySize(n) >= quotas_.max_entry_size)
        return XsError(ENOSPC, "entry size of " + Quote(p));
    }
  }
  Put(tx, parent_path, std::move(updated_parent));
  for (auto& [p, n] : created) Put(tx, p, std::move(n));
  return Status::Ok();
}

Status Store::Write(ConnId conn, TxId tx, std::string_view path, std::string_view value) {
  VNVRAM_ASSIGN_OR_RETURN(auto ct, Begin(conn, tx));
  const Conn& c = *ct.first;
  Tx* t = ct.second;
  VNVRAM_ASSIGN_OR_RETURN(std::string name, CanonicalNodePath(path, c.domid, c.privileged));
  auto node = Access(c, t, name, kAccessWrite);
  if (node.ok()) {
    Node updated = **node;
    updated.value.assign(value);
    if (!c.privileged && EntrySize(updated) >= quotas_.max_entry_size) {
      return XsError(ENOSPC, "entry size of " + Quote(name));
    }
    Put(t, name, std::move(updated));
  } else if (node.status().sys_errno() == ENOENT) {
    VNVRAM_RETURN_IF_ERROR(Create(c, t, name, value));
  } else {
    return node.status();
  }
  Fire(t, PendingFire{name, false, Lookup(t, name)->perms});
  return Status::Ok();
}

Status Store::Mkdir(ConnId conn, TxId tx, std::string_view path) {
  VNVRAM_ASSIGN_OR_RETURN(auto ct, Begin(conn, tx));
  const Conn& c = *ct.first;
  Tx* t = ct.second;
  VNVRAM_ASSIGN_OR_RETURN(std::string name, CanonicalNodePath(path, c.domid, c.privileged));
  auto node = Access(c, t, name, kAccessWrite);
  if (node.ok()) return Status::Ok();  // already there: fine
  if (node.status().sys_errno() != ENOENT) return node.status();
  VNVRAM_RETURN_IF_ERROR(Create(c, t, name, ""));
  Fire(t, PendingFire{name, false, Lookup(t, name)->perms});
  return Status::Ok();
}

Status Store::Remove(ConnId conn, TxId tx, std::string_view path) {
  VNVRAM_ASSIGN_OR_RETURN(auto ct, Begin(conn, tx));
  const Conn& c = *ct.first;
  Tx* t = ct.second;
  VNVRAM_ASSIGN_OR_RETURN(std::string name, CanonicalNodePath(path, c.domid, c.privileged));
  auto node = Access(c, t, name, kAccessWrite);
  if (!node.ok()) {
    // Removing a missing node is fine when its parent exists.
    if (node.status().sys_errno() == ENOENT && Lookup(t, ParentPath(name)) != nullptr) {
      return Status::Ok();
    }
    return node.status();
  }
  if (name == "/") return XsError(EINVAL, "cannot remove '/'");

  // Watches on the node and above fire for it; watches below fire for the
  // descendant they name. Fire while the permissions are still known.
  Fire(t, PendingFire{name, false, (*node)->perms});
  std::vector<std::string> doomed;
  std::function<void(const std::string&)> collect = [&](const std::string& p) {
    const Node* n = Lookup(t, p);
    if (n == nullptr) return;
    const std::vector<std::string> kids = n->children;
    for (const auto& k : kids) collect(ChildPath(p, k));
    doomed.push_back(p);
  };
  collect(name);
  for (const auto& p : doomed) {
    if (p != name) Fire(t, PendingFire{p, true, Lookup(t, p)->perms});
    Erase(t, p);
  }
  const std::string parent_path = ParentPath(name);
  if (const Node* parent = Lookup(t, parent_path); parent != nullptr) {
    Node updated = *parent;
    std::erase(updated.children, std::string(BaseName(name)));
    Put(t, parent_path, std::move(updated));
  }
  return Status::Ok();
}

Result<Listing> Store::Directory(ConnId conn, TxId tx, std::string_view path) {
  VNVRAM_ASSIGN_OR_RETURN(auto ct, Begin(conn, tx));
  const Conn& c = *ct.first;
  VNVRAM_ASSIGN_OR_RETURN(std::string name, CanonicalNodePath(path, c.domid, c.privileged));
  VNVRAM_ASSIGN_OR_RETURN(const Node* node, Access(c, ct.second, name, kAccessRead));
  return Listing{node->generation, node->children};
}

const NodePerms* Store::SpecialPerms(std::string_view path) const {
  auto it = special_perms_.find(path);
  return it == special_perms_.end() ? nullptr : &it->second;
}

Result<NodePerms> Store::GetPerms(ConnId conn, TxId tx, std::string_view path) {
  VNVRAM_ASSIGN_OR_RETURN(auto ct, Begin(conn, tx));
  const Conn& c = *ct.first;
  if (!path.empty() && path[0] == '@') {
    const NodePerms* perms = SpecialPerms(path);
    if (perms == nullptr) return XsError(ENOENT, Quote(path));
    if ((AccessFor(c.domid, c.privileged, *perms) & kAccessRead) == 0) {
      return XsError(EACCES, Quote(path));
    }
    return *perms;
  }
  VNVRAM_ASSIGN_OR_RETURN(std::string name, CanonicalNodePath(path, c.domid, c.privileged));
  VNVRAM_ASSIGN_OR_RETURN(const Node* node, Access(c, ct.second, name, kAccessRead));
  return node->perms;
}

Status Store::SetPerms(ConnId conn, TxId tx, std::string_view path, const NodePerms& perms) {
  VNVRAM_ASSIGN_OR_RETURN(auto ct, Begin(conn, tx));
  const Conn& c = *ct.first;
  Tx* t = ct.second;
  if (perms.empty()) return XsError(EINVAL, "no permissions given");
  if (!c.privileged && perms.size() > quotas_.perms_per_node) {
    return XsError(ENOSPC, "more than " + std::to_string(quotas_.perms_per_node) + " permissions");
  }
  if (!path.empty() && path[0] == '@') {
    auto it = special_perms_.find(path);
    if (it == special_perms_.end()) return XsError(ENOENT, Quote(path));
    if ((AccessFor(c.domid, c.privileged, it->second) & kAccessOwner) == 0) {
      return XsError(EACCES, Quote(path));
    }
    it->second = perms;
    return Status::Ok();
  }
  VNVRAM_ASSIGN_OR_RETURN(std::string name, CanonicalNodePath(path, c.domid, c.privileged));
  VNVRAM_ASSIGN_OR_RETURN(const Node* node, Access(c, t, name, kAccessWrite | kAccessOwner));
  // Unprivileged domains may not give their nodes away.
  if (!c.privileged && perms[0].domid != node->perms[0].domid) {
    return XsError(EPERM, "changing the owner of " + Quote(name));
  }
  Node updated = *node;
  NodePerms old_perms = updated.perms;
  updated.perms = perms;
  if (!c.privileged && EntrySize(updated) >= quotas_.max_entry_size) {
    return XsError(ENOSPC, "entry size of " + Quote(name));
  }
  Put(t, name, std::move(updated));
  // Watchers that could see the node before or after hear of the change.
  Fire(t, PendingFire{name, false, std::move(old_perms)});
  return Status::Ok();
}

// ---- watches ----

size_t Store::WatchCount(DomId domid) const {
  size_t n = 0;
  for (const auto& [id, c] : conns_) {
    if (c.domid == domid) n += c.watches.size();
  }
  return n;
}

Status Store::Watch(ConnId conn, std::string_view path, std::string_view token) {
  VNVRAM_ASSIGN_OR_RETURN(auto ct, Begin(conn, 0));
  Conn& c = *ct.first;
  WatchReg w;
  w.token.assign(token);
  if (!path.empty() && path[0] == '@') {
    if (path.size() > kRelPathMax) return XsError(EINVAL, "special watch path too long");
    w.node.assign(path);
  } else {
    w.relative = path.empty() || path[0] != '/';
    VNVRAM_ASSIGN_OR_RETURN(w.node, CanonicalNodePath(path, c.domid, c.privileged));
  }
  for (const auto& existing : c.watches) {
    if (existing.node == w.node && existing.token == w.token) {
      return XsError(EEXIST, "watch " + Quote(w.node) + " token " + Quote(token));
    }
  }
  if (!c.privileged && WatchCount(c.domid) >= quotas_.watches_per_domain) {
    return XsError(E2BIG, "watch quota of domain " + std::to_string(c.domid));
  }
  // The initial event: simplifies clients, as in C xenstored.
  events_.push_back(StoreEvent{conn, WatchPathFor(c, w, w.node), w.token});
  c.watches.push_back(std::move(w));
  return Status::Ok();
}

Status Store::Unwatch(ConnId conn, std::string_view path, std::string_view token) {
  VNVRAM_ASSIGN_OR_RETURN(auto ct, Begin(conn, 0));
  Conn& c = *ct.first;
  std::string node;
  if (!path.empty() && path[0] == '@') {
    node.assign(path);
  } else {
    VNVRAM_ASSIGN_OR_RETURN(node, CanonicalNodePath(path, c.domid, c.privileged));
  }
  for (auto it = c.watches.begin(); it != c.watches.end(); ++it) {
    if (it->node == node && it->token == token) {
      c.watches.erase(it);
      return Status::Ok();
    }
  }
  return XsError(ENOENT, "no watch " + Quote(node) + " token " + Quote(token));
}

void Store::ResetWatches(ConnId conn) {
  auto it = conns_.find(conn);
  if (it == conns_.end()) return;
  it->second.watches.clear();
  it->second.txs.clear();
}

std::string Store::WatchPathFor(const Conn& c, const WatchReg& w, const std::string& node) const {
  if (!w.relative) return node;
  const std::string home = DomainPath(c.domid) + "/";
  if (node.compare(0, home.size(), home) == 0) return node.substr(home.size());
  return node;
}

bool Store::WatchPermitted(const Conn& c, const PendingFire& f) {
  if (c.privileged) return true;
  if (!f.path.empty() && f.path[0] == '@') {
    const NodePerms* perms = SpecialPerms(f.path);
    return perms != nullptr && (AccessFor(c.domid, false, *perms) & kAccessRead) != 0;
  }
  // As C xenstored: the permissions the node had, the node now, or its parent.
  if ((AccessFor(c.domid, false, f.perms) & kAccessRead) != 0) return true;
  if (auto it = nodes_.find(f.path); it != nodes_.end()) {
    if ((AccessFor(c.domid, false, it->second.perms) & kAccessRead) != 0) return true;
  }
  if (f.path == "/") return false;
  auto parent = nodes_.find(ParentPath(f.path));
  return parent != nodes_.end() &&
         (AccessFor(c.domid, false, parent->second.perms) & kAccessRead) != 0;
}

void Store::Fire(Tx* tx, PendingFire f) {
  if (tx != nullptr) {
    tx->fires.push_back(std::move(f));
  } else {
    FireNow(f);
  }
}

void Store::FireNow(const PendingFire& f) {
  for (const auto& [id, c] : conns_) {
    bool permitted_known = false;
    bool permitted = false;
    for (const auto& w : c.watches) {
      const bool match = f.exact ? w.node == f.path : PathIsWithin(f.path, w.node);
      if (!match) continue;
      if (!permitted_known) {
        permitted = WatchPermitted(c, f);
        permitted_known = true;
      }
      if (!permitted) break;
      events_.push_back(StoreEvent{id, WatchPathFor(c, w, f.path), w.token});
    }
  }
}

std::vector<StoreEvent> Store::DrainEvents() {
  std::vector<StoreEvent> out;
  out.swap(events_);
  return out;
}

// ---- transactions ----

Result<TxId> Store::TransactionStart(ConnId conn, TxId current_tx) {
  VNVRAM_ASSIGN_OR_RETURN(auto ct, Begin(conn, 0));
  Conn& c = *ct.first;
  if (current_tx != 0) return XsError(EBUSY, "transaction start inside a transaction");
  if (!c.privileged && c.txs.size() >= quotas_.transactions_per_conn) {
    return XsError(ENOSPC, "transaction quota");
  }
  TxId id = next_tx_++;
  while (id == 0 || c.txs.count(id) != 0) id = next_tx_++;
  c.txs.emplace(id, Tx{});
  return id;
}

Status Store::TransactionEnd(ConnId conn, TxId tx, bool commit) {
  if (tx == 0) return XsError(ENOENT, "not in a transaction");
  VNVRAM_ASSIGN_OR_RETURN(auto ct, Begin(conn, tx));
  Conn& c = *ct.first;
  Tx t = std::move(*ct.second);
  c.txs.erase(tx);
  if (!commit) return Status::Ok();

  for (const auto& [path, gen] : t.seen) {
    auto it = nodes_.find(path);
    const uint64_t now = it == nodes_.end() ? kNoGeneration : it->second.generation;
    if (now != gen) return XsError(EAGAIN, "transaction conflict on " + Quote(path));
  }
  for (auto& [path, node] : t.overlay) {
    if (node) {
      Put(nullptr, path, std::move(*node));
    } else {
      Erase(nullptr, path);
    }
  }
  for (const auto& f : t.fires) FireNow(f);
  return Status::Ok();
}

// ---- domains ----

Status Store::Introduce(ConnId conn, DomId domid) {
  VNVRAM_ASSIGN_OR_RETURN(auto ct, Begin(conn, 0));
  if (!ct.first->privileged) return XsError(EACCES, "introduce needs dom0");
  if (domid == 0 || domid >= kDomIdFirstReserved) {
    return XsError(EINVAL, "cannot introduce domain " + std::to_string(domid));
  }
  if (introduced_.insert(domid).second) {
    FireNow(PendingFire{std::string(kIntroduce), true, {}});
  }
  return Status::Ok();
}

Status Store::Release(ConnId conn, DomId domid) {
  VNVRAM_ASSIGN_OR_RETURN(auto ct, Begin(conn, 0));
  if (!ct.first->privileged) return XsError(EACCES, "release needs dom0");
  if (introduced_.erase(domid) == 0) {
    return XsError(ENOENT, "domain " + std::to_string(domid) + " is not introduced");
  }
  FireNow(PendingFire{std::string(kRelease), true, {}});
  return Status::Ok();
}

Result<bool> Store::IsIntroduced(ConnId conn, DomId domid) const {
  auto it = conns_.find(conn);
  if (it == conns_.end()) return XsError(EINVAL, "unknown connection");
  if (!it->second.privileged) return XsError(EACCES, "is-domain-introduced needs dom0");
  return domid == 0 || introduced_.count(domid) != 0;
}

}  // namespace vnvram::sim
