// File: server/test_clock.h
//
// A processing clock driven by a file, for tests only (`--test-clock-file`).
// Soak and end-to-end tests use it to move pantherd's processing time over
// days in seconds of real time: the file holds the current time, and every
// reading of the clock reads the file again.
//
//   absl::StatusOr<base::Clock> clock = FileClock(config.test_clock_file);
//   alert_options.now = *clock;
//
// The file holds one time: Unix seconds (an integer or a decimal fraction,
// e.g. `1924992000` or `1924992000.25`) or an RFC 3339 time
// (`2031-01-01T00:00:00Z`), surrounded by optional whitespace. Replace it
// atomically (write another file, then rename it over this one) so that a
// reader never sees half a write.
//
// Production code never uses it; pantherd uses absl::Now unless the option
// is given.
#ifndef PANTHERD_SERVER_TEST_CLOCK_H_
#define PANTHERD_SERVER_TEST_CLOCK_H_

#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "proto/base/clock.h"

namespace pantherd::server {

// Parses the content of a clock file (see the file comment). InvalidArgument
// naming the text when it is neither form.
absl::StatusOr<absl::Time> ParseClockText(absl::string_view text);

// Returns a clock that reads `path` on every call. The file must exist and
// parse now: otherwise InvalidArgument (malformed) or NotFound (unreadable),
// naming the file. Later, a read that fails or does not parse (the file
// being replaced non-atomically, or removed) returns the last time read, so
// the clock never fails. The returned function is thread-safe (the last time
// read is kept under a mutex) and owns what it needs; it may outlive nothing.
absl::StatusOr<base::Clock> FileClock(const std::string& path);

}  // namespace pantherd::server

#endif  // PANTHERD_SERVER_TEST_CLOCK_H_
