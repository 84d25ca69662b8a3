# shellcheck shell=sh
# two-host.sh - the two-host part of the Xen lab, sourced by dom0-init.sh
# (installed as /lab/two-host.sh in the dom0 image) when the kernel command
# line says vnvlab_mode=pair. run-lab.sh boots two VMs, host a and host b,
# each Xen + PV dom0, linked only by a qemu socket netdev on the build
# machine's loopback (an e1000 NIC in each dom0, the wire 10.77.0.0/24).
# Uses dom0-init.sh's helpers (mark, pass, fail, timing, wait_key, create,
# attach, save_logs, finish, ...).
#
# Kernel command line (set by run-lab.sh):
#   vnvlab_host=a|b  vnvlab_ip=10.77.0.N  vnvlab_peer=10.77.0.M
#   vnvlab_repl=1|0  (0: the build's vnvramd has no replication engine;
#                     run-lab.sh reports replication-failover SKIPPED)
#
# Scenarios:
#   net-link (both hosts): the peer answers ping, and one TCP exchange in
#     each direction (busybox nc, host a listens) carries the other host's
#     token.
#   replication-failover (repl=1): vnvramd on both hosts with the cluster
#     file (volume replicated on lab-a, lab-b; lab-a the initial primary).
#     Host a: primary with lab-b in-sync; a guest persists records and
#     stays attached; the logs go to the results disk; then
#     "VNVRAM-LAB: kill-me acked=N crc=C" asks the host to kill -9 this VM.
#     Host b: replica; waits for the build machine's line
#     "vnvlab-host peer-killed acked=N crc=C" on its console (qemu's stdin,
#     which Xen hands to dom0), promotes itself with --force, creates a
#     guest that attaches the volume and verifies all N acknowledged
#     records.

PAIR_HOST=a
PAIR_IP=""
PAIR_PEER=""
PAIR_REPL=0
for kv in $CMDLINE; do
  case $kv in
    vnvlab_host=*) PAIR_HOST=${kv#*=} ;;
    vnvlab_ip=*) PAIR_IP=${kv#*=} ;;
    vnvlab_peer=*) PAIR_PEER=${kv#*=} ;;
    vnvlab_repl=*) PAIR_REPL=${kv#*=} ;;
  esac
done
ME=lab-$PAIR_HOST
case $PAIR_HOST in a) PEER_HOST=b ;; *) PEER_HOST=a ;; esac
NET_PORT=7400
CLUSTER=/etc/vnvram/lab-cluster.json
RVOL=3f9a6c1e-5b7d-4e2a-8c3b-9d0e1f2a3b4c   # the replicated volume
RSIZE=4M
RRECORDS=200                                 # records the guest on host a persists
RDIR=/local/domain/0/vnvram/replication/$RVOL
# vnvram-guest-demo's records: 64 bytes each from offset 4096 (demo_record.h).
REC_OFF=4096
REC_SIZE=64

# --------------------------------------------------------------- the wire
# net_up: the NIC driver, lo and the static address. 1 on failure.
net_up() {
  modprobe e1000 || { info "modprobe e1000 failed"; return 1; }
  ip link set lo up
  now
  _end=$((NOW + 30))
  NIC=""
  while [ -z "$NIC" ]; do
    for n in /sys/class/net/*; do
      case ${n##*/} in lo | '*') ;; *) NIC=${n##*/} ;; esac
    done
    [ -n "$NIC" ] && break
    now
    [ "$NOW" -lt "$_end" ] || { info "no network interface after e1000 loaded"; return 1; }
    sleep 0.2
  done
  ip addr add "$PAIR_IP/24" dev "$NIC" && ip link set "$NIC" up || return 1
  info "$NIC $(cat "/sys/class/net/$NIC/address") $PAIR_IP/24"
}

