#!/usr/bin/env bash
# run-lab.sh - the vnvram Xen lab: boots a real Xen 4.17 hypervisor with a
# PV dom0 under qemu-system-x86_64 (TCG, no KVM, no network), runs the lab
# scenarios there with the project's own binaries, and exits with their
# result. See docs/lab.md.
#
#   tests/lab/run-lab.sh [--build-dir DIR] [--out DIR] [--cache DIR]
#                        [--qemu-timeout S] [--keep-going]
#
#   --build-dir   the CMake build tree with bin/ and tests/ (default: build)
#   --out         logs and images (default: BUILD/lab)
#   --cache       downloaded .debs and their unpacked tree (default: BUILD/lab-cache)
#   --qemu-timeout  hard limit for the whole qemu run (default 390 s)
#   env VNVRAM_LAB_CPU: qemu -cpu model (default qemu64)
#
# Exit status: 0 every scenario passed; 1 a scenario failed or the run
# broke; 77 the lab cannot run on this machine (no qemu and it cannot be
# installed, or the Debian pieces cannot be fetched): the reason is printed.
#
# Pieces (Debian 12 archive, fetched with `apt-get download`, unpacked with
# `dpkg -x`, never installed): the Xen hypervisor and toolstack, the kernel
# linux-image-amd64 depends on (discovered, never hard-coded), busybox and
# the libraries xl needs. Cached under --cache: a second run downloads
# nothing. Installed on the host when missing: qemu-system-x86, kmod, cpio.
set -euo pipefail

LAB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$LAB_DIR/../.." && pwd)
BUILD=$REPO/build
OUT=""
CACHE=""
QEMU_TIMEOUT=${VNVRAM_LAB_QEMU_TIMEOUT:-390}
# qemu's CPU model. `max` (which needs smap=0 smep=0 for the PV dom0 under
# TCG) showed sporadic user-space corruption here (busybox date crashing,
# glibc malloc aborts, xl's XZ check of the guest kernel failing); qemu64
# has none of its vector extensions and has run clean.
QEMU_CPU=${VNVRAM_LAB_CPU:-qemu64}

while [[ $# -gt 0 ]]; do
  case $1 in
    --build-dir) BUILD=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --cache) CACHE=$2; shift 2 ;;
    --qemu-timeout) QEMU_TIMEOUT=$2; shift 2 ;;
    -h | --help) sed -n '2,24p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "run-lab.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
BUILD=$(cd "$BUILD" && pwd)
OUT=${OUT:-$BUILD/lab}
CACHE=${CACHE:-$BUILD/lab-cache}
mkdir -p "$OUT" "$CACHE"
OUT=$(cd "$OUT" && pwd)
CACHE=$(cd "$CACHE" && pwd)

# The scenarios the lab must report, each PASS (dom0-init.sh prints them).
SCENARIOS=(platform-dom0 platform-guest persist-recreate schema-live hostile-fence isolation)

T_START=$(date +%s%N)
log() {
  local e=$((($(date +%s%N) - T_START) / 1000000))
  printf '[lab %3d.%03ds] %s\n' $((e / 1000)) $((e % 1000)) "$*"
}
skip() {
  echo "SKIP: xen_lab: $*" >&2
  exit 77
}
die() {
  echo "FAIL: xen_lab: $*" >&2
  exit 1
}

# ---------------------------------------------------------------- host tools
apt_install() {
  [[ $(id -u) -eq 0 ]] || return 1
  command -v apt-get >/dev/null || return 1
  log "installing $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" \
    >"$OUT/apt-install.log" 2>&1 && return 0
  apt-get update -q >>"$OUT/apt-install.log" 2>&1 || return 1
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" \
    >>"$OUT/apt-install.log" 2>&1
}

