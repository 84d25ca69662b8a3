#!/bin/sh
# dom0-init.sh - PID 1 of the lab's PV dom0 (busybox initramfs built by
# run-lab.sh). Brings up the Xen toolstack, runs the lab scenarios with the
# project's binaries, prints the results as markers on the console (hvc0,
# which Xen copies to the serial line the host reads), prints the logs
# between file markers, and powers off.
#
# Markers (parsed by run-lab.sh):
#   VNVRAM-LAB: dom0-init                      (boot timing)
#   VNVRAM-LAB: scenario NAME PASS|FAIL detail
#   VNVRAM-LAB: timing NAME VALUE
#   VNVRAM-LAB: done
#   VNVRAM-LAB-FILE-BEGIN name / |line... / VNVRAM-LAB-FILE-END name
#
# With vnvlab_mode=pair on the kernel command line this dom0 is one of the
# two hosts of the two-host lab: after the toolstack it runs
# tests/lab/two-host.sh (/lab/two-host.sh) instead of the scenarios below;
# with vnvlab_mode=bench it runs the lab-bench benchmark
# (tests/lab/bench.sh, /lab/bench.sh) instead.
# The single-VM scenarios end with tests/lab/toolstack.sh
# (/lab/toolstack.sh: nvram-tool create and watch, issue 9),
# tests/lab/ext4-journal.sh
# (/lab/ext4-journal.sh: ext4 with its journal on vnvram, issue 8) and
# tests/lab/driver-domain.sh (/lab/driver-domain.sh): a driver domain
# serving a guest, and multipath.
#
# Guests report through their own xenstore directory
# (/local/domain/G/data/lab-*); dom0 hands them values and go signals the
# same way. Every wait has a deadline.
export PATH=/bin:/sbin:/usr/bin:/usr/sbin:/usr/lib/xen-4.17/bin

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
mkdir -p /run/xen /run/xenstored /run/lock /var/lib/xen /var/lib/xenstored \
  /var/log/xen/console /var/log/vnvram /var/lib/vnvram
echo "VNVRAM-LAB: dom0-init uptime=$(cut -d' ' -f1 /proc/uptime)"

# ------------------------------------------------------------------ helpers
RECORDS=300         # records the writer persists before the guest is destroyed
MORE=100            # records the re-created guest adds after the hostile attack
BIG=64M             # the writer's volume
VOL_A=6a1e5d2c-0b7f-4c3e-9d8a-5f4e3d2c1b0a
VOL_B=0b5e1a77-3c2d-4e1f-8a9b-1c2d3e4f5a6b
VOL_C=7c6d5e4f-3a2b-4c1d-9e8f-0a1b2c3d4e5f
STEP=150            # seconds: deadline of any one wait
LOGS=/var/log/vnvram

mark() { echo "VNVRAM-LAB: $*"; }
up() { cut -d' ' -f1 /proc/uptime; }
since() { awk -v a="$1" -v b="$(up)" 'BEGIN { printf "%.2f", b - a }'; }
pass() { mark "scenario $1 PASS $2"; }
fail() { mark "scenario $1 FAIL $2"; }
timing() { mark "timing $1 $2"; }
info() { echo "lab: $*"; }

# now: whole seconds of uptime into NOW, with shell builtins only (no
# fork, no clock call: `date` has been seen to crash under TCG here).
now() {
  read -r NOW _ </proc/uptime
  NOW=${NOW%.*}
}

# The whole run's deadline in dom0 uptime seconds (run-lab.sh passes
# vnvlab_deadline=, the qemu limit minus boot and log-collection margins):
# no wait goes past it, so the logs always come out.
DEADLINE=280
MODE=single         # single: the scenarios below; pair: two-host.sh (a VM of two); bench: bench.sh
read -r CMDLINE </proc/cmdline
for kv in $CMDLINE; do
  case $kv in
    vnvlab_deadline=*) DEADLINE=${kv#*=} ;;
    vnvlab_mode=*) MODE=${kv#*=} ;;
  esac
done
left() { awk -v d="$DEADLINE" -v u="$(up)" 'BEGIN { l = int(d - u); print (l > 0 ? l : 0) }'; }

# wait_key PATH SECONDS [VALUE-PREFIX]: waits until PATH exists (and starts
# with VALUE-PREFIX); prints the value; 1 on timeout (SECONDS, or the
# run's deadline when that comes first).
wait_key() {
  _l=$(left)
  _s=$2
  [ "$_s" -le "$_l" ] || _s=$_l
  now
  _end=$((NOW + _s))
  while :; do
    if _v=$(xenstore-read "$1" 2>/dev/null); then
      case $_v in "${3:-}"*) echo "$_v"; return 0 ;; esac
    fi
    now
    [ "$NOW" -lt "$_end" ] || return 1
    sleep 0.3
  done
}

