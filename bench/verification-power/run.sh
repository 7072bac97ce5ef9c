#!/usr/bin/env bash
# Verification power: how fast each planted-bug campaign finds its bug, and
# whether each correct campaign stays free of anomalies over many seeds.
# Campaigns are discovered in campaigns/*.json when the script starts.
#
#   planted bug ("expect": "invalid"): seeds 1..K, K its detect_within_seeds
#     (5 when unset), at the campaign's own duration. Prints the first seed
#     that found the bug, the seeds run up to it, and the wall time of
#     those runs added up, which is what a search one seed at a time takes.
#   correct campaign: seeds 1..--seeds (100), real clusters at --duration
#     seconds (10), simulator campaigns at their own virtual time; prints
#     the anomalies (invalid runs), which must be zero.
#
# Every campaign is one `faultline sweep` with --jobs runs at a time (2).
# The table is Markdown. Exit status: 0 when every planted bug was found
# and no correct campaign had an anomaly, 1 otherwise, 2 on a usage or
# setup error.
set -uo pipefail

usage() {
  cat <<'EOF'
Usage: bench/verification-power/run.sh [OPTIONS] [BUILD_DIR]

Options:
  --seeds N      seeds per correct campaign (default 100)
  --duration S   workload seconds of real correct campaigns (default 10)
  --jobs N       runs at once (default 2)
  --only REGEX   only campaigns whose file name matches REGEX (grep -E)
  -h, --help     show this help
EOF
}

seeds=100
duration=10
jobs=2
only=.
build=build
while [ $# -gt 0 ]; do
  case $1 in
    --seeds) seeds=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    -*) echo "run.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    *) build=$1; shift ;;
  esac
done

root=$(cd "$(dirname "$0")/../.." && pwd)
faultline="$(cd "$build" 2>/dev/null && pwd)/runner/faultline"
if [ ! -x "$faultline" ]; then
  echo "run.sh: no faultline in $build/runner; build first (make build)" >&2
  exit 2
fi
if ! command -v python3 >/dev/null; then
  echo "run.sh: python3 is needed to read the JUnit files" >&2
  exit 2
fi
cd "$root" || exit 2
work=$(mktemp -d /tmp/fl-power.XXXXXX)
[ -n "${FL_KEEP_STORE:-}" ] || trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Prints one table row from a sweep's JUnit file: $1 the file, $2 planted
# or correct, $3 the settings column, $4 the sweep's wall seconds.
row() {
  python3 - "$@" <<'PY'
import sys
import xml.etree.ElementTree as ET

path, kind, settings, wall = sys.argv[1:5]
suite = ET.parse(path).getroot().find("testsuite")
name = suite.get("name")
seeds = []  # (seed, verdict, seconds)
for case in suite.findall("testcase"):
    if not case.get("name").startswith("seed-"):
        continue
    seed = int(case.get("name")[5:])
    out = case.findtext("system-out") or ""
    if case.find("error") is not None:
        verdict = "failed"
    elif case.find("failure") is not None or out.startswith("invalid"):
        verdict = "invalid"
    elif case.find("skipped") is not None:
        message = case.find("skipped").get("message", "")
        verdict = "unknown" if message.startswith("verdict unknown") else "not run"
    else:
        verdict = "valid"
    seeds.append((seed, verdict, float(case.get("time"))))
seeds.sort()
count = lambda v: sum(1 for s in seeds if s[1] == v)
judged = [s for s in seeds if s[1] in ("valid", "invalid", "unknown")]
if kind == "planted":
    first = next((i for i, s in enumerate(judged) if s[1] == "invalid"), None)
    if first is None:
        found = "none"
        to_first = f"> {len(judged)}"
        time = "-"
    else:
        found = str(judged[first][0])
        to_first = str(first + 1)
        time = f"{sum(s[2] for s in judged[: first + 1]):.1f}"
    print(f"| {name} | planted | {settings} | {len(judged)} | "
          f"{count('invalid')}/{len(judged)} | {found} | {to_first} | "
          f"{time} | {count('unknown')} | {count('failed')} | {wall} |")
else:
    print(f"| {name} | correct | {settings} | {len(judged)} | "
          f"{count('invalid')} | - | - | - | {count('unknown')} | "
          f"{count('failed')} | {wall} |")
PY
}

echo "# faultline verification power, $(date -u +%Y-%m-%dT%H:%MZ)"
echo "# $(git rev-parse --short HEAD 2>/dev/null || echo unknown), $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg)"
echo
echo "| campaign | kind | settings | seeds run | invalid | first found at seed | seeds to first | wall s to first | unknown | failed to run | sweep wall s |"
echo "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"

status=0
for file in campaigns/*.json; do
  echo "$file" | grep -Eq -- "$only" || continue
  name=$(basename "$file" .json)
  sim=0
  grep -q '"system": *"raft-sim"' "$file" && sim=1
  args=()
  if grep -q '"expect": *"invalid"' "$file"; then
    kind=planted
    n=$(sed -n 's/.*"detect_within_seeds": *\([0-9]*\).*/\1/p' "$file")
    n=${n:-5}
    settings="seeds 1..$n, own duration"
    [ "$sim" -eq 0 ] || settings="seeds 1..$n, own virtual time"
  else
    kind=correct
    n=$seeds
    if [ "$sim" -eq 1 ]; then
      settings="seeds 1..$n, own virtual time"
    else
      settings="seeds 1..$n, --duration $duration"
      args=(--duration "$duration")
    fi
  fi
  start=$SECONDS
  "$faultline" sweep "$file" --seeds "1..$n" --jobs "$jobs" \
    --store "$work/store" --junit "$work/$name.xml" "${args[@]}" \
    </dev/null >"$work/$name.out" 2>"$work/$name.err"
  rc=$?
  wall=$((SECONDS - start))
  if [ ! -s "$work/$name.xml" ]; then
    echo "| $name | $kind | $settings | sweep exit $rc, no JUnit file | | | | | | | $wall |"
    tail -3 "$work/$name.err" | sed 's/^/#   /'
    status=1
    continue
  fi
  row "$work/$name.xml" "$kind" "$settings" "$wall"
  [ "$rc" -eq 0 ] || status=1
done
exit "$status"
