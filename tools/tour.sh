#!/bin/bash
# make tour: a guided tour of nvram-tool on the sim platform, as a shell
# transcript. Every "$ ..." line is the command it runs (run as shown, with
# PATH, D, VOL, VNVRAM_PLATFORM and VNVRAM_CLUSTER set as it says first), and
# what follows is that command's real output. The README's tour is a run of
# this script.
#
# One sim host: a xenstored with a guest (domain 1) and a driver domain
# (domain 2); vnvramd "dom0" serves path 0 of a volume, vnvramd "drv2" (as
# domain 2) path 1, and a witness (vnvramd --replica-only) is the third member
# of its replica group. The tour creates the volume, attaches its two paths,
# lets a guest write, looks at list, status, cluster status and inspect, moves
# the volume with failover while monitor follows, verifies the records and
# detaches. Usage: tools/tour.sh [BIN_DIR] (default build/bin). Everything it
# starts is stopped on exit; on a failure its logs stay in the directory
# it names. Waits are on events (ready bytes, output lines), never bare sleeps.
set -euo pipefail

# start_ready, reaped, free_ports, check_prerequisites, finish.
source "$(dirname "${BASH_SOURCE[0]}")/sim-processes.sh"
BIN=${1:-build/bin}
BIN=$(cd "$BIN" && pwd)
check_prerequisites tour "$BIN" tour

