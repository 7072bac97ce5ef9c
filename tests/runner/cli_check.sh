#!/usr/bin/env bash
# Command-line behaviour of `faultline check`, `gen` and `sim`: exit
# codes, error messages that name the file, line or option, JSON output,
# standard input, budgets and manifests. Works in a temporary folder that
# is removed on exit.
set -u
faultline=$1
tmp=$(mktemp -d /tmp/fl-cli.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
failures=0

# expect NAME CODE PATTERN -- COMMAND...: runs COMMAND, requires exit CODE
# and PATTERN (grep -E) in its combined output.
expect() {
  local name=$1 code=$2 pattern=$3
  shift 4
  local out rc
  out=$("$@" 2>&1)
  rc=$?
  if [ "$rc" -ne "$code" ]; then
    echo "FAIL $name: exit $rc, expected $code; output:"
    echo "$out" | head -20
    failures=$((failures + 1))
  elif ! echo "$out" | grep -Eq -- "$pattern"; then
    echo "FAIL $name: output lacks /$pattern/; output:"
    echo "$out" | head -20
    failures=$((failures + 1))
  else
    echo "ok   $name"
  fi
}

line() { # process type f value [key]
  local key=""
  [ $# -ge 5 ] && key=",\"key\":\"$5\""
  n=$((n + 1))
  echo "{\"process\":$1,\"type\":\"$2\",\"f\":\"$3\",\"value\":$4,\"time\":$n$key}"
}

n=0
{
  line 0 invoke write 1; line 0 ok write 1
  line 1 invoke read null; line 1 ok read 1
} > "$tmp/valid.jsonl"
n=0
{
  line 0 invoke write 1; line 0 ok write 1
  line 0 invoke write 2; line 0 ok write 2
  line 1 invoke read null; line 1 ok read 1
} > "$tmp/stale.jsonl"
{
  line 0 invoke write 1
  echo '{"process":0,"type":"ok","f":"write","value":1'
} > "$tmp/broken.jsonl"
{
  line 0 invoke cas '[1,2]'; line 0 ok cas '[1,2]'
} > "$tmp/cas.jsonl"

# top level
expect no-arguments 2 "Usage: faultline" -- "$faultline"
expect help 0 "check .*linearizability" -- "$faultline" --help
expect unknown-command 2 'unknown command "bogus"' -- "$faultline" bogus

# check: usage errors
expect check-help 0 "--time-limit SEC" -- "$faultline" check --help
expect check-no-file 2 "missing history file" -- "$faultline" check
expect check-two-files 2 "expected one history file" -- \
  "$faultline" check "$tmp/valid.jsonl" "$tmp/valid.jsonl"
expect check-bad-model 2 'invalid --model "foo": expected register, cas-register or kv' -- \
  "$faultline" check --model foo "$tmp/valid.jsonl"
expect check-bad-time 2 'invalid --time-limit "abc"' -- \
  "$faultline" check --time-limit abc "$tmp/valid.jsonl"
expect check-negative-memory 2 'invalid --memory-limit "-5"' -- \
  "$faultline" check --memory-limit -5 "$tmp/valid.jsonl"
expect check-bad-init 2 "invalid --init" -- \
  "$faultline" check --init '{' "$tmp/valid.jsonl"
expect check-unknown-option 2 "unknown or ambiguous option --frobnicate" -- \
  "$faultline" check --frobnicate "$tmp/valid.jsonl"
expect check-unknown-short-option 2 "unknown option -x$" -- \
  "$faultline" check -xh "$tmp/valid.jsonl"
expect check-ambiguous-option 2 "unknown or ambiguous option --m$" -- \
  "$faultline" check --m register "$tmp/valid.jsonl"
expect check-flag-with-value 2 "option --json takes no value" -- \
  "$faultline" check --json=yes "$tmp/valid.jsonl"
expect check-threads-leading-space 2 'invalid --threads " 2"' -- \
  "$faultline" check --threads " 2" "$tmp/valid.jsonl"
expect check-threads-plus 2 'invalid --threads "\+2"' -- \
  "$faultline" check --threads +2 "$tmp/valid.jsonl"
expect check-time-leading-space 2 'invalid --time-limit " 1"' -- \
  "$faultline" check --time-limit " 1" "$tmp/valid.jsonl"
expect check-time-plus 2 'invalid --time-limit "\+1"' -- \
  "$faultline" check --time-limit +1 "$tmp/valid.jsonl"
expect check-time-hex 2 'invalid --time-limit "0x10"' -- \
  "$faultline" check --time-limit 0x10 "$tmp/valid.jsonl"
expect check-memory-unit 2 'invalid --memory-limit "-5": expected an integer number of MiB' -- \
  "$faultline" check --memory-limit -5 "$tmp/valid.jsonl"
expect check-help-mib 0 "hold MIB MiB \\(1 MiB = 2\^20 bytes" -- "$faultline" check --help
expect check-help-time-after-read 0 "counted once the history is read" -- \
  "$faultline" check --help
expect check-missing-value 2 "option --model needs a value" -- \
  "$faultline" check "$tmp/valid.jsonl" --model

# check: input errors name the file and line
expect check-missing-file 2 "$tmp/nope.jsonl: cannot open: No such file" -- \
  "$faultline" check "$tmp/nope.jsonl"
expect check-broken-json 2 "$tmp/broken.jsonl:2: invalid JSON" -- \
  "$faultline" check "$tmp/broken.jsonl"
expect check-directory 2 "$tmp: cannot open: Is a directory" -- \
  "$faultline" check "$tmp"
expect check-cas-in-register 2 "cas.jsonl:1: f \"cas\" is not an operation of the register model" -- \
  "$faultline" check --model register "$tmp/cas.jsonl"

# check: verdicts and exit codes
expect check-valid 0 "^verdict: linearizable" -- "$faultline" check "$tmp/valid.jsonl"
expect check-invalid 1 "process 1 read -> 1 \(lines 5-6\)" -- \
  "$faultline" check "$tmp/stale.jsonl"
expect check-json 1 '"verdict":"not-linearizable","valid":false' -- \
  "$faultline" check --json "$tmp/stale.jsonl"
expect check-stdin 0 "^verdict: linearizable" -- \
  sh -c "'$faultline' check - < '$tmp/valid.jsonl'"
expect check-read-null-unknown 0 "linearizable" -- \
  "$faultline" check --read-null unknown --init 0 "$tmp/valid.jsonl"
: > "$tmp/empty.jsonl"
expect check-empty-note 0 "^note: the history has no operations" -- \
  "$faultline" check "$tmp/empty.jsonl"

# budgets: verdict unknown, exit 3
# 40 rounds of 24 concurrent writes, then a read of a first-round value:
# refuting it means trying the orders of whole rounds.
awk 'BEGIN {
  t = 0
  for (r = 0; r < 40; r++)
    for (k = 0; k < 48; k++)
      printf "{\"process\":%d,\"type\":\"%s\",\"f\":\"write\",\"value\":%d,\"time\":%d}\n",
        k % 24, k < 24 ? "invoke" : "ok", r * 100 + k % 24, t++
  printf "{\"process\":100,\"type\":\"invoke\",\"f\":\"read\",\"value\":null,\"time\":%d}\n", t++
  printf "{\"process\":100,\"type\":\"ok\",\"f\":\"read\",\"value\":0,\"time\":%d}\n", t++
}' > "$tmp/hard.jsonl"
expect check-time-limit 3 "reason: time limit of 0.001 s reached" -- \
  "$faultline" check --time-limit 0.001 "$tmp/hard.jsonl"
"$faultline" gen --ops 50000 --keys 10 --seed 2 --out "$tmp/big.jsonl" >/dev/null
expect check-memory-limit 3 "memory limit" -- \
  "$faultline" check --memory-limit 1 "$tmp/big.jsonl"
# One line whose parsed value alone passes a 2 MiB limit: reading it must
# count against --memory-limit and end as a normal "unknown" result.
awk 'BEGIN {
  printf "{\"process\":0,\"type\":\"invoke\",\"f\":\"write\",\"time\":0,\"value\":[0"
  for (i = 0; i < 300000; i++) printf ",0"
  printf "]}\n"
}' > "$tmp/wide.jsonl"
expect check-memory-limit-reading 3 '^\{"verdict":"unknown","valid":"unknown","model":"cas-register",.*"reason":"memory limit reached while reading the history","anomalies":\[\],"unknown_keys":\[\]\}$' -- \
  "$faultline" check --json --memory-limit 2 "$tmp/wide.jsonl"

