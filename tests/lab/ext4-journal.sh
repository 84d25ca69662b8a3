# shellcheck shell=sh
# ext4-journal.sh - the ext4 scenario of the single-VM Xen lab (issue 8),
# sourced by dom0-init.sh (installed as /lab/ext4-journal.sh in the dom0
# image); dom0-init.sh calls ext4_run after the hostile-fence scenario.
# Uses dom0-init.sh's helpers (mark, pass, fail, timing, info, wait_key,
# put, get_wait, attach, up, since, left, now, LOGS, STEP). The guest side
# is tests/lab/ext4-guest.sh. See docs/lab.md, "ext4 with its journal on
# vnvram".
#
#   scenario ext4-external-journal (vnvlab_ext4=1 on the kernel command
#   line: the build has vnvram-frontd and the image carries nbd-client and
#   e2fsprogs; else run-lab.sh reports it SKIPPED with the reason):
#   a PV guest gets two real Xen virtual block devices (xen-blkback in dom0
#   on loop devices over files in dom0's tmpfs: xvda, xvdb) and a 16 MiB
#   vnvram volume on device 0. It makes ext4 with its internal journal on
#   xvdb, runs vnvram-frontd and nbd-client (/dev/nbd0), makes an external
#   journal there (mke2fs -O journal_dev) and ext4 on xvda with it
#   (mkfs.ext4 -J device=/dev/nbd0), and times the fsync workload
#   (vnvram-lab-fsload) on both, in interleaved rounds. It then mounts
#   xvda again and starts the workload once more, reporting every durable
#   file in xenstore;
#   after EXT4_CRASH_AT of them dom0 pauses the guest, reads the count and
#   destroys it (xl destroy). A guest created again with the same disks and
#   volume mounts xvda with the journal on /dev/nbd0 (journal replay) and
#   must find every file reported durable, intact; e2fsck then finds the
#   filesystem clean. The two timings give the ratio, printed (not judged).

EXT4_ON=0
for kv in $CMDLINE; do
  case $kv in vnvlab_ext4=*) EXT4_ON=${kv#*=} ;; esac
done
EXT4_VOL=3e4f5a6b-7c8d-4e9f-8a1b-2c3d4e5f6a7b # the external journal's volume
EXT4_JSIZE=16M        # the journal volume: 4096 blocks of 4 KiB
EXT4_DISK_MB=64       # each virtual disk (a sparse file in dom0's tmpfs)
EXT4_FILES=60         # files of each timed workload (both filesystems)
EXT4_ROUNDS=6         # interleaved rounds they are written in
EXT4_CRASH_AT=30      # durable files reported before dom0 kills the guest
EXT4_CRASH_MAX=2000   # the killed workload's size (it never gets there)
EXT4_MEM=192          # MiB, each ext4 guest
EXT4_IMG=/tmp/ext4-initrd.cpio

# ext4_disks: xen-blkback and two loop devices over sparse files, and the
# hotplug script libxl runs for them. The stock `block` script needs bash;
# this dom0 has busybox only. The loop devices stay bound after a guest
# dies: its disks' contents are what the next guest finds.
ext4_disks() {
  modprobe loop || return 1
  modprobe xen-blkback || return 1
  for d in ext int; do
    truncate -s "${EXT4_DISK_MB}M" "/tmp/ext4-$d.img" || return 1
  done
  EXT4_LOOP_EXT=/dev/loop0
  EXT4_LOOP_INT=/dev/loop1
  losetup "$EXT4_LOOP_EXT" /tmp/ext4-ext.img || return 1
  losetup "$EXT4_LOOP_INT" /tmp/ext4-int.img || return 1
  cat >/etc/xen/scripts/block-lab <<'EOF'
#!/bin/sh
# block-lab: the lab's vbd hotplug script (written by ext4-journal.sh).
# libxl runs it in dom0 with "add" or "remove" and XENBUS_PATH (the vbd's
# backend directory, whose params is the block device). On add, the
# device's major:minor goes to physical-device (xen-blkback opens it) and
# hotplug-status says connected. Remove leaves the loop device bound.
PATH=/bin:/sbin:/usr/bin:/usr/sbin
echo "$(cut -d' ' -f1 /proc/uptime) block-lab $1 $XENBUS_PATH" >>/var/log/xen/block-lab.log
case $1 in
  add)
    dev=$(xenstore-read "$XENBUS_PATH/params") || exit 1
    [ -b "$dev" ] || { xenstore-write "$XENBUS_PATH/hotplug-error" "$dev is not a block device"; exit 1; }
    mm=$(stat -L -c '%t:%T' "$dev") || exit 1
    echo "  $dev -> physical-device $mm" >>/var/log/xen/block-lab.log
    xenstore-write "$XENBUS_PATH/physical-device" "$mm" &&
      xenstore-write "$XENBUS_PATH/hotplug-status" connected
    ;;
esac
EOF
  chmod 755 /etc/xen/scripts/block-lab
  # The ext4 guests' image: the guest image, then the overlay run-lab.sh
  # built (nbd, ext4, xen-blkfront modules, nbd-client, e2fsprogs,
  # vnvram-frontd, the workload); the kernel unpacks both archives in
  # turn, the later file winning. Uncompressed: libxc inflates a gzip
  # ramdisk in dom0 at every xl create (slow under TCG) and handles only
  # one gzip member, where the two archives would be two.
  { zcat /guest/initrd.cpio.gz && zcat /guest/ext4-overlay.cpio.gz; } >"$EXT4_IMG"
}

