#!/bin/sh
# Model check of models/replication.pml with spin (ctest: replication_model_check).
#
#   models/check-replication.sh [--full] [WORKDIR]
#
# Default (bounded, < 60 s on two cores): side by side, 1. a bitstate
# depth-first search of the protocol, stopped after $VNVRAM_SPIN_SECONDS
# (default 30) seconds, in which any assertion or LTL violation fails the
# check, and 2. the same search of a mutant with a known bug
# (BUG_MINORITY_ACK), which must be caught: the properties have teeth.
# --full: an exhaustive search instead (hash-compact; needs minutes and a
# few GB of memory at the model's default bounds).
# Exit 0 on success, 1 on a violation or a tool failure, 77 (skipped) when
# spin or a C compiler is missing.
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
MODEL="$HERE/replication.pml"
FULL=0
if [ "${1:-}" = "--full" ]; then FULL=1; shift; fi
WORK=${1:-$(mktemp -d "${TMPDIR:-/tmp}/vnvram-spin.XXXXXX")}
SECONDS_BUDGET=${VNVRAM_SPIN_SECONDS:-30}

command -v spin >/dev/null 2>&1 || { echo "skip: spin is not installed (Debian package spin; tools/install-deps.sh)"; exit 77; }
CC=${CC:-cc}
command -v "$CC" >/dev/null 2>&1 || { echo "skip: no C compiler ($CC) to build spin's verifier"; exit 77; }
command -v timeout >/dev/null 2>&1 || { echo "skip: timeout(1) is missing"; exit 77; }

# build DIR [SPIN_DEFINE]: spin -a and the verifier, in DIR.
build() {
  mkdir -p "$1"
  cp "$MODEL" "$1/replication.pml"
  (cd "$1" && spin ${2:+-D$2} -a replication.pml >spin.log 2>&1) || {
    echo "FAIL: spin -a ${2:-} failed:"; cat "$1/spin.log"; exit 1; }
  (cd "$1" && "$CC" -w -O1 -DSAFETY $3 -o pan pan.c 2>cc.log) || {
    echo "FAIL: compiling pan failed:"; cat "$1/cc.log"; exit 1; }
}

# run DIR SECONDS ARGS...: the verifier, interrupted (SIGINT: it prints its
# statistics) after SECONDS. Prints the summary lines.
run() {
  dir=$1; secs=$2; shift 2
  (cd "$dir" && rm -f ./*.trail && timeout -s INT "$secs" ./pan "$@" >pan.log 2>&1) || true
  grep -E 'assertion violated|acceptance cycle|errors:|states, stored|elapsed time|Interrupted|max search depth' "$dir/pan.log" || true
}

violation() {
  grep -qE 'errors: [1-9]' "$1/pan.log" || ls "$1"/*.trail >/dev/null 2>&1
}

if [ "$FULL" = 1 ]; then
  echo "== exhaustive search (this takes a while)"
  build "$WORK/full" "" "-DHC4"
  run "$WORK/full" 86400 -m400000 -w28
  dir=$WORK/full
else
  # The search and the mutant run side by side (two verifiers, two cores).
  echo "== bounded search (bitstate, ${SECONDS_BUDGET}s) and mutant BUG_MINORITY_ACK (must be caught)"
  build "$WORK/model" "" "-DBITSTATE" & b1=$!
  build "$WORK/mutant" BUG_MINORITY_ACK "-DBITSTATE" & b2=$!
  wait $b1 || exit 1
  wait $b2 || exit 1
  run "$WORK/model" "$SECONDS_BUDGET" -m400000 -w28 >"$WORK/model.summary" & r1=$!
  run "$WORK/mutant" "$SECONDS_BUDGET" -m400000 -w28 >"$WORK/mutant.summary" & r2=$!
  wait $r1 $r2 || true
  echo "-- model:"; cat "$WORK/model.summary"
  echo "-- mutant:"; cat "$WORK/mutant.summary"
  dir=$WORK/model
fi
if violation "$dir"; then
  echo "FAIL: spin found a violation; counterexample:"
  (cd "$dir" && spin -t replication.pml 2>&1 | grep -E 'node|assert|Error' | head -80)
  exit 1
fi
grep -q 'errors: 0' "$dir/pan.log" || { echo "FAIL: the verifier did not report"; cat "$dir/pan.log"; exit 1; }
if [ "$FULL" = 0 ] && ! violation "$WORK/mutant"; then
  echo "FAIL: the mutant BUG_MINORITY_ACK was not caught: the properties may be vacuous"
  exit 1
fi
if [ "$FULL" = 1 ]; then echo "PASS: exhaustive search, no violation"; else echo "PASS: no violation found in the bounded search; the mutant was caught"; fi