# gen
expect gen-bad-rate 2 'invalid --crash-rate "2"' -- \
  "$faultline" gen --crash-rate 2
expect gen-stray-argument 2 'unexpected argument "extra"' -- \
  "$faultline" gen extra
# strtod reports underflow for 1e-320, yet the value is a valid tiny one.
expect gen-tiny-rate 0 '"type":"invoke"' -- \
  "$faultline" gen --ops 10 --crash-rate 1e-320
# gen_leaves_nothing FILE GEN-ARGS...: runs gen --out FILE and exits 9 when
# FILE or a temporary file beside it is left behind, else with gen's code.
gen_leaves_nothing() {
  local out=$1
  shift
  "$faultline" gen "$@" --out "$out"
  local rc=$?
  if ls "$out"* >/dev/null 2>&1; then
    echo "left behind: $(ls "$out"*)"
    return 9
  fi
  return $rc
}
expect gen-failure-leaves-no-file 2 "no read completed" -- \
  gen_leaves_nothing "$tmp/bad.jsonl" --read-ratio 0 --corrupt
# gen_terminated FILE: sends SIGTERM to gen --out FILE while it writes.
gen_terminated() {
  local out=$1 pid rc
  "$faultline" gen --ops 50000000 --out "$out" &
  pid=$!
  for _ in $(seq 100); do
    ls "$out"* >/dev/null 2>&1 && break
    sleep 0.05
  done
  kill -TERM "$pid"
  wait "$pid"
  rc=$?
  if ls "$out"* >/dev/null 2>&1; then
    echo "left behind: $(ls "$out"*)"
    return 9
  fi
  echo "gen exited with $rc"
  return $rc
}
expect gen-sigterm-removes-file 143 "gen exited with 143" -- \
  gen_terminated "$tmp/term.jsonl"
