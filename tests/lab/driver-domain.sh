# shellcheck shell=sh
# driver-domain.sh - the driver-domain part of the single-VM Xen lab,
# sourced by dom0-init.sh (installed as /lab/driver-domain.sh in the dom0
# image) once vnvramd runs. dom0-init.sh calls dd_early at once (the vif,
# the witness and the driver domain start while the other scenarios run)
# and dd_run after the hostile-fence scenario. Uses dom0-init.sh's helpers
# (mark, pass, fail, timing, info, wait_key, put, get_wait, create, up,
# since, left, now, LOGS, STEP, VNVRAMD_PID, ...). See docs/lab.md,
# "Driver domain".
#
#   dom0 (vnvramd lab-dom0 + witness)            driver domain lab-drv (driver_domain=1)
#   10.78.0.1/32 on lo, route 10.78.0.2 via vifD.0 <--vif--> eth0 10.78.0.2/24, vnvramd
#   tcp://10.78.0.1:7401 (lab-dom0)                        tcp://10.78.0.2:7401 (lab-drv)
#   tcp://10.78.0.1:7402 (lab-witness, --replica-only)
#
# Kernel command line (set by run-lab.sh):
#   vnvlab_repl=1|0     the build has the replication engine (vnvramd --cluster,
#                       nvram-tool status/inspect/promote)
#   vnvlab_witness=1|0  vnvramd has --replica-only
#   vnvlab_mp=1|0       the build has multipath (nvram-tool failover); else
#                       run-lab.sh reports multipath-failover SKIPPED
#
# Scenarios:
#   driver-domain: a PV driver domain (driver_domain=1, its own initramfs
#     with vnvramd) on a vif to dom0 (netback in dom0, netfront there; a
#     busybox hotplug script, static addresses, no route anywhere else)
#     serves vnvram device 1 of a guest: the guest persists and verifies
#     DD_RECORDS records through the driver domain's grants (gntalloc in a
#     domU), event channel and xenstore directories. With replication and
#     the witness, the volume's replica group is [lab-drv, lab-dom0,
#     lab-witness] and the copies on dom0's vnvramd and on the witness (read
#     with nvram-tool inspect over the vif and loopback) must equal the
#     driver domain's.
#   multipath-failover (vnvlab_mp=1, issue 6; else SKIPPED by run-lab.sh):
#     the same guest opens a second volume by its UUID over two paths,
#     devid 2 on the driver domain (priority 20) and devid 3 on dom0
#     (priority 10), and persists continuously; xl destroy of the driver
#     domain fails it over to dom0's path by itself, the workload goes on;
#     the driver domain is created again (a new domid), its vnvramd rejoins
#     and is resynced while the workload goes on; every acknowledged record
#     verifies. A second workload opens the volume over dom0's path and the
#     new driver domain's (devid 4), nvram-tool failover --to 4 moves it
#     back under load, and every acknowledged record verifies again.

