// The sim platform's file names under its directory DIR, in one place so
// every process computes the same names. Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <string>

#include "common/parse.h"
#include "common/result.h"

namespace vnvram::sim {

// Layout of DIR:
//   DIR/socket, DIR/domain/<N>        sim xenstored (not ours; see store/)
//   DIR/grants/<D>/table              domain D's grant table (sim_grant_table.h)
//   DIR/grants/<D>/pages/<F>          backing file F of pages D shared
//   DIR/evtchn/<D>/ports              domain D's port table (sim_port_table.h)
//   DIR/evtchn/<D>/<P>                Unix datagram socket of D's port P
//   DIR/owners/<hex id>               liveness token of one open handle
//                                     (sim_owner_token.h)
// Directories are made 0700 and files 0600: every process of one sim runs
// as the same Unix user. A Unix socket path holds at most 107 bytes, so DIR
// must leave room for "/evtchn/<D>/<P>" (and the xenstored's sockets).
inline std::string GrantDir(const std::string& dir, DomId d) {
  return dir + "/grants/" + std::to_string(d);
}
inline std::string GrantTablePath(const std::string& dir, DomId d) {
  return GrantDir(dir, d) + "/table";
}
inline std::string GrantPagesDir(const std::string& dir, DomId d) {
  return GrantDir(dir, d) + "/pages";
}
inline std::string GrantPagesPath(const std::string& dir, DomId d, uint64_t file_id) {
  return GrantPagesDir(dir, d) + "/" + std::to_string(file_id);
}
inline std::string EvtchnDir(const std::string& dir, DomId d) {
  return dir + "/evtchn/" + std::to_string(d);
}
inline std::string PortTablePath(const std::string& dir, DomId d) {
  return EvtchnDir(dir, d) + "/ports";
}
inline std::string PortSocketPath(const std::string& dir, DomId d, uint32_t port) {
  return EvtchnDir(dir, d) + "/" + std::to_string(port);
}
inline std::string OwnersDir(const std::string& dir) {
  return dir + "/owners";
}

// mkdir -p with mode 0700 for each missing component.
Status MakeDirs(const std::string& path);

}  // namespace vnvram::sim
