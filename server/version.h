// The version pantherd reports (GetServerStatus, --version), from CMake's
// project() version.
#ifndef PANTHERD_SERVER_VERSION_H_
#define PANTHERD_SERVER_VERSION_H_

#include "absl/strings/string_view.h"

namespace pantherd::server {

#ifndef PANTHERD_VERSION
#error "PANTHERD_VERSION must be defined by the build"
#endif
inline constexpr absl::string_view kVersion = PANTHERD_VERSION;

}  // namespace pantherd::server

#endif  // PANTHERD_SERVER_VERSION_H_