DD_REPL=0
DD_WITNESS=0
DD_MP=0
for kv in $CMDLINE; do
  case $kv in
    vnvlab_repl=*) DD_REPL=${kv#*=} ;;
    vnvlab_witness=*) DD_WITNESS=${kv#*=} ;;
    vnvlab_mp=*) DD_MP=${kv#*=} ;;
  esac
done
DD_DOM0_IP=10.78.0.1
DD_IP=10.78.0.2
DD_CLUSTER=/etc/vnvram/lab-dd-cluster.json
DD_VOL=1d3c5b7a-9e8f-4a6b-8c2d-3e4f5a6b7c8d # driver-domain: one path, on the driver domain
DD_MVOL=8f7e6d5c-4b3a-4291-8e7f-6a5b4c3d2e1f # multipath-failover: two paths
DD_SIZE=4M
DD_RECORDS=100
DD_PERSIST_TIMEOUT=30000 # ms: TCG, four domains on two vCPUs
DD_MEM=160               # MiB, the driver domain
DD_GUEST_MEM=160         # MiB, the guest (its volumes are 4 MiB)
# vnvram-guest-demo's records: 64 bytes each from offset 4096 (demo_record.h).
DD_REC_OFF=4096
DD_REC_SIZE=64
DD_REPLICATED=0
[ "$DD_REPL" = 1 ] && [ "$DD_WITNESS" = 1 ] && DD_REPLICATED=1

# ------------------------------------------------------------ the vif
# netback in dom0; dom0's lab address sits on lo (so dom0's vnvramd and the
# witness keep reaching each other when the vif goes with the driver
# domain), and the hotplug script routes the driver domain's address over
# the new vif. The stock vif-route/vif-bridge scripts need bash; this
# image has busybox only.
dd_net_setup() {
  modprobe xen-netback || {
    info "modprobe xen-netback failed"
    return 1
  }
  ip link set lo up
  ip addr add "$DD_DOM0_IP/32" dev lo || return 1
  cat >/etc/xen/scripts/vif-lab <<EOF
#!/bin/sh
# vif-lab: the lab's vif hotplug script (written by driver-domain.sh).
# libxl runs it in dom0 with "online" or "offline", XENBUS_PATH and vif.
PATH=/bin:/sbin:/usr/bin:/usr/sbin
v=\${vif:-}
if [ -z "\$v" ]; then d=\${XENBUS_PATH#backend/vif/}; v=vif\${d%%/*}.\${d##*/}; fi
echo "\$(cut -d' ' -f1 /proc/uptime) vif-lab \$1 \$v \$XENBUS_PATH" >>/var/log/xen/vif-lab.log
case \$1 in
  online | add)
    ip link set "\$v" up &&
      ip route replace $DD_IP/32 dev "\$v" src $DD_DOM0_IP &&
      xenstore-write "\$XENBUS_PATH/hotplug-status" connected
    ;;
esac
EOF
  chmod 755 /etc/xen/scripts/vif-lab
}

dd_write_cluster() {
  mkdir -p /etc/vnvram
  # Heartbeats and peer expiry relaxed for TCG, as in the two-host lab.
  cat >"$DD_CLUSTER" <<EOF
{
  "version": 1,
  "settings": {"heartbeat-interval-ms": 200, "peer-expiry-ms": 4000},
  "hosts": [
    {"id": "lab-drv", "endpoint": "tcp://$DD_IP:7401"},
    {"id": "lab-dom0", "endpoint": "tcp://$DD_DOM0_IP:7401"},
    {"id": "lab-witness", "endpoint": "tcp://$DD_DOM0_IP:7402"}
  ],
  "volumes": [
    {"uuid": "$DD_VOL", "name": "lab-drv-journal", "size": "$DD_SIZE",
     "replicas": ["lab-drv", "lab-dom0", "lab-witness"], "policy": "sync"},
    {"uuid": "$DD_MVOL", "name": "lab-mp-journal", "size": "$DD_SIZE",
     "replicas": ["lab-drv", "lab-dom0", "lab-witness"], "policy": "sync"}
  ]
}
EOF
  cp "$DD_CLUSTER" /tmp/lab-dd-cluster.json.out
}

# dd_create_drv NAME: the driver domain, created paused; its vnvram
# directory made its own, its arguments and cluster file handed over in
# its data/ directory; then unpaused. Prints its domid.
dd_create_drv() {
  cat >"/tmp/$1.cfg" <<EOF
name = "$1"
type = "pv"
kernel = "/guest/kernel"
ramdisk = "/guest/drv-initrd.cpio.gz"
extra = "console=hvc0 rdinit=/init loglevel=4"
memory = $DD_MEM
vcpus = 1
driver_domain = 1
vif = [ "mac=00:16:3e:4c:00:02,script=vif-lab" ]
on_crash = "preserve"
EOF
  # xl -vvv, every line stamped with dom0's uptime (where the time goes).
  {
    xl -vvv create -p "/tmp/$1.cfg"
    echo "xl-create-rc=$?"
  } 2>&1 | awk '{ getline u < "/proc/uptime"; close("/proc/uptime"); split(u, a, " ");
    print a[1], $0; fflush() }' >>"/tmp/xl-create-$1.out"
  if ! grep -q 'xl-create-rc=0$' "/tmp/xl-create-$1.out"; then
    info "xl create $1 failed: $(tail -n 5 "/tmp/xl-create-$1.out")" >&2
    return 1
  fi
  _d=$(xl domid "$1") || return 1
  # The driver domain's vnvramd writes its daemon and replication keys
  # under /local/domain/D/vnvram, which libxl does not create (D may only
  # read /local/domain/D itself). Until nvram-tool attach creates it (issue
  # 6), dom0 does it by hand, owned by D.
  if ! xenstore-exists "/local/domain/$_d/vnvram" 2>/dev/null; then
    xenstore-write "/local/domain/$_d/vnvram" "" &&
      xenstore-chmod "/local/domain/$_d/vnvram" "n$_d" || return 1
  fi
  put "$_d" drv-args "host-id=lab-drv ip=$DD_IP dom0-ip=$DD_DOM0_IP persist-timeout-ms=$DD_PERSIST_TIMEOUT"
  if [ "$DD_REPLICATED" = 1 ]; then
    # One line: xenstore-read escapes a newline.
    put "$_d" drv-cluster "$(tr -d '\n' <"$DD_CLUSTER")"
  else
    put "$_d" drv-cluster none
  fi
  xl unpause "$1" || return 1
  echo "$_d"
}