# net_link: ping the peer until it answers, then one TCP exchange.
net_link() {
  T=$(up)
  if ! net_up; then
    fail net-link "host $PAIR_HOST: network setup failed: $(ip addr 2>&1 | tr '\n' ' ')"
    return 1
  fi
  timing "$PAIR_HOST-net-up" "$(since "$T")s (e1000 loaded, $PAIR_IP on $NIC)"
  # The peer boots at the same time; wait for its first answer.
  T=$(up)
  _s=$(left)
  [ "$_s" -le "$STEP" ] || _s=$STEP
  now
  _end=$((NOW + _s))
  until ping -c 1 -W 1 "$PAIR_PEER" >/dev/null 2>&1; do
    now
    if [ "$NOW" -ge "$_end" ]; then
      fail net-link "host $PAIR_HOST: $PAIR_PEER never answered ping ($(since "$T")s)"
      return 1
    fi
    sleep 0.2 # ping returns at once while the link is still down
  done
  timing "$PAIR_HOST-first-ping" "$(since "$T")s (until $PAIR_PEER answered)"
  ping -c 3 -W 2 "$PAIR_PEER" >/tmp/ping.out 2>&1
  PING=$(grep -m1 'packets transmitted' /tmp/ping.out)
  RTT=$(grep -m1 'round-trip' /tmp/ping.out | sed 's/.*= //')
  # One TCP exchange: host a listens, host b connects (retrying until a's
  # listener is up); each side sends its token and reads the other's.
  TOKEN="vnvlab-$PAIR_HOST-$(cat /proc/sys/kernel/random/uuid)"
  T=$(up)
  if [ "$PAIR_HOST" = a ]; then
    echo "$TOKEN" | timeout 90 nc -l -p "$NET_PORT" >/tmp/net-got 2>/tmp/net-err
  else
    now
    _end=$((NOW + 90))
    until echo "$TOKEN" | timeout 20 nc "$PAIR_PEER" "$NET_PORT" >/tmp/net-got 2>/tmp/net-err &&
      [ -s /tmp/net-got ]; do
      now
      [ "$NOW" -lt "$_end" ] || break
      sleep 0.5
    done
  fi
  GOT=$(head -n 1 /tmp/net-got 2>/dev/null)
  case $GOT in
    "vnvlab-$PEER_HOST-"*)
      timing "$PAIR_HOST-tcp-exchange" "$(since "$T")s"
      pass net-link "host $PAIR_HOST ($PAIR_IP): ping $PAIR_PEER: $PING, rtt $RTT; TCP port $NET_PORT: sent $TOKEN, got $GOT"
      ;;
    *)
      fail net-link "host $PAIR_HOST: ping ok ($PING) but the TCP exchange got '$GOT' ($(head -c 200 /tmp/net-err 2>/dev/null | tr '\n' ' '))"
      return 1
      ;;
  esac
}

# ------------------------------------------------------------ replication
write_cluster() {
  mkdir -p /etc/vnvram
  # Heartbeats and peer expiry are relaxed for TCG, where a busy vCPU can
  # stall a process for a second.
  cat >"$CLUSTER" <<EOF
{
  "version": 1,
  "settings": {"heartbeat-interval-ms": 200, "peer-expiry-ms": 4000},
  "hosts": [
    {"id": "lab-a", "endpoint": "tcp://10.77.0.1:7401"},
    {"id": "lab-b", "endpoint": "tcp://10.77.0.2:7401"}
  ],
  "volumes": [
    {"uuid": "$RVOL", "name": "lab-journal", "size": "$RSIZE",
     "replicas": ["lab-a", "lab-b"], "policy": "sync"}
  ]
}
EOF
  cp "$CLUSTER" /tmp/lab-cluster.json.out
}

