#!/usr/bin/env bash
# vnvram demo (first version): one simulated host on the sim platform.
#
#   tools/demo.sh [BIN_DIR]        (make demo builds, then runs this)
#
# Starts a sim xenstored, vnvramd as dom0 and guest programs as domain 1,
# each in its own process; attaches a device; writes and persists numbered,
# checksummed records; kills (-9) a writing guest and shows every record it
# had acknowledged intact; restarts the backend (SIGTERM, vault, restart)
# under a live guest, which re-handshakes and goes on; shows every record
# intact again (through the mapping and in copy mode); detaches. Prints a
# narrative with timings. Every process it starts is stopped by the EXIT
# trap. Waits are on events (ready fds, output lines) with deadlines.
set -euo pipefail

BIN=${1:-build/bin}
BIN=$(cd "$BIN" && pwd)
for b in vnvram-xenstored vnvramd nvram-tool vnvram-guest-demo; do
  [[ -x $BIN/$b ]] || { echo "demo: $BIN/$b is missing (run make demo)" >&2; exit 1; }
done

WORK=$(mktemp -d /tmp/vnvram-demo.XXXXXX)
XS=$WORK/xs
VAULT=$WORK/vault
mkdir -p "$XS" "$VAULT"
VOLUME=6a1e5d2c-0b7f-4c3e-9d8a-5f4e3d2c1b0a
PIDS=()