# dd_attach FRONTEND BACKEND DEVID VOLUME [PRIORITY]: nvram-tool attach,
# then waits for the backend's InitWait.
dd_attach() {
  _prio=""
  if [ -n "${5:-}" ] && nvram-tool attach --help 2>&1 | grep -q -- '--priority'; then
    _prio="--priority $5"
  fi
  # shellcheck disable=SC2086 # _prio is a list of options
  nvram-tool --platform xen attach "$1" --backend "$2" --devid "$3" --size "$DD_SIZE" \
    --volume "$4" $_prio >>"$LOGS/nvram-tool.log" 2>&1 || return 1
  wait_key "/local/domain/$2/backend/vnvram/$1/$3/state" 90 2 >/dev/null
}

# dd_restart_dom0: dom0's vnvramd again, now with the cluster file (host
# lab-dom0), and the witness (vnvramd --replica-only, host lab-witness, its
# own vault directory and port).
dd_restart_dom0() {
  if [ -n "${VNVRAMD_PID:-}" ] && kill -0 "$VNVRAMD_PID" 2>/dev/null; then
    kill -TERM "$VNVRAMD_PID"
    i=0
    while kill -0 "$VNVRAMD_PID" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.3; i=$((i + 1)); done
  fi
  echo "==== driver-domain: vnvramd restarted with --cluster $DD_CLUSTER (host lab-dom0) ====" \
    >>"$LOGS/vnvramd.log"
  mkfifo /run/vnvramd-dd.ready
  T=$(up)
  vnvramd --platform xen --vault-dir /var/lib/vnvram --host-id lab-dom0 --cluster "$DD_CLUSTER" \
    --persist-timeout-ms "$DD_PERSIST_TIMEOUT" --log-level info \
    --ready-fd 3 3>/run/vnvramd-dd.ready 2>>"$LOGS/vnvramd.log" &
  VNVRAMD_PID=$!
  if [ "$(timeout 60 head -c 1 /run/vnvramd-dd.ready | wc -c)" -ne 1 ]; then
    info "vnvramd --cluster did not get ready: $(tail -n 3 "$LOGS/vnvramd.log" | tr '\n' ' ')"
    return 1
  fi
  timing dd-dom0-cluster-ready "$(since "$T")s (vnvramd restarted with --cluster, host lab-dom0)"
}

# dd_start_witness: vnvramd --replica-only, host lab-witness, its own vault
# directory and port: the third member of the replica groups.
dd_start_witness() {
  mkfifo /run/witness.ready
  T=$(up)
  vnvramd --replica-only --vault-dir /var/lib/vnvram-witness --host-id lab-witness \
    --cluster "$DD_CLUSTER" --log-level info --ready-fd 3 3>/run/witness.ready 2>"$LOGS/witness.log" &
  # shellcheck disable=SC2034 # dom0-init.sh's finish stops it
  WITNESS_PID=$!
  if [ "$(timeout 60 head -c 1 /run/witness.ready | wc -c)" -ne 1 ]; then
    info "the witness did not get ready: $(tail -n 3 "$LOGS/witness.log" | tr '\n' ' ')"
    return 1
  fi
  timing dd-witness-ready "$(since "$T")s (vnvramd --replica-only, host lab-witness)"
}

