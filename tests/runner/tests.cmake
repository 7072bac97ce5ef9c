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

# Crash test of fl-kvd: SIGKILL at seeded moments while clients write, then
# every acknowledged write must be present after the restart.
add_executable(kill_kvd kv/kill_kvd.c kv/kvd_util.c)
target_link_libraries(kill_kvd PRIVATE fl_common Threads::Threads)
add_test(NAME kvd_kill_cycles COMMAND kill_kvd $<TARGET_FILE:fl-kvd> 50)
set_tests_properties(kvd_kill_cycles PROPERTIES TIMEOUT 300)

# fl-kvd's flags, commands, replies and protocol errors, on a real server.
add_executable(kvd_protocol kv/kvd_protocol.c kv/kvd_util.c)
add_test(NAME kvd_protocol COMMAND kvd_protocol $<TARGET_FILE:fl-kvd>)
set_tests_properties(kvd_protocol PROPERTIES TIMEOUT 120)

# fl-raftd clusters as real processes on loopback.
add_executable(raftd_cluster raft/raftd_cluster.c kv/kvd_util.c)
target_include_directories(raftd_cluster PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/kv)
add_test(NAME raftd_cluster COMMAND raftd_cluster $<TARGET_FILE:fl-raftd>
                                    $<TARGET_FILE:faultline>)
set_tests_properties(raftd_cluster PROPERTIES TIMEOUT 300)

# Campaign files: one malformed file per class of error, and every shipped
# campaign validates.
add_test(NAME campaign_errors
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/runner/campaign_errors.sh
                 $<TARGET_FILE:faultline> ${PROJECT_SOURCE_DIR}/campaigns)

# faultline run leaves no process, namespace, rule or file behind, also
# after SIGINT, and faultline clean tidies up after a killed runner.
add_test(NAME run_cleanup
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/runner/run_cleanup.sh
                 $<TARGET_FILE:faultline> $<TARGET_FILE_DIR:fl-raftd>)
set_tests_properties(run_cleanup PROPERTIES TIMEOUT 300 RUN_SERIAL TRUE)

# Every disk fault kind through faultline run against a real fl-kvd, its
# repro, and --no-bugs.
add_test(NAME run_disk_faults
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/runner/run_disk_faults.sh
                 $<TARGET_FILE:faultline> $<TARGET_FILE_DIR:fl-kvd>
                 ${PROJECT_SOURCE_DIR}/campaigns)
set_tests_properties(run_disk_faults PROPERTIES TIMEOUT 300)
