# Process helpers shared by tools/demo.sh and bench/failover-bench.sh (both
# source this file). The caller defines WORK (a directory for fifos), the
# array PIDS (what its EXIT trap stops) and die().

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
