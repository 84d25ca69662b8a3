# shellcheck shell=sh
# ext4-guest.sh - the guest side of the lab's ext4 scenario (issue 8),
# sourced by guest-init.sh for the roles ext4-run and ext4-verify. It is
# not in the guest image itself: it comes with the ext4 overlay that
# run-lab.sh builds and dom0 appends to the ext4 guests' image. Uses
# guest-init.sh's helpers (say, put, wait_key, now, STEP). The dom0 side
# and the scenario are described in tests/lab/ext4-journal.sh.
#
# Devices: xvda and xvdb are xen-blkfront disks; vnvram device 0 (16 MiB)
# is exported by vnvram-frontd over NBD on a Unix socket and attached by
# nbd-client as /dev/nbd0, the external journal.
#
# Reports (data/lab-*): ext4-setup (timings of the steps), ext4-internal
# and ext4-external (each filesystem's timed total over the interleaved
# rounds), ext4-synced (the crash run's durable count, written by
# vnvram-lab-fsload), ext4-replay and result.

EXT4_FILES=60
EXT4_ROUNDS=6
EXT4_MAX=2000
for kv in $CMDLINE; do
  case $kv in
    vnvlab_ext4_files=*) EXT4_FILES=${kv#*=} ;;
    vnvlab_ext4_rounds=*) EXT4_ROUNDS=${kv#*=} ;;
    vnvlab_ext4_max=*) EXT4_MAX=${kv#*=} ;;
  esac
done
# The real tools by their paths: this busybox runs its own applets (its
# mke2fs among them) before anything on PATH, even through timeout.
MKE2FS=/sbin/mke2fs
MKFS_EXT4=/sbin/mkfs.ext4
E2FSCK=/sbin/e2fsck
NBD_CLIENT=/sbin/nbd-client
EXT4_SOCK=/run/vnvram-frontd.sock
EXT4_READY=/run/vnvram-frontd.ready
# mke2fs options (one -E each: mke2fs keeps only the last). The journal
# device and both filesystems: 4 KiB blocks (an external journal must
# have its filesystem's block size), no discard, journals not zeroed
# (fresh disks and a fresh volume are zeros already; zeroing 16 MiB costs
# seconds under TCG).
EXT4_MKFS_JDEV="-q -F -b 4096 -E nodiscard,lazy_journal_init=1"
# The filesystems also: 2048 inodes (plenty for the workload) with their
# tables written now, so no lazy init runs behind the timed workload (the
# string ends with its -E list, which the callers extend).
EXT4_MKFS_FS="-q -F -b 4096 -N 2048 -E nodiscard,lazy_journal_init=1,lazy_itable_init=0"
# UUIDs and directory hash seeds given, not drawn: this PV guest has no
# entropy source, and libuuid waits for the kernel's RNG (seconds each
# under TCG) when it has to draw them.
EXT4_UUID_JDEV=6a0e7b1c-5d2f-4e3a-9b8c-1d2e3f4a5b01
EXT4_UUID_EXT=6a0e7b1c-5d2f-4e3a-9b8c-1d2e3f4a5b02
EXT4_UUID_INT=6a0e7b1c-5d2f-4e3a-9b8c-1d2e3f4a5b03

# ext4_step NAME CMD...: runs CMD with a deadline, output to /tmp/NAME.out
# (shown on the console); its duration is added to EXT4_TIMES.
EXT4_TIMES=""
ext4_step() {
  _n=$1
  shift
  read -r _t0 _ </proc/uptime
  timeout 240 "$@" >"/tmp/$_n.out" 2>&1
  _rc=$?
  read -r _t1 _ </proc/uptime
  sed "s/^/  [$_n] /" "/tmp/$_n.out"
  EXT4_TIMES="$EXT4_TIMES $_n=$(awk -v a="$_t0" -v b="$_t1" 'BEGIN { printf "%.2f", b - a }')s"
  [ $_rc -eq 0 ] || say "$_n failed (rc $_rc): $*"
  return $_rc
}

# ext4_devices: the modules, then /dev/xvda and /dev/xvdb (blkfront probes
# them asynchronously; bounded wait).
ext4_devices() {
  read -r _t0 _ </proc/uptime
  for m in xen-blkfront nbd ext4 crc32c_generic; do
    modprobe "$m" || {
      EXT4_WHY="modprobe $m failed"
      return 1
    }
  done
  # e2fsprogs look for mounted filesystems in /etc/mtab.
  ln -sf /proc/self/mounts /etc/mtab
  mkdir -p /mnt/ext /mnt/int
  now
  _end=$((NOW + 60))
  while [ ! -b /dev/xvda ] || [ ! -b /dev/xvdb ]; do
    now
    if [ "$NOW" -ge "$_end" ]; then
      EXT4_WHY="no /dev/xvda and /dev/xvdb after 60 s: $(echo /sys/block/*)"
      return 1
    fi
    sleep 0.2
  done
  ext4_since devices "$_t0"
}

# ext4_since NAME T0: adds NAME=(uptime - T0)s to EXT4_TIMES.
ext4_since() {
  read -r _t1 _ </proc/uptime
  EXT4_TIMES="$EXT4_TIMES $1=$(awk -v a="$2" -v b="$_t1" 'BEGIN { printf "%.2f", b - a }')s"
}

# ext4_nbd: vnvram-frontd on vnvram device 0, then nbd-client attaches its
# export as /dev/nbd0 (4 KiB blocks). frontd's readiness is its ready file.
ext4_nbd() {
  read -r _t0 _ </proc/uptime
  rm -f "$EXT4_READY"
  vnvram-frontd --platform xen --devid 0 --socket "$EXT4_SOCK" --ready-file "$EXT4_READY" \
    --timeout-ms 60000 >/tmp/frontd.log 2>&1 &
  EXT4_FRONTD=$!
  now
  _end=$((NOW + 90))
  while [ ! -s "$EXT4_READY" ]; do
    now
    if ! kill -0 "$EXT4_FRONTD" 2>/dev/null || [ "$NOW" -ge "$_end" ]; then
      EXT4_WHY="vnvram-frontd not ready: $(tail -n 3 /tmp/frontd.log | tr '\n' ' ')"
      return 1
    fi
    sleep 0.2
  done
  ext4_since frontd "$_t0"
  say "$(cat "$EXT4_READY")"
  if ! ext4_step nbd-client "$NBD_CLIENT" -unix "$EXT4_SOCK" /dev/nbd0 -name vnvram \
    -block-size 4096 -timeout 120; then
    EXT4_WHY="nbd-client failed: $(tail -n 2 /tmp/nbd-client.out | tr '\n' ' ')"
    return 1
  fi
  _sz=$(cat /sys/block/nbd0/size 2>/dev/null)
  if [ -z "$_sz" ] || [ "$_sz" -eq 0 ]; then
    EXT4_WHY="/dev/nbd0 has no size after nbd-client"
    return 1
  fi
  say "/dev/nbd0: $((_sz / 2048)) MiB"
}

# ext4_timed: the timed workload on both filesystems in one process
# (vnvram-lab-fsload interleave): after a warm-up of 5 files on each, in
# EXT4_ROUNDS rounds, EXT4_FILES / EXT4_ROUNDS files on one, then on the
# other, the order alternating, so that a change of the build machine's
# load moves both alike. Each total goes to data/lab-ext4-internal and
# data/lab-ext4-external as "done files N fsyncs F bytes B elapsed-us T
# rounds R".
ext4_timed() {
  if ! ext4_step fsload-timed vnvram-lab-fsload interleave --dir /mnt/int/timed \
    --dir /mnt/ext/timed --count "$EXT4_FILES" --rounds "$EXT4_ROUNDS" --warmup 5; then
    put ext4-internal "FAIL $(tail -n 1 /tmp/fsload-timed.out)"
    return 1
  fi
  put ext4-internal "$(sed -n 's|^done /mnt/int/timed |done |p' /tmp/fsload-timed.out)"
  put ext4-external "$(sed -n 's|^done /mnt/ext/timed |done |p' /tmp/fsload-timed.out)"
}

ext4_fail() {
  put result "FAIL $*"
  say "FAIL $*"
}

ext4_run() {
  ext4_devices || {
    ext4_fail "$EXT4_WHY"
    return
  }
  # The baseline: ext4 with its internal journal (16 MiB, as the external
  # one) on xvdb.
  # shellcheck disable=SC2086 # EXT4_MKFS_* are lists of options
  if ! ext4_step mkfs-int "$MKFS_EXT4" $EXT4_MKFS_FS,hash_seed=$EXT4_UUID_INT -U "$EXT4_UUID_INT" \
    -J size=16 /dev/xvdb ||
    ! ext4_step mount-int mount -t ext4 /dev/xvdb /mnt/int; then
    ext4_fail "internal-journal filesystem on xvdb: $(tail -n 2 /tmp/mkfs-int.out /tmp/mount-int.out 2>/dev/null | tr '\n' ' ')"
    return
  fi
  # The external journal on vnvram: the journal device on /dev/nbd0, ext4
  # on xvda using it.
  ext4_nbd || {
    ext4_fail "$EXT4_WHY"
    return
  }
  # shellcheck disable=SC2086 # EXT4_MKFS_* are lists of options
  if ! ext4_step mkfs-journal "$MKE2FS" $EXT4_MKFS_JDEV -U "$EXT4_UUID_JDEV" -O journal_dev \
    -L vnvram-journal /dev/nbd0 ||
    ! ext4_step mkfs-ext "$MKFS_EXT4" $EXT4_MKFS_FS,hash_seed=$EXT4_UUID_EXT -U "$EXT4_UUID_EXT" \
    -J device=/dev/nbd0 /dev/xvda ||
    ! ext4_step mount-ext mount -t ext4 -o journal_path=/dev/nbd0 /dev/xvda /mnt/ext; then
    ext4_fail "external-journal filesystem: $(tail -n 2 /tmp/mkfs-journal.out /tmp/mkfs-ext.out /tmp/mount-ext.out 2>/dev/null | tr '\n' ' ')"
    return
  fi
  grep ' /mnt/' /proc/mounts
  ext4_timed || return
  ext4_step umount-int umount /mnt/int
  # Mounted again: the journal starts empty (the clean unmount checkpointed
  # it), so what the replay reads is the crash run's transactions.
  if ! ext4_step umount-ext umount /mnt/ext ||
    ! ext4_step remount-ext mount -t ext4 -o journal_path=/dev/nbd0 /dev/xvda /mnt/ext; then
    ext4_fail "remount of the external-journal filesystem: $(tail -n 2 /tmp/umount-ext.out /tmp/remount-ext.out 2>/dev/null | tr '\n' ' ')"
    return
  fi
  put ext4-setup "$EXT4_TIMES"
  dmesg | grep -E 'EXT4-fs|JBD2|nbd' | sed 's/^/  [dmesg] /'
  # The crash run: every durable file reported (data/lab-ext4-synced)
  # until dom0 destroys this guest. Ending by itself is a failure.
  say "crash workload: up to $EXT4_MAX files, each reported once durable"
  vnvram-lab-fsload --platform xen write --dir /mnt/ext/crash --count "$EXT4_MAX" \
    --report-key data/lab-ext4-synced >/tmp/fsload-crash.out 2>&1
  ext4_fail "the crash workload ended before dom0 destroyed the guest: $(tail -n 1 /tmp/fsload-crash.out)"
}

# ext4_sb_incompat DEV: the ext4 superblock's s_feature_incompat (offset
# 1024 + 0x60, little endian); bit 0x4 is needs_recovery.
ext4_sb_incompat() {
  od -An -tu4 -j 1120 -N 4 "$1" 2>/dev/null | tr -d ' '
}

ext4_verify() {
  if ! ext4_devices || ! ext4_nbd; then
    ext4_fail "$EXT4_WHY"
    return
  fi
  K=$(wait_key data/lab-ext4-expect 60) || {
    ext4_fail "no durable count from dom0"
    return
  }
  # The killed guest left the journal to replay: needs_recovery is set.
  INC=$(ext4_sb_incompat /dev/xvda)
  RECOVER=no
  [ -n "$INC" ] && [ $((INC & 4)) -ne 0 ] && RECOVER=yes
  if ! ext4_step mount-replay mount -t ext4 -o journal_path=/dev/nbd0 /dev/xvda /mnt/ext; then
    ext4_fail "mount with the journal on /dev/nbd0: $(tail -n 2 /tmp/mount-replay.out | tr '\n' ' '); dmesg: $(dmesg | grep -i -E 'ext4|jbd2' | tail -n 3 | tr '\n' ' ')"
    return
  fi
  REPLAY=$(dmesg | grep -m1 'EXT4-fs (xvda): recovery complete' | sed 's/^\[[ 0-9.]*\] //')
  dmesg | grep -E 'EXT4-fs|JBD2' | sed 's/^/  [dmesg] /'
  ext4_step verify-crash vnvram-lab-fsload verify --dir /mnt/ext/crash --count "$K"
  VC=$?
  ext4_step umount-ext umount /mnt/ext
  # e2fsck -n exits 0 only when it finds nothing to fix.
  ext4_step fsck "$E2FSCK" -f -n -j /dev/nbd0 /dev/xvda
  FSCK=$?
  put ext4-replay "needs_recovery before mount: $RECOVER; ${REPLAY:-no recovery message};$EXT4_TIMES"
  if [ $VC -ne 0 ]; then
    ext4_fail "after the replay: $(tail -n 1 /tmp/verify-crash.out)"
  elif [ "$RECOVER" != yes ] || [ -z "$REPLAY" ]; then
    ext4_fail "files intact but no journal replay seen (needs_recovery before mount: $RECOVER, incompat '$INC'; recovery message: '${REPLAY:-none}')"
  elif [ $FSCK -ne 0 ]; then
    ext4_fail "files intact but e2fsck -fn rc $FSCK: $(tail -n 3 /tmp/fsck.out | tr '\n' ' ')"
  else
    put result "PASS journal replayed from vnvram (needs_recovery was set; $REPLAY); all $K files reported durable intact ($(sed -n 's/^verified //p' /tmp/verify-crash.out)); e2fsck -fn clean"
  fi
}
