// File: tests/fuzz/fuzz_check.h
//
// FUZZ_CHECK(cond, ...): the property checks of the fuzz targets. A false
// condition prints the printf-style message and aborts, which libFuzzer
// reports as a crash (with the input saved) and which fails the corpus
// replay test of the ordinary build. Unlike assert() it is never compiled
// out (the ordinary build is Release, with NDEBUG).
#ifndef PANTHERD_TESTS_FUZZ_FUZZ_CHECK_H_
#define PANTHERD_TESTS_FUZZ_FUZZ_CHECK_H_

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#define FUZZ_CHECK(cond, ...)                                                            \
  do {                                                                                   \
    if (!(cond)) {                                                                       \
      std::fprintf(stderr, "%s:%d: FUZZ_CHECK(%s) failed: ", __FILE__, __LINE__, #cond); \
      std::fprintf(stderr, __VA_ARGS__);                                                 \
      std::fputc('\n', stderr);                                                          \
      std::abort();                                                                      \
    }                                                                                    \
  } while (0)

// The first 300 bytes of `text`, for FUZZ_CHECK messages (.c_str()).
inline std::string FuzzClip(std::string_view text) {
  if (text.size() <= 300) return std::string(text);
  return std::string(text.substr(0, 300)) + "...";
}

#endif  // PANTHERD_TESTS_FUZZ_FUZZ_CHECK_H_