ensure_tools() {
  local missing=()
  command -v qemu-system-x86_64 >/dev/null || missing+=(qemu-system-x86)
  command -v depmod >/dev/null || [[ -x /sbin/depmod ]] || missing+=(kmod)
  command -v cpio >/dev/null || missing+=(cpio)
  if [[ ${#missing[@]} -gt 0 ]]; then
    apt_install "${missing[@]}" || true
  fi
  command -v qemu-system-x86_64 >/dev/null ||
    skip "qemu-system-x86_64 is not installed and could not be installed (apt-get install qemu-system-x86: see $OUT/apt-install.log)"
  command -v cpio >/dev/null || skip "cpio is missing and could not be installed"
  command -v depmod >/dev/null || PATH=$PATH:/sbin:/usr/sbin
  command -v depmod >/dev/null || skip "depmod (kmod) is missing and could not be installed"
  for t in apt-get apt-cache dpkg ldd ldconfig gzip; do
    command -v "$t" >/dev/null || skip "$t is missing: the lab needs a Debian host"
  done
}

# ------------------------------------------------------------- Debian pieces
XEN_PKGS=(xen-hypervisor-4.17-amd64 xen-utils-4.17 xen-utils-common xenstore-utils
  libxenmisc4.17 libxencall1 libxenevtchn1 libxenforeignmemory1 libxengnttab1 libxenstore4
  libxentoollog1 libxenhypfs1 libxendevicemodel1 libxentoolcore1 libyajl2 busybox-static)

kernel_package() {
  apt-cache depends linux-image-amd64 2>/dev/null |
    sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*\)$/\1/p' | head -1
}

# fetch: sets ROOT and KVER. Downloads only what the cache lacks.
fetch() {
  local kpkg
  kpkg=$(kernel_package)
  if [[ -z $kpkg ]]; then
    log "apt has no linux-image-amd64 candidate; running apt-get update"
    apt-get update -q >"$OUT/apt-update.log" 2>&1 || skip "apt-get update failed (see $OUT/apt-update.log)"
    kpkg=$(kernel_package)
    [[ -n $kpkg ]] || skip "cannot discover the kernel: apt-cache depends linux-image-amd64 names none"
  fi
  KVER=${kpkg#linux-image-}
  ROOT=$CACHE/root
  local want="$kpkg ${XEN_PKGS[*]}"
  if [[ -f $ROOT/.lab-stamp && $(cat "$ROOT/.lab-stamp") == "$want" && -f $CACHE/xen.elf ]]; then
    log "Debian pieces cached (kernel $KVER): $CACHE"
    return 0
  fi
  mkdir -p "$CACHE/debs"
  local need=() p
  for p in $want; do
    compgen -G "$CACHE/debs/${p}_*.deb" >/dev/null || need+=("$p")
  done
  if [[ ${#need[@]} -gt 0 ]]; then
    log "downloading ${#need[@]} packages into $CACHE/debs (kernel $KVER)"
    if ! (cd "$CACHE/debs" && apt-get download -q "${need[@]}") >"$OUT/apt-download.log" 2>&1; then
      apt-get update -q >>"$OUT/apt-download.log" 2>&1 || true
      (cd "$CACHE/debs" && apt-get download -q "${need[@]}") >>"$OUT/apt-download.log" 2>&1 ||
        skip "cannot fetch the Xen/kernel packages (apt-get download: see $OUT/apt-download.log)"
    fi
  fi
  log "unpacking into $ROOT"
  rm -rf "$ROOT"
  mkdir -p "$ROOT"
  for p in $want; do
    local deb
    deb=$(compgen -G "$CACHE/debs/${p}_*.deb" | sort | tail -1)
    dpkg -x "$deb" "$ROOT"
  done
  # The kernel .deb ships no modules.dep.
  depmod -b "$ROOT" -a "$KVER"
  # qemu's multiboot loader boots the uncompressed (ELF32) Xen image.
  zcat "$ROOT"/boot/xen-4.17-amd64.gz >"$CACHE/xen.elf.tmp"
  mv "$CACHE/xen.elf.tmp" "$CACHE/xen.elf"
  echo "$want" >"$ROOT/.lab-stamp"
}

# ------------------------------------------------------------ initramfs images
LIBDIR=usr/lib/x86_64-linux-gnu

# copy_elf STAGE SRC DEST: one ELF (debug info stripped) and its libraries.
copy_elf() {
  local st=$1 src=$2 dst=$3 lib a b c
  mkdir -p "$st/$(dirname "$dst")"
  if ! objcopy --strip-debug "$src" "$st/$dst" 2>/dev/null; then cp -L "$src" "$st/$dst"; fi
  chmod 755 "$st/$dst"
  while read -r a b c _; do
    lib=""
    if [[ $b == "=>" && ${c:0:1} == / ]]; then
      lib=$c
    elif [[ ${a:0:1} == / ]]; then
      lib=$a
    fi
    [[ -n $lib ]] || continue
    if [[ $lib == */ld-linux-x86-64.so.2 ]]; then
      mkdir -p "$st/lib64"
      [[ -e $st/lib64/ld-linux-x86-64.so.2 ]] || cp -L "$lib" "$st/lib64/ld-linux-x86-64.so.2"
    elif [[ ! -e $st/$LIBDIR/$(basename "$lib") ]]; then
      mkdir -p "$st/$LIBDIR"
      if ! objcopy --strip-debug "$lib" "$st/$LIBDIR/$(basename "$lib")" 2>/dev/null; then
        cp -L "$lib" "$st/$LIBDIR/$(basename "$lib")"
      fi
    fi
  done < <(LD_LIBRARY_PATH=$ROOT/$LIBDIR:$ROOT/usr/lib/xen-4.17/lib/x86_64-linux-gnu ldd "$src")
}

base_stage() { # base_stage STAGE EXTRA_MODULES...
  local st=$1 a m line f files=()
  shift
  rm -rf "$st"
  mkdir -p "$st"/{bin,sbin,usr/bin,usr/sbin,usr/lib,etc,proc,sys,dev,run,tmp,var/lib,var/log,root}
  ln -s usr/lib "$st/lib"
  ln -s ../run "$st/var/run"
  cp "$ROOT/bin/busybox" "$st/bin/busybox"
  for a in $("$st/bin/busybox" --list-full); do
    [[ -e $st/$a || -L $st/$a ]] || ln -s /bin/busybox "$st/$a"
  done
  local md=$ROOT/lib/modules/$KVER
  for m in xen-evtchn xen-gntdev xen-gntalloc xen-privcmd xenfs "$@"; do
    line=$(grep -E "/$m\.ko(\.xz)?:" "$md/modules.dep") || die "module $m not in $md/modules.dep"
    files+=("${line%%:*}")
    read -ra deps <<<"${line#*:}"
    files+=("${deps[@]}")
  done
  for f in "${files[@]}"; do
    mkdir -p "$st/usr/lib/modules/$KVER/$(dirname "$f")"
    cp "$md/$f" "$st/usr/lib/modules/$KVER/$f"
  done
  cp "$md"/modules.{order,builtin,builtin.modinfo} "$st/usr/lib/modules/$KVER/"
  depmod -b "$st" -a "$KVER"
  copy_elf "$st" "$ROOT/usr/bin/xenstore" usr/bin/xenstore
  for a in read write ls list rm exists watch chmod; do ln -sf xenstore "$st/usr/bin/xenstore-$a"; done
  copy_elf "$st" "$BUILD/tests/xen_platform_test" usr/bin/xen_platform_test
  for a in vnvram-guest-demo vnvram-lab-probe; do copy_elf "$st" "$BUILD/bin/$a" "usr/bin/$a"; done
}

finish_stage() { # finish_stage STAGE OUTFILE
  local st=$1 gcc_s
  # glibc dlopen()s libgcc_s.so.1 (pthread_cancel, unwinding); ldd does not list it.
  gcc_s=$(ldconfig -p | sed -n 's/^\s*libgcc_s.so.1 (libc6,x86-64) => //p' | head -1)
  [[ -n $gcc_s ]] || gcc_s=/lib/x86_64-linux-gnu/libgcc_s.so.1
  cp -L "$gcc_s" "$st/$LIBDIR/libgcc_s.so.1"
  printf '/%s\n/usr/lib/xen-4.17/lib/x86_64-linux-gnu\n' "$LIBDIR" >"$st/etc/ld.so.conf"
  ldconfig -r "$st"
  (cd "$st" && find . | cpio -o -H newc --quiet | gzip -1) >"$2.tmp"
  mv "$2.tmp" "$2"
}

build_images() {
  local w=$OUT/work st b
  mkdir -p "$w"
  st=$w/stage-guest
  base_stage "$st"
  install -m 755 "$LAB_DIR/guest-init.sh" "$st/init"
  finish_stage "$st" "$w/guest-initrd.cpio.gz"

  st=$w/stage-dom0
  base_stage "$st" virtio_pci virtio_blk
  local xb=usr/lib/xen-4.17/bin
  for b in xl xenstored xenconsoled xen-init-dom0 libxl-save-helper; do
    copy_elf "$st" "$ROOT/$xb/$b" "$xb/$b"
  done
  for b in vnvramd nvram-tool vnvram-schema-check; do
    copy_elf "$st" "$BUILD/bin/$b" "usr/bin/$b"
  done
  mkdir -p "$st/etc/xen" "$st/guest"
  cp -a "$ROOT/etc/xen/xl.conf" "$ROOT/etc/xen/scripts" "$st/etc/xen/"
  cp "$ROOT/boot/vmlinuz-$KVER" "$st/guest/vmlinuz"
  cp "$w/guest-initrd.cpio.gz" "$st/guest/initrd.cpio.gz"
  # Debugging aid: a library dom0 preloads into vnvramd (e.g. one that
  # prints a backtrace on SIGSEGV/SIGABRT).
  if [[ -n ${VNVRAM_LAB_PRELOAD:-} ]]; then
    cp "$VNVRAM_LAB_PRELOAD" "$st/usr/lib/vnvramd-preload.so"
  fi
  install -m 755 "$LAB_DIR/dom0-init.sh" "$st/init"
  finish_stage "$st" "$w/dom0-initrd.cpio.gz"
  log "images: dom0 $(du -h "$w/dom0-initrd.cpio.gz" | cut -f1), guest $(du -h "$w/guest-initrd.cpio.gz" | cut -f1)"
}

# -------------------------------------------------------------------- boot
SERIAL=$OUT/serial.log

boot() {
  # gnttab_max_frames: dom0 grants a 64 MiB region (16384 pages) plus its
  # page directory; 128 frames = 65536 v1 grants leaves room for more.
  local xencmd="console=com1 com1=115200,8n1 dom0_mem=1024M,max:1024M dom0_max_vcpus=2"
  xencmd+=" loglvl=all guest_loglvl=all smap=0 smep=0 gnttab_max_frames=128"
  # dom0 stops waiting at vnvlab_deadline (its uptime), leaving time for
  # the boot (up to 60 s under load) and for writing the logs.
  local dom0cmd="console=hvc0 earlyprintk=xen rdinit=/init loglevel=4"
  dom0cmd+=" vnvlab_deadline=$((QEMU_TIMEOUT - 75))"
  # shellcheck disable=SC2054 # commas belong to qemu's option syntax
  local qemu=(qemu-system-x86_64 -machine q35 -accel tcg,thread=multi -m 2048 -smp 2 -cpu "$QEMU_CPU"
    -nographic -serial mon:stdio -no-reboot -net none
    -drive "file=$OUT/work/results.img,format=raw,if=none,id=results"
    -device virtio-blk-pci,drive=results
    -kernel "$CACHE/xen.elf" -append "$xencmd"
    -initrd "$ROOT/boot/vmlinuz-$KVER ${dom0cmd//,/,,},$OUT/work/dom0-initrd.cpio.gz")
  {
    printf 'qemu argv:'
    printf " '%s'" "${qemu[@]}"
    echo
  } >"$OUT/qemu-cmdline.txt"
  log "booting Xen + dom0 under qemu TCG (limit ${QEMU_TIMEOUT}s); serial log: $SERIAL"
  local t0 rc=0 line now
  # dom0 writes its logs as a tar onto this disk at the end.
  rm -f "$OUT/work/results.img"
  truncate -s 64M "$OUT/work/results.img"
  t0=${EPOCHREALTIME/./}
  : >"$SERIAL"
  # Every line gets the host time since qemu started; lab markers are also
  # shown live.
  set +e
  timeout -k 10 "$QEMU_TIMEOUT" "${qemu[@]}" </dev/null 2>&1 | {
    while IFS= read -r line; do
      line=${line%$'\r'}
      now=$(((${EPOCHREALTIME/./} - t0) / 10000))
      printf '[%4d.%02d] %s\n' $((now / 100)) $((now % 100)) "$line" >>"$SERIAL"
      if [[ $line == VNVRAM-LAB:* ]]; then
        printf '[qemu %4d.%02ds] %s\n' $((now / 100)) $((now % 100)) "${line#VNVRAM-LAB: }"
      fi
    done
  }
  rc=${PIPESTATUS[0]}
  set -e
  QEMU_SECONDS=$(((${EPOCHREALTIME/./} - t0) / 1000000))
  echo "qemu exit: $rc after ${QEMU_SECONDS}s" >>"$SERIAL"
  QEMU_RC=$rc
}

# --------------------------------------------------------------- results
# Files dom0 printed between VNVRAM-LAB-FILE-BEGIN/END markers go to OUT/dom0/.
collect() {
  rm -rf "$OUT/dom0"
  mkdir -p "$OUT/dom0"
  awk -v dir="$OUT/dom0" '
    { sub(/^\[ *[0-9]+\.[0-9]+\] /, "") }
    /^VNVRAM-LAB-FILE-BEGIN / { f = dir "/" $2; printf "" > f; next }
    /^VNVRAM-LAB-FILE-END / { if (f != "") close(f); f = ""; next }
    f != "" && /^\|/ { print substr($0, 2) >> f }
  ' "$SERIAL"
  tar -xf "$OUT/work/results.img" -C "$OUT/dom0" 2>/dev/null || true
}

report() {
  local failed=0 s line
  echo "== xen lab results (logs: $OUT) =="
  for s in "${SCENARIOS[@]}"; do
    line=$(grep -a -m1 "VNVRAM-LAB: scenario $s " "$SERIAL" | sed 's/^\[[ 0-9.]*\] VNVRAM-LAB: scenario //') || true
    if [[ -z $line ]]; then
      echo "  $s: NOT REPORTED"
      failed=1
    else
      echo "  $line"
      [[ $line == "$s PASS"* ]] || failed=1
    fi
  done
  # Anything else dom0 reported as failed.
  if grep -a "VNVRAM-LAB: scenario .* FAIL" "$SERIAL" >/dev/null; then failed=1; fi
  echo "== timings =="
  local boot
  boot=$(grep -a -m1 "VNVRAM-LAB: dom0-init" "$SERIAL" | sed -n 's/^\[ *\([0-9.]*\)\].*/\1/p') || true
  echo "  boot (qemu start to dom0 /init): ${boot:-?} s"
  grep -a "VNVRAM-LAB: timing " "$SERIAL" | sed 's/^\[ *\([0-9.]*\)\] VNVRAM-LAB: timing /  /' || true
  echo "  qemu run: ${QEMU_SECONDS}s (exit $QEMU_RC); whole lab: $((($(date +%s%N) - T_START) / 1000000000))s"
  if ! grep -aq "VNVRAM-LAB: done" "$SERIAL"; then
    echo "dom0 did not finish (no 'done' marker; qemu exit $QEMU_RC; timeout ${QEMU_TIMEOUT}s)"
    failed=1
  fi
  if [[ $failed -ne 0 ]]; then
    echo "== log tails =="
    for f in "$OUT"/dom0/*; do
      [[ -f $f ]] || continue
      echo "--- $f (last 25 lines)"
      tail -n 25 "$f"
    done
    echo "--- $SERIAL (last 40 lines)"
    tail -n 40 "$SERIAL"
    echo "FAIL: xen_lab"
    return 1
  fi
  echo "PASS: xen_lab"
}

main() {
  ensure_tools
  local b
  for b in bin/vnvramd bin/nvram-tool bin/vnvram-guest-demo bin/vnvram-schema-check \
    bin/vnvram-lab-probe tests/xen_platform_test; do
    [[ -x $BUILD/$b ]] || die "$BUILD/$b is missing: build the project first (make lab builds it)"
  done
  fetch
  build_images
  boot
  collect
  report
}

main
