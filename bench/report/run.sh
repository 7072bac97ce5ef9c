#!/usr/bin/env bash
# Measures how long rep_render_run takes on generated runs of 10,000 and
# 100,000 operations and how large report.html is, and prints a table.
#
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: bench/report/run.sh [BUILD_DIR]

Generates histories with `faultline gen` from BUILD_DIR/runner (default:
build), wraps each into a run folder with a results.json, a campaign.json,
a nemesis.jsonl with three faults and a node log, builds
bench/report/render.c against BUILD_DIR's fl_reports and fl_common, and
renders report.html three times per size. Prints the best render time
and the page size. Targets for 100,000 operations: under 2 s and under
10 MB.

Exit codes: 0 when both targets are met, 1 when one is not, 2 on a usage
or setup error.
USAGE
}

die() {
  echo "run.sh: $*" >&2
  exit 2
}

build=build
while [ $# -gt 0 ]; do
  case $1 in
    -h|--help) usage; exit 0 ;;
    -*) die "unknown option '$1'; see --help" ;;
    *) build=$1 ;;
  esac
  shift
done
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
case $build in /*) ;; *) build=$root/$build ;; esac
faultline=$build/runner/faultline
[ -x "$faultline" ] || die "faultline not found at '$faultline'; build it first"
for lib in reports/libfl_reports.a common/libfl_common.a; do
  [ -f "$build/$lib" ] || die "$build/$lib not found; build it first"
done
command -v cc >/dev/null || die "cc not found"

work=$(mktemp -d /tmp/fl-bench-report-XXXXXX)
trap 'rm -rf "$work"' EXIT

cc -O2 -I "$root/reports" -I "$root/common" "$here/render.c" \
  "$build/reports/libfl_reports.a" "$build/common/libfl_common.a" \
  $(pkg-config --libs sqlite3) -lm -lpthread -o "$work/render" ||
  die "cannot build render.c"

# Makes a run folder of $2 operations in $1; the history's times are
# nanoseconds, as in a real run.
make_run() {
  local dir=$1 ops=$2
  mkdir -p "$dir/nodes"
  "$faultline" gen --ops "$ops" --keys 4 --processes 10 --crash-rate 0.01 \
    --seed 1 --out "$dir/history.jsonl"
  local end_ns
  end_ns=$(tail -n 1 "$dir/history.jsonl" | sed 's/.*"time":\([0-9]*\).*/\1/')
  printf '{"name":"bench","system":"kv","duration_s":1}\n' >"$dir/campaign.json"
  printf '{"campaign":"bench","seed":1,"started":"2026-01-01T00:00:00Z","network":"loopback","notes":[],"checks":{},"anomalies":[],"metrics":{"invocations":%s},"expected":"valid","verdict":"valid","exit_code":0,"repro":"faultline repro %s"}\n' \
    "$ops" "$dir" >"$dir/results.json"
  local i start stop
  : >"$dir/nemesis.jsonl"
  for i in 1 2 3; do
    start=$((end_ns * (2 * i - 1) / 7))
    stop=$((end_ns * 2 * i / 7))
    printf '{"time":%s,"action":"start","fault":"kill","id":%s,"targets":[1]}\n{"time":%s,"action":"stop","fault":"kill","id":%s,"targets":[1]}\n' \
      "$start" "$i" "$stop" "$i" >>"$dir/nemesis.jsonl"
  done
  for i in $(seq 1000); do
    printf 'ts=2026-01-01T00:00:00.%03dZ level=info comp=kv msg=tick n=%s\n' \
      $((i % 1000)) "$i"
  done >"$dir/nodes/n1.log"
}

status=0
printf '%-10s %-12s %-14s %s\n' operations "render s" "report.html" "target"
for ops in 10000 100000; do
  dir=$work/run-$ops
  make_run "$dir" "$ops"
  best=
  for _ in 1 2 3; do
    t=$("$work/render" "$dir" | awk '{print $2}')
    if [ -z "$best" ] || awk -v a="$t" -v b="$best" 'BEGIN{exit !(a<b)}'; then
      best=$t
    fi
  done
  size=$(stat -c %s "$dir/report.html")
  target=-
  if [ "$ops" -eq 100000 ]; then
    target=met
    if ! awk -v t="$best" -v s="$size" 'BEGIN{exit !(t<2 && s<10*1024*1024)}'; then
      target="MISSED (2 s, 10 MB)"
      status=1
    fi
  fi
  printf '%-10s %-12s %-14s %s\n' "$ops" "$best" \
    "$(awk -v s="$size" 'BEGIN{printf "%.2f MB", s/1048576}')" "$target"
done
exit $status
