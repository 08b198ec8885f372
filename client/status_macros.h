// Local status macros for the client, because Abseil 20220623 ships neither
// ABSL_RETURN_IF_ERROR nor ABSL_ASSIGN_OR_RETURN.
//
//   PANTHERCTL_RETURN_IF_ERROR(conn->Call(...));
//   PANTHERCTL_ASSIGN_OR_RETURN(Connection * conn, env.Connect());
//
// Both evaluate their expression once and return its non-OK absl::Status from
// the enclosing function, which must return absl::Status or absl::StatusOr<T>.
#ifndef PANTHERD_CLIENT_STATUS_MACROS_H_
#define PANTHERD_CLIENT_STATUS_MACROS_H_

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define PANTHERCTL_RETURN_IF_ERROR(expr)        \
  do {                                          \
    ::absl::Status pantherctl_status_ = (expr); \
    if (!pantherctl_status_.ok()) {             \
      return pantherctl_status_;                \
    }                                           \
  } while (false)

#define PANTHERCTL_STATUS_CONCAT_INNER_(a, b) a##b
#define PANTHERCTL_STATUS_CONCAT_(a, b) PANTHERCTL_STATUS_CONCAT_INNER_(a, b)

#define PANTHERCTL_ASSIGN_OR_RETURN(lhs, expr)                                                 \
  PANTHERCTL_ASSIGN_OR_RETURN_IMPL_(PANTHERCTL_STATUS_CONCAT_(pantherctl_statusor_, __LINE__), \
                                    lhs, expr)

#define PANTHERCTL_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, expr) \
  auto statusor = (expr);                                      \
  if (!statusor.ok()) {                                        \
    return std::move(statusor).status();                       \
  }                                                            \
  lhs = std::move(statusor).value()

#endif  // PANTHERD_CLIENT_STATUS_MACROS_H_
