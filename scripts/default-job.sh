#!/usr/bin/env bash
# The default job behind `make run`: the raft-mixed campaign for 60 seconds
# (five fl-raftd nodes in network namespaces under kills, pauses,
# partitions and packet loss), checked, stored under store/. Pass a seed
# as the second argument to repeat a run; FL_DURATION changes the length.
set -euo pipefail

build=${1:-build}
seed=${2:-}
faultline="$(cd "$build" && pwd)/runner/faultline"
args=(run campaigns/raft-mixed.json --duration "${FL_DURATION:-60}"
  --store store)
[ -n "$seed" ] && args+=(--seed "$seed")

cd "$(dirname "$0")/.."
set +e
"$faultline" "${args[@]}"
rc=$?
set -e
echo
case $rc in
  0) echo "The run is valid: no anomaly found." ;;
  1) echo "The run found an anomaly: see results.json above." ;;
  3) echo "The checker could not decide within its budget." ;;
  *) echo "The run did not complete (exit $rc)." ;;
esac
echo "Every run is stored under $(pwd)/store/; 'faultline repro DIR' repeats one."
echo "Open $(pwd)/store/index.html in a browser to see every run and its report."
exit "$rc"
