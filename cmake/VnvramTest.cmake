# vnvram_add_test(NAME name SOURCES a.cc b.cc LIBS lib1 lib2 [LABELS l] [TIMEOUT s])
#
# Builds one Boost.Test executable (dynamic Boost.Test, main provided by the
# library) and registers it with ctest. A test that needs a facility the
# machine lacks exits with code 77 after printing the reason; ctest then
# reports it as skipped, never as passed. With BUILD_TESTING=OFF the
# executable is still defined (so a directory's test-only settings on it
# stay valid) but left out of "all" and not registered with ctest.
set(VNVRAM_SKIP_CODE 77)

function(vnvram_add_test)
  cmake_parse_arguments(T "" "NAME;TIMEOUT" "SOURCES;LIBS;LABELS;ENV" ${ARGN})
  if(NOT BUILD_TESTING)
    add_executable(${T_NAME} EXCLUDE_FROM_ALL ${T_SOURCES})
    return()
  endif()
  add_executable(${T_NAME} ${T_SOURCES})
  target_compile_definitions(${T_NAME} PRIVATE BOOST_TEST_DYN_LINK
                             VNVRAM_BIN_DIR="${CMAKE_BINARY_DIR}/bin"
                             VNVRAM_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
  target_link_libraries(${T_NAME} PRIVATE ${T_LIBS} Boost::unit_test_framework Threads::Threads)
  set_target_properties(${T_NAME} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
  add_test(NAME ${T_NAME} COMMAND ${T_NAME} --log_level=test_suite --report_level=short)
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 120)
  endif()
  # Sanitizer builds (make test-asan / test-tsan) run every process two to
  # ten times slower: the same work gets four times the time.
  if(VNVRAM_SANITIZE)
    math(EXPR T_TIMEOUT "${T_TIMEOUT} * 4")
  endif()
  set_tests_properties(${T_NAME} PROPERTIES TIMEOUT ${T_TIMEOUT}
                       SKIP_RETURN_CODE ${VNVRAM_SKIP_CODE})
  if(T_LABELS)
    set_tests_properties(${T_NAME} PROPERTIES LABELS "${T_LABELS}")
  endif()
  if(T_ENV)
    set_tests_properties(${T_NAME} PROPERTIES ENVIRONMENT "${T_ENV}")
  endif()
endfunction()
