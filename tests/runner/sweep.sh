#!/usr/bin/env bash
# `faultline sweep`. Bad flags and campaign files are rejected before any
# run starts. A sweep of a real campaign and a simulator campaign with
# --jobs 2 runs real clusters side by side and writes the expected JUnit
# file and results.db rows. Unexpected verdicts, undetected planted bugs,
# runs that fail to run, a spent budget and shards show up in the exit
# code and the JUnit file. --emit-k8s prints a well-formed Indexed Job.
# A sweep stopped with SIGINT, or killed with SIGKILL and followed by
# `faultline clean`, leaves no process, namespace or registry entry of its
# runs behind. Works in a temporary folder removed on exit.
set -u
faultline=$1
bindir=$2
tmp=$(mktemp -d /tmp/fl-sweep.XXXXXX)
failures=0
cleanup() {
  pkill -KILL -f "$tmp/" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
cd "$tmp" || exit 1

if [ "$(id -u)" -eq 0 ]; then
  registry=/run/faultline
else
  registry=/tmp/faultline-$(id -u)
fi
have_python=0
command -v python3 >/dev/null && have_python=1

fail() {
  echo "FAIL $*"
  failures=$((failures + 1))
}

# expect NAME CODE PATTERN -- COMMAND...: runs COMMAND, requires exit CODE
# and PATTERN (grep -E) in its combined output.
expect() {
  local name=$1 code=$2 pattern=$3
  shift 4
  local out rc
  out=$("$@" 2>&1)
  rc=$?
  if [ "$rc" -ne "$code" ]; then
    fail "$name: exit $rc, expected $code; output:"
    echo "$out" | head -10
  elif ! echo "$out" | grep -Eq -- "$pattern"; then
    fail "$name: output lacks /$pattern/; output:"
    echo "$out" | head -10
  else
    echo "ok   $name"
  fi
}

# Prints what the runs logged under $1 left behind: namespaces, temporary
# directories, registry entries and processes of each run id found there.
leftovers() {
  local id
  for id in $(cat "$1"/*.log 2>/dev/null |
    sed -n 's/^faultline run: campaign .*, run \([0-9a-f]*\)$/\1/p'); do
    ls /run/netns 2>/dev/null | grep "^fl-$id-" | sed 's/^/namespace /'
    [ -e "/tmp/fl-$id" ] && echo "directory /tmp/fl-$id"
    [ -e "$registry/$id.run" ] && echo "registry entry $registry/$id.run"
    pgrep -af "/tmp/fl-$id/" | sed 's/^/process /'
  done
  pgrep -af "$tmp/" | grep -v "pgrep" | sed 's/^/process /'
}

# Campaigns: a short real one, a long real one to interrupt, and
# simulator ones that are fast.
cat >real.json <<'JSON'
{"name": "sweep-real", "system": "raft", "nodes": 3, "duration_s": 5,
 "workload": {"kind": "register", "keys": 2, "concurrency": 3, "rate": 50},
 "nemesis": {"faults": [{"kind": "kill", "targets": "one"}],
             "interval_s": 0.5, "fault_duration_s": 1, "restart_delay_s": 0.5,
             "start_s": 1, "quiet_s": 2}}
JSON
sed -e 's/"sweep-real"/"sweep-long"/' -e 's/"duration_s": 5/"duration_s": 60/' \
  real.json >long.json
cat >sim-bug.json <<'JSON'
{"name": "sweep-sim-bug", "system": "raft-sim", "nodes": 5, "time_s": 10,
 "inject_bug": ["stale-read"], "expect": "invalid", "detect_within_seeds": 3}
JSON
cat >sim-ok.json <<'JSON'
{"name": "sweep-sim-ok", "system": "raft-sim", "nodes": 3, "time_s": 5,
 "faults": ["partition", "crash"], "clients": 2}
JSON

# ---- bad input: exit 2, a message naming the flag, nothing started ----

expect no-arguments 2 "Usage: faultline sweep" -- "$faultline" sweep
expect help 0 "--shard I/N" -- "$faultline" sweep --help
expect missing-seeds 2 "missing --seeds A..B" -- "$faultline" sweep sim-ok.json
expect missing-campaign 2 "missing CAMPAIGN_OR_DIR" -- \
  "$faultline" sweep --seeds 1..2
expect seeds-reversed 2 'invalid --seeds "5..1": the first seed is above' -- \
  "$faultline" sweep sim-ok.json --seeds 5..1
expect seeds-words 2 'invalid --seeds "a..b": expected A..B' -- \
  "$faultline" sweep sim-ok.json --seeds a..b
expect seeds-open 2 'invalid --seeds "3..": expected A..B' -- \
  "$faultline" sweep sim-ok.json --seeds 3..
expect seeds-too-many 2 "at most 100000 seeds" -- \
  "$faultline" sweep sim-ok.json --seeds 0..100000
expect shard-index 2 'invalid --shard "2/2": the index is 0-based.*0 to 1' -- \
  "$faultline" sweep sim-ok.json --seeds 1..4 --shard 2/2
expect shard-zero 2 'invalid --shard count "0": expected an integer from 1' -- \
  "$faultline" sweep sim-ok.json --seeds 1..4 --shard 0/0
expect shard-form 2 'invalid --shard "1": expected I/N' -- \
  "$faultline" sweep sim-ok.json --seeds 1..4 --shard 1
expect budget-unit 2 'invalid --budget "90": expected a whole number with the unit s, m or h' -- \
  "$faultline" sweep sim-ok.json --seeds 1..4 --budget 90
expect budget-zero 2 'invalid --budget "0s"' -- \
  "$faultline" sweep sim-ok.json --seeds 1..4 --budget 0s
expect budget-days 2 'invalid --budget "2d"' -- \
  "$faultline" sweep sim-ok.json --seeds 1..4 --budget 2d
expect jobs-zero 2 'invalid --jobs "0": expected an integer number of runs from 1 to 256' -- \
  "$faultline" sweep sim-ok.json --seeds 1..4 --jobs 0
expect jobs-word 2 'invalid --jobs "two"' -- \
  "$faultline" sweep sim-ok.json --seeds 1..4 --jobs two
expect duration-zero 2 'invalid --duration "0"' -- \
  "$faultline" sweep real.json --seeds 1..4 --duration 0
expect unknown-option 2 "unknown or ambiguous option --colour" -- \
  "$faultline" sweep sim-ok.json --seeds 1..4 --colour
expect shards-alone 2 "--shards needs --emit-k8s" -- \
  "$faultline" sweep sim-ok.json --seeds 1..4 --shards 3
expect k8s-junit 2 "--emit-k8s sets --junit for each pod itself" -- \
  "$faultline" sweep sim-ok.json --seeds 1..4 --emit-k8s --junit j.xml
expect missing-file 2 "nope.json: cannot open" -- \
  "$faultline" sweep nope.json --seeds 1..2
mkdir empty
expect empty-dir 2 "empty: no \*.json campaign files" -- \
  "$faultline" sweep empty --seeds 1..2
expect duration-too-short 2 "leaves no time for faults.*\(with --duration\)" -- \
  "$faultline" sweep real.json --seeds 1..2 --duration 2
expect run-rejects-sim 2 "sim-ok.json: system: \"raft-sim\" campaigns run in the simulator.*faultline sweep sim-ok.json" -- \
  "$faultline" run sim-ok.json --dry-run

# Simulator campaign files are as strict as real ones.
bad_sim() { # NAME PATTERN JSON
  printf '%s\n' "$3" >"bad-$1.json"
  expect "sim-$1" 2 "$2" -- "$faultline" sweep "bad-$1.json" --seeds 1..2
}
sim='"name":"s","system":"raft-sim"'
bad_sim unknown-field 'bad-unknown-field.json: ticks: unknown field; expected one of name' \
  "{$sim,\"ticks\":5}"
bad_sim no-name 'missing field "name"' '{"system":"raft-sim"}'
bad_sim bad-name 'name: "S S": use only a-z' '{"name":"S S","system":"raft-sim"}'
bad_sim nodes 'nodes: expected 1 to 9 nodes, got 12' "{$sim,\"nodes\":12}"
bad_sim time-fraction 'time_s: expected a whole number of virtual seconds, got a fraction' \
  "{$sim,\"time_s\":2.5}"
bad_sim fault 'faults: unknown fault "meteor" at \[1\]' \
  "{$sim,\"faults\":[\"crash\",\"meteor\"]}"
bad_sim fault-twice 'faults: fault "crash" is listed twice' \
  "{$sim,\"faults\":[\"crash\",\"crash\"]}"
bad_sim torn 'faults: the torn fault needs the crash fault' \
  "{$sim,\"faults\":[\"torn\"]}"
bad_sim drop 'drop: needs the drop fault' \
  "{$sim,\"faults\":[\"crash\"],\"drop\":0.1}"
bad_sim drop-range 'drop: expected a probability from 0 to 1, got 2' \
  "{$sim,\"drop\":2}"
bad_sim tick 'fault_every_ms: expected a multiple of 10 milliseconds' \
  "{$sim,\"fault_every_ms\":15}"
bad_sim bug 'inject_bug: unknown Raft bug "typo"' \
  "{$sim,\"inject_bug\":[\"typo\"]}"
bad_sim expect-no-bug '"expect": "invalid" needs a planted bug' \
  "{$sim,\"expect\":\"invalid\"}"
bad_sim detect-no-expect 'detect_within_seeds: only a campaign with' \
  "{$sim,\"detect_within_seeds\":3}"
bad_sim twice 'time_s: given twice' "{$sim,\"time_s\":5,\"time_s\":6}"

# Every campaign is checked before any run starts: with one bad file in a
# directory, nothing is stored and every error is printed.
mkdir mixed
cp sim-ok.json mixed/a.json
printf '%s\n' "{$sim,\"nodes\":0}" >mixed/b.json
printf '%s\n' '{"name":"t",' >mixed/c.json
out=$("$faultline" sweep mixed --seeds 1..3 --store "$tmp/never" 2>&1)
rc=$?
if [ "$rc" -eq 2 ] && echo "$out" | grep -q "mixed/b.json: nodes" &&
  echo "$out" | grep -q "mixed/c.json:2:1: invalid JSON" && [ ! -e never ]; then
  echo "ok   validated-up-front"
else
  fail "validated-up-front: exit $rc, store $(ls -d never 2>/dev/null): $out"
fi
cp sim-ok.json mixed/b.json
rm mixed/c.json
expect duplicate-name 2 'campaign "sweep-sim-ok" is in the sweep already' -- \
  "$faultline" sweep mixed --seeds 1..2

# A dry run lists the plan and starts nothing; a shard keeps the seeds S
# with (S - A) mod N = I.
expect dry-run 0 "seeds 1..10, shard 1/3: 3 runs, 1 at a time" -- \
  "$faultline" sweep sim-ok.json --seeds 1..10 --shard 1/3 --dry-run \
  --store "$tmp/never"
expect dry-run-empty-shard 0 ": 0 runs" -- \
  "$faultline" sweep sim-ok.json --seeds 1..2 --shard 4/5 --dry-run \
  --store "$tmp/never"
[ ! -e never ] && echo "ok   dry-run stores nothing" || fail "dry run created a store"

# ---- Kubernetes ----

out=$("$faultline" sweep --emit-k8s --shards 4 --image "reg/faultline:1" \
  sim-ok.json "$tmp/real.json" --seeds 1..100 --jobs 2 --budget 30m 2>&1)
rc=$?
if [ "$rc" -ne 0 ]; then
  fail "emit-k8s: exit $rc: $out"
elif [ "$have_python" -eq 1 ] && python3 -c 'import yaml' 2>/dev/null; then
  if echo "$out" | python3 -c '
import sys, yaml
job = yaml.safe_load(sys.stdin)
spec = job["spec"]
pod = spec["template"]["spec"]
c = pod["containers"][0]
args = c["args"]
checks = [
    job["kind"] == "Job" and job["apiVersion"] == "batch/v1",
    spec["completionMode"] == "Indexed",
    spec["completions"] == 4 and spec["parallelism"] == 4,
    pod["restartPolicy"] == "Never",
    c["image"] == "reg/faultline:1",
    c["command"] == ["faultline"],
    args[0] == "sweep" and "sim-ok.json" in args and args[2].endswith("/real.json"),
    args[args.index("--shard") + 1] == "$(JOB_COMPLETION_INDEX)/4",
    args[args.index("--seeds") + 1] == "1..100",
    args[args.index("--jobs") + 1] == "2",
    args[args.index("--budget") + 1] == "30m",
    args[args.index("--store") + 1] == "/results/shard-$(JOB_COMPLETION_INDEX)",
    c["env"][0]["name"] == "JOB_COMPLETION_INDEX",
    c["securityContext"]["privileged"] is True,
    c["volumeMounts"][0]["mountPath"] == "/results",
]
bad = [i for i, ok in enumerate(checks) if not ok]
sys.exit(f"checks failed: {bad}" if bad else 0)
'; then
    echo "ok   emit-k8s is a valid Indexed Job"
  else
    fail "emit-k8s manifest:"
    echo "$out"
  fi
else
  # Without PyYAML: the structure, line by line.
  for line in "kind: Job" "completionMode: Indexed" "completions: 4" \
    "parallelism: 4" "- '\$(JOB_COMPLETION_INDEX)/4'" "privileged: true"; do
    echo "$out" | grep -qF -- "$line" || fail "emit-k8s lacks \"$line\""
  done
  echo "ok   emit-k8s structure (PyYAML not installed)"
fi
# A quote in a path is doubled inside the YAML single-quoted scalar.
cp sim-ok.json "it's.json"
"$faultline" sweep --emit-k8s "it's.json" --seeds 1..2 | grep -qF -- "- 'it''s.json'" &&
  echo "ok   emit-k8s quotes paths" || fail "emit-k8s did not quote it's.json"

# ---- a sweep of two campaigns, two runs at a time ----

# While it runs, note each moment two real runs had namespaces at once.
"$faultline" sweep "$tmp/real.json" "$tmp/sim-bug.json" --seeds 1..3 --jobs 2 \
  --junit "$tmp/out/junit.xml" --store "$tmp/store" --bin-dir "$bindir" \
  >main.out 2>main.err &
pid=$!
overlap=0
while kill -0 "$pid" 2>/dev/null; do
  if [ -d /run/netns ]; then
    n=$(for d in store/_sweeps/*/sweep-real-*.log; do
      sed -n 's/^faultline run: campaign .*, run \([0-9a-f]*\)$/\1/p' "$d" 2>/dev/null
    done | while read -r id; do
      ls /run/netns | grep -q "^fl-$id-n1$" && echo "$id"
    done | wc -l)
    [ "$n" -ge 2 ] && overlap=1
  fi
  sleep 0.2
done
wait "$pid"
rc=$?
logs=$(ls -d store/_sweeps/* | head -1)
[ "$rc" -eq 0 ] && echo "ok   sweep exit 0" || {
  fail "sweep exit $rc"
  cat main.out main.err | tail -20
}
if [ "$(id -u)" -eq 0 ]; then
  [ "$overlap" -eq 1 ] && echo "ok   two real runs had namespaces at once" ||
    fail "never saw two real runs at once"
fi
grep -Eq '^sweep-real +valid +3 +3 +0 +0 +0 +0 ' main.out &&
  echo "ok   table row of sweep-real" || fail "table: $(grep sweep-real main.out)"
grep -Eq '^sweep-sim-bug +invalid +3 .* 1 +' main.out &&
  echo "ok   table row of sweep-sim-bug" || fail "table: $(grep sweep-sim-bug main.out)"

if [ "$have_python" -eq 1 ]; then
  if python3 - "$tmp/out/junit.xml" <<'PY'; then
import sys
import xml.etree.ElementTree as ET

root = ET.parse(sys.argv[1]).getroot()
errors = []
def check(cond, what):
    if not cond:
        errors.append(what)

check(root.tag == "testsuites", "root is testsuites")
check(root.get("tests") == "7", f"tests={root.get('tests')}, expected 7")
for attr in ("failures", "errors", "skipped"):
    check(root.get(attr) == "0", f"{attr}={root.get(attr)}")
suites = {s.get("name"): s for s in root.findall("testsuite")}
check(sorted(suites) == ["sweep-real", "sweep-sim-bug"], f"suites {sorted(suites)}")
real = suites["sweep-real"]
check(real.get("tests") == "3", "sweep-real has 3 tests")
names = [c.get("name") for c in real.findall("testcase")]
check(names == ["seed-1", "seed-2", "seed-3"], f"sweep-real cases {names}")
for case in real.findall("testcase"):
    check(case.get("classname") == "sweep-real", "classname sweep-real")
    check(float(case.get("time")) > 3, f"{case.get('name')} time {case.get('time')}")
    out = case.findtext("system-out") or ""
    check("reproduce: faultline repro " in out, f"{case.get('name')} repro")
props = {p.get("name"): p.get("value") for p in real.iter("property")}
check(props.get("expect") == "valid" and props.get("system") == "raft",
      f"properties {props}")
bug = suites["sweep-sim-bug"]
check(bug.get("tests") == "4", "sweep-sim-bug has 3 seeds and detection")
seed1 = bug.find("testcase[@name='seed-1']")
out = seed1.findtext("system-out") or ""
check(out.startswith("invalid, as expected: violation:"), f"seed-1 output {out!r}")
check("reproduce: faultline sim raft --seed 1 --nodes 5 --time 10 "
      "--inject-bug stale-read" in out, "sim repro command")
det = bug.find("testcase[@name='detection']")
check("found in 1 of 3 seeds, first at seed 1" in (det.findtext("system-out") or ""),
      "detection output")
if errors:
    sys.exit("; ".join(errors))
PY
    echo "ok   JUnit of the sweep"
  else
    fail "JUnit of the sweep"
  fi
fi
rows=$(sqlite3 store/results.db \
  "SELECT seed || ':' || verdict FROM runs WHERE campaign = 'sweep-real' ORDER BY seed" 2>&1 |
  tr '\n' ' ')
[ "$rows" = "1:valid 2:valid 3:valid " ] && echo "ok   results.db rows" ||
  fail "results.db rows: $rows"
left=$(leftovers "$logs")
[ -z "$left" ] && echo "ok   the sweep left nothing" || fail "left: $left"

# ---- unexpected verdicts, missed bugs, failed runs, budget, shards ----

sed -e 's/"sweep-sim-bug"/"sweep-sim-wrong"/' -e 's/"expect": "invalid", //' \
  -e 's/, "detect_within_seeds": 3//' sim-bug.json >"a&b<c>'q\".json"
cat >missed.json <<'JSON'
{"name": "sweep-sim-missed", "system": "raft-sim", "nodes": 3, "time_s": 5,
 "faults": [], "inject_bug": ["no-persist-vote"], "expect": "invalid"}
JSON
"$faultline" sweep "a&b<c>'q\".json" missed.json --seeds 1..2 \
  --junit bad.xml --store "$tmp/store2" >bad.out 2>&1
rc=$?
[ "$rc" -eq 1 ] && echo "ok   unexpected verdict exits 1" || fail "exit $rc, expected 1"
grep -q "sweep-sim-missed: the planted bug was not found in 2 seeds" bad.out &&
  echo "ok   missed bug listed" || fail "missed bug not listed: $(cat bad.out)"
if [ "$have_python" -eq 1 ]; then
  if python3 - bad.xml <<'PY'; then
import sys
import xml.etree.ElementTree as ET

root = ET.parse(sys.argv[1]).getroot()
suites = {s.get("name"): s for s in root.findall("testsuite")}
wrong = suites["sweep-sim-wrong"]
props = {p.get("name"): p.get("value") for p in wrong.iter("property")}
assert props["file"] == "a&b<c>'q\".json", props["file"]
failure = wrong.find("testcase[@name='seed-1']/failure")
assert failure is not None, "seed-1 has no failure"
assert failure.get("type") == "invalid"
assert failure.get("message").startswith("expected valid, got invalid: violation:")
assert "reproduce: faultline sim raft --seed 1 " in failure.text
missed = suites["sweep-sim-missed"]
assert missed.get("failures") == "1", missed.get("failures")
det = missed.find("testcase[@name='detection']/failure")
assert det is not None and det.get("type") == "not-detected"
for case in missed.findall("testcase"):
    if case.get("name").startswith("seed-"):
        assert case.find("failure") is None, "a valid seed of a planted bug failed"
PY
    echo "ok   JUnit failures and escaping"
  else
    fail "JUnit failures and escaping"
  fi
fi

# A bin dir without the servers is a usage error before any run; one whose
# server exits at once makes each run fail to run: exit 4, and <error> in
# JUnit.
mkdir nobin
expect bin-dir-empty 2 "--bin-dir $tmp/nobin has no executable fl-raftd" -- \
  "$faultline" sweep real.json --seeds 1..2 --bin-dir "$tmp/nobin"
printf '#!/bin/sh\nexit 3\n' >nobin/fl-raftd
chmod +x nobin/fl-raftd
"$faultline" sweep real.json --seeds 1..2 --bin-dir "$tmp/nobin" \
  --junit err.xml --store "$tmp/store3" >err.out 2>&1
rc=$?
[ "$rc" -eq 4 ] && echo "ok   failed runs exit 4" || fail "exit $rc, expected 4"
grep -q '<error type="failed-to-run" message="failed to run: exit status 4' err.xml &&
  echo "ok   JUnit error element" || fail "no <error> in err.xml"

# A --junit path that cannot be a file fails before any run.
mkdir junit-dir
expect junit-folder 2 "--junit junit-dir is a folder" -- \
  "$faultline" sweep sim-ok.json --seeds 1..2 --junit junit-dir --dry-run
expect junit-parent-file 2 "--junit real.json/x.xml: real.json is not a folder" -- \
  "$faultline" sweep sim-ok.json --seeds 1..2 --junit real.json/x.xml

# Once the budget is spent no run starts. Those runs are skipped in JUnit,
# and the exit code is 0.
cat >slow.json <<'JSON'
{"name": "sweep-slow", "system": "raft-sim", "nodes": 5, "time_s": 600}
JSON
"$faultline" sweep slow.json --seeds 1..6 --budget 1s --junit budget.xml \
  --store "$tmp/store4" >budget.out 2>&1
rc=$?
skipped=$(grep -c 'message="not started: the budget of 1s was spent"' budget.xml)
ran=$(grep -c '<system-out>valid' budget.xml)
if [ "$rc" -eq 0 ] && [ "$skipped" -ge 1 ] && [ "$ran" -ge 1 ] &&
  [ $((skipped + ran)) -eq 6 ]; then
  echo "ok   budget: $ran ran, $skipped not started"
else
  fail "budget: exit $rc, $ran ran, $skipped not started"
fi

# Shard 1 of 3 over seeds 1..8 runs seeds 2, 5 and 8.
"$faultline" sweep sim-ok.json --seeds 1..8 --shard 1/3 --junit shard.xml \
  --store "$tmp/store5" >/dev/null 2>&1
seeds=$(grep -o 'name="seed-[0-9]*"' shard.xml | tr '\n' ' ')
[ "$seeds" = 'name="seed-2" name="seed-5" name="seed-8" ' ] &&
  echo "ok   shard 1/3 seeds" || fail "shard 1/3 ran $seeds"

# ---- signals ----

# Waits until two runs logged under store $1 started a fault.
wait_for_runs() {
  for _ in $(seq 150); do
    [ "$(grep -l " start " "$1"/_sweeps/*/sweep-long-*.log 2>/dev/null |
      wc -l)" -ge 2 ] && return
    sleep 0.2
  done
}

# SIGINT reaches both runs, which tear down. The sweep writes the partial
# JUnit file and exits 130.
set -m
"$faultline" sweep "$tmp/long.json" --seeds 1..4 --jobs 2 --junit int.xml \
  --store "$tmp/int" --bin-dir "$bindir" >int.out 2>int.err &
pid=$!
wait_for_runs int
kill -INT "$pid"
wait "$pid"
rc=$?
set +m
[ "$rc" -eq 130 ] && echo "ok   SIGINT exit 130" || fail "SIGINT: exit $rc"
grep -q 'skipped="4"' int.xml && echo "ok   SIGINT wrote the partial JUnit" ||
  fail "SIGINT JUnit: $(head -3 int.xml 2>&1)"
left=$(leftovers int/_sweeps/*)
[ -z "$left" ] && echo "ok   SIGINT left nothing" || fail "SIGINT left: $left"

# SIGKILL: the runs get SIGTERM from the kernel and tear down, so once
# they are gone `faultline clean` finds nothing of theirs.
"$faultline" sweep "$tmp/long.json" --seeds 1..4 --jobs 2 --store "$tmp/kill" \
  --bin-dir "$bindir" >kill.out 2>kill.err &
pid=$!
wait_for_runs kill
kill -KILL "$pid"
wait "$pid" 2>/dev/null
for _ in $(seq 150); do
  pgrep -f "$tmp/long.json" >/dev/null || break
  sleep 0.2
done
"$faultline" clean >clean.out 2>&1 || fail "clean: exit $?"
left=$(leftovers kill/_sweeps/*)
[ -z "$left" ] && echo "ok   SIGKILL and clean left nothing" ||
  { fail "SIGKILL left: $left"; cat clean.out; }

[ "$failures" -eq 0 ] || { echo "$failures failures"; exit 1; }
echo "all sweep checks passed"
