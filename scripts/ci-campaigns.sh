#!/usr/bin/env bash
# The campaign part of CI: raft-mixed for 30 s must be valid, and each
# planted-bug campaign must be found invalid within its stated number of
# seeds (detect_within_seeds). Seeds run in order and stop at the first
# that finds the bug, which keeps CI short; bench/verification-power
# measures detection over all seeds. Simulator campaigns ("system":
# "raft-sim") go through `faultline sweep` instead of `faultline run`.
# Runs are stored in a temporary folder, removed at the end unless
# FL_KEEP_STORE is set.
set -uo pipefail

build=${1:-build}
faultline="$(cd "$build" && pwd)/runner/faultline"
cd "$(dirname "$0")/.."
store=$(mktemp -d /tmp/fl-ci-store.XXXXXX)
[ -n "${FL_KEEP_STORE:-}" ] || trap 'rm -rf "$store"' EXIT
failures=0

echo "== raft-mixed, 30 s, seed 1: expecting valid"
"$faultline" run campaigns/raft-mixed.json --seed 1 --duration 30 \
  --store "$store" </dev/null
rc=$?
if [ "$rc" -ne 0 ]; then
  echo "FAIL raft-mixed: exit $rc (0 is valid)"
  failures=$((failures + 1))
fi

for campaign in campaigns/*.json; do
  grep -q '"expect": *"invalid"' "$campaign" || continue
  name=$(basename "$campaign" .json)
  seeds=$(sed -n 's/.*"detect_within_seeds": *\([0-9]*\).*/\1/p' "$campaign")
  seeds=${seeds:-5}
  if grep -q '"system": *"raft-sim"' "$campaign"; then
    # `faultline run` starts real clusters only; a simulator campaign runs
    # under `faultline sweep`, which exits 1 when no seed finds its bug.
    "$faultline" sweep "$campaign" --seeds "1..$seeds" --store "$store" \
      </dev/null >"$store/$name.out" 2>&1
    rc=$?
    # The summary table's row: detected is column 9, to first column 10.
    detected=$(awk -v n="$name" '$1 == n && $3 ~ /^[0-9]+$/ {
      print $9 " seeds, first after " $10 }' "$store/$name.out")
    echo "== $name (simulator): invalid in ${detected:-no} seeds"
    if [ "$rc" -ne 0 ]; then
      echo "FAIL $name: faultline sweep exit $rc (0: the bug was found)"
      tail -5 "$store/$name.out"
      failures=$((failures + 1))
    fi
    continue
  fi
  found=0
  first=""
  for seed in $(seq 1 "$seeds"); do
    "$faultline" run "$campaign" --seed "$seed" --store "$store" \
      </dev/null >"$store/$name-$seed.out" 2>&1
    rc=$?
    case $rc in
      1) found=$((found + 1)); [ -n "$first" ] || first=$seed; break ;;
      0 | 3) ;;
      *) echo "FAIL $name seed $seed: exit $rc"; tail -5 "$store/$name-$seed.out"
         failures=$((failures + 1)) ;;
    esac
  done
  echo "== $name: found at seed ${first:-none} (of at most $seeds)"
  if [ "$found" -eq 0 ]; then
    echo "FAIL $name: the planted bug was not found in $seeds seeds"
    failures=$((failures + 1))
  fi
done

[ "$failures" -eq 0 ] || { echo "$failures campaign failures"; exit 1; }
echo "all campaigns behaved as expected"
