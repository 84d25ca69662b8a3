# Process helpers shared by tools/demo.sh, tools/tour.sh and
# bench/failover-bench.sh (they source this file). The caller defines WORK
# (a directory for fifos), the array PIDS (what its EXIT trap stops) and
# die() before it calls them.

# start_ready LOG PROGRAM ARGS...: starts the program in the background with
# --ready-fd 3 and waits (10 s) for its ready byte; the pid ends up in
# LAST_PID and PIDS.
start_ready() {
  local log=$1; shift
  local fifo=$WORK/ready.$RANDOM
  mkfifo "$fifo"
  "$@" --ready-fd 3 3>"$fifo" >>"$log" 2>&1 &
  LAST_PID=$!
  PIDS+=("$LAST_PID")
  read -r -t 10 -N 1 _ <"$fifo" || die "$(basename "$1") did not get ready; log: $(tail -n 5 "$log")"
  rm -f "$fifo"
}

# reaped PID: a process we have waited for leaves the list the EXIT trap stops.
reaped() {
  local p keep=()
  for p in "${PIDS[@]}"; do [[ $p == "$1" ]] || keep+=("$p"); done
  PIDS=("${keep[@]}")
}

# fmt_us US: microseconds as milliseconds with one decimal.
fmt_us() { printf '%d.%d' $(( $1 / 1000 )) $(( $1 % 1000 / 100 )); }

# stop_all: stops every process PIDS lists, newest first (guests, then
# daemons, then their xenstoreds): SIGTERM, up to 5 s for a clean exit
# (tail --pid waits on the process itself), then SIGKILL.
stop_all() {
  local i pid
  for (( i = ${#PIDS[@]} - 1; i >= 0; i-- )); do
    pid=${PIDS[i]}
    kill -TERM "$pid" 2>/dev/null || continue
    timeout 5 tail -s 0.02 --pid="$pid" -f /dev/null 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
}

# free_ports N: N TCP ports free on 127.0.0.1 now, in the array FREE_PORTS.
free_ports() {
  local ports
  ports=$(perl -MIO::Socket::INET -e '
    my @s = map { IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => 0, Listen => 1)
                  or die "bind: $!\n" } 1..$ARGV[0];
    print join(" ", map { $_->sockport } @s), "\n";' "$1") || die "could not find free TCP ports on 127.0.0.1"
  read -r -a FREE_PORTS <<<"$ports"
}

# check_prerequisites PROG BIN TARGET: the sim binaries in BIN, perl and
# xenstore-read are there, else a one-line error naming the missing one and
# how to get it (make TARGET, make deps), exit 1.
check_prerequisites() {
  local prog=$1 bin=$2 target=$3 b
  for b in vnvram-xenstored vnvramd nvram-tool vnvram-guest-demo; do
    [[ -x $bin/$b ]] || { echo "$prog: $bin/$b is missing (run make $target)" >&2; exit 1; }
  done
  command -v perl >/dev/null || { echo "$prog: perl is missing (perl-base, Essential on Debian)" >&2; exit 1; }
  command -v xenstore-read >/dev/null ||
    { echo "$prog: xenstore-read is missing (xenstore-utils; make deps)" >&2; exit 1; }
}

# finish PROG RC: the EXIT trap's work. Stops what PIDS lists; removes WORK
# after a success, else keeps it and says so; exits RC.
finish() {
  local prog=$1 rc=$2
  stop_all
  if [[ $rc -ne 0 ]]; then
    echo "$prog: FAILED (exit $rc); logs kept in $WORK" >&2
  else
    rm -rf "$WORK"
  fi
  exit "$rc"
}
