#!/usr/bin/env bash
# vnvram demo: three simulated hosts a, b and c replicating one volume, then
# a fourth, m, whose guest reaches a volume over two paths and fails over.
#
#   tools/demo.sh [BIN_DIR]        (make demo builds, then runs this)
#
# Each host is a sim xenstored (dom0 and a guest domain 1) and a vnvramd as
# its dom0, all on this machine; the vnvramds replicate one 2 MiB volume
# over ZeroMQ on 127.0.0.1 (cluster file in the work directory, policy sync,
# a majority acknowledges every persist). It shows, in order:
#   1. the three hosts up: host a primary of epoch 1, b and c in sync;
#   2. a guest on host a writes and persists records; b and c hold the same
#      bytes right after (nvram-tool inspect: crc32c and sequence per host);
#   3. a guest killed with SIGKILL mid-stream: every record it had
#      acknowledged is intact;
#   4. replica c killed (-9) while a guest writes: writes go on (a+b are a
#      majority); c restarts and is resynced while writing continues; the
#      guest is stopped and the three copies converge;
#   5. host a lost (its vnvramd and its guest killed -9): nvram-tool promote
#      on host b (b+c a majority) makes b primary of epoch 2; a new guest on
#      host b reads every record acknowledged on a;
#   6. multipath on host m (one sim xenstored: the guest, domain 1, and a
#      driver domain 2): vnvramd "dom0" and "drv2" (in domain 2) each serve
#      one path of one volume to the guest, vnvramd --replica-only
#      "witness" is its third replica (own cluster file). The guest writes
#      continuously over path 0; dom0's vnvramd is killed (-9); the guest
#      carries on over path 1: the failover time (kill -> first persist
#      acknowledged, guest clock) and the frontend's own figure
#      (failover/duration-us); dom0's vnvramd restarts and is resynced;
#      nvram-tool failover --to 0 moves the guest back (its result line and
#      time); a fresh guest verifies every acknowledged record;
#   7. a journal (vnvram-journal, docs/journal.md) on a second volume of host
#      m: a guest appends and commits records, dom0's vnvramd is killed, the
#      appender fails over by itself and goes on, is killed in turn; a new
#      guest replays the journal: every acknowledged record, byte-exact;
#   8. detach, and a summary.
# Prints a narrative with timings. Every process it starts is stopped by the
# EXIT trap. Waits are on events with deadlines (ready fds, guest output
# lines, `nvram-tool status --json` or xenstore keys polled until they say
# so); no bare sleeps.
set -euo pipefail

# start_ready, reaped, fmt_us, stop_all, free_ports, check_prerequisites, finish.
source "$(dirname "${BASH_SOURCE[0]}")/sim-processes.sh"
BIN=${1:-build/bin}
BIN=$(cd "$BIN" && pwd)
check_prerequisites demo "$BIN" demo

WORK=$(mktemp -d /tmp/vnvram-demo.XXXXXX)
CLUSTER=$WORK/cluster.json
VOLUME=6a1e5d2c-0b7f-4c3e-9d8a-5f4e3d2c1b0a
SIZE=2097152
PIECE=1048576                 # inspect reads the copies in 1 MiB pieces (max-data)
CAPACITY=$(( (SIZE - 4096) / 64 ))   # demo records: 64 bytes each after a 4 KiB header
PIDS=()
declare -A BE                 # host -> pid of its vnvramd

trap 'finish demo $?' EXIT
trap 'exit 130' INT TERM

