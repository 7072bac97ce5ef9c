#!/usr/bin/env bash
# Malformed campaign files, one per class of error: each must be refused
# with exit code 2 and a message naming the file and the field (or line
# and column), before anything is started. Also checks that every shipped
# campaign validates. Works in a temporary folder removed on exit.
set -u
faultline=$1
campaigns=$2
tmp=$(mktemp -d /tmp/fl-camp.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
failures=0

# bad NAME PATTERN JSON: the campaign JSON must be refused with exit 2 and
# a message matching PATTERN (grep -E).
bad() {
  local name=$1 pattern=$2 file="$tmp/$1.json"
  printf '%s\n' "$3" >"$file"
  local out rc
  out=$("$faultline" run --dry-run --store "$tmp/store" "$file" 2>&1)
  rc=$?
  if [ "$rc" -ne 2 ]; then
    echo "FAIL $name: exit $rc, expected 2; output:"
    echo "$out" | head -10
    failures=$((failures + 1))
  elif ! echo "$out" | grep -Eq -- "$pattern"; then
    echo "FAIL $name: output lacks /$pattern/; output:"
    echo "$out" | head -10
    failures=$((failures + 1))
  else
    echo "ok   $name"
  fi
}

# A valid campaign to break one field at a time.
base='"name":"t","system":"raft","duration_s":20,"workload":{"kind":"register"}'

bad syntax 'syntax.json:2:1: invalid JSON' '{"name":"t",'
bad not-object 'syntax.json|not-object.json: expected a JSON object, got array' '[1]'
bad unknown-field 'unknown-field.json: colour: unknown field; expected one of name' \
  "{$base,\"colour\":1}"
bad unknown-nested 'workload.keyz: unknown field; expected one of kind, keys' \
  '{"name":"t","system":"raft","duration_s":20,"workload":{"keyz":3}}'
bad wrong-type 'nodes: expected a whole number of nodes, got string' \
  "{$base,\"nodes\":\"5\"}"
bad out-of-range 'nodes: expected 1 to 9 nodes, got 12' "{$base,\"nodes\":12}"
bad fraction 'workload.keys: expected a whole number of keys, got a fraction' \
  '{"name":"t","system":"raft","duration_s":20,"workload":{"keys":2.5}}'
bad missing-field 'missing-field.json: missing field "duration_s"' \
  '{"name":"t","system":"raft","workload":{}}'
bad missing-workload 'missing field "workload"' \
  '{"name":"t","system":"raft","duration_s":20}'
bad unknown-system 'system: unknown value "mongo"; expected one of raft, kv' \
  '{"name":"t","system":"mongo","duration_s":20,"workload":{}}'
bad unknown-fault 'nemesis.faults\[1\]: unknown value "meteor"; expected one of kill' \
  "{$base,\"nemesis\":{\"faults\":[\"kill\",\"meteor\"]}}"
bad fault-field 'nemesis.faults\[0\].speed: unknown field' \
  "{$base,\"nemesis\":{\"faults\":[{\"kind\":\"kill\",\"speed\":1}]}}"
bad fault-no-kind 'nemesis.faults\[0\]: missing field "kind"' \
  "{$base,\"nemesis\":{\"faults\":[{\"targets\":\"one\"}]}}"
bad duplicate 'duration_s: given twice' "{$base,\"duration_s\":30}"

# Disk faults: the fields that aim them belong to some kinds only.
kv='"name":"t","system":"kv","duration_s":20,"workload":{"kind":"register"}'
bad tear-on-kill 'nemesis.faults\[0\]: tear applies to torn-write only' \
  "{$kv,\"nemesis\":{\"faults\":[{\"kind\":\"kill\",\"tear\":\"prefix\"}]}}"
bad bad-tear 'faults\[0\].tear\[1\]: unknown value "middle"; expected one of prefix, sectors' \
  "{$kv,\"nemesis\":{\"faults\":[{\"kind\":\"torn-write\",\"tear\":[\"prefix\",\"middle\"]}]}}"
bad empty-ops 'faults\[0\].ops: expected a name or a non-empty array of names' \
  "{$kv,\"nemesis\":{\"faults\":[{\"kind\":\"crash-at\",\"ops\":[]}]}}"
bad when-on-torn 'ops, when and power_loss apply to crash-at only' \
  "{$kv,\"nemesis\":{\"faults\":[{\"kind\":\"torn-write\",\"when\":\"after\"}]}}"
bad pattern-on-kill 'pattern aims the faults armed on calls and corrupt, not kill' \
  "{$kv,\"nemesis\":{\"faults\":[{\"kind\":\"kill\",\"pattern\":\"*.log\"}]}}"
bad pattern-absolute 'faults\[0\].pattern: "/tmp/\*" can match nothing: patterns match paths relative to the data directory' \
  "{$kv,\"nemesis\":{\"faults\":[{\"kind\":\"torn-write\",\"pattern\":\"/tmp/*\"}]}}"
bad nth-on-corrupt 'nth_max aims the faults armed on calls' \
  "{$kv,\"nemesis\":{\"faults\":[{\"kind\":\"corrupt\",\"nth_max\":3}]}}"
bad untouched-on-torn 'untouched_s applies to corrupt only' \
  "{$kv,\"nemesis\":{\"faults\":[{\"kind\":\"torn-seq\",\"untouched_s\":3}]}}"
bad nth-zero 'faults\[0\].nth_max: expected 1 to 100000 calls, got 0' \
  "{$kv,\"nemesis\":{\"faults\":[{\"kind\":\"torn-write\",\"nth_max\":0}]}}"
bad sync-none 'system_options.sync: expected "always" or "batch:MS"' \
  "{$kv,\"system_options\":{\"sync\":\"none\"}}"
bad sync-on-raft 'system_options.segment_bytes: only fl-kvd' \
  "{$base,\"system_options\":{\"segment_bytes\":65536}}"
bad value-bytes 'workload.value_bytes: expected 0 to 4096 bytes, got 5000' \
  '{"name":"t","system":"kv","duration_s":20,"workload":{"value_bytes":5000}}'
bad unknown-bug 'system_options.inject_bug\[0\]: unknown fl-raftd bug "typo"' \
  "{$base,\"system_options\":{\"inject_bug\":[\"typo\"]}}"
bad kv-network-fault 'is a network fault, and system "kv" is one node' \
  '{"name":"t","system":"kv","duration_s":20,"workload":{},"nemesis":{"faults":["halves"]}}'
bad kv-nodes 'nodes: expected 1 to 1 node' \
  '{"name":"t","system":"kv","nodes":3,"duration_s":20,"workload":{}}'
bad kv-raft-option 'system_options.election_timeout_ms: only fl-raftd' \
  '{"name":"t","system":"kv","duration_s":20,"workload":{},"system_options":{"election_timeout_ms":500}}'
bad expect-without-bug '"expect": "invalid" needs a planted bug' \
  "{$base,\"expect\":\"invalid\"}"
bad detect-without-expect 'detect_within_seeds: only a campaign with' \
  "{$base,\"detect_within_seeds\":3}"
bad target-range 'nemesis.faults\[0\].targets\[0\]: expected 1 to 5' \
  "{$base,\"nemesis\":{\"faults\":[{\"kind\":\"kill\",\"targets\":[7]}]}}"
bad target-twice 'node 2 is listed twice' \
  "{$base,\"nemesis\":{\"faults\":[{\"kind\":\"kill\",\"targets\":[2,2]}]}}"
bad heartbeat 'heartbeat_ms \(400\) must be at most half' \
  "{$base,\"system_options\":{\"election_timeout_ms\":500,\"heartbeat_ms\":400}}"
bad no-time-for-faults 'leaves no time for faults' \
  '{"name":"t","system":"raft","duration_s":5,"workload":{},"nemesis":{"faults":["kill"]}}'
bad bad-name 'name: "Bad Name": use only a-z' \
  '{"name":"Bad Name","system":"raft","duration_s":20,"workload":{}}'
bad no-writes 'workload.mix: a register workload needs writes' \
  '{"name":"t","system":"raft","duration_s":20,"workload":{"mix":{"read":1}}}'
bad partition-targets 'nemesis.faults\[0\]: halves chooses its own nodes' \
  "{$base,\"nemesis\":{\"faults\":[{\"kind\":\"halves\",\"targets\":\"one\"}]}}"
bad huge-seed 'seed: expected 0 to 9223372036854775807' \
  "{$base,\"seed\":18446744073709551615}"
bad ring-small 'majority-ring needs at least 4 nodes' \
  "{$base,\"nodes\":3,\"nemesis\":{\"faults\":[\"majority-ring\"]}}"


out=$("$faultline" run --dry-run "$tmp/nope-really.json" 2>&1)
if [ $? -eq 2 ] && echo "$out" | grep -q "nope-really.json: cannot open"; then
  echo "ok   missing-file-really"
else
  echo "FAIL missing-file-really: $out"
  failures=$((failures + 1))
fi

# Bad command-line values.
printf '%s\n' "{$base}" >"$tmp/ok.json"
for args in "--store=" "--seed=-1" "--duration=0" "--nodes=0" "--network=wifi" \
  "--bin-dir=$tmp/nowhere"; do
  out=$("$faultline" run "$args" "$tmp/ok.json" 2>&1)
  rc=$?
  if [ $rc -eq 2 ] && echo "$out" | grep -q -- "${args%%=*}"; then
    echo "ok   flag $args"
  else
    echo "FAIL flag $args: exit $rc: $out" | head -3
    failures=$((failures + 1))
  fi
done

# Command-line overrides are validated like the file.
out=$("$faultline" run --dry-run --nodes 3 \
  "$campaigns/raft-mixed.json" 2>&1)
if [ $? -eq 2 ] && echo "$out" | grep -q "majority-ring needs at least 4"; then
  echo "ok   override-nodes"
else
  echo "FAIL override-nodes: $out"
  failures=$((failures + 1))
fi

# Delay needs netem, which some kernels lack: without "optional" the run
# is refused when the kernel has none. Only root can probe.
if [ "$(id -u)" -eq 0 ]; then
  printf '%s\n' "{$base,\"nemesis\":{\"faults\":[\"delay\"]}}" >"$tmp/delay.json"
  out=$("$faultline" run --dry-run "$tmp/delay.json" 2>&1)
  rc=$?
  if echo "$out" | grep -q "netem"; then
    [ $rc -eq 2 ] && echo "ok   delay-needs-netem" || {
      echo "FAIL delay-needs-netem: exit $rc"; failures=$((failures + 1)); }
  else
    echo "ok   delay-needs-netem (this kernel has netem)"
  fi
fi

# Every shipped campaign validates; simulator campaigns through sweep,
# because `faultline run` starts real clusters only.
for f in "$campaigns"/*.json; do
  cmd=(run --dry-run "$f")
  if grep -q '"system": *"raft-sim"' "$f"; then
    cmd=(sweep --dry-run --seeds 1..1 "$f")
  fi
  if out=$("$faultline" "${cmd[@]}" 2>&1); then
    echo "ok   shipped $(basename "$f")"
  else
    echo "FAIL shipped $(basename "$f"): $out" | head -5
    failures=$((failures + 1))
  fi
done

# Nothing was stored by any of it.
if [ -e "$tmp/store" ]; then
  echo "FAIL a dry run or a refused campaign created $tmp/store"
  failures=$((failures + 1))
fi

[ "$failures" -eq 0 ] || { echo "$failures failures"; exit 1; }
echo "all campaign checks passed"
