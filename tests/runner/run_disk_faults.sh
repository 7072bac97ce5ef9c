#!/usr/bin/env bash
# Every disk fault kind through `faultline run` against a real fl-kvd. A
# short campaign with torn writes, torn sequences, crashes at calls,
# damaged files, ENOSPC, EIO and lost unsynced writes must come out valid.
# The durability check must have run, and each fault's draw must be in
# nemesis.jsonl.
# A repro must inject the same faults with the same draws, and --no-bugs
# must strip a campaign's planted bugs. Needs no root: without it the run
# uses loopback.
set -u
faultline=$1
bindir=$2
campaigns=$3
tmp=$(mktemp -d /tmp/fl-diskrun.XXXXXX)
failures=0
cleanup() {
  pkill -KILL -f "$tmp/" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT

fail() {
  echo "FAIL $*"
  failures=$((failures + 1))
}

cat >"$tmp/c.json" <<'JSON'
{"name": "disk", "system": "kv", "duration_s": 14,
 "system_options": {"sync": "batch:2", "segment_bytes": 8192,
                    "snapshot_every": 0},
 "workload": {"kind": "register", "keys": 50, "concurrency": 4, "rate": 0,
              "value_bytes": 64, "timeout_ms": 1000},
 "nemesis": {"faults": [
     {"kind": "torn-write", "nth_max": 10},
     "torn-seq",
     {"kind": "crash-at", "nth_max": 5},
     {"kind": "corrupt", "pattern": "wal-*.log", "untouched_s": 2},
     {"kind": "write-enospc", "nth_max": 3},
     {"kind": "fsync-eio", "nth_max": 3},
     "lose-unsynced"],
   "interval_s": 0.4, "fault_duration_s": 0.6, "restart_delay_s": 0.2,
   "start_s": 1, "quiet_s": 3}}
JSON

"$faultline" run "$tmp/c.json" --seed 9 --store "$tmp/store" \
  --bin-dir "$bindir" >"$tmp/run.out" 2>"$tmp/run.err"
rc=$?
run=$(ls -d "$tmp"/store/disk/*-s9 2>/dev/null | head -1)
if [ "$rc" -ne 0 ] || [ -z "$run" ]; then
  fail "run: exit $rc, expected 0 (valid)"
  grep -v '^ts=' "$tmp/run.err" | tail -15
else
  echo "ok   a run with every disk fault kind is valid"
fi

if [ -n "$run" ]; then
  # Each kind that ran recorded what it drew.
  python3 - "$run" <<'PY' || fail "nemesis.jsonl or results.json lacks a field"
import json, sys
run = sys.argv[1]
need = {"torn-write": ["nth", "tear"], "torn-seq": ["keep_seed", "unsynced", "kept"],
        "crash-at": ["nth", "when"], "corrupt": ["pick"],
        "write-enospc": ["nth"], "fsync-eio": ["nth"], "lose-unsynced": []}
armed = {"torn-write", "crash-at", "write-enospc", "fsync-eio"}
seen = set()
for line in open(run + "/nemesis.jsonl"):
    e = json.loads(line)
    if e["action"] == "stop" and e["fault"] in armed and "fired" not in e["detail"]:
        sys.exit("fault %d (%s) stopped without detail.fired" % (e["id"], e["fault"]))
    if e["action"] != "start":
        continue
    seen.add(e["fault"])
    for field in need[e["fault"]]:
        if field not in e["detail"]:
            sys.exit("fault %d (%s) lacks detail.%s" % (e["id"], e["fault"], field))
if len(seen) < 7:
    sys.exit("only %s ran; seed 9 draws all 7 kinds" % sorted(seen))
r = json.load(open(run + "/results.json"))
d = r["checks"]["durability"]
if d["valid"] is not True or d["reads"] == 0 or d["acknowledged_writes"] == 0:
    sys.exit("durability: %s" % d)
print("ok   %d fault kinds recorded their draws; durability checked %d reads"
      % (len(seen), d["reads"]))
PY
fi

# A repro injects the same faults with the same draws.
if [ -n "$run" ]; then
  "$faultline" repro "$run" --store "$tmp/repro" --bin-dir "$bindir" \
    >"$tmp/repro.out" 2>"$tmp/repro.err"
  rc=$?
  again=$(ls -d "$tmp"/repro/disk/*-s9 2>/dev/null | head -1)
  if [ -z "$again" ] || { [ "$rc" -ne 0 ] && [ "$rc" -ne 1 ]; }; then
    fail "repro: exit $rc"
    grep -v '^ts=' "$tmp/repro.err" | tail -5
  else
    draws() {
      python3 -c '
import json, sys
for line in open(sys.argv[1] + "/nemesis.jsonl"):
    e = json.loads(line)
    if e["action"] == "start":
        d = e["detail"]
        keep = {k: d[k] for k in ("nth", "tear", "keep_bytes", "sector_mask",
                                  "when", "keep_seed", "pick") if k in d}
        print(e["id"], e["fault"], e["targets"], sorted(keep.items()))
' "$1"
    }
    if diff <(draws "$run") <(draws "$again") >"$tmp/diff"; then
      echo "ok   repro drew the same $(draws "$run" | wc -l) disk faults"
    else
      fail "repro injected other faults:"
      head -10 "$tmp/diff"
    fi
  fi
fi

# A repro refuses a recorded draw that is not what a run writes.
if [ -n "$run" ]; then
  mkdir -p "$tmp/edited"
  cp "$run/campaign.json" "$tmp/edited/"
  sed 's/"sector_mask":"[0-9a-f]*"/"sector_mask":"-000000000000001"/' \
    "$run/nemesis.jsonl" >"$tmp/edited/nemesis.jsonl"
  out=$("$faultline" repro "$tmp/edited" --dry-run 2>&1)
  rc=$?
  if [ "$rc" -eq 2 ] && echo "$out" | grep -q "nemesis.jsonl:[0-9]*: detail.sector_mask must be 16 hex digits"; then
    echo "ok   repro rejects a malformed sector_mask"
  else
    fail "repro of a malformed sector_mask: exit $rc: $out"
  fi
fi

# --no-bugs strips the planted bugs and expects valid, under its own name.
out=$("$faultline" run "$campaigns/kv-ignore-crc.json" --no-bugs --dry-run \
  --seed 1 --store "$tmp/store" 2>&1)
if echo "$out" | grep -q '"name":"kv-ignore-crc-no-bugs"' &&
  echo "$out" | grep -q '"expect":"valid"' &&
  echo "$out" | grep -q '"inject_bug":\[\]'; then
  echo "ok   --no-bugs runs the campaign without its bug"
else
  fail "--no-bugs: $out"
fi

left=$(pgrep -f "$tmp/" | wc -l)
[ "$left" -eq 0 ] || fail "$left processes left running"
[ "$failures" -eq 0 ] || exit 1
echo "all disk-fault run checks passed"
