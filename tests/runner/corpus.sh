#!/usr/bin/env bash
# Checks every history of the recorded linearizability corpus and requires
# every verdict to match the expected one. The corpus is found in
# $FL_CORPUS_DIR, else in the folder given as the second argument; without
# it the test is skipped (exit 77), so a clone elsewhere still passes.
set -u
faultline=$1
dir=${FL_CORPUS_DIR:-${2:-}}
if [ -z "$dir" ] || [ ! -f "$dir/MANIFEST.json" ]; then
  echo "SKIP: no corpus at '${dir}' (set FL_CORPUS_DIR to a folder with MANIFEST.json)"
  exit 77
fi
out=$("$faultline" check --manifest "$dir/MANIFEST.json")
rc=$?
echo "$out" | tail -n 1
if [ $rc -ne 0 ]; then
  echo "$out" | grep -v " yes " >&2
  echo "FAIL: faultline check --manifest exited with $rc" >&2
  exit 1
fi
count=$(echo "$out" | grep -c " yes ")
if [ "$count" -lt 228 ]; then
  echo "FAIL: expected at least 228 agreeing histories, got $count" >&2
  exit 1
fi
