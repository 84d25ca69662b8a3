// The xentoollog logger handed to every libxen* handle this directory opens.
// The libraries log each failure before returning it; vnvram reports
// failures as Status values instead, so their lines go to spdlog at debug
// level rather than straight to stderr. Stateless; thread-safe.
#pragma once

struct xentoollog_logger;

namespace vnvram::xen {

// A process-wide logger that never needs destroying.
xentoollog_logger* ToolLogger();

}  // namespace vnvram::xen
