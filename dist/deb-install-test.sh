#!/bin/sh
# The Debian packages' install test (docs/packaging.md): installs
# vnvram-backend, vnvram-frontend and libvnvram-dev into a fresh Debian 12
# root (debootstrap --variant=minbase bookworm), with their dependencies
# from the mirror apt is configured with, and runs them from there.
#
#   dist/deb-install-test.sh --deb-dir DIR [--cache DIR]
#
# --deb-dir  where the .debs are; built there (dist/make-deb.sh) when
#            missing or older than a tracked source file
# --cache    keeps the debootstrapped root as a tarball, so that a second
#            run only unpacks it (default: DIR/../deb-root-cache)
# Exit 0: every check passed; 1: one failed; 77 (skip, with the reason):
# not root, debootstrap/chroot missing, or the mirror is unreachable.
set -eu

DEB_DIR=
CACHE=
while [ $# -gt 0 ]; do
  case "$1" in
    --deb-dir) DEB_DIR=$2; shift 2 ;;
    --cache) CACHE=$2; shift 2 ;;
    *) echo "usage: $0 --deb-dir DIR [--cache DIR]" >&2; exit 2 ;;
  esac
done
[ -n "$DEB_DIR" ] || { echo "usage: $0 --deb-dir DIR [--cache DIR]" >&2; exit 2; }
SRC_ROOT=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$DEB_DIR"
DEB_DIR=$(cd "$DEB_DIR" && pwd)
[ -n "$CACHE" ] || CACHE="$DEB_DIR/../deb-root-cache"
START=$(date +%s)

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }
elapsed() { echo "$(($(date +%s) - START)) s"; }

[ "$(id -u)" -eq 0 ] || skip "needs root (debootstrap and chroot)"
for t in debootstrap chroot mount; do
  command -v "$t" >/dev/null 2>&1 || skip "$t is not installed (tools/install-deps.sh)"
done

# The Debian mirror apt uses here (deb822 .sources or one-line lists),
# for the root and its dependencies.
find_mirror() {
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk '
      function out() { if (uri != "" && suites ~ / bookworm(-security)?( |$)/) print uri; uri = ""; suites = "" }
      /^[ \t]*$/ { out() }
      /^URIs:/ { uri = $2 }
      /^Suites:/ { $1 = ""; suites = $0 " " }
      END { out() }' "$f"
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    awk '$1 == "deb" {
           for (i = 2; i < NF; i++)
             if ($i !~ /^\[/ && ($(i+1) == "bookworm" || $(i+1) == "bookworm-security")) { print $i; next } }' "$f"
  done
}
MIRROR=$(find_mirror | grep -v security | head -n 1)
[ -n "$MIRROR" ] || MIRROR=http://deb.debian.org/debian
# The security archive too: the packages are built against this machine's
# libraries, which may come from bookworm-security (a newer libxen, say).
SECURITY=$(find_mirror | grep security | head -n 1)
[ -n "$SECURITY" ] || SECURITY=http://deb.debian.org/debian-security
echo "mirror: $MIRROR, security: $SECURITY"
if command -v curl >/dev/null 2>&1; then
  curl -sfI --max-time 15 "$MIRROR/dists/bookworm/Release" >/dev/null ||
    skip "the mirror $MIRROR is unreachable (no network?)"
elif command -v wget >/dev/null 2>&1; then
  wget -q --spider --timeout=15 "$MIRROR/dists/bookworm/Release" ||
    skip "the mirror $MIRROR is unreachable (no network?)"
fi

# The packages: built when missing.
debs() { ls "$DEB_DIR"/vnvram-backend_*.deb "$DEB_DIR"/vnvram-frontend_*.deb \
            "$DEB_DIR"/libvnvram-dev_*.deb 2>/dev/null; }
# Stale: a tracked source file is newer than the packages.
stale() {
  git -C "$SRC_ROOT" rev-parse --is-inside-work-tree >/dev/null 2>&1 || return 1
  # The time the sources were exported (a file edited during a build is
  # not in its packages), else the oldest package.
  if [ -f "$DEB_DIR/source.stamp" ]; then
    oldest=$(stat -c %Y "$DEB_DIR/source.stamp")
  else
    oldest=$(debs | xargs stat -c %Y | sort -n | head -n 1)
  fi
  newest=$(cd "$SRC_ROOT" && git ls-files -z | xargs -0 stat -c %Y 2>/dev/null | sort -n | tail -n 1)
  [ -n "$newest" ] && [ -n "$oldest" ] && [ "$newest" -gt "$oldest" ]
}
if [ "$(debs | wc -l)" -ne 3 ] || stale; then
  echo "== building the packages (dist/make-deb.sh $DEB_DIR)"
  "$SRC_ROOT/dist/make-deb.sh" "$DEB_DIR" || fail "make-deb failed"
  echo "   built in $(elapsed)"
