// Errors of the sim xenstore: every failure the store engine or the daemon
// reports is a Status whose sys_errno() is one of the errno values listed in
// xen/io/xs_wire.h's xsd_errors, so it maps 1:1 to the wire's ERROR reply.
// Pure functions; thread-safe.
#pragma once

#include <string_view>

#include "common/status.h"

namespace vnvram::sim {

// A Status carrying `err` (EACCES, ENOENT, ...) and a message naming `what`.
Status XsError(int err, std::string_view what);

// The xsd_errors name of `err` ("ENOENT"); "EINVAL" for an errno the wire
// protocol cannot express, as C xenstored does.
std::string_view XsErrorName(int err);

// The errno to put on the wire for `s` (EINVAL when it carries none).
int XsErrnoOf(const Status& s);

}  // namespace vnvram::sim
