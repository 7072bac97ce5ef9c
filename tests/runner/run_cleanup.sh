#!/usr/bin/env bash
# `faultline run` leaves nothing behind: after three short runs, after a
# SIGINT in the middle of one, and, with `faultline clean`, after the
# runner itself was killed with SIGKILL. "Nothing" means no process with
# the run's temporary directory on its command line, no network namespace
# named fl-RUN-*, no nftables table in the host's namespace, no temporary
# directory and no registry entry. As root the runs use network
# namespaces and a partition; otherwise loopback and kills.
set -u
faultline=$1
bindir=$2
tmp=$(mktemp -d /tmp/fl-cleanup.XXXXXX)
failures=0
cleanup() {
  pkill -KILL -f "$tmp/" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT

if [ "$(id -u)" -eq 0 ]; then
  registry=/run/faultline
  faults='"halves", {"kind": "kill", "targets": "one"}'
else
  registry=/tmp/faultline-$(id -u)
  faults='{"kind": "kill", "targets": "one"}'
fi
cat >"$tmp/c.json" <<JSON
{"name": "cleanup", "system": "raft", "nodes": 3, "duration_s": 6,
 "workload": {"kind": "register", "keys": 2, "concurrency": 3, "rate": 50},
 "nemesis": {"faults": [$faults], "interval_s": 0.5, "fault_duration_s": 1,
             "restart_delay_s": 0.5, "start_s": 1, "quiet_s": 2}}
JSON

fail() {
  echo "FAIL $*"
  failures=$((failures + 1))
}

# Prints what a run with id $1 left behind, if anything.
leftovers() {
  local id=$1
  ls /run/netns 2>/dev/null | grep "^fl-$id-" | sed 's/^/namespace /'
  [ -e "/tmp/fl-$id" ] && echo "directory /tmp/fl-$id"
  [ -e "$registry/$id.run" ] && echo "registry entry $registry/$id.run"
  pgrep -af "/tmp/fl-$id/" | sed 's/^/process /'
  if [ "$(id -u)" -eq 0 ] && command -v nft >/dev/null &&
    nft list tables 2>/dev/null | grep -q faultline; then
    echo "nftables table in the host namespace"
  fi
}

wait_for_fault() { # waits until the runner logging to $1 starts a fault
  for _ in $(seq 100); do
    grep -q " start " "$1" 2>/dev/null && return
    sleep 0.1
  done
}

run_id() { # the run id a runner printed to its log
  sed -n 's/.*, run \([0-9a-f]*\)$/\1/p' "$1" | head -1
}

for i in 1 2 3; do
  "$faultline" run "$tmp/c.json" --seed "$i" --store "$tmp/store" \
    --bin-dir "$bindir" >"$tmp/run$i.out" 2>"$tmp/run$i.err"
  rc=$?
  id=$(run_id "$tmp/run$i.err")
  if [ "$rc" -ne 0 ] || [ -z "$id" ]; then
    fail "run $i: exit $rc"
    tail -5 "$tmp/run$i.err"
    continue
  fi
  left=$(leftovers "$id")
  [ -z "$left" ] && echo "ok   run $i (run $id) left nothing" ||
    fail "run $i left: $left"
done

# A repro injects the recorded faults: the same kinds on the same nodes at
# about the same times. The runner's loop wakes every 10 ms, so 0.5 s is a
# wide margin.
first=$(ls -d "$tmp"/store/cleanup/*-s1 | head -1)
"$faultline" repro "$first" --store "$tmp/repro" --bin-dir "$bindir" \
  >"$tmp/repro.out" 2>"$tmp/repro.err"
rc=$?
again=$(ls -d "$tmp"/repro/cleanup/*-s1 2>/dev/null | head -1)
faults() { # "kind targets start_ms" for each fault start of a run
  sed -n 's/{"time":\([0-9]*\),"action":"start","fault":"\([a-z-]*\)","id":[0-9]*,"targets":\[\([0-9,]*\)\].*/\2 \3 \1/p' \
    "$1/nemesis.jsonl" | awk '{ printf "%s %s %d\n", $1, $2, $3 / 1e6 }'
}
if [ "$rc" -gt 1 ] || [ -z "$again" ]; then
  fail "repro: exit $rc"
  tail -5 "$tmp/repro.err"
elif ! paste -d' ' <(faults "$first") <(faults "$again") | awk '
    NF != 6 || $1 != $4 || $2 != $5 || ($3 - $6 > 500 || $6 - $3 > 500) { bad = 1 }
    END { exit bad || NR == 0 }'; then
  fail "repro injected other faults:"
  paste <(faults "$first") <(faults "$again")
else
  echo "ok   repro injected the same $(faults "$first" | wc -l) faults"
fi

# SIGINT mid-run: the runner stops, cleans up and exits 130. Job control
# keeps SIGINT at its default in the background job (a script's background
# jobs otherwise start with SIGINT ignored).
set -m
"$faultline" run "$tmp/c.json" --seed 9 --store "$tmp/store" \
  --bin-dir "$bindir" >"$tmp/int.out" 2>"$tmp/int.err" &
pid=$!
wait_for_fault "$tmp/int.err"
kill -INT "$pid"
wait "$pid"
rc=$?
set +m
id=$(run_id "$tmp/int.err")
[ "$rc" -eq 130 ] || fail "SIGINT: exit $rc, expected 130"
left=$(leftovers "$id")
[ -n "$id" ] && [ -z "$left" ] && echo "ok   SIGINT (run $id) left nothing" ||
  fail "SIGINT left: $left (run '$id')"
# The interrupted run still has a history prefix the checker accepts.
dir=$(ls -d "$tmp"/store/cleanup/*-s9 | head -1)
"$faultline" check "$dir/history.jsonl" >/dev/null 2>&1
[ $? -le 1 ] && echo "ok   SIGINT left a checkable history" ||
  fail "the interrupted run's history does not check"

# SIGKILL: the nodes die with the runner; `faultline clean` removes the
# rest, and a second clean finds nothing.
"$faultline" run "$tmp/c.json" --seed 10 --store "$tmp/store" \
  --bin-dir "$bindir" >"$tmp/kill.out" 2>"$tmp/kill.err" &
pid=$!
wait_for_fault "$tmp/kill.err"
kill -KILL "$pid"
wait "$pid" 2>/dev/null
id=$(run_id "$tmp/kill.err")
sleep 0.5
"$faultline" clean >"$tmp/clean.out" 2>&1 || fail "clean: exit $?"
left=$(leftovers "$id")
[ -n "$id" ] && [ -z "$left" ] && echo "ok   clean after SIGKILL (run $id)" ||
  { fail "after clean: $left (run '$id')"; cat "$tmp/clean.out"; }
"$faultline" clean >"$tmp/clean2.out" 2>&1
grep -q "removed 0 items" "$tmp/clean2.out" && echo "ok   second clean is a no-op" ||
  { fail "second clean:"; cat "$tmp/clean2.out"; }

[ "$failures" -eq 0 ] || { echo "$failures failures"; exit 1; }
echo "all cleanup checks passed"