cleanup() {
  local rc=$?
  for pid in "${PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    # Up to 5 s for a clean exit (tail --pid waits on the process itself).
    timeout 5 tail --pid="$pid" -f /dev/null 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$WORK"
  if [[ $rc -ne 0 ]]; then echo "demo: FAILED (exit $rc)" >&2; fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

T0=$(date +%s%N)
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
say() {
  local e=$(( ($(date +%s%N) - T0) / 1000000 ))
  printf '[%3d.%03ds] %s\n' $((e / 1000)) $((e % 1000)) "$*"
}
die() { echo "demo: $*" >&2; exit 1; }

# Starts "$@" in the background with --ready-fd 3 and waits (10 s) for its
# ready byte; the pid ends up in LAST_PID and PIDS.
start_ready() {
  local log=$1; shift
  local fifo=$WORK/ready.$RANDOM
  mkfifo "$fifo"
  "$@" --ready-fd 3 3>"$fifo" >>"$log" 2>&1 &
  LAST_PID=$!
  PIDS+=("$LAST_PID")
  read -r -t 10 -N 1 _ <"$fifo" || die "$(basename "$1") did not get ready; log: $(tail -5 "$log")"
  rm -f "$fifo"
}

TOOL=("$BIN/nvram-tool" --platform "sim:$XS:0")
GUEST=("$BIN/vnvram-guest-demo" --platform "sim:$XS:1")

echo "== vnvram demo: one sim host, backend in dom0, guest in domain 1 =="
t=$(date +%s%N)
start_ready "$WORK/xenstored.log" "$BIN/vnvram-xenstored" --socket-dir "$XS" --domain 1
XS_PID=$LAST_PID
say "sim xenstored up (pid $XS_PID) in $(ms "$t") ms: the real xenstore wire protocol on $XS/socket"
t=$(date +%s%N)
start_ready "$WORK/vnvramd.log" "$BIN/vnvramd" --platform "sim:$XS:0" --vault-dir "$VAULT"
BE_PID=$LAST_PID
say "vnvramd up as dom0 (pid $BE_PID) in $(ms "$t") ms, vault in $VAULT"

t=$(date +%s%N)
"${TOOL[@]}" attach 1 --backend 0 --devid 0 --size 2M --volume "$VOLUME" >/dev/null
say "nvram-tool attach: device 0 of domain 1, 2 MiB, volume $VOLUME ($(ms "$t") ms)"

# --- 1. a guest writes and persists records -----------------------------
t=$(date +%s%N)
out=$("${GUEST[@]}" write --count 2000 | tail -1)
[[ $out == done* ]] || die "guest write failed: $out"
say "guest (domain 1) wrote and persisted records 0-1999 in $(ms "$t") ms: $out"
"${TOOL[@]}" list | sed 's/^/           /'

# --- 2. the guest crashes mid-stream --------------------------------------
coproc WRITER { exec "${GUEST[@]}" write --from 2000 --count 20000 2>&1; }
WPID=$WRITER_PID
PIDS+=("$WPID")
# bash forgets a coproc's fds when it exits: keep our own copies.
exec {WOUT}<&"${WRITER[0]}" {WIN}>&"${WRITER[1]}"
acked=-1
while read -r -t 10 -u "$WOUT" line; do
  if [[ $line =~ ^persisted\ ([0-9]+) ]]; then acked=${BASH_REMATCH[1]}; fi
  (( acked >= 6000 )) && break
done
{ kill -KILL "$WPID"; wait "$WPID"; } 2>/dev/null || true
exec {WOUT}<&- {WIN}>&-
(( acked >= 6000 )) || die "the writer did not get to record 6000"
say "a second guest process was killed with SIGKILL after record $acked was acknowledged"
t=$(date +%s%N)
out=$("${GUEST[@]}" verify --count $((acked + 1)) | tail -1)
[[ $out == verified* ]] || die "after the frontend crash: $out"
say "new guest process re-attached (backend dropped the dead ring, kept the region) and checked records 0-$acked: $out ($(ms "$t") ms)"

# --- 3. the backend restarts under a live guest ------------------------------
next=$((acked + 1))
coproc WRITER { exec "${GUEST[@]}" write --from "$next" --count 2000 --pause-after 1000 2>&1; }
WPID=$WRITER_PID
PIDS+=("$WPID")
exec {WOUT}<&"${WRITER[0]}" {WIN}>&"${WRITER[1]}"
while read -r -t 10 -u "$WOUT" line; do [[ $line == paused* ]] && break; done
[[ $line == paused* ]] || die "the writer did not pause: $line"
say "live guest paused after record ${line#paused }; stopping vnvramd (SIGTERM: vault, then exit)"
t=$(date +%s%N)
kill -TERM "$BE_PID"
wait "$BE_PID" || die "vnvramd did not stop cleanly"
say "vnvramd stopped in $(ms "$t") ms; vault: $(ls "$VAULT")"
t=$(date +%s%N)
start_ready "$WORK/vnvramd.log" "$BIN/vnvramd" --platform "sim:$XS:0" --vault-dir "$VAULT"
BE_PID=$LAST_PID
say "vnvramd restarted (pid $BE_PID) in $(ms "$t") ms: region restored from the vault, new grants published"
echo go >&"$WIN"
remap=""
done_line=""
while read -r -t 20 -u "$WOUT" line; do
  [[ $line == remapped* ]] && remap=$line
  if [[ -n $remap && -z ${first_after:-} && $line == persisted* ]]; then first_after=$line; fi
  [[ $line == done* ]] && { done_line=$line; break; }
done
wait "$WPID" 2>/dev/null || true
exec {WOUT}<&- {WIN}>&-
[[ -n $remap && -n $done_line ]] || die "the live guest did not reconnect: ${line:-no output}"
say "the live guest noticed the new backend, re-handshook and re-mapped ($remap);"
say "  first persist after the restart: ${first_after:-?} (microseconds, re-handshake included)"
say "  $done_line"
last=$((next + 1999))

# --- 4. everything is still there ----------------------------------------------
t=$(date +%s%N)
out=$("${GUEST[@]}" verify --count $((last + 1)) | tail -1)
[[ $out == verified* ]] || die "final check: $out"
say "all records 0-$last intact: $out ($(ms "$t") ms)"
out=$("${GUEST[@]}" verify --count $((last + 1)) --copy-mode | tail -1)
[[ $out == verified* ]] || die "final copy-mode check: $out"
say "and again through copy mode (granted pages, no mapping): $out"

t=$(date +%s%N)
"${TOOL[@]}" detach 1 0 >/dev/null
say "nvram-tool detach: backend Closed, both directories removed ($(ms "$t") ms)"
left=$("${TOOL[@]}" list --json)
[[ $left == "[]" ]] || die "devices left after detach: $left"
echo "== demo done in $(ms "$T0") ms: every persisted record survived a guest crash and a backend restart =="