# dd_status DOMID FILE: nvram-tool status of the vnvramd in DOMID (and the
# replication directories) appended to FILE.
dd_status() {
  {
    echo "== uptime $(up), backend dom$1"
    timeout 30 nvram-tool --platform xen status --backend "$1"
    timeout 10 xenstore-ls -fp "/local/domain/$1/vnvram"
  } >>"$2" 2>&1
}

# dd_inspect HOST VOLUME N: nvram-tool inspect of records 0..N-1 on HOST's
# copy; sets I_SEQ and I_CRC ("?" when they could not be read).
dd_inspect() {
  I_SEQ="?"
  I_CRC="?"
  timeout 60 nvram-tool inspect --cluster "$DD_CLUSTER" --host "$1" --volume "$2" \
    --offset "$DD_REC_OFF" --length "$(($3 * DD_REC_SIZE))" >>/tmp/inspect-dd.out 2>&1 || return 1
  _l=$(grep crc32c /tmp/inspect-dd.out | tail -n 1)
  I_SEQ=$(echo "$_l" | sed -n 's/.* sequence \([0-9][0-9]*\).*/\1/p')
  I_CRC=$(echo "$_l" | sed -n 's/.*crc32c \(0x\)\{0,1\}\([0-9a-fA-F][0-9a-fA-F]*\).*/\2/p')
  : "${I_SEQ:=?}" "${I_CRC:=?}"
}

# dd_wait_serving DOMID VOLUME SECONDS: the vnvramd of DOMID is primary of
# VOLUME and serving.
dd_wait_serving() {
  wait_key "/local/domain/$1/vnvram/replication/$2/role" "$3" primary >/dev/null &&
    wait_key "/local/domain/$1/vnvram/replication/$2/serving" "$3" 1 >/dev/null
}

# dd_drv_create NAME: creates the driver domain (it boots); sets DRV (its
# domid) and DRV_T (when xl create began). 1 with DD_WHY on failure.
dd_drv_create() {
  DRV_T=$(up)
  DRV=$(dd_create_drv "$1") || {
    DD_WHY="xl create $1 failed: $(tail -n 3 "/tmp/xl-create-$1.out" | tr '\n' ' ')"
    return 1
  }
  timing "dd-$1-create" "$(since "$DRV_T")s (xl create -p with a vif, dom$DRV, unpaused; free memory $(xl info free_memory 2>/dev/null) MiB)"
}

# dd_drv_wait NAME: waits until the driver domain's vnvramd is ready and
# the vif works both ways; sets NET. 1 with DD_WHY on failure.
dd_drv_wait() {
  if ! R=$(get_wait "$DRV" drv-ready "$STEP"); then
    DD_WHY="dom$DRV: vnvramd never reported ready (net: $(xenstore-read "/local/domain/$DRV/data/lab-drv-net" 2>&1))"
    return 1
  fi
  NET=$(xenstore-read "/local/domain/$DRV/data/lab-drv-net" 2>/dev/null)
  timing "dd-$1-vnvramd-ready" "$(since "$DRV_T")s from xl create (${R#PASS })"
  case $R in PASS*) ;; *)
    DD_WHY="dom$DRV: $R"
    return 1
    ;;
  esac
  case $NET in PASS*) ;; *)
    DD_WHY="dom$DRV: vif link: ${NET:-not reported}"
    return 1
    ;;
  esac
  if ! ping -c 1 -W 2 "$DD_IP" >/tmp/ping-dd.out 2>&1; then
    DD_WHY="dom$DRV: dom0 cannot ping $DD_IP over vif$DRV.0"
    return 1
  fi
  NET="${NET#PASS }; dom0 pings it back"
}

