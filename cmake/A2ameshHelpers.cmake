# One function per kind of target. Every library is `a2amesh_<name>` with the
# alias `a2amesh::<name>`; include paths are the repository's include/ and src/
# folders, so includes read "core/status.h" or "a2amesh/sdk/agent.h".

set(A2AMESH_WARNINGS -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers)
if(CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
  # Checks the ABSL_GUARDED_BY / ABSL_EXCLUSIVE_LOCKS_REQUIRED annotations.
  list(APPEND A2AMESH_WARNINGS -Wthread-safety)
endif()
if(A2AMESH_WERROR)
  list(APPEND A2AMESH_WARNINGS -Werror)
endif()

# a2amesh_cc_library(NAME name SRCS ... [DEPS ...] [PUBLIC_DEPS ...])
#   PUBLIC_DEPS: what the component's headers need. DEPS: what only its sources need.
function(a2amesh_cc_library)
  cmake_parse_arguments(A "" "NAME" "SRCS;DEPS;PUBLIC_DEPS" ${ARGN})
  set(_target a2amesh_${A_NAME})
  add_library(${_target} STATIC ${A_SRCS})
  add_library(a2amesh::${A_NAME} ALIAS ${_target})
  target_include_directories(${_target} PUBLIC ${PROJECT_SOURCE_DIR}/include
                                               ${PROJECT_SOURCE_DIR}/src)
  target_compile_options(${_target} PRIVATE ${A2AMESH_WARNINGS})
  target_link_libraries(${_target} PUBLIC ${A_PUBLIC_DEPS} PRIVATE ${A_DEPS})
endfunction()

# a2amesh_cc_binary(NAME name SRCS ... DEPS ... [OUTPUT_NAME file])
function(a2amesh_cc_binary)
  cmake_parse_arguments(A "" "NAME;OUTPUT_NAME" "SRCS;DEPS" ${ARGN})
  add_executable(${A_NAME} ${A_SRCS})
  target_compile_options(${A_NAME} PRIVATE ${A2AMESH_WARNINGS})
  target_link_libraries(${A_NAME} PRIVATE ${A_DEPS})
  if(A_OUTPUT_NAME)
    set_target_properties(${A_NAME} PROPERTIES OUTPUT_NAME ${A_OUTPUT_NAME})
  endif()
  set_target_properties(${A_NAME} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/bin)
endfunction()

# a2amesh_cc_test(NAME name SRCS ... DEPS ... LABEL unit|integration|e2e [TIMEOUT s])
#   One executable per test file; gtest_discover_tests registers every case with ctest.
# SERIAL: the test measures latency, and must have the machine to itself
# (ctest runs it alone, even with -j).
function(a2amesh_cc_test)
  cmake_parse_arguments(A "SERIAL" "NAME;LABEL;TIMEOUT" "SRCS;DEPS" ${ARGN})
  if(NOT A_LABEL)
    message(FATAL_ERROR "a2amesh_cc_test(${A_NAME}) needs a LABEL")
  endif()
  if(NOT A_TIMEOUT)
    set(A_TIMEOUT 120)
  endif()
  add_executable(${A_NAME} ${A_SRCS})
  target_compile_options(${A_NAME} PRIVATE ${A2AMESH_WARNINGS})
  target_include_directories(${A_NAME} PRIVATE ${PROJECT_SOURCE_DIR})
  target_link_libraries(${A_NAME} PRIVATE ${A_DEPS} GTest::gmock GTest::gtest_main)
  if(A2AMESH_TSAN)
    # Makes Debian's uninstrumented absl::Mutex visible to ThreadSanitizer.
    target_sources(${A_NAME} PRIVATE ${PROJECT_SOURCE_DIR}/tests/testing/tsan_sync.cc)
    target_link_libraries(${A_NAME} PRIVATE absl::synchronization ${CMAKE_DL_LIBS})
  endif()
  set_target_properties(${A_NAME} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/tests)
  set(serial FALSE)
  if(A_SERIAL)
    set(serial TRUE)
  endif()
  gtest_discover_tests(${A_NAME}
    DISCOVERY_TIMEOUT 60
    PROPERTIES LABELS ${A_LABEL} TIMEOUT ${A_TIMEOUT} RUN_SERIAL ${serial})
endfunction()