start_vnvramd_cluster() {
  mkfifo /run/vnvramd.ready
  T=$(up)
  vnvramd --platform xen --vault-dir /var/lib/vnvram --host-id "$ME" --cluster "$CLUSTER" \
    --log-level info --ready-fd 3 3>/run/vnvramd.ready 2>"$LOGS/vnvramd.log" &
  # shellcheck disable=SC2034 # dom0-init.sh's finish stops it
  VNVRAMD_PID=$!
  if [ "$(timeout 60 head -c 1 /run/vnvramd.ready | wc -c)" -eq 1 ]; then
    timing "$PAIR_HOST-vnvramd-ready" "$(since "$T")s (--cluster, host $ME)"
    return 0
  fi
  return 1
}

# status FILE: nvram-tool status (text and JSON) into FILE, rc of the text one.
status() {
  {
    echo "== uptime $(up)"
    timeout 30 nvram-tool --platform xen status
    _rc=$?
    timeout 30 nvram-tool --platform xen status --json
    echo
    timeout 10 xenstore-ls -fp "$RDIR"
  } >>"$1" 2>&1
  return $_rc
}

# inspect HOST FILE N: nvram-tool inspect of records 0..N-1 on HOST's copy
# (over ZeroMQ; "host H epoch E sequence S offset O length L crc32c C");
# sets I_SEQ and I_CRC ("?" when they could not be read).
inspect() {
  I_SEQ="?"
  I_CRC="?"
  timeout 60 nvram-tool inspect --cluster "$CLUSTER" --host "$1" --volume "$RVOL" \
    --offset "$REC_OFF" --length "$(($3 * REC_SIZE))" >"$2" 2>&1 || return 1
  _l=$(grep -m1 crc32c "$2")
  I_SEQ=$(echo "$_l" | sed -n 's/.* sequence \([0-9][0-9]*\).*/\1/p')
  I_CRC=$(echo "$_l" | sed -n 's/.*crc32c \(0x\)\{0,1\}\([0-9a-fA-F][0-9a-fA-F]*\).*/\2/p')
  : "${I_SEQ:=?}" "${I_CRC:=?}"
}

