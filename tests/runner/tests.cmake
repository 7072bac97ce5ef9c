# Command-line and corpus tests for the faultline binary, and data paths for
# the Check binaries. Included from tests/CMakeLists.txt.

target_compile_definitions(check_checkers PRIVATE
  FL_TEST_DATA_DIR="${CMAKE_CURRENT_SOURCE_DIR}/checkers/data")

add_test(NAME cli_check
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/runner/cli_check.sh
                 $<TARGET_FILE:faultline>)

# The recorded conformance corpus lives outside the repository; the test is
# skipped (exit 77) when it is absent.
add_test(NAME corpus_manifest
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/runner/corpus.sh
                 $<TARGET_FILE:faultline>
                 ${PROJECT_SOURCE_DIR}/../shared/corpus/linearizability)
set_tests_properties(corpus_manifest PROPERTIES SKIP_RETURN_CODE 77)
