#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"

// RETURN_IF_ERROR(expr): returns the absl::Status of `expr` from the enclosing function when it
// is not OK.
#define RETURN_IF_ERROR(expr)                         \
  do {                                                \
    const ::absl::Status hosting_status_ = (expr);    \
    if (!hosting_status_.ok()) return hosting_status_; \
  } while (0)

#define HOSTING_CONCAT_INNER_(a, b) a##b
#define HOSTING_CONCAT_(a, b) HOSTING_CONCAT_INNER_(a, b)

// ASSIGN_OR_RETURN(lhs, expr): evaluates the absl::StatusOr `expr`; returns its status when it
// is an error, else moves its value into `lhs` (which may be a declaration).
#define ASSIGN_OR_RETURN(lhs, expr) \
  HOSTING_ASSIGN_OR_RETURN_IMPL_(HOSTING_CONCAT_(hosting_statusor_, __LINE__), lhs, expr)

#define HOSTING_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, expr) \
  auto statusor = (expr);                                   \
  if (!statusor.ok()) return std::move(statusor).status();  \
  lhs = std::move(statusor).value()
