#!/bin/sh
# Builds vnvram's Debian packages (docs/packaging.md).
#   dist/make-deb.sh OUT_DIR [JOBS]
# Exports the tracked files of this checkout (their working-tree contents;
# a plain copy without build directories when this is not a git checkout)
# into OUT_DIR/src, runs dpkg-buildpackage -us -uc -b there with JOBS
# parallel jobs, and leaves the .debs (and .buildinfo/.changes) in OUT_DIR.
# VNVRAM_DEB_DBGSYM=1 also builds the -dbgsym packages; OUT_DIR/src is
# removed after a successful build unless VNVRAM_DEB_KEEP_SRC=1.
set -eu
OUT=$1
JOBS=${2:-$(nproc 2>/dev/null || echo 2)}
SRC_ROOT=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

for tool in dpkg-buildpackage dh; do
  command -v "$tool" >/dev/null 2>&1 || {
    echo "make-deb: $tool is missing (tools/install-deps.sh installs debhelper and dpkg-dev)" >&2
    exit 1
  }
done

rm -rf "$OUT/src"
mkdir -p "$OUT/src"
# When the sources were taken (the install test rebuilds packages older
# than a tracked file).
touch "$OUT/source.stamp"
if git -C "$SRC_ROOT" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  (cd "$SRC_ROOT" && git ls-files -z --cached | tar --null -T - -cf -) | tar -xf - -C "$OUT/src"
else
  tar -C "$SRC_ROOT" --exclude='./build*' --exclude='./.git' -cf - . | tar -xf - -C "$OUT/src"
fi
rm -f "$OUT"/*.deb "$OUT"/*.ddeb "$OUT"/*.buildinfo "$OUT"/*.changes

cd "$OUT/src"
# No -dbgsym packages unless VNVRAM_DEB_DBGSYM=1: they double the packaging
# time (dwz, objcopy) and the tests do not need them.
if [ "${VNVRAM_DEB_DBGSYM:-0}" != 1 ]; then
  DEB_BUILD_OPTIONS="${DEB_BUILD_OPTIONS:+$DEB_BUILD_OPTIONS }noddebs"
  export DEB_BUILD_OPTIONS
fi
# debhelper (compat 13) points HOME at a directory inside the build tree:
# keep ccache's cache where it is, so that a second build hits it.
if command -v ccache >/dev/null 2>&1 && [ -z "${CCACHE_DIR:-}" ]; then
  CCACHE_DIR=$(ccache -k cache_dir 2>/dev/null || echo "$HOME/.cache/ccache")
  export CCACHE_DIR
fi
# The output lands in the parent directory, OUT.
nice dpkg-buildpackage -us -uc -b -j"$JOBS"
# The build tree is about 1 GB: kept only after a failure (set -e) or when
# asked (VNVRAM_DEB_KEEP_SRC=1).
cd "$OUT"
[ "${VNVRAM_DEB_KEEP_SRC:-0}" = 1 ] || rm -rf "$OUT/src"
ls -l "$OUT"/*.deb
