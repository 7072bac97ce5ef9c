#!/usr/bin/env bash
# Command-line behaviour of `faultline check` and `faultline gen`: exit
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
expect check-unknown-option 2 "unknown option --frobnicate" -- \
  "$faultline" check --frobnicate "$tmp/valid.jsonl"
expect check-missing-value 2 "option --model needs a value" -- \
  "$faultline" check "$tmp/valid.jsonl" --model

# check: input errors name the file and line
expect check-missing-file 2 "$tmp/nope.jsonl: cannot open: No such file" -- \
  "$faultline" check "$tmp/nope.jsonl"
expect check-broken-json 2 "$tmp/broken.jsonl:2: invalid JSON" -- \
  "$faultline" check "$tmp/broken.jsonl"
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

# gen
expect gen-bad-rate 2 'invalid --crash-rate "2"' -- \
  "$faultline" gen --crash-rate 2
expect gen-stray-argument 2 'unexpected argument "extra"' -- \
  "$faultline" gen extra
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

if [ "$failures" -ne 0 ]; then
  echo "$failures command-line checks failed"
  exit 1
fi
