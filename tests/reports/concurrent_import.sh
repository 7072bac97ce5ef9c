#!/usr/bin/env bash
# `faultline report import`. First one process searches a store: it must
# import every run below a DIR argument, skip folders without results.json,
# and report a broken run with exit code 2 after importing the others.
# Then eight processes write to one new results.db at the same time, for
# several rounds. In each round every process imports a
# run of its own and imports its run of the round before again, so
# creation of the schema, inserts and replacing deletes all race. After
# the rounds the database must pass PRAGMA integrity_check and hold every
# run exactly once with all of its rows.
set -u
faultline=$1
processes=8
rounds=4
tmp=$(mktemp -d /tmp/fl-concurrent-import.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
db=$tmp/results.db
failures=0

fail() {
  echo "FAIL $*"
  failures=$((failures + 1))
}

if ! command -v sqlite3 >/dev/null; then
  echo "SKIP: the sqlite3 command-line shell is not installed"
  exit 77
fi

# Writes a finished run with two faults, one anomaly and three metrics.
make_run() {
  local dir=$1 seed=$2
  mkdir -p "$dir"
  cat >"$dir/results.json" <<JSON
{"campaign": "concurrent", "seed": $seed, "run_id": "run$seed",
 "system": "kv", "nodes": 1, "started": "2026-12-05T05:28:00Z",
 "elapsed_s": 5.0, "network": "loopback", "verdict": "invalid",
 "expected": "valid", "exit_code": 1, "repro": "faultline repro $dir",
 "anomalies": [{"checker": "logs", "kind": "node-exit",
                "detail": {"what": "node 1 exited with status 1"}}],
 "metrics": {"ok": $seed, "workload_s": 5.0, "ok_per_s_in_faults": 1.5}}
JSON
  cat >"$dir/nemesis.jsonl" <<JSON
{"time": 1000000000, "action": "start", "fault": "kill", "id": 1, "targets": [1], "detail": {"spec": 0}}
{"time": 2000000000, "action": "stop", "fault": "kill", "id": 1, "targets": [1], "detail": {"spec": 0}}
{"time": 3000000000, "action": "start", "fault": "pause", "id": 2, "targets": [1], "detail": {"spec": 1}}
JSON
}

# ---- the search below a DIR argument ----

store=$tmp/store
make_run "$store/campaign-a/run1" 1001
make_run "$store/campaign-a/run2" 1002
make_run "$store/campaign-b/run3" 1003
mkdir -p "$store/campaign-b/unfinished/nodes"
out=$("$faultline" report import --db "$tmp/walk.db" "$store" 2>&1)
rc=$?
[ $rc = 0 ] || fail "import of a store exited $rc: $out"
case $out in
*"imported 3 runs"*) ;;
*) fail "import of a store: expected 3 runs imported, got: $out" ;;
esac
make_run "$store/campaign-b/broken" 1004
echo '{"verdict": ' >"$store/campaign-b/broken/results.json"
make_run "$store/campaign-b/run4" 1005
out=$("$faultline" report import --db "$tmp/walk.db" "$store" 2>&1)
rc=$?
[ $rc = 2 ] || fail "import with a broken run exited $rc, expected 2: $out"
case $out in
*"broken/results.json"*"imported 4 runs"*) ;;
*) fail "import with a broken run: expected the file named and 4 runs" \
  "imported, got: $out" ;;
esac
walk_runs=$(sqlite3 -batch -noheader "$tmp/walk.db" "SELECT count(*) FROM runs")
[ "$walk_runs" = 4 ] || fail "$walk_runs runs after the search, expected 4"

# ---- eight processes at once ----

for ((r = 0; r < rounds; r++)); do
  for ((p = 0; p < processes; p++)); do
    make_run "$tmp/runs/r$r-p$p" $((r * processes + p))
  done
done

for ((r = 0; r < rounds; r++)); do
  pids=()
  for ((p = 0; p < processes; p++)); do
    dirs=("$tmp/runs/r$r-p$p")
    if ((r > 0)); then
      dirs+=("$tmp/runs/r$((r - 1))-p$p")
    fi
    "$faultline" report import --db "$db" "${dirs[@]}" \
      >"$tmp/out.r$r.p$p" 2>&1 &
    pids+=($!)
  done
  for ((p = 0; p < processes; p++)); do
    if ! wait "${pids[$p]}"; then
      fail "round $r, process $p: faultline report import failed:"
      cat "$tmp/out.r$r.p$p"
    fi
  done
done

query() {
  sqlite3 -batch -noheader "$db" "$1"
}

expected_runs=$((rounds * processes))
check=$(query "PRAGMA integrity_check")
[ "$check" = "ok" ] || fail "integrity_check: $check"
runs=$(query "SELECT count(*) FROM runs")
[ "$runs" = "$expected_runs" ] || fail "$runs runs, expected $expected_runs"
paths=$(query "SELECT count(DISTINCT store_path) FROM runs")
[ "$paths" = "$expected_runs" ] ||
  fail "$paths distinct paths, expected $expected_runs"
for ((r = 0; r < rounds; r++)); do
  for ((p = 0; p < processes; p++)); do
    dir=$(realpath "$tmp/runs/r$r-p$p")
    n=$(query "SELECT count(*) FROM runs WHERE store_path = '$dir'")
    [ "$n" = 1 ] || fail "run r$r-p$p present $n times"
  done
done
faults=$(query "SELECT count(*) FROM faults")
[ "$faults" = $((expected_runs * 2)) ] ||
  fail "$faults faults, expected $((expected_runs * 2))"
anomalies=$(query "SELECT count(*) FROM anomalies")
[ "$anomalies" = "$expected_runs" ] ||
  fail "$anomalies anomalies, expected $expected_runs"
metrics=$(query "SELECT count(*) FROM metrics")
[ "$metrics" = $((expected_runs * 3)) ] ||
  fail "$metrics metrics, expected $((expected_runs * 3))"
orphans=$(query "SELECT count(*) FROM faults WHERE run NOT IN
                 (SELECT id FROM runs)")
[ "$orphans" = 0 ] || fail "$orphans faults without a run"
version=$(query "PRAGMA user_version")
[ "$version" = 1 ] || fail "user_version $version, expected 1"

if ((failures > 0)); then
  echo "$failures failure(s)"
  exit 1
fi
echo "ok: $processes processes x $rounds rounds, $runs runs, database intact"
