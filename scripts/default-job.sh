#!/usr/bin/env bash
# The default job behind `make run`: generate sample histories with
# faultline's own generator (valid ones and ones with a corrupted read), check
# them all and print the verdict table; then check the recorded conformance
# corpus when it is present.
set -euo pipefail

build=${1:-build}
faultline="$build/runner/faultline"
sample="$build/sample"
corpus=${FL_CORPUS_DIR:-$(dirname "$0")/../../shared/corpus/linearizability}

"$faultline" gen --suite "$sample" --seed 1
echo
"$faultline" check --manifest "$sample/MANIFEST.json"

if [ -f "$corpus/MANIFEST.json" ]; then
  echo
  echo "Recorded histories with known verdicts ($corpus):"
  "$faultline" check --manifest "$corpus/MANIFEST.json"
else
  echo
  echo "No recorded corpus at $corpus; set FL_CORPUS_DIR to check one."
fi