repl_a() {
  S=replication-failover
  start_vnvramd_cluster || {
    fail $S "host a: vnvramd --cluster did not get ready: $(tail -n 3 "$LOGS/vnvramd.log" | tr '\n' ' ')"
    return 1
  }
  T=$(up)
  if ! wait_key "$RDIR/role" 90 primary >/dev/null; then
    fail $S "host a: never primary (role '$(xenstore-read "$RDIR/role" 2>&1)')"
    return 1
  fi
  if ! wait_key "$RDIR/replica/lab-b/state" "$STEP" in-sync >/dev/null; then
    fail $S "host a: replica lab-b never in-sync (state '$(xenstore-read "$RDIR/replica/lab-b/state" 2>&1)')"
    status /tmp/status-a.out
    return 1
  fi
  timing a-replica-in-sync "$(since "$T")s (vnvramd ready to primary with lab-b in-sync)"
  if ! status /tmp/status-a.out || ! grep -qi primary /tmp/status-a.out; then
    fail $S "host a: nvram-tool status failed or does not say primary: $(head -n 3 /tmp/status-a.out | tr '\n' ' ')"
    return 1
  fi

  # shellcheck disable=SC2034 # create (dom0-init.sh) passes it to the guest
  RECORDS=$RRECORDS
  G=$(create lab-writer repl-writer 256) || { fail $S "host a: xl create lab-writer failed"; return 1; }
  T=$(up)
  attach "$G" 0 "$RSIZE" "$RVOL" || {
    fail $S "host a: attach $RSIZE to dom$G failed: $(tail -n 2 "$LOGS/nvram-tool.log" | tr '\n' ' ')"
    return 1
  }
  timing a-attach "$(since "$T")s (nvram-tool attach to backend InitWait)"
  T=$(up)
  xl unpause lab-writer
  R=$(get_wait "$G" result "$STEP") || R="no result within ${STEP}s"
  ACKED=$(xenstore-read "/local/domain/$G/data/lab-acked" 2>/dev/null) || ACKED=0
  timing a-guest-write "$(since "$T")s unpause to result; $(xenstore-read "/local/domain/$G/data/lab-first" 2>/dev/null); $ACKED acknowledged"
  case $R in
    PASS*) ;;
    *) fail $S "host a: the writer guest dom$G: $R (acknowledged: $ACKED)" ;;
  esac
  [ "$ACKED" -gt 0 ] 2>/dev/null || {
    fail $S "host a: no acknowledged persist ($R)"
    return 1
  }
  # Every acknowledged persist is on lab-b: the primary says in-sync, and
  # lab-b's own copy (nvram-tool inspect over ZeroMQ) is at the primary's
  # sequence. Only host b's verify after the kill decides the scenario.
  T=$(up)
  now
  _end=$((NOW + 60))
  while :; do
    SEQ=$(xenstore-read "$RDIR/sequence" 2>/dev/null)
    BST=$(xenstore-read "$RDIR/replica/lab-b/state" 2>/dev/null)
    if [ "$BST" = in-sync ]; then
      inspect lab-b /tmp/inspect-a-lab-b.out "$ACKED"
      if [ "$I_SEQ" = "?" ] || [ "$I_SEQ" = "$SEQ" ]; then break; fi
    fi
    now
    [ "$NOW" -lt "$_end" ] || break
    sleep 0.5
  done
  SEQ_B=$I_SEQ
  CRC_B=$I_CRC
  BACK=$(xenstore-read "$RDIR/replica/lab-b/acked-sequence" 2>/dev/null) || BACK="not published"
  status /tmp/status-a.out
  if [ "$BST" != in-sync ]; then
    fail $S "host a: after the writes replica lab-b is '$BST' (sequence $SEQ, lab-b at $SEQ_B)"
    return 1
  fi
  inspect lab-a /tmp/inspect-a-lab-a.out "$ACKED"
  CRC_A=$I_CRC
  NOTE="primary sequence $SEQ, lab-b's copy at $SEQ_B, replica/lab-b/acked-sequence $BACK"
  timing a-in-sync-after-writes "$(since "$T")s ($NOTE)"
  info "records 0..$((ACKED - 1)) before the kill: crc32c lab-a $CRC_A, lab-b $CRC_B; $NOTE"
  # The guest stays attached and paused mid-run; the logs go to the
  # results disk now: this VM is killed, it never powers off.
  save_logs
  mark "kill-me acked=$ACKED crc=$CRC_A seq=$SEQ lab-b-crc=$CRC_B lab-b-seq=$SEQ_B"
  while [ "$(left)" -gt 0 ]; do sleep 1; done
  fail $S "host a: still alive at the deadline (the harness never killed this VM)"
}

# wait_host NAME: the build machine's line "vnvlab-host NAME ..." on the
# console; prints the rest. 1 on the deadline or "vnvlab-host abort".
wait_host() {
  while :; do
    _l=$(left)
    [ "$_l" -gt 0 ] || return 1
    # shellcheck disable=SC3045 # busybox ash has read -t
    IFS= read -r -t "$_l" _line || { [ "$(left)" -gt 0 ] || return 1; continue; }
    case $_line in
      *"vnvlab-host $1"*) echo "${_line#*vnvlab-host "$1" }"; return 0 ;;
      *"vnvlab-host abort"*) echo "${_line#*vnvlab-host }"; return 1 ;;
    esac
  done
}