# ---------------------------------------------------------- driver-domain
dd_main() {
  S=driver-domain
  # Memory for the driver domain and the guest: the earlier guests go (as
  # a toolstack removes a dead guest's devices, see dom0-init.sh).
  for g in lab-writer2 lab-hostile; do
    _id=$(xl domid "$g" 2>/dev/null) || continue
    xl destroy "$g"
    xenstore-rm "/local/domain/0/backend/vnvram/$_id" 2>/dev/null
  done
  T0=$(up)
  # What dd_early started in the background: the driver domain.
  [ -n "$DD_EARLY_PID" ] && wait "$DD_EARLY_PID"
  if [ -n "$DD_EARLY_WHY" ]; then
    fail $S "$DD_EARLY_WHY"
    return 1
  fi
  DRV=$(cat /tmp/dd-drv.domid 2>/dev/null)
  DRV_T=$(cat /tmp/dd-drv.t 2>/dev/null)
  if [ -z "$DRV" ]; then
    fail $S "$(cat /tmp/dd-drv.why 2>/dev/null || echo "the driver domain was not created")"
    return 1
  fi
  if [ "$DD_REPLICATED" = 1 ]; then
    if ! dd_restart_dom0; then
      fail $S "dom0's vnvramd did not restart with --cluster"
      return 1
    fi
    NOTE="volume replicated on [lab-drv, lab-dom0, lab-witness]"
  else
    NOTE="volume not replicated (the build has no replication engine or no --replica-only)"
  fi
  # shellcheck disable=SC2034 # create (dom0-init.sh) passes it to the guest
  RECORDS=$DD_RECORDS
  G=$(create lab-dd-guest drv-guest "$DD_GUEST_MEM") || {
    fail $S "xl create lab-dd-guest failed"
    return 1
  }
  # The guest boots while the driver domain's backend gets ready; it waits
  # for dom0's go before it opens its device.
  xl unpause lab-dd-guest
  if ! dd_drv_wait lab-drv; then
    fail $S "$DD_WHY"
    return 1
  fi
  T=$(up)
  if ! dd_attach "$G" "$DRV" 1 "$DD_VOL"; then
    dd_status "$DRV" /tmp/status-dd.out
    fail $S "attach $DD_SIZE to dom$G with backend dom$DRV: no InitWait from the driver domain's vnvramd ($(tail -n 2 "$LOGS/nvram-tool.log" | tr '\n' ' '); backend state '$(xenstore-read "/local/domain/$DRV/backend/vnvram/$G/1/state" 2>&1)')"
    return 1
  fi
  timing dd-attach "$(since "$T")s (nvram-tool attach --backend $DRV to the driver domain's InitWait)"
  T=$(up)
  if [ "$DD_REPLICATED" = 1 ] && ! dd_wait_serving "$DRV" "$DD_VOL" "$STEP"; then
    dd_status "$DRV" /tmp/status-dd.out
    dd_status 0 /tmp/status-dd.out
    fail $S "the driver domain's vnvramd never primary and serving of $DD_VOL (role '$(xenstore-read "/local/domain/$DRV/vnvram/replication/$DD_VOL/role" 2>&1)')"
    return 1
  fi
  [ "$DD_REPLICATED" = 1 ] && timing dd-drv-serving "$(since "$T")s (lab-drv primary and serving, epoch $(xenstore-read "/local/domain/$DRV/vnvram/replication/$DD_VOL/epoch"))"
  dd_status "$DRV" /tmp/status-dd.out
  put "$G" go 1
  T=$(up)
  R=$(get_wait "$G" result "$STEP") || R="no result within ${STEP}s"
  timing dd-guest "$(since "$T")s go to result; $(xenstore-read "/local/domain/$G/data/lab-open" 2>/dev/null); $(xenstore-read "/local/domain/$G/data/lab-first" 2>/dev/null)"
  case $R in PASS*) ;; *)
    dd_status "$DRV" /tmp/status-dd.out
    fail $S "guest dom$G on the driver domain dom$DRV: $R"
    return 1
    ;;
  esac
  COPIES=""
  if [ "$DD_REPLICATED" = 1 ]; then
    SEQ=$(xenstore-read "/local/domain/$DRV/vnvram/replication/$DD_VOL/sequence" 2>/dev/null)
    BAD=""
    CRC0=""
    for h in lab-drv lab-dom0 lab-witness; do
      dd_inspect "$h" "$DD_VOL" "$DD_RECORDS"
      COPIES="$COPIES $h: seq $I_SEQ crc $I_CRC;"
      [ -n "$CRC0" ] || CRC0=$I_CRC
      if [ "$I_CRC" = "?" ] || [ "$I_CRC" != "$CRC0" ] || [ "$I_SEQ" != "$SEQ" ]; then BAD="$BAD $h"; fi
    done
    dd_status "$DRV" /tmp/status-dd.out
    dd_status 0 /tmp/status-dd.out
    if [ -n "$BAD" ]; then
      fail $S "guest ok ($R) but copies differ from lab-drv's (sequence $SEQ) on$BAD:$COPIES"
      return 1
    fi
    COPIES=" copies of records 0..$((DD_RECORDS - 1)) at sequence $SEQ equal:$COPIES"
  fi
  timing dd-total "$(since "$T0")s (driver-domain scenario)"
  pass $S "driver domain dom$DRV (driver_domain=1; $NET) served device 1 of guest dom$G: ${R#PASS }; $NOTE;$COPIES"
  DD_GUEST=$G
  return 0
}

