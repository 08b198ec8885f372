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
  cmake_parse_arguments(PCT "" "NAME;TIMEOUT" "SRCS;DEPS;LABELS" ${ARGN})
  add_executable(${PCT_NAME} ${PCT_SRCS})
  target_compile_options(${PCT_NAME} PRIVATE ${PANTHERD_WARNINGS})
  target_link_libraries(${PCT_NAME} PRIVATE ${PCT_DEPS} GTest::gtest GTest::gmock GTest::gtest_main)
  if(NOT PCT_TIMEOUT)
    set(PCT_TIMEOUT 120)
  endif()
  gtest_discover_tests(${PCT_NAME}
    TEST_PREFIX "${PCT_NAME}."
    PROPERTIES TIMEOUT ${PCT_TIMEOUT} LABELS "${PCT_LABELS}"
    DISCOVERY_TIMEOUT 60)
endfunction()
