#!/usr/bin/env bash
# Replays the seed corpus through the libFuzzer build, then fuzzes for a
# while. New inputs go to a temporary folder, never into the repository.
# The folder is removed when the run passes, fails without a finding or is
# interrupted. Only a crash keeps it, with the input and the log, and fails
# the script. SIGINT and SIGTERM end the script with 130 and 143.
set -euo pipefail

build=${1:-build-fuzz}
seconds=${2:-20}
here=$(cd "$(dirname "$0")" && pwd)
fuzzer="$build/tests/fuzz_history"
work=$(mktemp -d /tmp/fl-fuzz.XXXXXX)
fuzz_pid=

# Stops the fuzzer, removes the work folder and exits with code $1.
interrupted() {
  trap - INT TERM
  if [ -n "$fuzz_pid" ]; then
    kill -TERM "$fuzz_pid" 2>/dev/null || true
    wait "$fuzz_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
  echo "fuzz: interrupted; removed $work" >&2
  exit "$1"
}
trap 'interrupted 130' INT
trap 'interrupted 143' TERM

cp "$here"/corpus/history/* "$work/"
echo "fuzz: replaying $(ls "$here"/corpus/history | wc -l) seed inputs"
if ! "$fuzzer" -runs=0 "$here/corpus/history"; then
  rm -rf "$work"
  echo "fuzz: failure while replaying the seed corpus" >&2
  exit 1
fi
echo "fuzz: fuzzing for $seconds s in $work"
# In the background, so `wait` returns as soon as a signal arrives and the
# trap runs at once instead of after the fuzzer ends.
"$fuzzer" -max_total_time="$seconds" -max_len=4096 -timeout=10 \
  -rss_limit_mb=2048 -artifact_prefix="$work/" "$work" 2>"$work/log" &
fuzz_pid=$!
rc=0
wait "$fuzz_pid" || rc=$?
fuzz_pid=
if [ "$rc" -eq 0 ]; then
  tail -n 3 "$work/log"
  rm -rf "$work"
elif [ "$rc" -gt 128 ]; then
  # Killed by a signal from outside, such as the kernel's out-of-memory
  # killer: no input to keep.
  tail -n 3 "$work/log"
  rm -rf "$work"
  echo "fuzz: the fuzzer was killed by signal $((rc - 128))" >&2
  exit "$rc"
else
  tail -n 40 "$work/log"
  echo "fuzz: the fuzzer found a crash (exit $rc); the input and log are in $work" >&2
  exit 1
fi
