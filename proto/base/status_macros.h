// File: proto/base/status_macros.h
//
// Two macros for propagating absl::Status, used by every pantherd library and
// by pantherctl (part of the base every library may use, docs/architecture.md). Abseil
// 20220623 (Debian 12) predates ABSL_RETURN_IF_ERROR / ABSL_ASSIGN_OR_RETURN,
// so we keep these two small local equivalents.
//
//   absl::StatusOr<Rule> LoadRule(Store& store, absl::string_view id) {
//     PANTHERD_RETURN_IF_ERROR(ValidateId(id));
//     PANTHERD_ASSIGN_OR_RETURN(auto rule, store.GetMessage<Rule>(Family::kRules, id));
//     return rule;
//   }
//
// Both may be used in any function whose return type is constructible from
// absl::Status (absl::Status itself or any absl::StatusOr<T>).

#ifndef PANTHERD_BASE_STATUS_MACROS_H_
#define PANTHERD_BASE_STATUS_MACROS_H_

#include <utility>

#include "absl/status/status.h"

// Evaluates `expr`, which must yield an absl::Status, exactly once. When the
// status is not OK, returns it from the enclosing function unchanged;
// otherwise does nothing. Usable as a single statement (it is wrapped in
// do { } while (0)).
#define PANTHERD_RETURN_IF_ERROR(expr)                     \
  do {                                                     \
    ::absl::Status pantherd_status_macro_status_ = (expr); \
    if (!pantherd_status_macro_status_.ok()) {             \
      return pantherd_status_macro_status_;                \
    }                                                      \
  } while (0)

// Evaluates `expr`, which must yield an absl::StatusOr<T>, exactly once. When
// it holds an error, returns that status from the enclosing function;
// otherwise moves the value into `lhs`. `lhs` is either an existing lvalue
// (`rule`) or a declaration (`auto rule`, `const std::string name`); a
// declaration stays in scope after the macro.
//
// The macro expands to several statements, so it must not be the lone body of
// an unbraced if/else/for. A `lhs` containing a comma that is not inside
// parentheses (e.g. `std::pair<int, int> p`) does not work: use `auto`.
#define PANTHERD_ASSIGN_OR_RETURN(lhs, expr) \
  PANTHERD_ASSIGN_OR_RETURN_IMPL_(           \
      PANTHERD_STATUS_MACROS_CONCAT_(pantherd_status_macro_statusor_, __LINE__), lhs, expr)

// Implementation details of PANTHERD_ASSIGN_OR_RETURN; do not use directly.
#define PANTHERD_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, expr) \
  auto statusor = (expr);                                    \
  if (!statusor.ok()) {                                      \
    return std::move(statusor).status();                     \
  }                                                          \
  lhs = std::move(statusor).value()
#define PANTHERD_STATUS_MACROS_CONCAT_INNER_(a, b) a##b
#define PANTHERD_STATUS_MACROS_CONCAT_(a, b) PANTHERD_STATUS_MACROS_CONCAT_INNER_(a, b)

#endif  // PANTHERD_BASE_STATUS_MACROS_H_
