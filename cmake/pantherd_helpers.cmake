# Two helpers declare every target, so each unit reads as a few lines.
#
#   pantherd_cc_library(NAME pantherd_store SRCS a.cc b.cc DEPS absl::status ...)
#   pantherd_cc_test(NAME store_test SRCS store_test.cc DEPS pantherd_store)
#
# Libraries are static and export the repository root as their include root, so
# headers are included as "store/store.h", "engine/...", and so on.

set(PANTHERD_WARNINGS -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers)

function(pantherd_cc_library)
  cmake_parse_arguments(PCL "" "NAME" "SRCS;DEPS" ${ARGN})
  add_library(${PCL_NAME} STATIC ${PCL_SRCS})
  target_include_directories(${PCL_NAME} PUBLIC ${PROJECT_SOURCE_DIR})
  target_compile_options(${PCL_NAME} PRIVATE ${PANTHERD_WARNINGS})
  target_link_libraries(${PCL_NAME} PUBLIC ${PCL_DEPS})
endfunction()

# Tests are built only with PANTHERD_BUILD_TESTS and registered case by case
# with CTest through gtest_discover_tests.
function(pantherd_cc_test)
  if(NOT PANTHERD_BUILD_TESTS)
    return()
  endif()
  cmake_parse_arguments(PCT "PYTHON" "NAME;TIMEOUT" "SRCS;DEPS;LABELS" ${ARGN})
  add_executable(${PCT_NAME} ${PCT_SRCS})
  target_compile_options(${PCT_NAME} PRIVATE ${PANTHERD_WARNINGS})
  if(PCT_PYTHON)
    # A test holding pybind11 objects is compiled as pybind11 code must be
    # (see pantherd_worker_runtime in engine/CMakeLists.txt).
    set_target_properties(${PCT_NAME} PROPERTIES
      CXX_VISIBILITY_PRESET hidden
      VISIBILITY_INLINES_HIDDEN ON)
  endif()
  target_link_libraries(${PCT_NAME} PRIVATE ${PCT_DEPS} GTest::gtest GTest::gmock GTest::gtest_main)
  if(NOT PCT_TIMEOUT)
    set(PCT_TIMEOUT 120)
  endif()
  gtest_discover_tests(${PCT_NAME}
    TEST_PREFIX "${PCT_NAME}."
    PROPERTIES TIMEOUT ${PCT_TIMEOUT} LABELS "${PCT_LABELS}"
    DISCOVERY_TIMEOUT 60)
endfunction()

# Embeds Python source files in a library at build time. For each
# <dir>/<name>.py (relative to the calling CMakeLists.txt) it generates, in the
# build tree, <dir>/<name>_py.h and <dir>/<name>_py.cc defining
# pantherd::engine::embedded::k<Name>Py (the text, NUL-terminated) and
# k<Name>PySize, where <Name> is <name> in CamelCase (pantherd_runtime ->
# kPantherdRuntimePy). Code includes the header by its path from the project
# root, as if it were in the source tree ("engine/python/caching_py.h").
# Editing a .py regenerates its pair and rebuilds what includes it.
function(pantherd_embed_python)
  cmake_parse_arguments(PEP "" "TARGET" "FILES" ${ARGN})
  file(RELATIVE_PATH rel_dir ${PROJECT_SOURCE_DIR} ${CMAKE_CURRENT_SOURCE_DIR})
  set(script ${PROJECT_SOURCE_DIR}/cmake/embed_python.cmake)
  set(generated)
  foreach(py ${PEP_FILES})
    get_filename_component(dir ${py} DIRECTORY)
    get_filename_component(name ${py} NAME_WE)
    string(REPLACE "_" ";" words ${name})
    set(symbol k)
    foreach(word ${words})
      string(SUBSTRING ${word} 0 1 first)
      string(SUBSTRING ${word} 1 -1 rest)
      string(TOUPPER ${first} first)
      string(APPEND symbol ${first} ${rest})
    endforeach()
    string(APPEND symbol Py)
    set(out_h ${CMAKE_CURRENT_BINARY_DIR}/${dir}/${name}_py.h)
    set(out_cc ${CMAKE_CURRENT_BINARY_DIR}/${dir}/${name}_py.cc)
    add_custom_command(
      OUTPUT ${out_h} ${out_cc}
      COMMAND ${CMAKE_COMMAND}
        -DINPUT=${CMAKE_CURRENT_SOURCE_DIR}/${py}
        -DOUTPUT_CC=${out_cc} -DOUTPUT_H=${out_h}
        -DHEADER=${rel_dir}/${dir}/${name}_py.h
        -DSYMBOL=${symbol}
        -DSOURCE_NAME=${rel_dir}/${py}
        -P ${script}
      DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/${py} ${script}
      COMMENT "Embedding ${rel_dir}/${py}"
      VERBATIM)
    list(APPEND generated ${out_h} ${out_cc})
  endforeach()
  target_sources(${PEP_TARGET} PRIVATE ${generated})
  target_include_directories(${PEP_TARGET} PRIVATE ${PROJECT_BINARY_DIR})
endfunction()
