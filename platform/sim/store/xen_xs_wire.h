// Xen's xen/io/xs_wire.h (message types, xsd_errors, limits) with the
// headers it assumes but does not include: <cstdint> for uint32_t and
// <cerrno> for the errno values its xsd_errors table needs. Include this,
// never xs_wire.h directly. Constants only; thread-safe.
#pragma once

// clang-format off
#include <cerrno>
#include <cstdint>
#include <xen/io/xs_wire.h>
// clang-format on
