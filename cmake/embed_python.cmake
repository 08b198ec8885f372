# Turns a Python source file into a C++ source and header that hold its text,
# so that pantherd carries its Python modules inside the binary.
#
# Run in script mode by pantherd_embed_python (cmake/pantherd_helpers.cmake):
#   cmake -DINPUT=<file.py> -DOUTPUT_CC=<name_py.cc> -DOUTPUT_H=<name_py.h>
#         -DHEADER=<include path of the header> -DSYMBOL=<kNamePy>
#         -DSOURCE_NAME=<path of the .py in the source tree> -P embed_python.cmake
#
# The text is written as an array of character literals, not as a string
# literal: no delimiter can clash with the file's content and no compiler's
# limit on literal length applies. The array ends with one NUL; the file may
# hold no other (the build fails if it does), so the array is also a C string.
cmake_minimum_required(VERSION 3.20)

foreach(var INPUT OUTPUT_CC OUTPUT_H HEADER SYMBOL SOURCE_NAME)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "embed_python.cmake: ${var} is not set")
  endif()
endforeach()

file(READ "${INPUT}" hex HEX)
string(LENGTH "${hex}" hex_length)
math(EXPR size "${hex_length} / 2")
# One '\xNN', per byte (a character literal: bytes above 0x7f are no
# narrowing conversion), sixteen to a line.
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "'\\\\x\\1'," bytes "${hex}")
if(bytes MATCHES "'\\\\x00',")
  message(FATAL_ERROR "${SOURCE_NAME} contains a NUL byte; it cannot be embedded as a C string")
endif()
set(byte "'\\\\x[0-9a-f][0-9a-f]',")
string(REPEAT "${byte}" 16 line)
string(REGEX REPLACE "(${line})" "\\1\n    " bytes "${bytes}")

string(MAKE_C_IDENTIFIER "PANTHERD_${HEADER}_" guard)
string(TOUPPER "${guard}" guard)

set(h "// Generated from ${SOURCE_NAME} by cmake/embed_python.cmake; do not edit.
#ifndef ${guard}
#define ${guard}

#include <cstddef>

namespace pantherd::engine::embedded {

// The text of ${SOURCE_NAME}, byte for byte, followed by one NUL (the
// file holds no other): usable as a C string.
extern const char ${SYMBOL}[];
// Its length in bytes, without the NUL.
extern const std::size_t ${SYMBOL}Size;

}  // namespace pantherd::engine::embedded

#endif  // ${guard}
")

set(cc "// Generated from ${SOURCE_NAME} by cmake/embed_python.cmake; do not edit.
#include \"${HEADER}\"

namespace pantherd::engine::embedded {

const char ${SYMBOL}[] = {
    ${bytes}'\\0'};
const std::size_t ${SYMBOL}Size = ${size};

}  // namespace pantherd::engine::embedded
")

# Rewrite only what changed, so that an unchanged header rebuilds nothing.
foreach(pair "h;${OUTPUT_H}" "cc;${OUTPUT_CC}")
  list(GET pair 0 kind)
  list(GET pair 1 path)
  set(old "")
  if(EXISTS "${path}")
    file(READ "${path}" old)
  endif()
  if(NOT old STREQUAL "${${kind}}")
    file(WRITE "${path}" "${${kind}}")
  endif()
endforeach()
