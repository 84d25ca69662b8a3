#!/bin/bash
# readme_test (ctest): runs the README's "Using it on the sim platform"
# block as written (bash -e, from a directory whose build/ is this build)
# and checks what it says it does: 100 records written and verified, a
# journal replayed whole, the schema check clean, the device detached and
# vaulted, no warning or error from the daemons.
# Usage: readme-test.sh README BUILD_DIR
set -euo pipefail
readme=$1
build=$(cd "$2" && pwd)
work=$(mktemp -d /tmp/vnvram-readme.XXXXXX)
out=$work/out
cleanup() {
  local rc=$?
  # Whatever the block started and did not stop (a failed step).
  pkill -TERM -f -- "sim:$work/" 2>/dev/null || true
  pkill -TERM -f -- "--socket-dir $work/" 2>/dev/null || true
  [[ $rc -eq 0 ]] && rm -rf "$work" || echo "readme_test: kept $work" >&2
  exit $rc
}
trap cleanup EXIT
fail() { tail -n 40 "$out" 2>/dev/null; echo "readme_test: $*" >&2; exit 1; }

# The block: the first fenced block after the section's heading.
awk '/^## Using it on the sim platform/ { s = 1; next }
     s == 1 && /^```/ { s = 2; next }
     s == 2 && /^```/ { exit }
     s == 2 { print }' "$readme" >"$work/block.sh"
[[ -s $work/block.sh ]] || fail "no block under '## Using it on the sim platform' in $readme"
ln -s "$build" "$work/build"
# TMPDIR: the block's mktemp -d lands in $work, which names its processes.
(cd "$work" && TMPDIR=$work timeout 120 bash -euo pipefail block.sh) >"$out" 2>&1 || fail "the block failed (exit $?)"
for want in "verified 100" "replayed records=1000 first=1 last=1000" "verified=yes mismatches=0" \
  "vnvram-schema-check: 0 findings" "detached device 0 of domain 1" "vaulted 2097152 bytes"; do
  grep -qF -- "$want" "$out" || fail "the block's output lacks '$want'"
done
if grep -qE "(error|warning):" "$out"; then fail "a daemon logged a warning or an error"; fi
echo "readme_test: the README's sim block ran as written ($(grep -c '' "$work/block.sh") lines)"
