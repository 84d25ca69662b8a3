#include "platform/xen/xen_tool_logger.h"

#include <spdlog/spdlog.h>

#include <cstdarg>
#include <cstdio>

// Xen 4.17's library headers have no extern "C" guards of their own.
extern "C" {
#include <xentoollog.h>
}

namespace vnvram::xen {
namespace {

void VMessage(xentoollog_logger* /*logger*/, xentoollog_level level, int errnoval,
              const char* context, const char* format, va_list al) {
  if (!spdlog::should_log(spdlog::level::debug)) return;
  char buf[512];
  std::vsnprintf(buf, sizeof(buf), format, al);
  spdlog::debug("[lib{} level {}] {}{}{}", context != nullptr ? context : "xen",
                static_cast<int>(level), buf, errnoval > 0 ? ": errno " : "",
                errnoval > 0 ? std::to_string(errnoval) : std::string());
}

void Destroy(xentoollog_logger* /*logger*/) {}

xentoollog_logger g_logger = {
    .vmessage = VMessage,
    .progress = nullptr,
    .destroy = Destroy,
};

}  // namespace

xentoollog_logger* ToolLogger() {
  return &g_logger;
}

}  // namespace vnvram::xen