expect gen-disk-full 2 "writing /dev/full failed: No space left on device" -- \
  "$faultline" gen --out /dev/full
: > "$tmp/plain-file"
expect gen-suite-not-folder 2 "cannot use $tmp/plain-file as the suite folder: Not a directory" -- \
  "$faultline" gen --suite "$tmp/plain-file"
"$faultline" gen --model kv --ops 300 --keys 3 --seed 4 --out "$tmp/kv.jsonl"
expect gen-kv-valid 0 "^verdict: linearizable" -- \
  "$faultline" check --model kv "$tmp/kv.jsonl"
"$faultline" gen --model kv --ops 300 --keys 3 --seed 4 --corrupt --out "$tmp/kvbad.jsonl"
expect gen-kv-corrupt 1 '"!never-written"' -- \
  "$faultline" check --model kv "$tmp/kvbad.jsonl"

# manifests
expect suite 0 "wrote 14 histories" -- "$faultline" gen --suite "$tmp/suite" --seed 3
expect manifest-agree 0 "14 histories: 14 agree, 0 disagree" -- \
  "$faultline" check --manifest "$tmp/suite/MANIFEST.json"
sed 's/"expected": "linearizable"/"expected": "not-linearizable"/' \
  "$tmp/suite/MANIFEST.json" > "$tmp/suite/WRONG.json"