# Times are in microseconds, from bash's clock (no process per reading).
[[ -n ${EPOCHREALTIME:-} ]] || { echo "demo: needs bash 5 (EPOCHREALTIME)" >&2; exit 1; }
T0=${EPOCHREALTIME//[!0-9]/}
ms() { echo $(( (${EPOCHREALTIME//[!0-9]/} - $1) / 1000 )); }
say() {
  local e=$(( (${EPOCHREALTIME//[!0-9]/} - T0) / 1000 ))
  printf '[%3d.%03ds] %s\n' $((e / 1000)) $((e % 1000)) "$*"
}
indent() { sed 's/^/           /'; }
die() { echo "demo: $*" >&2; exit 1; }

start_vnvramd() {
  local h=$1
  start_ready "$WORK/$h/vnvramd.log" "$BIN/vnvramd" --platform "sim:$WORK/$h/xs:0" \
    --vault-dir "$WORK/$h/vault" --host-id "$h" --cluster "$CLUSTER"
  BE[$h]=$LAST_PID
}

tool() { local h=$1; shift; "$BIN/nvram-tool" --platform "sim:$WORK/$h/xs:0" "$@"; }
guest() { local h=$1; shift; "$BIN/vnvram-guest-demo" --platform "sim:$WORK/$h/xs:1" "$@"; }

# wait_status HOST SECONDS REGEX...: polls HOST's `nvram-tool status --json`
# (flattened to one line) until every REGEX matches it; dies at the deadline.
wait_status() {
  local h=$1 secs=$2; shift 2
  local end=$(( ${EPOCHREALTIME//[!0-9]/} + secs * 1000000 )) s re ok
  for (( ;; )); do
    s=$(tool "$h" status --json 2>/dev/null | tr -d ' \n' || true)
    ok=1
    for re in "$@"; do [[ $s =~ $re ]] || { ok=0; break; }; done
    (( ok )) && return 0
    (( ${EPOCHREALTIME//[!0-9]/} < end )) || die "host $h: status did not show $* within ${secs} s: $s"
    sleep 0.05   # the polling interval, within the deadline above
  done
}
primary_of() { echo "\"epoch\":\"$1\",.*\"role\":\"primary\",.*\"serving\":true"; }
replica_is() { echo "\"host\":\"$1\",\"progress\":\"[0-9]+\",\"state\":\"$2\""; }

# copy_of HOST: "epoch E sequence S crc32c X Y" of HOST's copy of the volume,
# read over ZeroMQ in 1 MiB pieces (nvram-tool inspect); fails (status 1,
# with the reason) when a read fails or the copy changed between pieces.
copy_of() {
  local h=$1 off out crcs="" seq="" f
  for (( off = 0; off < SIZE; off += PIECE )); do
    out=$("$BIN/nvram-tool" inspect --cluster "$CLUSTER" --host "$h" --volume "$VOLUME" \
      --offset "$off" --length "$PIECE" 2>&1) || { echo "inspect of host $h failed: $out"; return 1; }
    # host H epoch E sequence S offset O length L crc32c X
    read -r -a f <<<"$out"
    [[ -z $seq || $seq == "${f[3]}/${f[5]}" ]] || { echo "host $h changed while read: $out"; return 1; }
    seq="${f[3]}/${f[5]}"
    crcs+=" ${f[11]}"
  done
  echo "epoch ${seq%/*} sequence ${seq#*/} crc32c${crcs}"
}
# same_copies HOST...: prints each host's copy; dies unless they are identical.
same_copies() {
  local h first="" c
  for h in "$@"; do
    c=$(copy_of "$h") || die "$c"
    say "  host $h: $c"
    [[ -z $first || $c == "$first" ]] || die "host $h's copy differs from host $1's"
    first=$c
  done
}
# converged SECONDS HOST...: reads the copies until they are identical (a
# write may still be on its way), then prints them; dies at the deadline.
converged() {
  local end=$(( ${EPOCHREALTIME//[!0-9]/} + $1 * 1000000 )) h c first ok rows
  shift
  for (( ;; )); do
    first="" ok=1 rows=()
    for h in "$@"; do
      c=$(copy_of "$h") || ok=0
      rows+=("  host $h: $c")
      [[ -z $first || $c == "$first" ]] || ok=0
      first=${first:-$c}
    done
    if (( ok )); then
      for c in "${rows[@]}"; do say "$c"; done
      return 0
    fi
    (( ${EPOCHREALTIME//[!0-9]/} < end )) || die "the copies did not converge: ${rows[*]}"
    sleep 0.05   # the polling interval, within the deadline above
  done
}

# A guest writer on HOST's domain 1 writing records FROM..FROM+COUNT-1
# (OPTION...: more vnvram-guest-demo options, before "write"; those after
# "--" go after it). Its stdout goes to a file, so it never waits for us;
# we follow the file with tail -f on fd $FOUT. ACKED is the last record we
# saw acknowledged; REMAP_T the t_us of the last "remapped" line (with
# write --timestamps).
start_writer() {
  local h=$1 from=$2 count=$3 pre=() post=()
  shift 3
  while (( $# )) && [[ $1 != -- ]]; do pre+=("$1"); shift; done
  (( $# )) && shift && post=("$@")
  WLOG=$WORK/writer.$h.$from.out
  : >"$WLOG"   # before tail opens it
  # The binary itself in the background (not through a function), so that
  # WPID is the guest process and kill -9 kills the guest.
  "$BIN/vnvram-guest-demo" --platform "sim:$WORK/$h/xs:1" "${pre[@]}" write --from "$from" \
    --count "$count" "${post[@]}" >"$WLOG" 2>"$WLOG.err" &
  WPID=$!
  PIDS+=("$WPID")
  exec {FOUT}< <(exec tail -n +1 --pid="$WPID" -f "$WLOG")
  TPID=$!
  PIDS+=("$TPID")
  ACKED=$((from - 1))
  DONE_LINE="" REMAP_T=""
}
# follow N SECONDS: reads the writer's lines until record N is acknowledged;
# dies at the deadline, or if the writer fails or ends first.
follow() {
  local want=$1 end=$(( ${EPOCHREALTIME//[!0-9]/} + $2 * 1000000 )) line left secs
  for (( ;; )); do
    (( ACKED >= want )) && return 0
    left=$(( (end - ${EPOCHREALTIME//[!0-9]/}) / 1000 ))
    (( left > 0 )) || die "the guest writer did not get to record $want in $2 s (at $ACKED)"
    printf -v secs '%d.%03d' $((left / 1000)) $((left % 1000))
    if ! IFS= read -r -t "$secs" -u "$FOUT" line; then
      [[ -z $DONE_LINE ]] || die "the guest writer ended (at record $ACKED) before record $want"
      die "the guest writer stopped at record $ACKED: $(tail -2 "$WLOG") $(tail -2 "$WLOG.err")"
    fi
    case $line in
      persisted\ *) line=${line#persisted }; ACKED=${line%% *} ;;
      remapped\ *) REMAP_T=${line##*t_us=} ;;
      done*) DONE_LINE=$line ;;
      error*) die "the guest writer failed: $line" ;;
    esac
  done
}
# acked_now: the last record the writer has acknowledged so far (its log, not
# what we have read of it yet).
acked_now() { sed -n 's/^persisted \([0-9]*\) .*/\1/p' "$WLOG" | tail -1; }
# end_writer [kill]: SIGKILLs the writer (with kill) or reaps it; sets ACKED
# to the last record it acknowledged (each "persisted" line is one write).
end_writer() {
  [[ ${1:-} == kill ]] && { kill -KILL "$WPID"; } 2>/dev/null
  { wait "$WPID"; } 2>/dev/null || true
  reaped "$WPID"
  exec {FOUT}<&-
  { kill -TERM "$TPID"; wait "$TPID"; } 2>/dev/null || true
  reaped "$TPID"
  ACKED=$(acked_now)
}

echo "== vnvram demo: three sim hosts a, b, c replicating one volume over ZeroMQ =="

# Three free ports on 127.0.0.1: bound to port 0 together (so distinct), then
# closed for the vnvramds to bind. perl-base is part of every Debian system.
free_ports 3
read -r PA PB PC <<<"${FREE_PORTS[*]}"
cat >"$CLUSTER" <<EOF
{
  "version": 1,
  "settings": {"heartbeat-interval-ms": 50, "peer-expiry-ms": 500},
  "hosts": [
    {"id": "a", "endpoint": "tcp://127.0.0.1:$PA"},
    {"id": "b", "endpoint": "tcp://127.0.0.1:$PB"},
    {"id": "c", "endpoint": "tcp://127.0.0.1:$PC"}
  ],
  "volumes": [
    {"uuid": "$VOLUME", "name": "journal0", "size": "2M",
     "replicas": ["a", "b", "c"], "policy": "sync"}
  ]
}
EOF

# --- 1. three hosts up, replicating ------------------------------------------
t=${EPOCHREALTIME//[!0-9]/}
for h in a b c; do
  mkdir -p "$WORK/$h/xs" "$WORK/$h/vault"
  start_ready "$WORK/$h/xenstored.log" "$BIN/vnvram-xenstored" --socket-dir "$WORK/$h/xs" --domain 1
done
say "hosts a, b, c: a sim xenstored each (dom0 + guest domain 1) in $(ms "$t") ms"
t=${EPOCHREALTIME//[!0-9]/}
for h in a b c; do start_vnvramd "$h"; done
say "vnvramd up on a, b, c (pids ${BE[a]} ${BE[b]} ${BE[c]}) in $(ms "$t") ms; cluster: 127.0.0.1:$PA/$PB/$PC,"
say "  volume journal0 of 2 MiB on replicas [a, b, c], policy sync, heartbeat 50 ms, peer expiry 500 ms"
wait_status a 10 "$(primary_of 1)" "$(replica_is b in-sync)" "$(replica_is c in-sync)"
say "host a (first replica) proposed epoch 1, b and c accepted: a is primary, b and c in sync ($(ms "$t") ms)"
tool a status | grep -v '^  risk' | indent

# --- 2. a guest on host a writes; b and c hold the same bytes -----------------
t=${EPOCHREALTIME//[!0-9]/}
tool a attach 1 --backend 0 --devid 0 --size 2M --volume "$VOLUME" >/dev/null
say "nvram-tool attach on host a: device 0 of domain 1, volume $VOLUME ($(ms "$t") ms)"
t=${EPOCHREALTIME//[!0-9]/}
out=$(guest a write --count 2000 | tail -1) || true
[[ $out == done* ]] || die "guest write failed: $out"
say "guest on host a wrote and persisted records 0-1999 in $(ms "$t") ms: $out"
say "  each persist is acknowledged once a majority (a + one of b, c) and every in-sync replica hold it"
say "right after, the three copies (nvram-tool inspect of each host, 2 x 1 MiB):"
same_copies a b c

# --- 3. a guest killed mid-stream ----------------------------------------------
start_writer a 2000 20000
follow 4000 10
end_writer kill
say "a guest process writing on host a was killed with SIGKILL after record $ACKED was acknowledged"
t=${EPOCHREALTIME//[!0-9]/}
out=$(guest a verify --count $((ACKED + 1)) | tail -1) || true
[[ $out == verified* ]] || die "after the guest crash: $out"
say "a new guest process re-attached (the backend dropped the dead ring, kept the region):"
say "  records 0-$ACKED: $out ($(ms "$t") ms)"

# --- 4. replica c killed and resynced while a guest writes ---------------------
# The guest writes until we stop it: once c is back in sync and 1000 more
# records are acknowledged (the volume holds many more than that).
from=$((ACKED + 1))
start_writer a "$from" $((CAPACITY - from - 3000))
follow $((from + 1000)) 10
t_kill=${EPOCHREALTIME//[!0-9]/}
{ kill -KILL "${BE[c]}"; wait "${BE[c]}"; } 2>/dev/null || true
reaped "${BE[c]}"
say "replica c's vnvramd killed (-9) while a guest on host a writes records from $from on (at $ACKED)"
wait_status a 5 "$(primary_of 1)" "$(replica_is b in-sync)" "$(replica_is c '(down|outdated)')"
down_at=$(acked_now)
say "host a marked c $(tool a status | sed -n 's/^  replica c *\([a-z-]*\).*/\1/p') after $(ms "$t_kill") ms; writes go on, acknowledged by a + b"
follow $((down_at + 500)) 10
say "  records $down_at-$ACKED acknowledged while c is down"
t=${EPOCHREALTIME//[!0-9]/}
start_vnvramd c
say "vnvramd of c restarted (pid ${BE[c]}) in $(ms "$t") ms; it lost its memory, so it does not vouch"
wait_status a 10 "$(replica_is b in-sync)" "$(replica_is c in-sync)"
synced_ms=$(ms "$t")
synced_at=$(acked_now)
resync=$(grep -o 'resync of c started: [^(]*([^)]*)' "$WORK/a/vnvramd.log" | tail -1)
say "c back in sync $synced_ms ms after its restart, while the guest went on writing (at record $synced_at)"
say "  host a's log: \"$resync\""
follow $((synced_at + 1000)) 10
end_writer kill
longest=$(awk '/^persisted / { u = substr($4, 4) + 0; if (u > m) { m = u; r = $2 } }
               END { printf "%d ms (record %d)", m / 1000, r }' "$WLOG")
say "the guest, stopped (SIGKILL) after record $ACKED: records $synced_at-$ACKED acknowledged by all three"
say "  its longest persist: $longest (one in flight when c died waits until a sees the connection drop and marks c outdated)"
say "the three copies converged:"
converged 5 a b c

# --- 5. host a lost: promote b --------------------------------------------------
from=$((ACKED + 1))
start_writer a "$from" 3000
follow $((from + 1000)) 10
t_lost=${EPOCHREALTIME//[!0-9]/}
# Host a goes down with its guest: both killed at once.
{ kill -KILL "${BE[a]}" "$WPID"; wait "${BE[a]}"; } 2>/dev/null || true
reaped "${BE[a]}"
end_writer
LAST=$ACKED
say "host a lost: its vnvramd and its guest killed (-9) mid-stream; last record acknowledged: $LAST"
t=${EPOCHREALTIME//[!0-9]/}
out=$(tool b promote --volume "$VOLUME" --timeout-ms 10000 2>&1) || true
[[ $out == *": ok" ]] || die "promote on host b: $out; b's log: $(tail -3 "$WORK/b/vnvramd.log")"
wait_status b 5 "$(primary_of 2)" "$(replica_is c in-sync)"
promoted_ms=$(ms "$t_lost")
say "nvram-tool promote on host b: \"$out\" in $(ms "$t") ms: b and c (a majority) accepted epoch 2,"
say "  b adopted the freshest content, resynced c and serves as primary of epoch 2"
t=${EPOCHREALTIME//[!0-9]/}
tool b attach 1 --backend 0 --devid 0 --size 2M --volume "$VOLUME" >/dev/null
out=$(guest b verify --count $((LAST + 1)) | tail -1) || true
[[ $out == verified* ]] || die "on host b after the promotion: $out"
serve_ms=$(ms "$t_lost")
say "a new guest on host b (attach, then the guest, $(ms "$t") ms) read every record acknowledged on a:"
say "  records 0-$LAST: $out"
say "  from the kill of host a: $promoted_ms ms to the promoted primary, $serve_ms ms to a guest served by it"
wait_status b 5 "$(replica_is a down)"
say "host b once a's silence passed the peer expiry:"
tool b status | grep -v '^  risk' | indent
say "b's and c's copies, epoch 2:"
same_copies b c

# --- 6. multipath: one volume on two paths of one host, failover ----------------
# Host m: one sim xenstored with the guest (domain 1) and a driver domain
# (domain 2); vnvramd "dom0" serves path 0, vnvramd "drv2" (running as
# domain 2) path 1, vnvramd --replica-only "witness" is the third replica,
# so that either path's backend and the witness are a majority.
MVOL=2b7c4d1e-8f3a-4e5b-9c6d-0a1b2c3d4e5f
JVOL=5e1a9c3b-7d2f-4a6e-8b0c-9f8e7d6c5b4a
MDIR=/local/domain/1/vnvram/multipath/$MVOL
declare -A MDOM=([dom0]=0 [drv2]=2)
declare -A MPATH=([dom0]=0 [drv2]=1)
mxs() {   # mxs KEY...: the values on host m, one line each ("" when absent)
  local k
  for k in "$@"; do XENSTORED_PATH=$WORK/m/xs/socket xenstore-read "$k" 2>/dev/null || echo ""; done
}
mrepl() { echo "/local/domain/${MDOM[$1]}/vnvram/replication/$MVOL/$2"; }
start_member() {
  local h=$1
  if [[ $h == witness ]]; then
    start_ready "$WORK/m/$h.log" "$BIN/vnvramd" --replica-only --vault-dir "$WORK/m/$h" \
      --host-id "$h" --cluster "$WORK/m/cluster.json"
  else
    start_ready "$WORK/m/$h.log" "$BIN/vnvramd" --platform "sim:$WORK/m/xs:${MDOM[$h]}" \
      --vault-dir "$WORK/m/$h" --host-id "$h" --cluster "$WORK/m/cluster.json"
  fi
  BE[$h]=$LAST_PID
}
# wait_for SECONDS WHAT FUNCTION: until FUNCTION succeeds (polled every
# 50 ms); dies at the deadline.
wait_for() {
  local end=$(( ${EPOCHREALTIME//[!0-9]/} + $1 * 1000000 ))
  until "$3"; do
    (( ${EPOCHREALTIME//[!0-9]/} < end )) ||
      die "host m: no $2 within $1 s (multipath: $(mxs "$MDIR/status" "$MDIR/active-path" | tr '\n' ' '))"
    sleep 0.05   # the polling interval, within the deadline above
  done
}
# m_healthy: MPRIMARY primary and serving, the other two in sync, the
# guest's multipath status optimal with MPRIMARY's path active.
m_healthy() {
  local other=dom0
  [[ $MPRIMARY == dom0 ]] && other=drv2
  [[ $(mxs "$MDIR/status" "$MDIR/active-path" "$(mrepl "$MPRIMARY" role)" \
        "$(mrepl "$MPRIMARY" serving)" "$(mrepl "$MPRIMARY" "replica/$other/state")" \
        "$(mrepl "$MPRIMARY" replica/witness/state)" | tr '\n' ' ') == \
     "optimal ${MPATH[$MPRIMARY]} primary 1 in-sync in-sync " ]]
}
m_group_ready() {
  [[ $(mxs "$(mrepl dom0 role)" "$(mrepl dom0 serving)" "$(mrepl dom0 replica/drv2/state)" \
        "$(mrepl dom0 replica/witness/state)" | tr '\n' ' ') == "primary 1 in-sync in-sync " ]]
}
m_failed_over() {
  [[ $(mxs "$MDIR/failover/state" "$MDIR/failover/to" | tr '\n' ' ') == "done 1 " ]]
}

t=${EPOCHREALTIME//[!0-9]/}
mkdir -p "$WORK/m/xs" "$WORK/m/dom0" "$WORK/m/drv2" "$WORK/m/witness"
free_ports 3
read -r PM0 PM2 PMW <<<"${FREE_PORTS[*]}"
cat >"$WORK/m/cluster.json" <<EOF
{
  "version": 1,
  "settings": {"heartbeat-interval-ms": 50, "peer-expiry-ms": 500},
  "hosts": [
    {"id": "dom0", "endpoint": "tcp://127.0.0.1:$PM0"},
    {"id": "drv2", "endpoint": "tcp://127.0.0.1:$PM2"},
    {"id": "witness", "endpoint": "tcp://127.0.0.1:$PMW"}
  ],
  "volumes": [
    {"uuid": "$MVOL", "name": "journal1", "size": "2M",
     "replicas": ["dom0", "drv2", "witness"], "policy": "sync"},
    {"uuid": "$JVOL", "name": "journal2", "size": "1M",
     "replicas": ["dom0", "drv2", "witness"], "policy": "sync"}
  ]
}
EOF
start_ready "$WORK/m/xenstored.log" "$BIN/vnvram-xenstored" --socket-dir "$WORK/m/xs" --domain 1 --domain 2
for h in dom0 drv2 witness; do start_member "$h"; done
wait_for 10 "dom0 primary with drv2 and witness in sync" m_group_ready
say "host m: one sim xenstored (guest domain 1, driver domain 2); vnvramd dom0 (in dom0), drv2 (in"
say "  driver domain 2) and witness (--replica-only) replicate volume journal1 (2 MiB, sync); dom0 primary ($(ms "$t") ms)"
tool m attach 1 --backend 0 --devid 0 --size 2M --volume "$MVOL" --priority 2 >/dev/null
tool m attach 1 --backend 2 --devid 1 --size 2M --volume "$MVOL" --priority 1 >/dev/null
say "nvram-tool attach: two paths of volume $MVOL to domain 1,"
say "  path 0 served by dom0 (priority 2), path 1 by driver domain 2 (priority 1)"
start_writer m 0 20000 --volume "$MVOL" --timeout-ms 20000 --log-level info -- --timestamps
follow 1000 10
MPRIMARY=dom0
wait_for 10 "optimal multipath group" m_healthy
say "a guest opened the volume by its UUID and writes records; libvnvram grouped the two paths:"
say "  multipath status $(mxs "$MDIR/status"), path 0 $(mxs /local/domain/1/device/vnvram/0/path-role), path 1 $(mxs /local/domain/1/device/vnvram/1/path-role)"
follow $((ACKED + 500)) 10
at=$ACKED
t_kill=${EPOCHREALTIME//[!0-9]/}
{ kill -KILL "${BE[dom0]}"; wait "${BE[dom0]}"; } 2>/dev/null || true
reaped "${BE[dom0]}"
# The guest's "remapped" line carries (t_us, its wall clock) the moment
# the first persist acknowledged on the new path returned.
until [[ -n $REMAP_T ]]; do follow $((ACKED + 1)) 10; done
first_ack=$(( REMAP_T - t_kill ))
wait_for 10 "failover to path 1 reported" m_failed_over
{ read -r fo_us; read -r fo_reason; } < <(mxs "$MDIR/failover/duration-us" "$MDIR/failover/reason")
follow $((ACKED + 500)) 10
say "dom0's vnvramd killed (-9) while the guest wrote (at record $at): the guest paused, failed over"
say "  and carried on over path 1 (drv2 primary of epoch $(mxs "$MDIR/epoch")), now at record $ACKED:"
say "  kill -> first persist acknowledged on path 1: $(fmt_us "$first_ack") ms (on the guest's clock)"
say "  the frontend's failover/duration-us: $(fmt_us "$fo_us") ms (reason $fo_reason; detection to the switch)"
say "  the guest's log: \"$(grep -o 'a standby reports.*' "$WLOG.err" | head -n 1)\""
t=${EPOCHREALTIME//[!0-9]/}
start_member dom0
MPRIMARY=drv2
wait_for 20 "healthy group with drv2 primary" m_healthy
rejoin_ms=$(ms "$t")
say "dom0's vnvramd restarted: it rejoined as a replica and was resynced; path 0 is a ready"
say "  standby again ($rejoin_ms ms; multipath status $(mxs "$MDIR/status"))"
t=${EPOCHREALTIME//[!0-9]/}
out=$(tool m failover 1 "$MVOL" --to 0 --timeout 20 2>&1) || die "nvram-tool failover --to 0: $out"
op_ms=$(ms "$t")
say "nvram-tool failover 1 <volume> --to 0 (the operator, under load) returned in $op_ms ms:"
say "  \"$out\""
MPRIMARY=dom0
wait_for 10 "healthy group with dom0 primary" m_healthy
follow $((ACKED + 500)) 10
end_writer kill
say "the guest, stopped (SIGKILL) after record $ACKED, switched paths $(grep -c '^remapped' "$WLOG") times (its remapped lines)"
t=${EPOCHREALTIME//[!0-9]/}
out=$(guest m --volume "$MVOL" verify --count $((ACKED + 1)) | tail -1) || true
[[ $out == verified* ]] || die "on host m after the failovers: $out"
say "a fresh guest on host m read every acknowledged record: records 0-$ACKED: $out ($(ms "$t") ms)"
MLAST=$ACKED

# --- 7. a journal (vnvram-journal) replayed after a failover ---------------------
# Volume journal2 on two paths of host m, like journal1. A guest process
# appends pattern records to a journal on it and commits every 8 (one
# persist each), printing "ack <seq>" once a commit returned; dom0's
# vnvramd (the primary again) is killed mid-stream, the appender fails over
# by itself to path 3 and goes on, then it is killed too. A new guest
# process replays the journal: every acknowledged record, byte-exact.
jtool() { "$BIN/vnvram-journal" --platform "sim:$WORK/m/xs:1" --volume "$JVOL" --timeout-ms 20000 "$@"; }
JLOG=$WORK/journal.out
JACK=0
# jfollow N SECONDS: reads the appender's lines until ack N.
jfollow() {
  local want=$1 end=$(( ${EPOCHREALTIME//[!0-9]/} + $2 * 1000000 )) line left secs
  while (( JACK < want )); do
    left=$(( (end - ${EPOCHREALTIME//[!0-9]/}) / 1000 ))
    (( left > 0 )) || die "the journal appender did not get to record $want in $2 s (at $JACK)"
    printf -v secs '%d.%03d' $((left / 1000)) $((left % 1000))
    IFS= read -r -t "$secs" -u "$JOUT" line ||
      die "the journal appender stopped at record $JACK: $(tail -2 "$JLOG.err")"
    case $line in
      ack\ *) JACK=${line#ack } ;;
      remapped\ *) JREMAP=$JACK ;;
    esac
  done
}
t=${EPOCHREALTIME//[!0-9]/}
tool m attach 1 --backend 0 --devid 2 --size 1M --volume "$JVOL" --priority 2 >/dev/null
tool m attach 1 --backend 2 --devid 3 --size 1M --volume "$JVOL" --priority 1 >/dev/null
out=$(jtool format 2>&1) || die "vnvram-journal format: $out"
say "volume journal2 on paths 2 (dom0) and 3 (drv2) of host m; vnvram-journal format ($(ms "$t") ms):"
say "  \"$out\""
: >"$JLOG"
"$BIN/vnvram-journal" --platform "sim:$WORK/m/xs:1" --volume "$JVOL" --timeout-ms 20000 \
  append --count 10000000 --size 64 --max-size 512 --batch 8 --ack --auto-trim >"$JLOG" 2>"$JLOG.err" &
JPID=$!
PIDS+=("$JPID")
exec {JOUT}< <(exec tail -n +1 --pid="$JPID" -f "$JLOG")
JTPID=$!
JREMAP=""
jfollow 2000 20
at=$JACK
{ kill -KILL "${BE[dom0]}"; wait "${BE[dom0]}"; } 2>/dev/null || true
reaped "${BE[dom0]}"
jfollow $((at + 2000)) 20
[[ -n $JREMAP ]] || die "the journal appender went on after the kill but never failed over"
{ kill -KILL "$JPID"; wait "$JPID"; } 2>/dev/null || true
reaped "$JPID"
exec {JOUT}<&-
{ kill -TERM "$JTPID"; wait "$JTPID"; } 2>/dev/null || true
reaped "$JTPID"
JACK=$(sed -n 's/^ack //p' "$JLOG" | tail -n 1)
say "a guest appended records (commits of 8, each one persist) to the journal; dom0's vnvramd killed"
say "  (-9) at record $at: the appender failed over to path 3 by itself (at record $JREMAP) and went"
say "  on; it was killed (-9) in turn after record $JACK was acknowledged"
t=${EPOCHREALTIME//[!0-9]/}
out=$(jtool replay --verify 2>&1) || die "vnvram-journal replay: $out"
last=$(sed -n 's/.* last=\([0-9]*\).*/\1/p' <<<"$out")
[[ $out == *"verified=yes"* && -n $last ]] && (( last >= JACK )) ||
  die "the replay after the failover lost acknowledged records (acknowledged $JACK): $out"
replay_ms=$(ms "$t")
say "a new guest process replayed the journal over path 3 ($replay_ms ms):"
say "  \"$out\""
say "  every acknowledged record is there and checks out; records past $JACK are the batch in flight"
JLAST=$JACK
j_healthy() {
  local r=/local/domain/2/vnvram/replication/$JVOL
  [[ $(mxs "$r/role" "$r/serving" "$r/replica/dom0/state" "$r/replica/witness/state" | tr '\n' ' ') == \
     "primary 1 in-sync in-sync " ]]
}
t=${EPOCHREALTIME//[!0-9]/}
start_member dom0
wait_for 20 "journal2: drv2 primary with dom0 and witness in sync" j_healthy
say "dom0's vnvramd restarted: journal2 resynced from drv2, the new primary ($(ms "$t") ms)"

# --- 8. detach, summary ------------------------------------------------------------
t=${EPOCHREALTIME//[!0-9]/}
tool b detach 1 0 >/dev/null
tool m detach 1 0 >/dev/null
tool m detach 1 1 >/dev/null
tool m detach 1 2 >/dev/null
tool m detach 1 3 >/dev/null
for h in b m; do
  left=$(tool "$h" list --json)
  [[ $left == "[]" ]] || die "devices left on host $h after detach: $left"
done
say "nvram-tool detach on hosts b and m: backends Closed, the directories removed ($(ms "$t") ms)"
# The story in one table.
row() { printf '  %-48s %-36s %s\n' "$1" "$2" "$3"; }
echo
echo "== summary"
row "event" "outcome" "time"
row "guest process killed (-9) on host a" "every acknowledged record read back" "-"
row "replica c killed (-9) and restarted" "resynced while the guest wrote" "$synced_ms ms"
row "host a lost; nvram-tool promote on b" "0 acknowledged records lost" "$serve_ms ms to a served guest"
row "active path's backend killed (-9), host m" "the guest failed over by itself" "$(fmt_us "$first_ack") ms to a persist"
row "that backend restarted" "resynced, standby path ready again" "$rejoin_ms ms"
row "operator failover back to path 0" "ok, under load" "$op_ms ms"
row "journal's primary killed (-9)" "replayed whole over the other path" "$replay_ms ms to replay"
echo
echo "== demo done in $(ms "$T0") ms: $((LAST + 1)) records persisted and replicated, none lost to a guest crash,"
echo "   a replica's crash and resync, or the loss of the primary's host (served again from b in $serve_ms ms);"
echo "   $((MLAST + 1)) more over two paths of host m, none lost to kill -9 of the active path's backend"
echo "   (first persist on the other path $(fmt_us "$first_ack") ms after the kill) or to the operator's failover back;"
echo "   a journal of $JLAST acknowledged records replayed whole after its primary was killed =="