# put DOMID KEY VALUE: dom0 writes into the guest's data/ directory, owned
# by the guest so it can read (and remove) it.
put() {
  xenstore-write "/local/domain/$1/data/lab-$2" "$3" &&
    xenstore-chmod "/local/domain/$1/data/lab-$2" "n$1"
}
get_wait() { wait_key "/local/domain/$1/data/lab-$2" "$3"; }

# dump NAME FILE: prints a file between file markers (run-lab.sh saves it).
dump() {
  [ -f "$2" ] || return 0
  echo "VNVRAM-LAB-FILE-BEGIN $1"
  sed 's/^/|/' "$2"
  echo "VNVRAM-LAB-FILE-END $1"
}

# save_logs: the logs as a tar on the results disk (or their tails on the
# console). finish calls it; the two-host lab's host a calls it before it
# asks to be killed.
save_logs() {
  timeout 10 xl list >/tmp/xl-list.out 2>&1
  dmesg >/tmp/dmesg.out 2>&1
  timeout 10 xenstore-ls -fp /local/domain >/tmp/xenstore-ls.out 2>&1
  mkdir -p /tmp/collect
  for f in "$LOGS"/*.log /tmp/*.out /tmp/*.cfg /var/log/xen/console/*.log /var/log/xen/*.log; do
    [ -f "$f" ] && cp "$f" /tmp/collect/
  done
  # The logs go to the results disk (a tar on /dev/vda, read by run-lab.sh);
  # without it, their tails go to the console.
  if [ -b /dev/vda ] && tar -cf /dev/vda -C /tmp/collect .; then
    sync
    info "logs written to the results disk"
  else
    for f in /tmp/collect/*; do
      tail -n 60 "$f" >/tmp/tail
      dump "$(basename "$f")" /tmp/tail
    done
  fi
}

finish() {
  # vnvramd, and the witness of the driver-domain lab (vnvramd --replica-only).
  for p in ${VNVRAMD_PID:-} ${WITNESS_PID:-}; do
    kill -0 "$p" 2>/dev/null || continue
    kill -TERM "$p"
    i=0
    while kill -0 "$p" 2>/dev/null && [ $i -lt 60 ]; do sleep 0.5; i=$((i + 1)); done
    info "vnvramd (pid $p) stopped"
  done
  save_logs
  mark "done uptime=$(up)"
  poweroff -f
  sleep 30
}

# create NAME ROLE MEMORY_MB: xl create -p (paused); prints the domid.
create() {
  info "creating $1; dom0 memory (MiB): $(free -m | awk '/^Mem:/ { print "used " $3 ", free " $4 }')" >&2
  cat >"/tmp/$1.cfg" <<EOF
name = "$1"
type = "pv"
kernel = "/guest/kernel"
ramdisk = "/guest/initrd.cpio.gz"
extra = "console=hvc0 rdinit=/init loglevel=4 vnvlab_role=$2 vnvlab_records=$RECORDS vnvlab_more=$MORE"
memory = $3
vcpus = 1
on_crash = "preserve"
EOF
  xl create -p "/tmp/$1.cfg" >"/tmp/xl-create-$1.out" 2>&1 || {
    info "xl create $1 failed: $(tail -n 5 "/tmp/xl-create-$1.out")"
    return 1
  }
  xl domid "$1"
}

# attach DOMID DEVID SIZE VOLUME: nvram-tool attach, then waits for the
# backend's InitWait (region allocated, granted and published).
attach() {
  nvram-tool --platform xen attach "$1" --backend 0 --devid "$2" --size "$3" --volume "$4" \
    >>"$LOGS/nvram-tool.log" 2>&1 || return 1
  wait_key "/local/domain/0/backend/vnvram/$1/$2/state" 60 2 >/dev/null
}

# ------------------------------------------------------------- the toolstack
for m in xen-evtchn xen-gntdev xen-privcmd xenfs; do modprobe "$m" || info "modprobe $m failed"; done
# The results disk (logs go there at the end).
modprobe virtio_pci
modprobe virtio_blk || info "no results disk driver"
# gntalloc's limit is on all the pages dom0 shares: a 64 MiB region is 16384
# pages + 16 directory pages, plus the other volumes (default limit 1024).
modprobe xen-gntalloc limit=65536 || info "modprobe xen-gntalloc failed"
info "gntalloc limit $(cat /sys/module/xen_gntalloc/parameters/limit 2>/dev/null)"
mount -t xenfs xenfs /proc/xen
xenstored --pid-file /run/xenstored.pid
i=0
while [ ! -S /run/xenstored/socket ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
xen-init-dom0 >/dev/null || info "xen-init-dom0 failed"
xenconsoled --pid-file=/run/xen/xenconsoled.pid --log=guest --log-dir=/var/log/xen/console
T_TOOLSTACK=$(up)
timing toolstack-ready "${T_TOOLSTACK}s (dom0 uptime)"

# One VM of the two-host lab: its own scenarios (tests/lab/two-host.sh).
if [ "$MODE" = pair ]; then
  # shellcheck source=two-host.sh
  . /lab/two-host.sh
  finish
fi

# The lab-bench run (run-lab.sh --part bench, tests/lab/bench.sh): only
# the benchmark, none of the scenarios below.
if [ "$MODE" = bench ]; then
  # shellcheck source=bench.sh
  . /lab/bench.sh
  bench_main
  finish
fi

# ------------------------------------------- 1. platform tests, dom0 side
timeout 120 xen_platform_test --log_level=test_suite --report_level=short \
  >/tmp/platform-dom0.out 2>&1
RC=$?
if [ $RC -eq 0 ] && grep -q '^PASS: xen_platform_test' /tmp/platform-dom0.out; then
  pass platform-dom0 "xen_platform_test in dom0"
else
  fail platform-dom0 "xen_platform_test rc=$RC: $(tail -n 3 /tmp/platform-dom0.out | tr '\n' ' ')"
fi

# ------------------------------------------------------------------ vnvramd
mkfifo /run/vnvramd.ready
T=$(up)
PRELOAD=""
[ -f /usr/lib/vnvramd-preload.so ] && PRELOAD=/usr/lib/vnvramd-preload.so
LD_PRELOAD=$PRELOAD vnvramd --platform xen --vault-dir /var/lib/vnvram --host-id lab-dom0 --log-level info \
  --ready-fd 3 3>/run/vnvramd.ready 2>"$LOGS/vnvramd.log" &
VNVRAMD_PID=$!
if [ "$(timeout 30 head -c 1 /run/vnvramd.ready | wc -c)" -eq 1 ]; then
  timing vnvramd-ready "$(since "$T")s"
else
  fail persist-recreate "vnvramd did not get ready: $(tail -n 3 "$LOGS/vnvramd.log" | tr '\n' ' ')"
  finish
fi

# -------------------- 2. writer guest: attach 64M, persist, (5) schema check
T=$(up)
W1=$(create lab-writer1 writer1 256) || { fail persist-recreate "xl create lab-writer1 failed"; finish; }
T=$(up)
if attach "$W1" 0 "$BIG" "$VOL_A"; then
  timing attach-64M "$(since "$T")s (nvram-tool attach to backend InitWait, region granted)"
else
  fail persist-recreate "attach $BIG to dom$W1 failed: $(tail -n 2 "$LOGS/nvram-tool.log" | tr '\n' ' ')"
  finish
fi
T_UNPAUSE=$(up)
xl unpause lab-writer1

# The driver-domain lab (tests/lab/driver-domain.sh): its vif, its witness
# and the driver domain itself start now and boot while the scenarios below
# run (xl serialises domain creation: the writer guest is created already);
# dd_run at the end runs its scenarios.
# shellcheck source=driver-domain.sh
. /lab/driver-domain.sh
dd_early

PLAT=$(get_wait "$W1" platform $STEP) || PLAT="no report within ${STEP}s"
case $PLAT in
  PASS*) pass platform-guest "xen_platform_test in PV guest dom$W1" ;;
  *) fail platform-guest "guest dom$W1: $PLAT" ;;
esac

if P=$(get_wait "$W1" paused $STEP); then
  timing guest1-open "$(get_wait "$W1" open 5)"
  timing guest1-first-persist "$(get_wait "$W1" first 5)"
  timing guest1-records "$P (${RECORDS} records persisted; unpause to paused $(since "$T_UNPAUSE")s)"
  # 5. the live xenstore, with a connected 64M device, against the schema.
  if timeout 60 vnvram-schema-check --platform xen >/tmp/schema-check.out 2>&1; then
    pass schema-live "vnvram-schema-check: no findings with dom$W1's $BIG device Connected (backend state $(xenstore-read /local/domain/0/backend/vnvram/"$W1"/0/state))"
  else
    fail schema-live "vnvram-schema-check rc=$?: $(head -n 5 /tmp/schema-check.out | tr '\n' ' ')"
  fi
  nvram-tool --platform xen list >/tmp/nvram-tool-list.out 2>&1
  put "$W1" go 1
else
  fail schema-live "writer guest never paused"
fi

R1=$(get_wait "$W1" result $STEP) || R1="no result within ${STEP}s"
case $R1 in PASS*) ;; *)
  fail persist-recreate "first guest dom$W1: $R1"
  finish
  ;;
esac

# The guest dies; its device directories go the way libxl removes a dead
# guest's devices; vnvramd releases the region and vaults it.
T=$(up)
xl destroy lab-writer1
xenstore-rm "/local/domain/0/backend/vnvram/$W1"
i=0
while [ ! -f "/var/lib/vnvram/$VOL_A.vault" ] && [ $i -lt 200 ]; do sleep 0.3; i=$((i + 1)); done
timing destroy-to-vault "$(since "$T")s ($(find /var/lib/vnvram -name "*.vault" | wc -l) vault file(s))"

# ---------- re-created guest on the same volume, plus the hostile guest
W2=$(create lab-writer2 writer2 256) || { fail persist-recreate "xl create lab-writer2 failed"; finish; }
T=$(up)
attach "$W2" 0 "$BIG" "$VOL_A" || { fail persist-recreate "re-attach to dom$W2 failed"; finish; }
timing reattach-64M "$(since "$T")s (region restored from the vault)"
xl unpause lab-writer2
H=$(create lab-hostile hostile 256) || { fail hostile-fence "xl create lab-hostile failed"; finish; }
if ! attach "$H" 0 1M "$VOL_B" || ! attach "$H" 1 1M "$VOL_C"; then
  fail hostile-fence "attach to the hostile guest failed"
  finish
fi
xl unpause lab-hostile

V2=$(get_wait "$W2" verified $STEP) || V2="no report within ${STEP}s"
case $V2 in
  PASS*) pass persist-recreate "guest destroyed and created again (dom$W1 -> dom$W2): $V2" ;;
  *) fail persist-recreate "re-created guest dom$W2: $V2" ;;
esac

# 4. isolation: the hostile guest gets the victim's domid and region grant
# refs (which dom0 can see and it cannot) and must fail to use them.
if REFS=$(get_wait "$W2" refs $STEP); then
  put "$H" victim "$W2"
  put "$H" victim-refs "${REFS#refs }"
else
  put "$H" victim "$W2"
  put "$H" victim-refs none
fi
RH=$(get_wait "$H" result $STEP) || RH="no result within ${STEP}s"
ISO=$(xenstore-read "/local/domain/$H/data/lab-isolation" 2>/dev/null) || ISO="not reported"
case $ISO in
  PASS*) pass isolation "dom$H vs dom$W2: $ISO" ;;
  *) fail isolation "dom$H vs dom$W2: $ISO" ;;
esac

# 3. the hostile guest's devices are fenced, vnvramd is alive, and the
# victim keeps persisting.
HF=""
for d in 0 1; do
  st=$(xenstore-read "/local/domain/0/backend/vnvram/$H/$d/state" 2>/dev/null)
  er=$(xenstore-read "/local/domain/0/backend/vnvram/$H/$d/error" 2>/dev/null)
  info "hostile dev $d: backend state '$st' error '$er'"
  if [ "$st" = 5 ] && [ -n "$er" ]; then HF="$HF dev$d=fenced"; else HF="$HF dev$d=NOT-fenced(state=$st)"; fi
done
put "$W2" go 1
R2=$(get_wait "$W2" result $STEP) || R2="no result within ${STEP}s"
ALIVE=no
kill -0 "$VNVRAMD_PID" 2>/dev/null && ALIVE=yes
case "$RH|$HF|$ALIVE|$R2" in
  PASS*"|"*dev0=fenced*dev1=fenced*"|yes|PASS"*)
    RACE=$(printf '%s' "$RH" | sed -n 's/.*\(race: [^;]*\).*/\1/p')
    pass hostile-fence "dom$H:$HF ($RACE); vnvramd alive; dom$W2 afterwards: $R2"
    ;;
  *) fail hostile-fence "hostile: $RH;$HF; vnvramd alive=$ALIVE; victim: $R2" ;;
esac
timing guest2-first-persist-after-attack "$(xenstore-read "/local/domain/$W2/data/lab-first" 2>/dev/null)"

# ------------- 6. the toolstack: nvram-tool create, watch, xl destroy
# shellcheck source=toolstack.sh
. /lab/toolstack.sh
ts_run

# ------ 7. ext4 with its external journal on vnvram (tests/lab/ext4-journal.sh)
# shellcheck source=ext4-journal.sh
. /lab/ext4-journal.sh
ext4_run

# ------------- 8. a driver domain serving a guest (tests/lab/driver-domain.sh)
dd_run

finish