expect manifest-disagree 1 " NO " -- "$faultline" check --manifest "$tmp/suite/WRONG.json"
echo '[{"file": "x.jsonl", "model": "kv", "expected": "linearizable", "colour": 1}]' \
  > "$tmp/suite/FIELD.json"
expect manifest-unknown-field 2 'entry 1 \("x.jsonl"\): unknown field "colour"' -- \
  "$faultline" check --manifest "$tmp/suite/FIELD.json"
printf '[\n {"file": "a.jsonl",\n  "model": }\n]\n' > "$tmp/suite/BAD.json"
expect manifest-bad-json 2 "BAD.json:3:[0-9]+: invalid JSON" -- \
  "$faultline" check --manifest "$tmp/suite/BAD.json"
echo '[{"file": "absent.jsonl", "model": "register", "expected": "linearizable"}]' \
  > "$tmp/suite/ABSENT.json"
expect manifest-missing-history 2 "absent.jsonl: cannot open" -- \
  "$faultline" check --manifest "$tmp/suite/ABSENT.json"
expect manifest-with-file 2 "takes no history file" -- \
  "$faultline" check --manifest "$tmp/suite/MANIFEST.json" "$tmp/valid.jsonl"
expect manifest-with-model 2 "--model cannot be combined with --manifest" -- \
  "$faultline" check --model kv --manifest "$tmp/suite/MANIFEST.json"
expect manifest-with-cas-fail 2 "--cas-fail cannot be combined with --manifest" -- \
  "$faultline" check --cas-fail compare-failed --manifest "$tmp/suite/MANIFEST.json"

# A read of 2^53 + 1 from the initial value: a double would round it to
# 2^53 and call the history not linearizable. The file path is absolute.
n=0
{
  line 1 invoke read null; line 1 ok read 9007199254740993
} > "$tmp/suite/big-init.jsonl"
echo '[{"file": "'"$tmp"'/suite/big-init.jsonl", "model": "register",
  "expected": "linearizable", "init": 9007199254740993}]' > "$tmp/suite/INIT.json"
expect manifest-exact-init 0 "1 histories: 1 agree" -- \
  "$faultline" check --manifest "$tmp/suite/INIT.json"
echo '[{"file": "x.jsonl", "model": "register", "model": "kv", "expected": "linearizable"}]' \
  > "$tmp/suite/DUP.json"
expect manifest-duplicate-field 2 'entry 1 \("x.jsonl"\): duplicate field "model"' -- \
  "$faultline" check --manifest "$tmp/suite/DUP.json"
echo '[{"file": "x.jsonl", "model": "register", "expected": "linearizable", "init": 1e3}]' \
  > "$tmp/suite/EXP.json"
expect manifest-init-exponent 2 'field "init" must be null, an integer or a string, got a number' -- \
  "$faultline" check --manifest "$tmp/suite/EXP.json"
echo '[{"file": "x.jsonl", "model": "register", "expected": "linearizable", "init": true}]' \
  > "$tmp/suite/BOOL.json"
expect manifest-init-boolean 2 'field "init" must be null, an integer or a string, got boolean' -- \
  "$faultline" check --manifest "$tmp/suite/BOOL.json"
echo '[{"file": "x.jsonl", "model": "kv", "expected": "linearizable", "init": 5}]' \
  > "$tmp/suite/KVINIT.json"
expect manifest-kv-integer-init 2 'field "init" must be a string or null for the kv model' -- \
  "$faultline" check --manifest "$tmp/suite/KVINIT.json"
echo '[]' > "$tmp/suite/EMPTY.json"
expect manifest-empty 2 "EMPTY.json: the manifest lists no histories" -- \
  "$faultline" check --manifest "$tmp/suite/EMPTY.json"
expect manifest-endless 2 "/dev/zero: cannot read: manifest larger than 64 MiB" -- \
  timeout 120 "$faultline" check --manifest /dev/zero