# ext4_create NAME ROLE: xl create -p with the two disks; prints the domid.
ext4_create() {
  cat >"/tmp/$1.cfg" <<EOF
name = "$1"
type = "pv"
kernel = "/guest/kernel"
ramdisk = "$EXT4_IMG"
extra = "console=hvc0 rdinit=/init loglevel=4 vnvlab_role=$2 vnvlab_ext4_files=$EXT4_FILES vnvlab_ext4_rounds=$EXT4_ROUNDS vnvlab_ext4_max=$EXT4_CRASH_MAX"
memory = $EXT4_MEM
vcpus = 1
disk = [ "format=raw, vdev=xvda, access=rw, backendtype=phy, script=block-lab, target=$EXT4_LOOP_EXT",
         "format=raw, vdev=xvdb, access=rw, backendtype=phy, script=block-lab, target=$EXT4_LOOP_INT" ]
on_crash = "preserve"
EOF
  xl create -p "/tmp/$1.cfg" >"/tmp/xl-create-$1.out" 2>&1 || {
    info "xl create $1 failed: $(tail -n 5 "/tmp/xl-create-$1.out")" >&2
    return 1
  }
  xl domid "$1"
}

# ext4_gone NAME DOMID: destroys the guest as a toolstack would (its vnvram
# backend directory removed, see dom0-init.sh) and waits until xen-blkback
# has let its disks go (their backend devices gone from sysfs), so the next
# guest's blkback can open the loop devices again.
ext4_gone() {
  xl destroy "$1" 2>/dev/null
  xenstore-rm "/local/domain/0/backend/vnvram/$2" 2>/dev/null
  now
  _end=$((NOW + 60))
  while ls -d /sys/bus/xen-backend/devices/vbd-"$2"-* >/dev/null 2>&1; do
    now
    [ "$NOW" -lt "$_end" ] || return 1
    sleep 0.3
  done
}

# ext4_get DOMID KEY SECONDS: waits for the guest's data/lab-KEY and prints
# it; 1 (printing the guest's result, when it gave up) when its
# data/lab-result came first or the deadline passed.
ext4_get() {
  now
  _l=$(left)
  _s=$3
  [ "$_s" -le "$_l" ] || _s=$_l
  _end=$((NOW + _s))
  while :; do
    if _v=$(xenstore-read "/local/domain/$1/data/lab-$2" 2>/dev/null); then
      echo "$_v"
      return 0
    fi
    if _v=$(xenstore-read "/local/domain/$1/data/lab-result" 2>/dev/null); then
      echo "no $2: $_v"
      return 1
    fi
    now
    if [ "$NOW" -ge "$_end" ]; then
      echo "no $2 within ${_s}s"
      return 1
    fi
    sleep 0.3
  done
}

# ext4_wait_synced DOMID N: until the guest reports N durable files in its
# crash workload; 1 when its workload ended (data/lab-result) or the
# deadline passed.
ext4_wait_synced() {
  now
  _l=$(left)
  _s=$STEP
  [ "$_s" -le "$_l" ] || _s=$_l
  _end=$((NOW + _s))
  while :; do
    _v=$(xenstore-read "/local/domain/$1/data/lab-ext4-synced" 2>/dev/null) || _v=0
    [ "$_v" -ge "$2" ] 2>/dev/null && return 0
    xenstore-exists "/local/domain/$1/data/lab-result" 2>/dev/null && return 1
    now
    [ "$NOW" -lt "$_end" ] || return 1
    sleep 0.2
  done
}

# ext4_us LINE: the elapsed-us of a workload's "done ..." line.
ext4_us() { echo "$1" | sed -n 's/.*elapsed-us \([0-9]*\).*/\1/p'; }