# ----------------------------------------------------- multipath-failover
# Issue 6; run only when run-lab.sh found multipath in the build
# (vnvlab_mp=1), else reported SKIPPED there.
DD_PHASE=1
# dd_acked: the guest's last acknowledged record number (-1: none yet).
dd_acked() {
  _a=$(xenstore-read "/local/domain/$DD_GUEST/data/lab-mp-acked" 2>/dev/null) || _a=-1
  echo "${_a%% *}"
}
# dd_wait_acked N SECONDS: until the guest acknowledged record N (1 at
# once when its workload of phase DD_PHASE ended: R holds its result).
dd_wait_acked() {
  now
  _end=$((NOW + $2))
  _l=$(left)
  [ $((NOW + _l)) -ge "$_end" ] || _end=$((NOW + _l))
  while :; do
    [ "$(dd_acked)" -ge "$1" ] 2>/dev/null && return 0
    R=$(xenstore-read "/local/domain/$DD_GUEST/data/lab-mp-result$DD_PHASE" 2>/dev/null) && return 1
    now
    [ "$NOW" -lt "$_end" ] || return 1
    sleep 0.2
  done
}
dd_mp_keys() {
  _d=/local/domain/$DD_GUEST/vnvram/multipath/$DD_MVOL
  echo "active-path $(xenstore-read "$_d/active-path" 2>&1); status $(xenstore-read "$_d/status" 2>&1); failover: result $(xenstore-read "$_d/failover/result" 2>&1), reason $(xenstore-read "$_d/failover/reason" 2>&1), $(xenstore-read "$_d/failover/from" 2>&1) -> $(xenstore-read "$_d/failover/to" 2>&1), $(xenstore-read "$_d/failover/duration-us" 2>&1) us"
}

# dd_mp_phase_end N: stops the guest's workload of phase N and waits for
# its verification; sets R (the guest's "PASS ..." or "FAIL ...").
dd_mp_phase_end() {
  put "$DD_GUEST" "mp-stop$1" 1
  R=$(get_wait "$DD_GUEST" "mp-result$1" "$STEP") || R="FAIL no result of phase $1 within ${STEP}s"
}