expect manifest-directory 2 "$tmp: cannot read: Is a directory" -- \
  "$faultline" check --manifest "$tmp"
# One history disagrees and one cannot be read: the disagreement decides.
{
  echo '[{"file": "absent.jsonl", "model": "register", "expected": "linearizable"},'
  echo ' {"file": "register-small.jsonl", "model": "register", "expected": "not-linearizable"}]'
} > "$tmp/suite/MIXED.json"
expect manifest-disagreement-first 1 "1 disagree, 0 unknown, 1 could not be checked" -- \
  "$faultline" check --manifest "$tmp/suite/MIXED.json"

# faultline sim
expect sim-no-system 2 "Usage: faultline sim raft" -- "$faultline" sim
expect sim-help 0 "Usage: faultline sim raft" -- "$faultline" sim raft --help
expect sim-unknown-system 2 'unknown system "etcd": expected raft' -- \
  "$faultline" sim etcd
expect sim-seeds-valid 0 "^5 seed\(s\), 0 with a violation" -- \
  "$faultline" sim raft --seeds 1..5
expect sim-bug-found 1 "reproduce: faultline sim raft --seed 1 --inject-bug truncate-on-match$" -- \
  "$faultline" sim raft --inject-bug truncate-on-match --seeds 1..2
expect sim-bad-nodes 2 "invalid --nodes \"0\"" -- "$faultline" sim raft --nodes 0
expect sim-bad-range 2 "the first seed is above the last" -- \
  "$faultline" sim raft --seeds 5..1
expect sim-bad-range-form 2 'invalid --seeds "7": expected A..B' -- \
  "$faultline" sim raft --seeds 7
expect sim-bad-range-open 2 'invalid --seeds "1..": expected A..B' -- \
  "$faultline" sim raft --seeds 1..
expect sim-repro-quoted 1 "reproduce: faultline sim raft --seed 1 --inject-bug truncate-on-match --store '$tmp/sp ace'" -- \
  "$faultline" sim raft --inject-bug truncate-on-match --seeds 1..1 --store "$tmp/sp ace"
expect sim-one-node-acks 0 "^1 seed" -- \
  "$faultline" sim raft --nodes 1 --faults none --seed 1 --time 5 --store "$tmp/one"
expect sim-bad-fault 2 'unknown fault "flood" in --faults' -- \
  "$faultline" sim raft --faults crash,flood
expect sim-bad-bug 2 'unknown --inject-bug "split-brain"' -- \
  "$faultline" sim raft --inject-bug split-brain
expect sim-bad-drop 2 "invalid --drop" -- "$faultline" sim raft --drop 2
expect sim-drop-without-fault 2 "--drop needs the drop fault" -- \
  "$faultline" sim raft --faults crash --drop 0.5
expect sim-empty-faults 2 "empty --faults" -- "$faultline" sim raft --faults ,
expect sim-time-cap 2 'invalid --time "4000"' -- "$faultline" sim raft --time 4000
expect sim-seed-range-cap 2 "at most 10000000 seeds" -- \
  "$faultline" sim raft --seeds 0..18446744073709551615
expect sim-stale-read-found 1 "stale read: node" -- \
  "$faultline" sim raft --inject-bug stale-read --seeds 1..20
expect sim-session-dedup-found 1 "not linearizable: key k" -- \
  "$faultline" sim raft --inject-bug no-session-dedup --seeds 1..5
expect sim-bad-clients 2 'invalid --clients "65"' -- \
  "$faultline" sim raft --clients 65
expect sim-torn-without-crash 2 "torn fault needs the crash fault" -- \
  "$faultline" sim raft --faults torn,drop
expect sim-no-clients 0 "0 client operations" -- \
  "$faultline" sim raft --clients 0 --seeds 1..3 --time 5