ext4_run() {
  S=ext4-external-journal
  [ "$EXT4_ON" = 1 ] || return 0
  T0=$(up)
  # Memory for the ext4 guests: the earlier guests go (as dd_main does).
  for g in lab-writer2 lab-hostile; do
    _id=$(xl domid "$g" 2>/dev/null) || continue
    xl destroy "$g"
    xenstore-rm "/local/domain/0/backend/vnvram/$_id" 2>/dev/null
  done
  T=$(up)
  if ! ext4_disks >/tmp/ext4-disks.out 2>&1; then
    fail $S "dom0 disk setup (loop, xen-blkback, block-lab, image): $(tail -n 3 /tmp/ext4-disks.out | tr '\n' ' ')"
    return 1
  fi
  timing ext4-dom0-setup "$(since "$T")s (loop devices, xen-blkback, the ext4 guests' image: $(du -k "$EXT4_IMG" | cut -f1) KiB)"
  T=$(up)
  G1=$(ext4_create lab-ext4-run ext4-run) || {
    fail $S "xl create lab-ext4-run (two vbds) failed: $(tail -n 3 /tmp/xl-create-lab-ext4-run.out | tr '\n' ' ')"
    return 1
  }
  timing ext4-create "$(since "$T")s (xl create -p with two vbds on loop devices, dom$G1; free memory $(xl info free_memory 2>/dev/null) MiB)"
  if ! attach "$G1" 0 "$EXT4_JSIZE" "$EXT4_VOL"; then
    fail $S "attach $EXT4_JSIZE to dom$G1 failed: $(tail -n 2 "$LOGS/nvram-tool.log" | tr '\n' ' ')"
    ext4_gone lab-ext4-run "$G1"
    return 1
  fi
  xl unpause lab-ext4-run
  # Deadlines: the guest boots, makes the filesystems and runs the workload.
  INT=$(ext4_get "$G1" ext4-internal 300)
  case $INT in done*) ;; *)
    fail $S "guest dom$G1, internal-journal run: $INT"
    ext4_gone lab-ext4-run "$G1"
    return 1
    ;;
  esac
  EXT=$(ext4_get "$G1" ext4-external 300)
  case $EXT in done*) ;; *)
    fail $S "guest dom$G1, external-journal run: $EXT"
    ext4_gone lab-ext4-run "$G1"
    return 1
    ;;
  esac
  # The kill: once the guest has reported EXT4_CRASH_AT durable files. The
  # guest is paused first, so the count read is the last it reported
  # (each report is written before the next file is begun), then destroyed
  # without a chance to write anything back.
  if ! ext4_wait_synced "$G1" "$EXT4_CRASH_AT"; then
    fail $S "guest dom$G1 never reported $EXT4_CRASH_AT durable files (at $(xenstore-read "/local/domain/$G1/data/lab-ext4-synced" 2>&1)): $(xenstore-read "/local/domain/$G1/data/lab-result" 2>/dev/null)"
    ext4_gone lab-ext4-run "$G1"
    return 1
  fi
  xl pause lab-ext4-run
  SYNCED=$(xenstore-read "/local/domain/$G1/data/lab-ext4-synced")
  timing ext4-setup "$(xenstore-read "/local/domain/$G1/data/lab-ext4-setup" 2>/dev/null)"
  T=$(up)
  if ! ext4_gone lab-ext4-run "$G1"; then
    fail $S "after xl destroy of dom$G1 its vbds never went from sysfs"
    return 1
  fi
  i=0
  while [ ! -f "/var/lib/vnvram/$EXT4_VOL.vault" ] && [ $i -lt 200 ]; do sleep 0.3; i=$((i + 1)); done
  timing ext4-destroy "$(since "$T")s (dom$G1 paused at $SYNCED durable files, destroyed; vbds released, journal volume vaulted)"

  G2=$(ext4_create lab-ext4-verify ext4-verify) || {
    fail $S "xl create lab-ext4-verify failed"
    return 1
  }
  if ! attach "$G2" 0 "$EXT4_JSIZE" "$EXT4_VOL"; then
    fail $S "re-attach $EXT4_JSIZE to dom$G2 failed: $(tail -n 2 "$LOGS/nvram-tool.log" | tr '\n' ' ')"
    ext4_gone lab-ext4-verify "$G2"
    return 1
  fi
  put "$G2" ext4-expect "$SYNCED"
  T=$(up)
  xl unpause lab-ext4-verify
  R=$(get_wait "$G2" result "$STEP") || R="no result within ${STEP}s"
  timing ext4-verify "$(since "$T")s (unpause to result, guest boot included; $(xenstore-read "/local/domain/$G2/data/lab-ext4-replay" 2>/dev/null))"
  ext4_gone lab-ext4-verify "$G2"

  # The ratio: the same workload, external journal on vnvram over NBD
  # against the internal journal on the virtual disk.
  EUS=$(ext4_us "$EXT")
  IUS=$(ext4_us "$INT")
  RATIO=$(awk -v e="$EUS" -v i="$IUS" 'BEGIN { if (i > 0) printf "%.2f", e / i; else print "?" }')
  timing ext4-fsync-workload "external journal on vnvram $(awk -v u="$EUS" 'BEGIN { printf "%.2f", u / 1e6 }')s / internal journal on the disk $(awk -v u="$IUS" 'BEGIN { printf "%.2f", u / 1e6 }')s = ratio $RATIO ($EXT4_FILES files each, written in $EXT4_ROUNDS interleaved rounds; external: ${EXT#done }; internal: ${INT#done })"
  timing ext4-total "$(since "$T0")s (ext4 scenario)"
  case $R in
    PASS*) pass $S "dom$G1 destroyed after $SYNCED files reported durable; dom$G2: ${R#PASS }; time ratio external/internal journal $RATIO" ;;
    *) fail $S "dom$G1 destroyed after $SYNCED files reported durable; dom$G2: $R" ;;
  esac
}
