#!/usr/bin/env bash
# Loads a run's report.html and the runs' index.html in headless Chromium,
# from files. Fails on any console message, because the pages log nothing,
# so any message is an error or an uncaught exception. Also fails when the
# page's script did not draw. Saves screenshots of both as test artifacts in
# ARTIFACTS (default: ./artifacts). Skipped (77) when chromium is absent.
set -u
faultline=$1
bindir=$2
campaign=$3 # the campaigns folder
artifacts=${4:-$(pwd)/artifacts}
if ! command -v chromium >/dev/null; then
  echo "chromium is not installed; skipping (scripts/install-deps.sh installs it)"
  exit 77
fi
tmp=$(mktemp -d /tmp/fl-browser.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$artifacts"
failures=0

# A short invalid run (a planted stale read) gives a report with every
# part: faults, a counterexample and node log excerpts. Without root it
# runs on loopback with kills only and is then usually valid.
"$faultline" run "$campaign/raft-stale-read.json" --seed 1 --duration 12 \
  --store "$tmp/store" --bin-dir "$bindir" >"$tmp/run.out" 2>"$tmp/run.err"
rc=$?
if [ "$rc" -gt 1 ]; then
  echo "FAIL the run exited $rc"
  tail -5 "$tmp/run.err"
  exit 1
fi
"$faultline" report --db "$tmp/store/results.db" --out "$tmp/store" \
  >"$tmp/report.out" 2>&1 || { echo "FAIL faultline report:"; cat "$tmp/report.out"; exit 1; }
report=$(ls "$tmp"/store/raft-stale-read/*/report.html | head -1)

# load NAME FILE: dumps the DOM after scripts ran and takes a screenshot.
load() {
  local name=$1 file=$2
  # The profile lives in the temporary folder, so nothing is left behind.
  timeout 120 chromium --headless --no-sandbox --disable-gpu \
    --user-data-dir="$tmp/profile-$name" --enable-logging=stderr --v=0 \
    --virtual-time-budget=5000 --dump-dom "file://$file" \
    >"$tmp/$name.dom" 2>"$tmp/$name.log"
  timeout 120 chromium --headless --no-sandbox --disable-gpu \
    --user-data-dir="$tmp/profile-$name" --hide-scrollbars \
    --window-size=1400,1100 --virtual-time-budget=5000 \
    --screenshot="$artifacts/$name.png" "file://$file" \
    >/dev/null 2>&1
  if grep -q ":CONSOLE" "$tmp/$name.log"; then
    echo "FAIL $name: console messages:"
    grep ":CONSOLE" "$tmp/$name.log" | head -5
    failures=$((failures + 1))
  else
    echo "ok   $name: no console message"
  fi
  if [ -s "$artifacts/$name.png" ]; then
    echo "ok   $name: screenshot $artifacts/$name.png"
  else
    echo "FAIL $name: no screenshot"
    failures=$((failures + 1))
  fi
}

load report "$report"
# The timeline is drawn by the page's script: its bars exist only in the
# DOM after the script ran.
bars=$(grep -o "<rect" "$tmp/report.dom" | wc -l)
if [ "$bars" -gt 10 ]; then
  echo "ok   report: the script drew $bars rectangles"
else
  echo "FAIL report: the script drew $bars rectangles"
  failures=$((failures + 1))
fi

load index "$tmp/store/index.html"
if grep -q "1 of 1 runs" "$tmp/index.dom"; then
  echo "ok   index: the filter script ran"
else
  echo "FAIL index: the filter script did not count the runs"
  failures=$((failures + 1))
fi

[ "$failures" -eq 0 ] || { echo "$failures failures"; exit 1; }
echo "all browser checks passed"
