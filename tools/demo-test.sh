#!/bin/bash
# demo_test (ctest): runs `make demo`'s script against the build's binaries
# and checks that it told the whole story: exit 0, the summary table and
# the closing line. Usage: demo-test.sh DEMO_SH BIN_DIR
set -euo pipefail
out=$(mktemp)
trap 'rm -f "$out"' EXIT
if ! bash "$1" "$2" >"$out" 2>&1; then
  tail -n 40 "$out"
  echo "demo_test: the demo failed" >&2
  exit 1
fi
for want in "== summary" "host a lost; nvram-tool promote on b" \
  "active path's backend killed (-9), host m" "journal's primary killed (-9)" "== demo done in"; do
  if ! grep -qF -- "$want" "$out"; then
    tail -n 40 "$out"
    echo "demo_test: the demo's output lacks '$want'" >&2
    exit 1
  fi
done
sed -n '/^== summary/,$p' "$out"
