#!/usr/bin/env bash
# Measures how many seeds a second `faultline sim raft` runs on one core,
# and how many seeds each planted bug takes to find, and prints both as
# tables. See bench/raft-sim/README.md.
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: bench/raft-sim/run.sh [--quick] [BUILD_DIR]

Runs `faultline sim raft` from BUILD_DIR/runner (default: build) pinned to
one CPU with taskset, over a range of seeds with every fault on, and
reports seeds per second for 5 nodes and 10 virtual seconds (target: 20
or more). Then runs each planted bug over seeds 1.. until the first
violation, up to 500 seeds, and reports the seed and the wall time.
--quick uses 50 seeds for the speed rows.

Exit codes: 0 when the speed target is met, 1 when it is not, 2 on a
usage or setup error.
USAGE
}

die() {
  echo "run.sh: $*" >&2
  exit 2
}

build=build
seeds=1000
while [ $# -gt 0 ]; do
  case $1 in
    -h|--help) usage; exit 0 ;;
    --quick) seeds=50 ;;
    -*) die "unknown option '$1'; see --help" ;;
    *) build=$1 ;;
  esac
  shift
done
faultline=$build/runner/faultline
[ -x "$faultline" ] || die "faultline not found at '$faultline'; build it first"
command -v taskset >/dev/null || die "taskset not found; install util-linux"

now() { date +%s.%N; }

printf '%-44s %8s %10s %12s\n' "run" "seeds" "wall s" "seeds/s"
met=1
for spec in "5 nodes, 10 s, all faults|--nodes 5 --time 10" \
            "5 nodes, 30 s, all faults|--nodes 5 --time 30" \
            "9 nodes, 10 s, all faults|--nodes 9 --time 10"; do
  name=${spec%%|*}
  args=${spec#*|}
  start=$(now)
  # shellcheck disable=SC2086
  taskset -c 0 "$faultline" sim raft $args --seeds "1..$seeds" >/dev/null ||
    die "a correct run found a violation: $faultline sim raft $args --seeds 1..$seeds"
  end=$(now)
  wall=$(echo "$end - $start" | bc -l)
  rate=$(echo "$seeds / $wall" | bc -l)
  printf '%-44s %8d %10.2f %12.0f\n' "$name" "$seeds" "$wall" "$rate"
  if [ "$name" = "5 nodes, 10 s, all faults" ] && \
     [ "$(echo "$rate < 20" | bc -l)" -eq 1 ]; then
    met=0
  fi
done

echo
printf '%-20s %-52s %10s %8s\n' "bug" "settings" "first seed" "wall s"
for spec in "no-persist-vote|--drop 0.2 --fault-every 200 --max-down 50" \
            "truncate-on-match|" \
            "commit-prior-term|--nodes 3 --drop 0.2 --fault-every 100 --max-down 50" \
            "stale-read|" \
            "no-session-dedup|"; do
  bug=${spec%%|*}
  args=${spec#*|}
  found="-"
  start=$(now)
  for seed in $(seq 1 500); do
    # shellcheck disable=SC2086
    if ! taskset -c 0 "$faultline" sim raft $args --inject-bug "$bug" \
         --seed "$seed" >/dev/null; then
      found=$seed
      break
    fi
  done
  end=$(now)
  printf '%-20s %-52s %10s %8.2f\n' "$bug" "${args:-defaults}" "$found" \
    "$(echo "$end - $start" | bc -l)"
done

if [ "$met" -eq 1 ]; then
  echo "target: 5 nodes, 10 virtual seconds, all faults: at least 20 seeds/s: PASS"
  exit 0
fi
echo "target: 5 nodes, 10 virtual seconds, all faults: at least 20 seeds/s: FAIL"
exit 1
