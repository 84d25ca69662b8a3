#!/bin/sh
# `cmake --install` into a DESTDIR holds every installed piece, and the
# paths written into the units and the config exist in that tree.
#   dist/check-install.sh BUILD_DIR
set -eu
BUILD=$(cd "$1" && pwd)
DEST=$(mktemp -d "${TMPDIR:-/tmp}/vnvram-install.XXXXXX")
trap 'rm -rf "$DEST"' EXIT
DESTDIR="$DEST" cmake --install "$BUILD" > "$DEST.log" 2>&1 || { cat "$DEST.log"; rm -f "$DEST.log"; exit 1; }
rm -f "$DEST.log"
PREFIX=$(sed -n 's/^CMAKE_INSTALL_PREFIX:PATH=//p' "$BUILD/CMakeCache.txt")
fails=0
expect() {  # expect PATTERN: one installed file's path (under DESTDIR) ends with it
  if find "$DEST" \( -type f -o -type l -o -type d \) | grep -q -- "$1\$"; then
    echo "ok   $1"
  else
    echo "FAIL: nothing installed as */$1"; fails=$((fails + 1))
  fi
}
for p in sbin/vnvramd bin/nvram-tool bin/vnvram-frontd bin/vnvram-journal \
         bin/vnvram-schema-check share/vnvram/vnvram-schema.json \
         /libvnvram.so /libvnvram.so.0 pkgconfig/vnvram.pc \
         include/vnvram/vnvram.h include/vnvram/vnvram.hpp include/vnvram/journal.h \
         include/vnvram/common/status.h \
         man8/vnvramd.8 man8/nvram-tool.8 man5/vnvram.cfg.5 man8/vnvram-frontd.8 \
         man1/vnvram-journal.1 man8/vnvram-schema-check.8 \
         bash-completion/completions/nvram-tool \
         systemd/system/vnvramd.service systemd/system/vnvram-watch.service \
         etc/vnvram/vnvramd.conf etc/vnvram/domains etc/logrotate.d/vnvram; do
  expect "$p"
done
# ExecStart= names binaries that were installed.
for unit in $(find "$DEST" -name '*.service'); do
  exe=$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "$unit")
  if [ -x "$DEST$exe" ]; then
    echo "ok   $(basename "$unit"): ExecStart=$exe installed"
  else
    echo "FAIL: $(basename "$unit"): ExecStart=$exe is not in the installed tree"; fails=$((fails + 1))
  fi
done
case "$PREFIX" in /usr) ;; *) echo "(prefix $PREFIX)" ;; esac
[ "$fails" -eq 0 ] || exit 1
echo "PASS: every piece installed"
