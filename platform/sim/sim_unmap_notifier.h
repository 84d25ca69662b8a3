// UnmapNotifier: carries out one platform::UnmapNotify on the sim, on
// orderly release and, through a watchdog child, on process death. One
// object is owned by one thread; a fork()ed copy does nothing.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "common/parse.h"
#include "common/result.h"
#include "platform/grant.h"
#include "platform/sim/sim_port_table.h"

namespace vnvram::sim {

// UnmapNotifier: carries out a platform::UnmapNotify for one single-page
// share or mapping on the sim, the way gntalloc/gntdev do on Linux: clear a
// byte inside the page and/or raise an event on a local port of this
// domain, when the page goes away. Orderly release calls Disarm() and then
// ClearByte() / SendEvent() itself. Process death is covered by a watchdog:
// Arm() forks a small child that shares the page mapping and waits (pidfd)
// for the parent to exit; if the parent dies without Disarm(), the child
// clears the byte and sends the event, then exits. The child makes only
// async-signal-safe calls and closes every inherited descriptor. One object
// is owned by one thread; only the process that armed it acts on it (a
// fork()ed copy does nothing).
class UnmapNotifier {
 public:
  // `page` is the start of the page in this process. kOutOfRange for a
  // byte offset outside the page, kInvalidArgument for a port that is not
  // bound in `self`'s port table (Xen refuses both).
  static Result<std::unique_ptr<UnmapNotifier>> Arm(const std::string& dir, DomId self,
                                                    std::byte* page,
                                                    const platform::UnmapNotify& notify);
  // Stops the watchdog without notifying (idempotent).
  ~UnmapNotifier();
  UnmapNotifier(const UnmapNotifier&) = delete;
  UnmapNotifier& operator=(const UnmapNotifier&) = delete;

  void Disarm();
  // Each does nothing when the notify did not ask for it.
  void ClearByte();
  void SendEvent();

 private:
  UnmapNotifier() = default;

  std::shared_ptr<PortTable> ports_;  // keeps port_word_ mapped
  volatile std::byte* byte_ = nullptr;
  const uint64_t* port_word_ = nullptr;
  char evtchn_prefix_[128] = {};  // "DIR/evtchn/"
  pid_t creator_ = 0;
  pid_t watchdog_ = -1;
  int quit_fd_ = -1;  // write end; the watchdog reads the other
};

}  // namespace vnvram::sim