fi
[ "$(debs | wc -l)" -eq 3 ] || fail "expected exactly three .debs in $DEB_DIR: $(debs)"

# The fresh root: debootstrapped once, then unpacked from the cache.
WORK=$(mktemp -d "${TMPDIR:-/tmp}/vnvram-deb-test.XXXXXX")
ROOT="$WORK/root"
cleanup() {
  for m in "$ROOT/dev/pts" "$ROOT/dev" "$ROOT/sys" "$ROOT/proc"; do
    if mountpoint -q "$m" 2>/dev/null; then umount -l "$m" || true; fi
  done
  rm -rf --one-file-system "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

mkdir -p "$CACHE"
TARBALL="$CACHE/bookworm-minbase-root.tar"
mkdir -p "$ROOT"
if [ -f "$TARBALL" ]; then
  echo "== unpacking the cached root $TARBALL"
  tar -C "$ROOT" -xf "$TARBALL"
else
  echo "== debootstrap --variant=minbase bookworm from $MIRROR"
  debootstrap --variant=minbase bookworm "$ROOT" "$MIRROR" > "$WORK/debootstrap.log" 2>&1 || {
    tail -n 30 "$WORK/debootstrap.log"
    case "$(tail -n 5 "$WORK/debootstrap.log")" in
      *"Failed getting release file"*|*"Couldn't download"*|*"couldn't download"*)
        skip "debootstrap could not download from $MIRROR" ;;
    esac
    fail "debootstrap failed"
  }
  tar -C "$ROOT" -cf "$TARBALL.tmp" . && mv "$TARBALL.tmp" "$TARBALL"
  echo "   root made and cached in $(elapsed)"
fi

mount -t proc proc "$ROOT/proc"
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
cat > "$ROOT/etc/apt/sources.list" <<SOURCES
deb $MIRROR bookworm main
deb $MIRROR bookworm-updates main
deb $SECURITY bookworm-security main
SOURCES
# No service starts inside the root (policy-rc.d), whatever the scripts do.
printf '#!/bin/sh\nexit 101\n' > "$ROOT/usr/sbin/policy-rc.d"
chmod 755 "$ROOT/usr/sbin/policy-rc.d"
mkdir -p "$ROOT/tmp/debs"
cp $(debs) "$ROOT/tmp/debs/"

in_root() { chroot "$ROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
              DEBIAN_FRONTEND=noninteractive LC_ALL=C "$@"; }

echo "== apt-get install ./vnvram-backend ./vnvram-frontend ./libvnvram-dev"
in_root apt-get update -qq > "$WORK/apt.log" 2>&1 || { cat "$WORK/apt.log"; fail "apt-get update"; }
# shellcheck disable=SC2046
in_root sh -c 'apt-get install -y -q --no-install-recommends /tmp/debs/*.deb' \
  > "$WORK/install.log" 2>&1 || { tail -n 40 "$WORK/install.log"; fail "apt-get install"; }
echo "   installed in $(elapsed)"

CHECKS=0
check() {  # check DESCRIPTION COMMAND...: the command must succeed in the root
  desc=$1; shift
  if out=$(in_root "$@" 2>&1); then
    CHECKS=$((CHECKS + 1)); echo "ok   $desc"
  else
    echo "$out" | tail -n 20; fail "$desc"
  fi
}
check_out() {  # check_out DESCRIPTION EXPECTED COMMAND...: output holds EXPECTED
  desc=$1; want=$2; shift 2
  out=$(in_root "$@" 2>&1) || { echo "$out" | tail -n 20; fail "$desc (exit status)"; }
  case "$out" in
    *"$want"*) CHECKS=$((CHECKS + 1)); echo "ok   $desc" ;;
    *) echo "$out" | tail -n 20; fail "$desc: no '$want' in the output" ;;
  esac
}

VERSION=$(sed -n 's/^project(vnvram VERSION \([0-9.]*\).*/\1/p' "$SRC_ROOT/CMakeLists.txt")
for p in vnvram-backend vnvram-frontend libvnvram-dev; do
  check_out "dpkg -s $p: installed" "Status: install ok installed" dpkg -s "$p"
  check_out "dpkg -s $p: version $VERSION-1" "Version: $VERSION-1" dpkg -s "$p"
  check "dpkg -L $p" dpkg -L "$p"
