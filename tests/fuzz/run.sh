#!/usr/bin/env bash
# Usage: run.sh [BUILD] [SECONDS]. Fuzzes each harness in turn for an equal
# share of SECONDS (at least 1 s each): fuzz_history, the history reader,
# fuzz_resp, the RESP request parser, fuzz_wal, the KV engine's log
# recovery, and fuzz_frame, the Raft peer frame decoder. Before fuzzing,
# each harness replays its seed corpus. New inputs go to a temporary
# folder, never into the repository. The folder is removed when the run
# passes, fails without a finding or is interrupted. Only a crash keeps
# it, with the input and the log, and fails the script. SIGINT and
# SIGTERM end the script with 130 and 143.
set -euo pipefail

build=${1:-build-fuzz}
seconds=${2:-20}
here=$(cd "$(dirname "$0")" && pwd)
# Each entry is HARNESS:CORPUS, a binary in $build/tests and a folder in
# corpus/.
harnesses=(fuzz_history:history fuzz_resp:resp fuzz_wal:wal fuzz_frame:frame)
share=$((seconds / ${#harnesses[@]}))
[ "$share" -ge 1 ] || share=1
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

for entry in "${harnesses[@]}"; do
  name=${entry%%:*}
  corpus="$here/corpus/${entry#*:}"
  fuzzer="$build/tests/$name"
  dir="$work/$name"

  mkdir "$dir"
  cp "$corpus"/* "$dir/"
  echo "fuzz: $name: replaying $(ls "$corpus" | wc -l) seed inputs"
  if ! "$fuzzer" -runs=0 "$corpus"; then
    rm -rf "$work"
    echo "fuzz: $name: failure while replaying the seed corpus" >&2
    exit 1
  fi

  echo "fuzz: $name: fuzzing for $share s in $dir"
  # In the background, so `wait` returns as soon as a signal arrives and the
  # trap runs at once instead of after the fuzzer ends.
  "$fuzzer" -max_total_time="$share" -max_len=4096 -timeout=10 \
    -rss_limit_mb=2048 -artifact_prefix="$dir/" "$dir" 2>"$dir/log" &
  fuzz_pid=$!
  rc=0
  wait "$fuzz_pid" || rc=$?
  fuzz_pid=
  if [ "$rc" -eq 0 ]; then
    tail -n 3 "$dir/log"
  elif [ "$rc" -gt 128 ]; then
    # Killed by a signal from outside, such as the kernel's out-of-memory
    # killer: no input to keep.
    tail -n 3 "$dir/log"
    rm -rf "$work"
    echo "fuzz: $name: the fuzzer was killed by signal $((rc - 128))" >&2
    exit "$rc"
  else
    tail -n 40 "$dir/log"
    echo "fuzz: $name: the fuzzer found a crash (exit $rc); the input and log are in $dir" >&2
    exit 1
  fi
done
rm -rf "$work"