dd_multipath() {
  S=multipath-failover
  G=$DD_GUEST
  MPD=/local/domain/$G/vnvram/multipath/$DD_MVOL
  T0=$(up)
  # Two paths of one volume: the driver domain's (preferred) and dom0's.
  if ! dd_attach "$G" "$DRV" 2 "$DD_MVOL" 20 || ! dd_attach "$G" 0 3 "$DD_MVOL" 10; then
    fail $S "attach of the two paths (devid 2 on dom$DRV, 3 on dom0) failed: $(tail -n 2 "$LOGS/nvram-tool.log" | tr '\n' ' ')"
    return 1
  fi
  if ! dd_wait_serving "$DRV" "$DD_MVOL" "$STEP"; then
    fail $S "lab-drv never primary and serving of $DD_MVOL"
    return 1
  fi
  # Phase 1: a continuous workload; the driver domain dies under it.
  put "$G" mp-go1 "go $DD_MVOL 0"
  T=$(up)
  if ! dd_wait_acked 100 "$STEP"; then
    fail $S "the guest's workload did not reach 100 acknowledged records: acknowledged $(dd_acked); $(dd_mp_keys); ${R:-}"
    return 1
  fi
  timing mp-workload "$(since "$T")s to 100 acknowledged records ($(dd_mp_keys))"
  dd_status 0 /tmp/status-mp.out
  A0=$(dd_acked)
  T=$(up)
  xl destroy lab-drv
  T_DESTROYED=$(since "$T")
  # Counted from when the domain is gone: records the driver domain
  # acknowledged while xl destroy ran are not the failover's.
  A0D=$(dd_acked)
  if ! dd_wait_acked $((A0D + 50)) "$STEP"; then
    dd_status 0 /tmp/status-mp.out
    fail $S "after xl destroy of the driver domain (acknowledged $A0) the workload did not go on: acknowledged $(dd_acked); $(dd_mp_keys); ${R:-}"
    return 1
  fi
  AUTO="$(since "$T")s from xl destroy (${T_DESTROYED}s) to 50 more records acknowledged; frontend: $(dd_mp_keys)"
  timing mp-auto-failover "$AUTO"
  # The frontend publishes its new active path, and dom0 its role, once
  # the failover has finished: wait for them (a deadline, not a sleep).
  ACTIVE1=$(wait_key "$MPD/active-path" 60 3) || ACTIVE1=$(xenstore-read "$MPD/active-path" 2>/dev/null)
  ROLE0=$(wait_key "/local/domain/0/vnvram/replication/$DD_MVOL/role" 60 primary) ||
    ROLE0=$(xenstore-read "/local/domain/0/vnvram/replication/$DD_MVOL/role" 2>/dev/null)
  dd_status 0 /tmp/status-mp.out

  # The driver domain again (a new domid): its vnvramd rejoins empty and is
  # resynced from dom0, the primary now, while the workload goes on.
  if ! dd_drv_create lab-drv || ! dd_drv_wait lab-drv; then
    fail $S "the driver domain recreated: $DD_WHY"
    return 1
  fi
  T=$(up)
  if ! wait_key "/local/domain/0/vnvram/replication/$DD_MVOL/replica/lab-drv/state" "$STEP" in-sync >/dev/null; then
    dd_status 0 /tmp/status-mp.out
    fail $S "the recreated lab-drv never in-sync on dom0 (state '$(xenstore-read "/local/domain/0/vnvram/replication/$DD_MVOL/replica/lab-drv/state" 2>&1)')"
    return 1
  fi
  timing mp-drv-resync "$(since "$T")s (recreated dom$DRV ready to in-sync on lab-dom0, acknowledged $(dd_acked))"
  dd_mp_phase_end 1
  R1=$R
  case "$R1|$ACTIVE1|$ROLE0" in
    "PASS"*"|3|primary") ;;
    *)
      fail $S "phase 1 (driver domain destroyed at record $A0): guest: $R1; active-path '$ACTIVE1' (want 3); lab-dom0 role '$ROLE0' (want primary)"
      return 1
      ;;
  esac
  A1=$(dd_acked)

  # Phase 2. The recreated driver domain has a new domid, so its path is a
  # new device (devid 4); libvnvram takes a volume's paths when it opens
  # it, so a new workload opens the volume (paths 3 and 4) and the operator
  # moves it back to the driver domain under load.
  xenstore-rm "/local/domain/$G/device/vnvram/2" 2>/dev/null
  xenstore-rm "/local/domain/$G/device/vnvram/1" 2>/dev/null
  if ! dd_attach "$G" "$DRV" 4 "$DD_MVOL" 20; then
    fail $S "attach of devid 4 on the recreated driver domain dom$DRV failed"
    return 1
  fi
  DD_PHASE=2
  put "$G" mp-go2 "go $DD_MVOL $((A1 + 1))"
  if ! dd_wait_acked $((A1 + 50)) "$STEP"; then
    fail $S "phase 2: the new workload did not reach 50 records: acknowledged $(dd_acked); $(dd_mp_keys); ${R:-}"
    return 1
  fi
  T=$(up)
  A2=$(dd_acked)
  timeout 120 nvram-tool --platform xen failover "$G" "$DD_MVOL" --to 4 --timeout 60 >/tmp/failover.out 2>&1
  RC=$?
  timing mp-operator-failover "$(since "$T")s (rc $RC: $(tail -n 1 /tmp/failover.out))"
  if [ $RC -ne 0 ]; then
    dd_status 0 /tmp/status-mp.out
    dd_status "$DRV" /tmp/status-mp.out
    fail $S "nvram-tool failover --to 4 rc=$RC: $(tail -n 2 /tmp/failover.out | tr '\n' ' '); $(dd_mp_keys)"
    return 1
  fi
  if ! dd_wait_acked $((A2 + 50)) "$STEP"; then
    fail $S "after the failover back the workload did not go on (acknowledged $(dd_acked)); $(dd_mp_keys)"
    return 1
  fi
  ACTIVE2=$(xenstore-read "$MPD/active-path" 2>/dev/null)
  ROLE2=$(xenstore-read "/local/domain/$DRV/vnvram/replication/$DD_MVOL/role" 2>/dev/null)
  dd_status 0 /tmp/status-mp.out
  dd_status "$DRV" /tmp/status-mp.out
  dd_mp_phase_end 2
  timing mp-total "$(since "$T0")s (multipath-failover scenario)"
  case "$R|$ACTIVE2|$ROLE2" in
    "PASS"*"|4|primary")
      pass $S "guest dom$G: xl destroy of the driver domain at record $A0, the workload went on over dom0's path ($AUTO); ${R1#PASS }; driver domain recreated (dom$DRV), resynced, path 4 attached; operator failover to it at record $A2: $(tail -n 1 /tmp/failover.out); ${R#PASS }"
      ;;
    *) fail $S "phase 2: guest: $R; active-path '$ACTIVE2' (want 4); lab-drv role '$ROLE2' (want primary)" ;;
  esac
}