expect sim-empty-store 2 "empty --store" -- "$faultline" sim raft --store ""
touch "$tmp/not-a-dir"
expect sim-store-not-dir 4 "not-a-dir/seed-1: cannot create" -- \
  "$faultline" sim raft --store "$tmp/not-a-dir" --time 1

# The same seed and options give the same output, and --store keeps the
# same history and trace, byte for byte; the history passes the checker.
a=$("$faultline" sim raft --nodes 3 --drop 0.2 --fault-every 100 --max-down 50 --inject-bug commit-prior-term --seed 11 --store "$tmp/a" 2>&1)
b=$("$faultline" sim raft --nodes 3 --drop 0.2 --fault-every 100 --max-down 50 --inject-bug commit-prior-term --seed 11 --store "$tmp/b" 2>&1)
if [ "${a//$tmp\/a/}" != "${b//$tmp\/b/}" ] ||
   ! grep -q "leader completeness" <<<"$a" ||
   ! cmp -s "$tmp/a/seed-11/history.jsonl" "$tmp/b/seed-11/history.jsonl" ||
   ! cmp -s "$tmp/a/seed-11/trace.jsonl" "$tmp/b/seed-11/trace.jsonl" ||
   [ ! -s "$tmp/a/seed-11/trace.jsonl" ]; then
  echo "FAIL sim-replay: two runs of one seed differ or find nothing:"
  echo "$a"; echo "$b"
  failures=$((failures + 1))
else
  echo "ok   sim-replay"
fi
if ! grep -q '"type":"ok","f":"put"' "$tmp/one/seed-1/history.jsonl"; then
  echo "FAIL sim-one-node-ok: a one-node cluster acknowledged no write"
  failures=$((failures + 1))
else
  echo "ok   sim-one-node-ok"
fi
"$faultline" sim raft --seeds 3..4 --time 5 --store "$tmp/st" >/dev/null
expect sim-store-history-checks 0 "linearizable" -- \
  "$faultline" check --model kv "$tmp/st/seed-4/history.jsonl"
