#!/bin/sh
# systemd-analyze verify on vnvram's configured units.
#   verify-units.sh UNIT_DIR BIN_DIR
# The installed paths in ExecStart= do not exist in a build tree: the units
# are checked as copies pointing at BIN_DIR's binaries. Exit 77 (skip) when
# systemd-analyze is missing.
set -eu
UNIT_DIR=$1
BIN_DIR=$(cd "$2" && pwd)
if ! command -v systemd-analyze >/dev/null 2>&1; then
  echo "SKIP: systemd-analyze not installed (apt-get install systemd)"
  exit 77
fi
for b in vnvramd nvram-tool; do
  [ -x "$BIN_DIR/$b" ] || { echo "FAIL: $BIN_DIR/$b not built"; exit 1; }
done
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
for u in vnvramd.service vnvram-watch.service; do
  sed -e "s|^ExecStart=[^ ]*/vnvramd |ExecStart=$BIN_DIR/vnvramd |" \
      -e "s|^ExecStart=[^ ]*/nvram-tool |ExecStart=$BIN_DIR/nvram-tool |" \
      "$UNIT_DIR/$u" > "$TMP/$u"
  grep -q "^ExecStart=$BIN_DIR/" "$TMP/$u" || { echo "FAIL: $u: no ExecStart= rewritten"; exit 1; }
done
# verify prints problems on stderr and exits non-zero on errors; a missing
# optional dependency (xen.service on a machine without Xen) is only
# reported, so any output at all fails the test: the units must be clean.
OUT=$(cd "$TMP" && SYSTEMD_LOG_LEVEL=notice systemd-analyze verify --man=no \
        ./vnvramd.service ./vnvram-watch.service 2>&1) && rc=0 || rc=$?
[ -z "$OUT" ] || echo "$OUT"
if [ "$rc" -ne 0 ]; then
  echo "FAIL: systemd-analyze verify exited $rc"
  exit 1
fi
if [ -n "$OUT" ]; then
  echo "FAIL: systemd-analyze verify reported problems"
  exit 1
fi
echo "PASS: vnvramd.service and vnvram-watch.service verify cleanly"
