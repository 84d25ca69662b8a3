# shellcheck shell=sh
# bench.sh - the lab-bench run of the single-VM Xen lab (issue 7, `make
# lab-bench`, run-lab.sh --part bench), sourced by dom0-init.sh (installed
# as /lab/bench.sh in the dom0 image) when the dom0 kernel command line says
# vnvlab_mode=bench; it replaces the lab's scenarios. Uses dom0-init.sh's
# helpers (mark, pass, fail, timing, info, wait_key, put, get_wait, create,
# attach, up, since, left, LOGS, VNVRAMD_PID, WITNESS_PID). See docs/lab.md,
# "lab-bench".
#
# dom0 runs vnvramd (platform xen) and, for the event-channel baseline,
# `vnvram-lab-bench echo`; one PV guest (1 vCPU) runs `vnvram-lab-bench
# guest` on device 0, a local 4 MiB volume. With the replication engine and
# the witness in the build (vnvlab_repl=1 vnvlab_witness=1), vnvramd runs
# with a cluster file of two members on dom0's loopback, lab-dom0 and
# lab-witness (`vnvramd --replica-only`), and device 1 is a 4 MiB volume
# replicated on both (policy sync: one replica); after the guest,
# `vnvram-repl-bench` measures the bare ZeroMQ round trip (and the engine's
# persist without the ring) over the same loopback.
#
# Output on the console, collected by run-lab.sh:
#   BENCH <key> <value>            the guest's figures, then dom0's
#   BENCH-ERROR <figure> <why>     a figure that could not be measured
#   VNVRAM-LAB: scenario lab-bench PASS|FAIL ...   FAIL only when the
#       guest could not measure its figures (never because of a value)
#   VNVRAM-LAB: bench-skip <what> <why>   an optional figure left out

BENCH_VOL=5b1e2d3c-4f5a-4b6c-8d7e-9f0a1b2c3d4e  # local, device 0
BENCH_RVOL=3e2d1c0b-a9f8-4e7d-8c6b-5a4f3e2d1c0b # replicated, device 1
BENCH_SIZE=4M
BENCH_CLUSTER=/etc/vnvram/lab-bench-cluster.json
# The guest's rounds, samples per figure per round, warm-up samples.
BENCH_ARGS="--rounds 5 --iterations 200 --warmup 100"
BENCH_ZMQ_COUNT=2000 # vnvram-repl-bench samples
BENCH_PERSIST_TIMEOUT=30000 # ms: vnvramd's replicated-persist timeout under TCG