WORK=$(mktemp -d /tmp/vnvram-tour.XXXXXX)
PIDS=()
die() { echo "tour: $*" >&2; exit 1; }
cleanup() {
  local rc=$?
  exec 4>&- 2>/dev/null || true   # the guest's stdin
  finish tour "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The transcript's names: D is the work directory, VOL the volume.
export PATH=$BIN:$PATH
export D=$WORK
export VOL=0b5e7c1a-2f4d-4e6b-9a8c-1d2e3f405162
export VNVRAM_PLATFORM=sim:$D/xs:0
export VNVRAM_CLUSTER=$D/cluster.json

# say LINE...: a blank line, then each LINE as a comment.
say() {
  echo
  printf '# %s\n' "$1"
  shift
  (( $# == 0 )) || printf '#    %s\n' "$@"
}
show() { printf '$ %s\n' "$1"; }
# run 'COMMAND': prints it, then runs it (its output follows).
run() { show "$1"; eval "$1"; }
# daemon LOG 'COMMAND': prints it with " &", starts it in the background and
# waits for its ready byte.
daemon() {
  show "$2 &"
  # shellcheck disable=SC2086 # the command is a word list, as shown
  eval "start_ready \"\$WORK/$1.log\" $2"
}
# wait_until WHAT COMMAND...: until COMMAND succeeds (10 s), else dies
# naming WHAT.
wait_until() {
  local what=$1 end=$(( ${EPOCHREALTIME//[!0-9]/} + 10000000 ))
  shift
  until "$@"; do
    (( ${EPOCHREALTIME//[!0-9]/} < end )) || die "no $what within 10 s"
    sleep 0.02   # the polling interval, within the deadline above
  done
}
# xs KEY: one xenstore value of the sim host ("" when absent).
xs() { XENSTORED_PATH=$D/xs/socket xenstore-read "$1" 2>/dev/null || echo ""; }
has_line() { grep -qE -- "$2" "$1" 2>/dev/null; }   # FILE REGEX
xs_is() { [[ $(xs "$1") == "$2" ]]; }               # KEY VALUE
xs_set() { [[ -n $(xs "$1") ]]; }                   # KEY
wait_line() { wait_until "line /$2/ in $1" has_line "$1" "$2"; }
wait_xs() { wait_until "$1 = $2" xs_is "$1" "$2"; }
wait_set() { wait_until "$1" xs_set "$1"; }

free_ports 3
read -r P0 P2 PW <<<"${FREE_PORTS[*]}"
mkdir -p "$D/xs" "$D/dom0" "$D/drv2" "$D/witness"
cat >"$D/cluster.json" <<EOF
{
  "version": 1,
  "settings": {"heartbeat-interval-ms": 50, "peer-expiry-ms": 500},
  "hosts": [
    {"id": "dom0", "endpoint": "tcp://127.0.0.1:$P0"},
    {"id": "drv2", "endpoint": "tcp://127.0.0.1:$P2"},
    {"id": "witness", "endpoint": "tcp://127.0.0.1:$PW"}
  ],
  "volumes": []
}
EOF

echo "# a tour of nvram-tool on the sim platform (tools/tour.sh); the environment:"
echo "#   PATH=build/bin:\$PATH D=$D (work directory) VOL=$VOL"
echo "#   VNVRAM_PLATFORM=sim:\$D/xs:0 (commands act as dom0)  VNVRAM_CLUSTER=\$D/cluster.json"

say "1. The cluster file lists three hosts: dom0, a driver domain drv2 and a witness." \
    "A volume whose replica group is all three: either path's backend and the" \
    "witness are a majority."
run 'cat $D/cluster.json'
run 'nvram-tool volume create --name journal1 --size 2M --replicas dom0,drv2,witness --uuid $VOL'

say "2. Start the sim host: a xenstored (guest = domain 1, driver domain 2), vnvramd in" \
    "dom0 and in domain 2, the witness. Each reads the cluster file at start."
daemon xenstored 'vnvram-xenstored --socket-dir $D/xs --domain 1 --domain 2'
daemon dom0 'vnvramd --platform sim:$D/xs:0 --host-id dom0 --vault-dir $D/dom0 --cluster $D/cluster.json'
daemon drv2 'vnvramd --platform sim:$D/xs:2 --host-id drv2 --vault-dir $D/drv2 --cluster $D/cluster.json'
daemon witness 'vnvramd --replica-only --host-id witness --vault-dir $D/witness --cluster $D/cluster.json'
# The first replica proposes epoch 1: wait for dom0 to be primary with both in sync.
R=/local/domain/0/vnvram/replication/$VOL
wait_xs "$R/role" primary
wait_xs "$R/replica/drv2/state" in-sync
wait_xs "$R/replica/witness/state" in-sync
run 'nvram-tool cluster status'
run 'nvram-tool volume list'

say "3. Follow every change that matters, one line each (shown at the end)."
run 'nvram-tool monitor --domain 1 >$D/monitor.log 2>$D/monitor.err & MON=$!'
PIDS+=("$MON")
wait_line "$D/monitor.err" '^nvram-tool monitor: watching'

say "4. Give guest 1 two paths to the volume: path 0 via dom0 (priority 10), path 1 via" \
    "driver domain 2 (priority 5). The higher priority is the active path."
run 'nvram-tool attach 1 --backend 0 --devid 0 --size 2M --volume $VOL --priority 10'
run 'nvram-tool attach 1 --backend 2 --devid 1 --size 2M --volume $VOL --priority 5'

say "5. The guest opens the volume by its UUID (libvnvram finds both paths) and writes" \
    "3000 records, pausing after every 1000 for a line on its stdin."
run 'mkfifo $D/guest.in'
exec 4<>"$D/guest.in"   # held open: the guest's stdin ends only when the tour says
show 'vnvram-guest-demo --platform sim:$D/xs:1 --volume $VOL write --count 3000 --pause-every 1000 <$D/guest.in >$D/guest.out &'
vnvram-guest-demo --platform "sim:$D/xs:1" --volume "$VOL" write --count 3000 --pause-every 1000 \
  <"$D/guest.in" >"$D/guest.out" 2>"$D/guest.err" 4>&- &
GUEST=$!
PIDS+=("$GUEST")
wait_line "$D/guest.out" '^paused 999$'
run 'tail -n 2 $D/guest.out'
wait_xs "/local/domain/1/vnvram/multipath/$VOL/status" optimal
# The statistics and sequences are refreshed every second (stats-interval-ms).
wait_set "/local/domain/0/backend/vnvram/1/0/statistics/requests"
wait_xs "$R/sequence" 1000
run 'nvram-tool list'
run 'nvram-tool status --domain 1'

say "6. Move the volume to path 1 while the guest holds it open; failover waits for" \
    "the guest's answer."
run 'nvram-tool failover 1 $VOL --to 1'
say "drv2 is now primary of epoch 2. Let the guest go on: its next persist finds" \
    "the new mapping (gen=2)."
run 'echo >$D/guest.in'
wait_line "$D/guest.out" '^paused 1999$'
run 'grep -m 1 remapped $D/guest.out; tail -n 2 $D/guest.out'
wait_set "/local/domain/2/vnvram/replication/$VOL/replica/witness/acked-sequence"
run 'nvram-tool --platform sim:$D/xs:2 status --domain 1 | head -n 6'

say "7. The three copies hold the same bytes (inspect reads a host's copy over ZeroMQ)."
run 'for h in dom0 drv2 witness; do nvram-tool inspect --host $h --volume $VOL --offset 0 --length 1M; done'

say "8. The guest writes its last 1000 records and exits; a new guest verifies all 3000."
exec 4>&-   # the guest's stdin ends after this line: no pause after the last record
run 'echo >$D/guest.in'
wait "$GUEST" || die "the guest failed: $(tail -n 3 "$D/guest.err")"
reaped "$GUEST"
run 'tail -n 1 $D/guest.out'
run 'vnvram-guest-demo --platform sim:$D/xs:1 --volume $VOL verify --count 3000'

say "9. What monitor saw: every state change of both ends of each path, and of the" \
    "volume's multipath directory. Here the guest's multipath view: status, active" \
    "path, the failover's request and outcome, path roles."
run 'kill $MON; wait $MON'
reaped "$MON"
run 'grep -E " multipath | path-role" $D/monitor.log'
say "10. Detach both paths (each waits for its backend to close), then drop the volume" \
    "from the cluster file."
run 'nvram-tool detach 1 0'
run 'nvram-tool detach 1 1'
run 'nvram-tool list'
run 'nvram-tool volume destroy journal1'

echo
echo "# tour done: every process it started is stopped and \$D removed on exit."
