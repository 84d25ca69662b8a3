// XenstoredServer: the sim xenstored's sockets and event loop. It listens on
// DIR/socket (dom0, privileged) and DIR/domain/<N> (connections acting as
// domain N), frames xs_wire.h messages, dispatches them to the Store through
// one table of handlers with the privilege check in one place, and queues
// replies and watch events per client. A client that sends an oversize
// header or an unknown message type, or stops reading its output, is
// disconnected; nobody else notices. Single-threaded: Run() owns the object.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/parse.h"
#include "common/status.h"
#include "platform/sim/store/store.h"
#include "platform/sim/xenstored/xs_message.h"

namespace vnvram::sim {

struct XenstoredOptions {
  std::string socket_dir;
  std::vector<DomId> domains;  // introduced at start, each with its socket
  Quotas quotas;
  // A client whose unsent output passes this is disconnected.
  size_t max_client_backlog = 4u << 20;
};

class XenstoredServer {
 public:
  explicit XenstoredServer(XenstoredOptions options);
  ~XenstoredServer();  // closes every socket and unlinks the listeners
  XenstoredServer(const XenstoredServer&) = delete;
  XenstoredServer& operator=(const XenstoredServer&) = delete;

  // Creates the socket directory and binds the listeners.
  Status Listen();
  // Serves until `stop_fd` becomes readable (a signalfd in the daemon).
  Status Run(int stop_fd);

 private:
  struct Listener {
    int fd = -1;
    DomId domid = 0;
    std::string path;
  };
  struct Client {
    int fd = -1;
    DomId domid = 0;
    ConnId conn = 0;
    uint8_t hdr_raw[kXsHeaderSize] = {};
    size_t hdr_got = 0;
    bool in_body = false;
    XsHeader hdr;
    std::string body;
    std::string out;
    size_t out_off = 0;
    bool dead = false;
  };

  Status AddListener(DomId domid, bool privileged);
  void RemoveListener(DomId domid);
  void Accept(const Listener& l);
  void OnReadable(Client& c);
  void OnWritable(Client& c);
  void Dispatch(Client& c, const XsHeader& hdr, std::string_view payload);
  void Reply(Client& c, const XsHeader& req, uint32_t type, std::string_view payload);
  void ReplyError(Client& c, const XsHeader& req, const Status& s);
  void DeliverEvents();
  void Kill(Client& c, std::string_view why);
  void Reap();
  // Sim convenience: introduces `domid` and gives it a home it owns.
  Status IntroduceDomain(DomId domid);
  void ReleaseDomain(DomId domid);

  // Handlers: each returns the reply payload or an error for ERROR.
  using Handler = Result<std::string> (XenstoredServer::*)(Client&, const XsHeader&,
                                                           std::string_view);
  Result<std::string> DoRead(Client&, const XsHeader&, std::string_view);
  Result<std::string> DoWrite(Client&, const XsHeader&, std::string_view);
  Result<std::string> DoMkdir(Client&, const XsHeader&, std::string_view);
  Result<std::string> DoRm(Client&, const XsHeader&, std::string_view);
  Result<std::string> DoDirectory(Client&, const XsHeader&, std::string_view);
  Result<std::string> DoDirectoryPart(Client&, const XsHeader&, std::string_view);
  Result<std::string> DoGetPerms(Client&, const XsHeader&, std::string_view);
  Result<std::string> DoSetPerms(Client&, const XsHeader&, std::string_view);
  Result<std::string> DoWatch(Client&, const XsHeader&, std::string_view);
  Result<std::string> DoUnwatch(Client&, const XsHeader&, std::string_view);
  Result<std::string> DoTransactionStart(Client&, const XsHeader&, std::string_view);
  Result<std::string> DoTransactionEnd(Client&, const XsHeader&, std::string_view);
  Result<std::string> DoIntroduce(Client&, const XsHeader&, std::string_view);
  Result<std::string> DoRelease(Client&, const XsHeader&, std::string_view);
  Result<std::string> DoGetDomainPath(Client&, const XsHeader&, std::string_view);
  Result<std::string> DoIsDomainIntroduced(Client&, const XsHeader&, std::string_view);
  Result<std::string> DoResume(Client&, const XsHeader&, std::string_view);
  Result<std::string> DoResetWatches(Client&, const XsHeader&, std::string_view);

  struct HandlerEntry {
    Handler fn = nullptr;
    bool privileged = false;
  };
  static const HandlerEntry* LookupHandler(uint32_t type);

  // Constant after construction.
  const XenstoredOptions options_;
  // Owned by the loop thread.
  Store store_;
  ConnId admin_ = 0;                     // the daemon's own dom0 connection
  std::map<DomId, Listener> listeners_;  // dom0's is the privileged socket
  std::map<ConnId, std::unique_ptr<Client>> clients_;
};

}  // namespace vnvram::sim
