#ifndef A2AMESH_CORE_STATUS_MACROS_H_
#define A2AMESH_CORE_STATUS_MACROS_H_

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

// The installed Abseil (20220623) has neither ABSL_RETURN_IF_ERROR nor
// ABSL_ASSIGN_OR_RETURN. These have the upstream meanings, so a later switch is a
// rename.

// Returns from the current function if `expr` (an absl::Status) is not OK.
#define A2AMESH_RETURN_IF_ERROR(expr)        \
  do {                                       \
    ::absl::Status _a2amesh_status = (expr); \
    if (!_a2amesh_status.ok()) {             \
      return _a2amesh_status;                \
    }                                        \
  } while (false)

#define A2AMESH_STATUS_CONCAT_INNER_(a, b) a##b
#define A2AMESH_STATUS_CONCAT_(a, b) A2AMESH_STATUS_CONCAT_INNER_(a, b)

// `lhs = value of expr` if `expr` (an absl::StatusOr) is OK; otherwise returns its status.
#define A2AMESH_ASSIGN_OR_RETURN(lhs, expr) \
  A2AMESH_ASSIGN_OR_RETURN_IMPL_(A2AMESH_STATUS_CONCAT_(_a2amesh_statusor, __LINE__), lhs, expr)

#define A2AMESH_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, expr) \
  auto statusor = (expr);                                   \
  if (!statusor.ok()) {                                     \
    return std::move(statusor).status();                    \
  }                                                         \
  lhs = std::move(statusor).value()

#endif  // A2AMESH_CORE_STATUS_MACROS_H_
