// Result<T>: a value or a non-OK Status, the return type of every fallible
// call that produces something. Like std::expected (C++23), kept small.
// Thread-safety: a value type; no shared state.
#pragma once

#include <cassert>
#include <optional>
#include <utility>

#include "common/status.h"

namespace vnvram {

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}         // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {  // NOLINT
    assert(!status_.ok() && "Result built from an OK status");
    if (status_.ok()) status_ = Status::Internal("Result built from an OK status");
  }
  Result(Code code, std::string_view message) : Result(Status(code, message)) {}

  bool ok() const { return value_.has_value(); }
  explicit operator bool() const { return ok(); }
  const Status& status() const { return status_; }

  T& value() & {
    assert(ok());
    return *value_;
  }
  const T& value() const& {
    assert(ok());
    return *value_;
  }
  T&& value() && {
    assert(ok());
    return std::move(*value_);
  }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  template <typename U>
  T value_or(U&& fallback) const& {
    return ok() ? *value_ : static_cast<T>(std::forward<U>(fallback));
  }

 private:
  std::optional<T> value_;
  Status status_;
};

}  // namespace vnvram

// Evaluates `rexpr` (a Result); on error returns its status, else moves the
// value into `lhs` (which may be a declaration: `auto x`).
#define VNVRAM_ASSIGN_OR_RETURN(lhs, rexpr) \
  VNVRAM_ASSIGN_OR_RETURN_IMPL_(VNVRAM_CONCAT_(vnvram_result_, __LINE__), lhs, rexpr)
#define VNVRAM_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, rexpr) \
  auto tmp = (rexpr);                                  \
  if (!tmp.ok()) return tmp.status();                  \
  lhs = std::move(tmp).value()