# ------------------------------------------------------------------ run
DD_GUEST=""
DD_EARLY_PID=""
DD_EARLY_WHY=""

# dd_early: called by dom0-init.sh once vnvramd runs. The vif set-up, the
# witness, and the driver domain created in the background (xl create takes
# tens of seconds under TCG): it boots while the other scenarios run.
dd_early() {
  rm -f /tmp/dd-drv.domid /tmp/dd-drv.why
  if ! dd_net_setup; then
    DD_EARLY_WHY="dom0 network setup (xen-netback, $DD_DOM0_IP on lo, vif-lab script) failed"
    return 1
  fi
  if [ "$DD_REPLICATED" = 1 ]; then
    dd_write_cluster
    if ! dd_start_witness; then
      DD_EARLY_WHY="the witness (vnvramd --replica-only) did not start: $(tail -n 2 "$LOGS/witness.log" | tr '\n' ' ')"
      return 1
    fi
  fi
  (
    if dd_drv_create lab-drv; then
      echo "$DRV_T" >/tmp/dd-drv.t
      echo "$DRV" >/tmp/dd-drv.domid
    else
      echo "$DD_WHY" >/tmp/dd-drv.why
    fi
  ) &
  DD_EARLY_PID=$!
}

# dd_run: called by dom0-init.sh after the hostile-fence scenario.
dd_run() {
  if dd_main; then
    if [ "$DD_MP" = 1 ]; then
      if [ "$DD_REPLICATED" = 1 ]; then
        dd_multipath
      else
        fail multipath-failover "not run: the build has multipath but no replication engine or witness"
      fi
    else
      # The guest's multipath phases end at once.
      put "$DD_GUEST" mp-go1 skip
    fi
  elif [ "$DD_MP" = 1 ]; then
    fail multipath-failover "not run: the driver-domain scenario failed"
  fi
}