bench_repl=0
bench_witness=0
for kv in $CMDLINE; do
  case $kv in
    vnvlab_repl=*) bench_repl=${kv#*=} ;;
    vnvlab_witness=*) bench_witness=${kv#*=} ;;
  esac
done
BENCH_REPLICATED=0
BENCH_WHY="the build has no replication engine (vnvramd --cluster) or no vnvramd --replica-only"
[ "$bench_repl" = 1 ] && [ "$bench_witness" = 1 ] && BENCH_REPLICATED=1

# bench_cluster: the cluster file, both members on dom0's loopback.
bench_cluster() {
  mkdir -p /etc/vnvram
  cat >"$BENCH_CLUSTER" <<EOF
{
  "version": 1,
  "settings": {"heartbeat-interval-ms": 200, "peer-expiry-ms": 4000},
  "hosts": [
    {"id": "lab-dom0", "endpoint": "tcp://127.0.0.1:7401"},
    {"id": "lab-witness", "endpoint": "tcp://127.0.0.1:7402"}
  ],
  "volumes": [
    {"uuid": "$BENCH_RVOL", "name": "lab-bench-repl", "size": "$BENCH_SIZE",
     "replicas": ["lab-dom0", "lab-witness"], "policy": "sync"}
  ]
}
EOF
  cp "$BENCH_CLUSTER" /tmp/lab-bench-cluster.json.out
}

# bench_daemon NAME READY-FIFO LOG ARGS...: starts vnvramd with ARGS in the
# background (BENCH_PID) and waits for its ready fd.
bench_daemon() {
  _name=$1
  _fifo=$2
  _log=$3
  shift 3
  mkfifo "$_fifo"
  T=$(up)
  vnvramd "$@" --log-level info --ready-fd 3 3>"$_fifo" 2>>"$_log" &
  BENCH_PID=$!
  if [ "$(timeout 60 head -c 1 "$_fifo" | wc -c)" -ne 1 ]; then
    info "$_name did not get ready: $(tail -n 3 "$_log" | tr '\n' ' ')"
    return 1
  fi
  timing "$_name-ready" "$(since "$T")s"
}

# bench_backends: the witness (when replicated) and vnvramd. 1 when
# vnvramd cannot start; a replication that cannot start only clears
# BENCH_REPLICATED (with BENCH_WHY).
bench_backends() {
  if [ "$BENCH_REPLICATED" = 1 ]; then
    ip link set lo up
    bench_cluster
    if bench_daemon witness /run/witness.ready "$LOGS/witness.log" --replica-only \
      --vault-dir /var/lib/vnvram-witness --host-id lab-witness --cluster "$BENCH_CLUSTER"; then
      # shellcheck disable=SC2034 # dom0-init.sh's finish stops it
      WITNESS_PID=$BENCH_PID
      if bench_daemon vnvramd /run/vnvramd.ready "$LOGS/vnvramd.log" --platform xen \
        --vault-dir /var/lib/vnvram --host-id lab-dom0 --cluster "$BENCH_CLUSTER" \
        --persist-timeout-ms "$BENCH_PERSIST_TIMEOUT"; then
        VNVRAMD_PID=$BENCH_PID
        R=/local/domain/0/vnvram/replication/$BENCH_RVOL
        T=$(up)
        if wait_key "$R/role" 90 primary >/dev/null && wait_key "$R/serving" 60 1 >/dev/null; then
          timing bench-repl-serving "$(since "$T")s (lab-dom0 primary of $BENCH_RVOL, serving)"
          return 0
        fi
        BENCH_WHY="lab-dom0 never became the serving primary of $BENCH_RVOL"
      else
        BENCH_WHY="vnvramd --cluster did not start"
      fi
    else
      BENCH_WHY="the witness (vnvramd --replica-only) did not start"
    fi
    # Without replication: the local volume only, on a plain vnvramd.
    BENCH_REPLICATED=0
    for p in ${VNVRAMD_PID:-} ${WITNESS_PID:-}; do kill -TERM "$p" 2>/dev/null; done
    for p in ${VNVRAMD_PID:-} ${WITNESS_PID:-}; do wait "$p" 2>/dev/null; done
    VNVRAMD_PID=""
    WITNESS_PID=""
    rm -f /run/vnvramd.ready
    echo "==== lab-bench: restarted without --cluster ($BENCH_WHY) ====" >>"$LOGS/vnvramd.log"
  fi
  bench_daemon vnvramd /run/vnvramd.ready "$LOGS/vnvramd.log" --platform xen \
    --vault-dir /var/lib/vnvram --host-id lab-dom0 || return 1
  VNVRAMD_PID=$BENCH_PID
}

# bench_zmq: vnvram-repl-bench in dom0 as BENCH lines: zmq-rtt-4k, the bare
# ZeroMQ round trip of 4 KiB on loopback, the faster of its two ways of
# waiting (blocked in recv, or polling 300 us first as a persist does), as
# vnvram-repl-bench itself compares; and engine-persist-4k-repl1, the
# engine's persist without the ring.
bench_zmq() {
  if ! command -v vnvram-repl-bench >/dev/null; then
    for _f in zmq-rtt-4k engine-persist-4k-repl1; do
      mark "bench-skip $_f vnvram-repl-bench is not in the dom0 image (not built)"
    done
    return 0
  fi
  mkdir -p /tmp/repl-bench
  T=$(up)
  timeout "$(left)" vnvram-repl-bench --count "$BENCH_ZMQ_COUNT" --size 4096 --dir /tmp/repl-bench \
    >/tmp/repl-bench.out 2>&1
  _rc=$?
  timing bench-repl-bench "$(since "$T")s (vnvram-repl-bench rc=$_rc)"
  # "  baseline: bare ZeroMQ round trip, same size  p50  52.1 us  p99 ..."
  awk -v n="$BENCH_ZMQ_COUNT" '
    function val(line, what,   a) {
      if (!match(line, what " +[0-9.]+")) return ""
      a = substr(line, RSTART, RLENGTH)
      sub(what " +", "", a)
      return a
    }
    /persist, 1 replica \(sync\)/ { ep50 = val($0, "p50"); ep99 = val($0, "p99") }
    /baseline: bare ZeroMQ round trip, same size/ { b50 = val($0, "p50"); b99 = val($0, "p99") }
    /baseline: the same, waiting like a persist/ { s50 = val($0, "p50"); s99 = val($0, "p99") }
    END {
      if (b50 != "") print "BENCH zmq-rtt-4k-block-p50-us " b50
      if (s50 != "") print "BENCH zmq-rtt-4k-spin-p50-us " s50
      if (b50 != "" && (s50 == "" || b50 + 0 <= s50 + 0)) { z50 = b50; z99 = b99 }
      else if (s50 != "") { z50 = s50; z99 = s99 }
      if (z50 != "") print "BENCH zmq-rtt-4k-p50-us " z50 "\nBENCH zmq-rtt-4k-p99-us " z99 "\nBENCH zmq-rtt-4k-samples " n
      if (ep50 != "") print "BENCH engine-persist-4k-repl1-p50-us " ep50 "\nBENCH engine-persist-4k-repl1-p99-us " ep99 "\nBENCH engine-persist-4k-repl1-samples " n
    }
  ' /tmp/repl-bench.out >/tmp/repl-bench.bench
  cat /tmp/repl-bench.bench
  for _f in zmq-rtt-4k engine-persist-4k-repl1; do
    grep -q "^BENCH $_f-p50-us" /tmp/repl-bench.bench ||
      echo "BENCH-ERROR $_f vnvram-repl-bench rc=$_rc: $(tail -n 2 /tmp/repl-bench.out | tr '\n' ' ')"
  done
}

bench_main() {
  S=lab-bench
  if ! bench_backends; then
    fail $S "vnvramd did not get ready: $(tail -n 3 "$LOGS/vnvramd.log" | tr '\n' ' ')"
    return 1
  fi
  [ "$BENCH_REPLICATED" = 1 ] || mark "bench-skip persist-4k-repl1 $BENCH_WHY"
  G=$(create lab-bench bench 256) || {
    fail $S "xl create lab-bench failed"
    return 1
  }
  T=$(up)
  if ! attach "$G" 0 "$BENCH_SIZE" "$BENCH_VOL"; then
    fail $S "attach $BENCH_SIZE to dom$G failed: $(tail -n 2 "$LOGS/nvram-tool.log" | tr '\n' ' ')"
    return 1
  fi
  # The guest's command line (it starts with the subcommand: xenstore-write
  # would take a leading "--" for an option of its own).
  _args="guest --devid 0 $BENCH_ARGS"
  if [ "$BENCH_REPLICATED" = 1 ]; then
    if attach "$G" 1 "$BENCH_SIZE" "$BENCH_RVOL"; then
      _args="$_args --replicated-devid 1"
    else
      mark "bench-skip persist-4k-repl1 attach of the replicated volume failed: $(tail -n 2 "$LOGS/nvram-tool.log" | tr '\n' ' ')"
    fi
  fi
  timing bench-attach "$(since "$T")s"
  put "$G" bench-args "$_args"
  # The event-channel echo: binds the port the guest publishes.
  vnvram-lab-bench --platform xen echo --peer "$G" --timeout-ms "$(($(left) * 1000))" \
    >/tmp/bench-echo.out 2>&1 &
  _echo=$!
  T=$(up)
  xl unpause lab-bench
  _r=$(get_wait "$G" result 400) || _r="no result within 400 s"
  timing bench-guest "$(since "$T")s (unpause to result, guest boot included)"
  kill -TERM "$_echo" 2>/dev/null
  wait "$_echo" 2>/dev/null
  # One figure a line, as the guest printed them (';' joined in xenstore).
  xenstore-read "/local/domain/$G/data/lab-bench-figures" 2>/dev/null | tr ';' '\n' | grep '^BENCH'
  if [ "$BENCH_REPLICATED" = 1 ]; then
    bench_zmq
  else
    for _f in zmq-rtt-4k engine-persist-4k-repl1; do
      mark "bench-skip $_f no replicated volume to compare ($BENCH_WHY)"
    done
  fi
  case $_r in
    "RESULT ok"*) pass $S "dom$G: ${_r#RESULT ok }" ;;
    *) fail $S "dom$G: ${_r#RESULT }" ;;
  esac
}