done
check_out "nvram-tool --version" "$VERSION" nvram-tool --version
check_out "vnvramd --help" "--log-file" vnvramd --help
check_out "vnvram-frontd --help" "vnvram-frontd" vnvram-frontd --help
check_out "nvram-tool watch --help" "--log-file" nvram-tool watch --help
check_out "vnvram-journal --help" "vnvram-journal" vnvram-journal --help
check "vnvram-schema-check is installed" test -x /usr/bin/vnvram-schema-check
for m in man8/vnvramd.8.gz man8/nvram-tool.8.gz man5/vnvram.cfg.5.gz man8/vnvram-schema-check.8.gz \
  man8/vnvram-frontd.8.gz man1/vnvram-journal.1.gz; do
  check "man page $m" test -s "/usr/share/man/$m"
done
check "bash completion" test -s /usr/share/bash-completion/completions/nvram-tool
for u in vnvramd.service vnvram-watch.service; do
  check_out "unit $u (vnvram-backend)" "/lib/systemd/system/$u" dpkg -L vnvram-backend
done
check_out "vnvramd.service is Type=notify" "Type=notify" cat /lib/systemd/system/vnvramd.service
check "vnvramd.service enabled" test -L /etc/systemd/system/multi-user.target.wants/vnvramd.service
check "vnvram-watch.service not enabled" \
  sh -c '! test -e /etc/systemd/system/multi-user.target.wants/vnvram-watch.service'
check_out "vnvramd.conf is a conffile" "/etc/vnvram/vnvramd.conf" \
  dpkg-query -W -f='${Conffiles}' vnvram-backend
check_out "logrotate snippet is a conffile" "/etc/logrotate.d/vnvram" \
  dpkg-query -W -f='${Conffiles}' vnvram-backend
check "/etc/vnvram/domains exists" test -d /etc/vnvram/domains
# The default config parses: without Xen vnvramd gets past it and fails
# opening the platform (exit 1), never with a configuration error (exit 2).
rc=0
out=$(in_root vnvramd --config /etc/vnvram/vnvramd.conf 2>&1) || rc=$?
case "$rc:$out" in
  1:*"cannot open platform xen"*) CHECKS=$((CHECKS + 1)); echo "ok   the default vnvramd.conf parses" ;;
  *) echo "$out"; fail "vnvramd --config /etc/vnvram/vnvramd.conf: exit $rc" ;;
esac
check "libvnvram.so.0's dependencies resolve" \
  sh -c 'l=$(ls /usr/lib/*/libvnvram.so.0) && ldd "$l" > /tmp/ldd && ! grep -q "not found" /tmp/ldd'
for b in /usr/sbin/vnvramd /usr/bin/nvram-tool /usr/bin/vnvram-frontd /usr/bin/vnvram-journal; do
  check "$b: every library resolves" sh -c "ldd $b > /tmp/ldd && ! grep -q 'not found' /tmp/ldd"
done
check_out "vnvram.pc" "Version: $VERSION" sh -c 'cat /usr/lib/*/pkgconfig/vnvram.pc'
check "headers" test -s /usr/include/vnvram/vnvram.h
# The logrotate snippet is valid and rotates by renaming: the old lines
# move to vnvramd.log.1, a new vnvramd.log (0640) is created for the
# daemon to reopen on SIGHUP.
in_root apt-get install -y -q --no-install-recommends logrotate > "$WORK/logrotate.log" 2>&1 ||
  { tail -n 20 "$WORK/logrotate.log"; fail "apt-get install logrotate"; }
check "logrotate -d /etc/logrotate.d/vnvram" logrotate -d /etc/logrotate.d/vnvram
check "logrotate rotates /var/log/vnvram/vnvramd.log" sh -c '
  mkdir -p /var/log/vnvram && echo "line before rotation" > /var/log/vnvram/vnvramd.log &&
  logrotate -f -s /tmp/logrotate.state /etc/logrotate.d/vnvram &&
  grep -q "line before rotation" /var/log/vnvram/vnvramd.log.1 &&
  test -f /var/log/vnvram/vnvramd.log && ! test -s /var/log/vnvram/vnvramd.log &&
  test "$(stat -c %a /var/log/vnvram/vnvramd.log)" = 640'
# Purge removes the conffiles.
check "apt-get purge vnvram-backend" apt-get purge -y -q vnvram-backend
check "purge removed /etc/vnvram/vnvramd.conf" sh -c '! test -e /etc/vnvram/vnvramd.conf'

echo "PASS: $CHECKS checks in the fresh root, $(elapsed) in all"
