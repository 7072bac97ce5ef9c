#!/usr/bin/env bash
# Replays the seed corpus through the libFuzzer build, then fuzzes for a
# while. New inputs go to a temporary folder, never into the repository;
# a crash leaves its input in that folder and fails the script.
set -euo pipefail

build=${1:-build-fuzz}
seconds=${2:-20}
here=$(cd "$(dirname "$0")" && pwd)
fuzzer="$build/tests/fuzz_history"
work=$(mktemp -d /tmp/fl-fuzz.XXXXXX)

cp "$here"/corpus/history/* "$work/"
echo "fuzz: replaying $(ls "$here"/corpus/history | wc -l) seed inputs"
"$fuzzer" -runs=0 "$here/corpus/history"
echo "fuzz: fuzzing for $seconds s in $work"
if "$fuzzer" -max_total_time="$seconds" -max_len=4096 -timeout=10 \
     -rss_limit_mb=2048 -artifact_prefix="$work/" "$work" 2>"$work/log"; then
  tail -n 3 "$work/log"
  rm -rf "$work"
else
  tail -n 40 "$work/log"
  echo "fuzz: failure; the input and log are in $work" >&2
  exit 1
fi
