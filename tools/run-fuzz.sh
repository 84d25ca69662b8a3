#!/bin/sh
# Runs libFuzzer targets for a set time each (make fuzz; docs/fuzzing.md).
#   tools/run-fuzz.sh BUILD_DIR SECONDS TARGET...
# Each TARGET is BUILD_DIR/fuzz/TARGET; its seed corpus is the one directory
# */fuzz/corpus/NAME of the source tree (NAME = TARGET without "_fuzz"). The
# fuzzer runs niced over a copy of that corpus in BUILD_DIR/fuzz-work/TARGET
# (the seed corpus is never written), with a 10 s limit per input. One
# summary line per target; a crash, leak, sanitizer report, timeout or
# violated invariant keeps its input in the work directory, and the script
# then exits 1 after all targets ran.
set -u

if [ $# -lt 3 ]; then
  echo "usage: $0 BUILD_DIR SECONDS TARGET..." >&2
  exit 2
fi
BUILD=$1
SECONDS_EACH=$2
shift 2
SRC=$(cd "$(dirname "$0")/.." && pwd)

failed=0
for target in "$@"; do
  name=${target%_fuzz}
  bin=$BUILD/fuzz/$target
  seeds=$(find "$SRC" -path "$SRC/build*" -prune -o -type d -path "*/fuzz/corpus/$name" -print)
  if [ ! -x "$bin" ] || [ -z "$seeds" ] || [ "$(echo "$seeds" | wc -l)" -ne 1 ]; then
    echo "fuzz: $target: FAILED (no binary $bin or not exactly one corpus */fuzz/corpus/$name)"
    failed=1
    continue
  fi
  work=$BUILD/fuzz-work/$target
  rm -rf "$work"
  mkdir -p "$work/corpus" "$work/artifacts"
  cp "$seeds"/* "$work/corpus/"
  seeded=$(ls "$work/corpus" | wc -l)
  log=$work/fuzz.log
  nice "$bin" -max_total_time="$SECONDS_EACH" -timeout=10 -print_final_stats=1 \
    -artifact_prefix="$work/artifacts/" "$work/corpus" >"$log" 2>&1
  rc=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)
  grown=$(ls "$work/corpus" | wc -l)
  if [ "$rc" -eq 0 ]; then
    echo "fuzz: $target: ok ${SECONDS_EACH}s runs=${runs:-?} cov=${cov:-?} corpus=$seeded->$grown"
  else
    failed=1
    artifact=$(ls "$work/artifacts" 2>/dev/null | head -n 1)
    echo "fuzz: $target: FAILED (exit $rc) runs=${runs:-?}; input: $work/artifacts/${artifact:-?}; log: $log"
    grep -m 3 -E 'ERROR: |invariant violated|runtime error' "$log" | sed 's/^/fuzz:     /'
  fi
done
exit $failed