repl_b() {
  S=replication-failover
  start_vnvramd_cluster || {
    fail $S "host b: vnvramd --cluster did not get ready: $(tail -n 3 "$LOGS/vnvramd.log" | tr '\n' ' ')"
    return 1
  }
  T=$(up)
  if ! wait_key "$RDIR/role" "$STEP" replica >/dev/null; then
    fail $S "host b: never replica (role '$(xenstore-read "$RDIR/role" 2>&1)')"
    return 1
  fi
  timing b-replica "$(since "$T")s (vnvramd ready to role replica)"
  status /tmp/status-b.out
  info "waiting for the build machine to kill host a"
  T=$(up)
  if ! MSG=$(wait_host peer-killed); then
    fail $S "host b: host a was not killed (${MSG:-no word from the build machine before the deadline})"
    return 1
  fi
  ACKED=0
  CRC_A="?"
  for kv in $MSG; do
    case $kv in acked=*) ACKED=${kv#*=} ;; crc=*) CRC_A=${kv#*=} ;; esac
  done
  timing b-waited-for-kill "$(since "$T")s ($MSG)"
  [ "$ACKED" -gt 0 ] 2>/dev/null || {
    fail $S "host b: no acknowledged count from the build machine ('$MSG')"
    return 1
  }
  status /tmp/status-b.out
  T=$(up)
  timeout 120 nvram-tool --platform xen promote --volume "$RVOL" --force --timeout-ms 60000 \
    >/tmp/promote.out 2>&1
  RC=$?
  timing b-promote "$(since "$T")s (rc $RC: $(tail -n 1 /tmp/promote.out))"
  if [ $RC -ne 0 ]; then
    status /tmp/status-b.out
    fail $S "host b: nvram-tool promote --force rc=$RC: $(tail -n 3 /tmp/promote.out | tr '\n' ' ')"
    return 1
  fi
  if ! wait_key "$RDIR/role" 60 primary >/dev/null; then
    fail $S "host b: promote said ok but role is '$(xenstore-read "$RDIR/role" 2>&1)'"
    return 1
  fi
  status /tmp/status-b.out
  inspect lab-b /tmp/inspect-b-lab-b.out "$ACKED"
  CRC_B_VAL=$I_CRC
  CRC_B="$I_CRC (sequence $I_SEQ)"

  # shellcheck disable=SC2034 # create (dom0-init.sh) passes it to the guest
  RECORDS=$ACKED
  G=$(create lab-reader repl-verifier 256) || { fail $S "host b: xl create lab-reader failed"; return 1; }
  T=$(up)
  attach "$G" 0 "$RSIZE" "$RVOL" || {
    fail $S "host b: attach $RSIZE to dom$G failed: $(tail -n 2 "$LOGS/nvram-tool.log" | tr '\n' ' ')"
    return 1
  }
  xl unpause lab-reader
  V=$(get_wait "$G" verified "$STEP") || V="no report within ${STEP}s"
  SCAN=$(xenstore-read "/local/domain/$G/data/lab-scan" 2>/dev/null)
  timing b-guest-verify "$(since "$T")s (attach to verified; $(xenstore-read "/local/domain/$G/data/lab-open" 2>/dev/null))"
  CRC="crc32c of records 0..$((ACKED - 1)): lab-a before the kill $CRC_A, lab-b after promotion $CRC_B"
  case $V in
    PASS*)
      if [ "$CRC_A" != "?" ] && [ "$CRC_B_VAL" != "?" ] && [ "$CRC_A" != "$CRC_B_VAL" ]; then
        fail $S "host b: guest verified but $CRC"
      else
        pass $S "lab-a killed (kill -9 of its qemu), lab-b promoted by force ($(tail -n 1 /tmp/promote.out)); guest dom$G on lab-b: ${V#PASS } of $ACKED acknowledged, scan: ${SCAN:-?}; $CRC"
      fi
      ;;
    *) fail $S "host b: guest dom$G on lab-b: $V ($ACKED acknowledged; scan: ${SCAN:-?}; $CRC)" ;;
  esac
}

# ------------------------------------------------------------------ run
info "two-host lab: host $PAIR_HOST ($ME), $PAIR_IP, peer $PAIR_PEER, replication scenario $PAIR_REPL"
if net_link; then
  if [ "$PAIR_REPL" = 1 ]; then
    write_cluster
    case $PAIR_HOST in
      a) repl_a ;;
      *) repl_b ;;
    esac
  fi
elif [ "$PAIR_REPL" = 1 ]; then
  fail replication-failover "host $PAIR_HOST: not run, the link between the hosts failed"
fi