if ls "$tmp"/st/seed-3/*.tmp.* >/dev/null 2>&1; then
  echo "FAIL sim-store-clean: temporary files left in the store"
  failures=$((failures + 1))
else
  echo "ok   sim-store-clean"
fi

# faultline audit raft: crafted node logs, each breaking one rule.
ev() { # node msg term vote index hash
  echo "ts=2026-12-05T00:00:00.000Z level=info comp=raft msg=$2 node=$1 term=$3 vote=$4 index=$5 hash=$6"
}
{
  echo 'ts=x level=info comp=raft msg="opened the Raft storage" dir=/d term=0'
  ev 1 boot 0 0 0 0; ev 1 term 1 0 0 0; ev 1 vote 1 1 0 0; ev 1 leader 1 0 0 0
  ev 1 apply 1 0 1 11; ev 1 apply 1 0 2 22
} >"$tmp/n1.log"
{
  ev 2 boot 0 0 0 0; ev 2 vote 1 1 0 0; ev 2 apply 1 0 1 11
  echo "ts=x level=info comp=kv msg=opened dir=/d"
} >"$tmp/n2.log"
expect audit-valid 0 "^9 raft events: 2 boots, 1 leaders, 2 votes, 3 applies; 0 violation" -- \
  "$faultline" audit raft "$tmp/n1.log" "$tmp/n2.log"
ev 2 leader 1 0 0 0 >>"$tmp/n2.log"
expect audit-two-leaders 1 "n2.log:5: election safety: nodes 1 and 2 both led term 1" -- \
  "$faultline" audit raft "$tmp/n1.log" "$tmp/n2.log"
{ ev 3 vote 4 1 0 0; ev 3 boot 4 0 0 0; ev 3 vote 4 2 0 0; } >"$tmp/n3.log"
expect audit-double-vote 1 "n3.log:3: node 3 voted for 1 and 2 in term 4" -- \
  "$faultline" audit raft "$tmp/n3.log"
{ ev 4 leader 6 0 0 0; ev 4 boot 5 0 0 0; } >"$tmp/n4.log"
{ ev 4 boot 5 0 0 0; ev 4 term 6 0 0 0; } >"$tmp/n4.log.ok"
expect audit-term-back 1 "n4.log:2: node 4 restarted in term 5 after reaching term 6" -- \
  "$faultline" audit raft "$tmp/n4.log"
# A term only reached, not yet saved, can be lost to a power cut: nothing
# of it was sent.
{ ev 4 term 6 0 0 0; ev 4 boot 5 0 0 0; } >"$tmp/n4.log.unsaved"
expect audit-term-unsaved 0 " 0 violation" -- \
  "$faultline" audit raft "$tmp/n4.log.unsaved"
{ ev 5 apply 2 0 1 99; } >"$tmp/n5.log"
expect audit-apply-differs 1 "n5.log:1: state machine safety: node 5 applied term 2 hash 99 at index 1" -- \
  "$faultline" audit raft "$tmp/n1.log" "$tmp/n5.log"
echo "ts=x level=info comp=raft msg=vote node=1 term=x vote=1 index=0 hash=0" >"$tmp/bad.log"
expect audit-malformed 2 "bad.log:1: a raft event without numeric" -- \
  "$faultline" audit raft "$tmp/bad.log"
expect audit-missing-file 2 "nope.log: cannot open" -- \
  "$faultline" audit raft "$tmp/nope.log"
expect audit-no-files 2 "no log files given" -- "$faultline" audit raft
expect audit-no-events 3 "unknown: no raft events found" -- \
  "$faultline" audit raft /dev/null
expect audit-help 0 "Usage: faultline audit raft" -- "$faultline" audit raft --help
expect audit-same-file-twice 0 " 0 violation" -- \
  "$faultline" audit raft -- "$tmp/n4.log.ok" "$tmp/n4.log.ok"
# A vote a leader counted must survive the voter's restart in that term,
# whichever file comes first. voters=192 is nodes 6 and 7.
{ ev 6 vote 3 6 0 0; echo "$(ev 6 leader 3 0 0 0) voters=192"; } >"$tmp/n6.log"
{ ev 7 vote 3 6 0 0; ev 7 boot 3 0 0 0; } >"$tmp/n7.log"
{ ev 7 vote 3 6 0 0; ev 7 boot 3 6 0 0; } >"$tmp/n7.log.ok"
expect audit-vote-lost 1 "n7.log:2: node 7 restarted in term 3 with vote 0, but its vote in that term had elected node 6" -- \
  "$faultline" audit raft "$tmp/n7.log" "$tmp/n6.log"
expect audit-vote-kept 0 " 0 violation" -- \
  "$faultline" audit raft "$tmp/n6.log" "$tmp/n7.log.ok"
# Booting in that term with no vote before voting is fine; booting below
# the term of a counted vote is not.
{ ev 7 boot 3 0 0 0; ev 7 vote 3 6 0 0; } >"$tmp/n7.log.before"
expect audit-vote-after-boot 0 " 0 violation" -- \
  "$faultline" audit raft "$tmp/n6.log" "$tmp/n7.log.before"
{ ev 7 vote 3 6 0 0; ev 7 boot 2 0 0 0; } >"$tmp/n7.log.below"
expect audit-vote-term-lost 1 "n7.log.below:2: node 7 restarted in term 2, below term 3 in which its vote had elected node 6" -- \
  "$faultline" audit raft "$tmp/n6.log" "$tmp/n7.log.below"
printf '%s\r\n' "$(ev 6 vote 3 1 0 0)" >"$tmp/crlf.log"
expect audit-crlf 0 "^1 raft events" -- "$faultline" audit raft "$tmp/crlf.log"

if [ "$failures" -ne 0 ]; then
  echo "$failures command-line checks failed"
  exit 1
fi
