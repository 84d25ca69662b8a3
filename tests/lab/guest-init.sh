#!/bin/sh
# guest-init.sh - PID 1 of the lab's PV guests (busybox initramfs built by
# run-lab.sh). The role comes from the kernel command line (vnvlab_role=,
# set by dom0-init.sh in the xl config). Progress goes to the console
# (hvc0, logged by dom0's xenconsoled); results go to the guest's own
# xenstore directory, data/lab-*, where dom0 waits for them. dom0 answers
# through data/lab-* keys too (go signals, the victim's identity).
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
for m in xen-evtchn xen-gntdev xen-gntalloc xenfs; do modprobe "$m" || echo "modprobe $m failed"; done
mkdir -p /proc/xen
mount -t xenfs xenfs /proc/xen

ROLE=""
RECORDS=2000
MORE=500
read -r CMDLINE </proc/cmdline
for kv in $CMDLINE; do
  case $kv in
    vnvlab_role=*) ROLE=${kv#*=} ;;
    vnvlab_records=*) RECORDS=${kv#*=} ;;
    vnvlab_more=*) MORE=${kv#*=} ;;
  esac
done
STEP=150
DOMID=$(xenstore-read domid)
say() { echo "guest dom$DOMID ($ROLE): $*"; }
put() { xenstore-write "data/lab-$1" "$2" || say "cannot write data/lab-$1"; }
# now: whole seconds of uptime into NOW, with shell builtins only (no
# fork, no clock call: `date` has been seen to crash under TCG here).
now() {
  read -r NOW _ </proc/uptime
  NOW=${NOW%.*}
}
# wait_key PATH SECONDS [VALUE-PREFIX]: prints the value; 1 on timeout.
wait_key() {
  now
  _end=$((NOW + $2))
  while :; do
    if _v=$(xenstore-read "$1" 2>/dev/null); then
      case $_v in "${3:-}"*) echo "$_v"; return 0 ;; esac
    fi
    now
    [ "$NOW" -lt "$_end" ] || return 1
    sleep 0.3
  done
}
say "up, uptime $(cut -d' ' -f1 /proc/uptime)"

# run_logged FILE CMD...: runs CMD with a deadline, output to FILE and the console.
run_logged() {
  _f=$1
  shift
  timeout 120 "$@" >"$_f" 2>&1
  _rc=$?
  sed "s/^/  /" "$_f"
  return $_rc
}
# demo_logged FILE ARGS...: vnvram-guest-demo on device 0 through run_logged.
demo_logged() {
  _f=$1
  shift
  run_logged "$_f" vnvram-guest-demo --platform xen --devid 0 --timeout-ms 60000 "$@"
}

writer1() {
  if run_logged /tmp/platform.out xen_platform_test --log_level=test_suite --report_level=short &&
    grep -q '^PASS: xen_platform_test' /tmp/platform.out; then
    put platform "PASS"
  else
    put platform "FAIL rc=$? $(tail -n 3 /tmp/platform.out | tr '\n' ' ')"
  fi
  # Write and persist the records, then hold the device open (connected)
  # until dom0 has checked the live xenstore.
  mkfifo /tmp/go
  vnvram-guest-demo --platform xen --devid 0 --timeout-ms 60000 write --count "$RECORDS" --pause-after "$RECORDS" </tmp/go >/tmp/write.out 2>&1 &
  pid=$!
  exec 3>/tmp/go
  now
  end=$((NOW + STEP))
  while ! grep -q '^paused' /tmp/write.out && kill -0 $pid 2>/dev/null && [ "$NOW" -lt $end ]; do
    sleep 0.3
    now
  done
  put open "$(grep -m1 '^open' /tmp/write.out)"
  put first "$(grep -m1 '^persisted' /tmp/write.out)"
  if grep -q '^paused' /tmp/write.out; then
    put paused "$(grep -m1 '^paused' /tmp/write.out)"
    wait_key data/lab-go $STEP >/dev/null || say "no go from dom0"
  fi
  echo go >&3
  exec 3>&-
  wait $pid
  rc=$?
  grep -v '^persisted' /tmp/write.out
  done_line=$(grep '^done' /tmp/write.out)
  if [ $rc -ne 0 ] || [ -z "$done_line" ]; then
    put result "FAIL write rc=$rc: $(tail -n 2 /tmp/write.out | tr '\n' ' ')"
    return
  fi
  if demo_logged /tmp/verify.out verify --count "$RECORDS"; then
    put result "PASS $done_line; $(tail -n 1 /tmp/verify.out)"
  else
    put result "FAIL verify: $(tail -n 2 /tmp/verify.out | tr '\n' ' ')"
  fi
}

writer2() {
  if demo_logged /tmp/verify.out verify --count "$RECORDS"; then
    put verified "PASS $(tail -n 1 /tmp/verify.out) ($(grep -m1 '^open' /tmp/verify.out))"
  else
    put verified "FAIL $(tail -n 2 /tmp/verify.out | tr '\n' ' ')"
  fi
  # The region's grant refs, for dom0 to hand to the hostile guest.
  if run_logged /tmp/refs.out vnvram-lab-probe --platform xen dir-refs --devid 0 --count 4; then
    put refs "$(grep -m1 '^refs' /tmp/refs.out)"
  fi
  wait_key data/lab-go $STEP >/dev/null || say "no go from dom0"
  if ! demo_logged /tmp/write2.out write --from "$RECORDS" --count "$MORE"; then
    put result "FAIL write after the attack: $(tail -n 2 /tmp/write2.out | tr '\n' ' ')"
    return
  fi
  put first "$(grep -m1 '^persisted' /tmp/write2.out)"
  if demo_logged /tmp/verify2.out verify --count $((RECORDS + MORE)); then
    put result "PASS $(grep '^done' /tmp/write2.out); $(tail -n 1 /tmp/verify2.out)"
  else
    put result "FAIL verify: $(tail -n 2 /tmp/verify2.out | tr '\n' ' ')"
  fi
}

# Two-host lab, host a: persist the records and keep the device open (the
# demo pauses after the last one, attached, until this VM is killed).
# data/lab-acked: the number of acknowledged persists ("persisted" lines).
repl_writer() {
  mkfifo /tmp/go
  vnvram-guest-demo --platform xen --devid 0 --timeout-ms 60000 write --count "$RECORDS" \
    --pause-after "$RECORDS" </tmp/go >/tmp/write.out 2>&1 &
  pid=$!
  exec 3>/tmp/go
  now
  end=$((NOW + STEP))
  while ! grep -q '^paused' /tmp/write.out && kill -0 $pid 2>/dev/null && [ "$NOW" -lt $end ]; do
    sleep 0.3
    now
  done
  acked=$(grep -c '^persisted' /tmp/write.out)
  grep -v '^persisted' /tmp/write.out
  grep '^persisted' /tmp/write.out | tail -n 1
  put open "$(grep -m1 '^open' /tmp/write.out)"
  put first "$(grep -m1 '^persisted' /tmp/write.out)"
  put acked "$acked"
  if grep -q '^paused' /tmp/write.out; then
    put result "PASS $acked records persisted (acknowledged), device held open"
  else
    put result "FAIL $acked of $RECORDS acknowledged: $(tail -n 2 /tmp/write.out | tr '\n' ' ')"
  fi
}

# Two-host lab, host b after the promotion: every acknowledged record.
repl_verifier() {
  if demo_logged /tmp/verify.out verify --count "$RECORDS"; then
    put open "$(grep -m1 '^open' /tmp/verify.out)"
    put scan "$(demo_logged /tmp/scan.out scan >/dev/null; grep -m1 '^valid\|^bad' /tmp/scan.out)"
    put verified "PASS $(tail -n 1 /tmp/verify.out)"
  else
    put verified "FAIL $(tail -n 2 /tmp/verify.out | tr '\n' ' ')"
  fi
}

# Driver-domain lab (driver-domain.sh): device 1 is served by the driver
# domain's vnvramd. After dom0's go (that backend primary and serving),
# persist RECORDS records and verify them. Then the multipath phases
# (mp_writer; data/lab-mp-go1 "skip" ends them).
drv_guest() {
  if ! wait_key data/lab-go $STEP >/dev/null; then
    put result "FAIL no go from dom0"
    return
  fi
  vnvram-guest-demo --platform xen --devid 1 --timeout-ms 60000 write --count "$RECORDS" \
    >/tmp/dwrite.out 2>&1
  rc=$?
  grep -v '^persisted' /tmp/dwrite.out
  put open "$(grep -m1 '^open' /tmp/dwrite.out)"
  put first "$(grep -m1 '^persisted' /tmp/dwrite.out)"
  done_line=$(grep '^done' /tmp/dwrite.out)
  if [ $rc -ne 0 ] || [ -z "$done_line" ]; then
    put result "FAIL write on device 1 rc=$rc: $(tail -n 2 /tmp/dwrite.out | tr '\n' ' ')"
  elif run_logged /tmp/dverify.out vnvram-guest-demo --platform xen --devid 1 --timeout-ms 60000 \
    verify --count "$RECORDS"; then
    put result "PASS $done_line; $(tail -n 1 /tmp/dverify.out)"
  else
    put result "FAIL verify on device 1: $(tail -n 2 /tmp/dverify.out | tr '\n' ' ')"
  fi
  mp_writer
}

# multipath-failover (driver-domain.sh; issue 6): continuous workloads on
# the volume dom0 names, opened by its UUID (every path of it). Phase N
# starts on data/lab-mp-goN = "go UUID FROM" (anything else ends them):
# records FROM.. are written and persisted, the last acknowledged one is
# reported in data/lab-mp-acked until dom0 writes data/lab-mp-stopN; then
# every record 0..last is verified and the outcome goes to
# data/lab-mp-resultN.
mp_writer() {
  phase=0
  while :; do
    phase=$((phase + 1))
    V=$(wait_key "data/lab-mp-go$phase" 600) || {
      say "no multipath go $phase from dom0"
      return
    }
    case $V in "go "*) ;; *) return ;; esac
    # shellcheck disable=SC2086 # "go UUID FROM"
    set -- $V
    MVOL=$2
    FROM=$3
    out=/tmp/mp$phase.out
    # The path timeout above vnvramd's persist timeout here (30 s: TCG):
    # a slow primary is not a dead one; xl destroy is noticed in xenstore.
    vnvram-guest-demo --platform xen --volume "$MVOL" --timeout-ms 120000 \
      --path-timeout-ms 40000 write --from "$FROM" \
      --count $((60000 - FROM)) >"$out" 2>&1 &
    pid=$!
    last=$((FROM - 1))
    now
    end=$((NOW + 900))
    while :; do
      line=$(tail -n 3 "$out" | grep '^persisted' | tail -n 1)
      # shellcheck disable=SC2086 # "persisted N gen=G us=U"
      [ -n "$line" ] && set -- $line && [ "$2" != "$last" ] && last=$2 && put mp-acked "$last"
      xenstore-read "data/lab-mp-stop$phase" >/dev/null 2>&1 && break
      kill -0 $pid 2>/dev/null || break
      now
      [ "$NOW" -lt "$end" ] || break
      sleep 0.3
    done
    stopped=no
    if kill -0 $pid 2>/dev/null; then
      kill $pid
      stopped=yes
    fi
    wait $pid
    rc=$?
    grep -v '^persisted' "$out"
    last=$(grep '^persisted' "$out" | tail -n 1 | cut -d' ' -f2)
    [ -n "$last" ] || last=$((FROM - 1))
    put mp-acked "$last"
    # The persists that spanned a path switch (the first after each
    # "remapped" line), and the slowest.
    spans=$(awk '/^remapped/ { r = 1; next } r && /^persisted/ { sub(/.*us=/, ""); printf "%s ", $0; r = 0 }' "$out")
    slowest=$(grep '^persisted' "$out" | sed 's/.*us=//' | sort -n | tail -n 1)
    n=$(grep -c '^persisted' "$out")
    if [ $stopped != yes ]; then
      put "mp-result$phase" "FAIL the writer ended by itself (rc $rc) after record $last: $(tail -n 2 "$out" | tr '\n' ' ')"
    elif grep -q '^error' "$out"; then
      put "mp-result$phase" "FAIL the writer saw an error: $(grep -m1 '^error' "$out")"
    elif [ "$n" -eq 0 ]; then
      put "mp-result$phase" "FAIL nothing acknowledged"
    elif run_logged "/tmp/mpverify$phase.out" vnvram-guest-demo --platform xen --volume "$MVOL" \
      --timeout-ms 60000 verify --count $((last + 1)); then
      put "mp-result$phase" "PASS records $FROM..$last acknowledged ($n), all $((last + 1)) verified ($(tail -n 1 "/tmp/mpverify$phase.out")); remaps: $(grep -c '^remapped' "$out"), persists across them: ${spans:-none} us; slowest persist ${slowest:-?} us"
    else
      put "mp-result$phase" "FAIL verify of records 0..$last: $(tail -n 2 "/tmp/mpverify$phase.out" | tr '\n' ' ')"
    fi
  done
}

# must_fail WHAT CMD...: an isolation check; counts passes and failures.
must_fail() {
  _what=$1
  shift
  if _out=$("$@" 2>&1); then
    say "ISOLATION BROKEN: $_what succeeded: $_out"
    ISO_BAD="$ISO_BAD $_what;"
  else
    say "refused as expected: $_what ($_out)"
    ISO_OK=$((ISO_OK + 1))
  fi
}

hostile() {
  # The attacks on our own devices first (they need nothing from dom0),
  # then the isolation probes against the victim dom0 names.
  # 3a. garbage in our own device's xenstore nodes (device 0).
  BE=$(xenstore-read device/vnvram/0/backend)
  wait_key "$BE/state" 60 2 >/dev/null || say "device 0: backend never InitWait"
  for kv in "ring-page-order=99" "ring-ref=';DROP TABLE" "ring-ref0=-1" "event-channel=-5" \
    "protocol=evil-abi"; do
    xenstore-write "device/vnvram/0/${kv%%=*}" "${kv#*=}" || say "could not write ${kv%%=*}"
  done
  xenstore-write device/vnvram/0/state 3
  if wait_key "$BE/state" 60 5 >/dev/null && err=$(xenstore-read "$BE/error") && [ -n "$err" ]; then
    XS="PASS device 0 fenced on xenstore garbage: '$err'"
  else
    XS="FAIL device 0 not fenced (backend state $(xenstore-read "$BE/state" 2>&1))"
  fi
  say "$XS"
  # 3b. garbage on the ring (device 1).
  if run_logged /tmp/hostile-ring.out vnvram-lab-probe --platform xen hostile-ring --devid 1 --timeout-ms 60000; then
    RG="PASS device 1 $(grep '^race:' /tmp/hostile-ring.out); $(tail -n 1 /tmp/hostile-ring.out | sed 's/^RESULT ok //')"
  else
    RG="FAIL device 1: $(tail -n 1 /tmp/hostile-ring.out)"
  fi
  V=$(wait_key data/lab-victim $STEP) || {
    put isolation "FAIL no victim from dom0"
    put result "FAIL no victim from dom0; $XS; $RG"
    return
  }
  REFS=$(wait_key data/lab-victim-refs 30) || REFS=none
  say "victim dom$V, its region refs: $REFS"
  ISO_OK=0
  ISO_BAD=""
  VF=/local/domain/$V/device/vnvram/0
  VB=/local/domain/0/backend/vnvram/$V/0
  must_fail "read $VF/state" xenstore-read "$VF/state"
  must_fail "read $VF/ring-ref" xenstore-read "$VF/ring-ref"
  must_fail "list $VF" xenstore-ls "$VF"
  must_fail "read $VB/page-dir-ref-0" xenstore-read "$VB/page-dir-ref-0"
  must_fail "read $VB/state" xenstore-read "$VB/state"
  must_fail "write $VF/state" xenstore-write "$VF/state" 6
  must_fail "write $VF/ring-ref" xenstore-write "$VF/ring-ref" 1
  must_fail "write $VB/online" xenstore-write "$VB/online" 0
  must_fail "remove $VF" xenstore-rm "$VF"
  # Positive control: our own device is readable.
  own=$(xenstore-read device/vnvram/0/state 2>&1) || ISO_BAD="$ISO_BAD own device unreadable ($own);"
  if [ "$REFS" != none ]; then
    # shellcheck disable=SC2086 # one argument per ref
    if run_logged /tmp/map-foreign.out vnvram-lab-probe --platform xen map-foreign --granter 0 $REFS; then
      ISO_OK=$((ISO_OK + $(grep -c '^refused' /tmp/map-foreign.out)))
    else
      ISO_BAD="$ISO_BAD $(tail -n 1 /tmp/map-foreign.out);"
    fi
  else
    ISO_BAD="$ISO_BAD no refs to try;"
  fi
  if [ -z "$ISO_BAD" ]; then
    put isolation "PASS $ISO_OK accesses refused (xenstore read/list/write/rm of the victim's device nodes, grant maps of its page directory and region pages)"
  else
    put isolation "FAIL$ISO_BAD"
  fi

  case "$XS|$RG" in
    PASS*"|"PASS*) put result "PASS ${XS#PASS }; ${RG#PASS }" ;;
    *) put result "FAIL $XS; $RG" ;;
  esac
}

# lab-bench (bench.sh): vnvram-lab-bench with the arguments dom0 gives in
# data/lab-bench-args ("guest --devid 0 ...", the replicated device too when
# there is one) against the event-channel echo dom0 runs. Its BENCH lines
# go to data/lab-bench-figures (';' joined), its last line ("RESULT ok|fail
# ...") to data/lab-result.
bench() {
  args=$(wait_key data/lab-bench-args 60) || args="guest --devid 0"
  say "vnvram-lab-bench $args"
  # shellcheck disable=SC2086 # args is a list of words
  timeout 360 vnvram-lab-bench --platform xen $args --timeout-ms 300000 >/tmp/bench.out 2>&1
  rc=$?
  sed "s/^/  /" /tmp/bench.out
  put bench-figures "$(grep '^BENCH' /tmp/bench.out | tr '\n' ';')"
  last=$(grep '^RESULT' /tmp/bench.out | tail -n 1)
  put result "${last:-RESULT fail vnvram-lab-bench rc=$rc: $(tail -n 2 /tmp/bench.out | tr '\n' ' ')}"
}

# The toolstack scenario (tests/lab/toolstack.sh, issue 9). ts-create: the
# guest was made by `nvram-tool create`, so its device must be there, its
# backend ready, before this init runs; ts-watch: a plain `xl create` guest
# whose device the watcher attaches, so it may appear later. Both report
# what they found at start (data/lab-at-init), write and persist records
# (ts-create holds the device open until dom0 has read `nvram-tool status`),
# verify them, and then wait for `xl shutdown` (the kernel asks init to
# power off: busybox poweroff signals PID 1).
ts_guest() {
  if _be=$(xenstore-read device/vnvram/0/backend 2>/dev/null); then
    put at-init "present uptime=$(cut -d' ' -f1 /proc/uptime) backend-state=$(xenstore-read "$_be/state" 2>/dev/null)"
  else
    put at-init "absent uptime=$(cut -d' ' -f1 /proc/uptime)"
  fi
  if ! wait_key device/vnvram/0/backend $STEP >/dev/null; then
    put result "FAIL no vnvram device 0 within ${STEP}s"
  else
    n=64
    mkfifo /tmp/go
    vnvram-guest-demo --platform xen --devid 0 --timeout-ms 60000 write --count $n \
      --pause-after $n </tmp/go >/tmp/write.out 2>&1 &
    pid=$!
    exec 3>/tmp/go
    now
    end=$((NOW + STEP))
    while ! grep -q '^paused' /tmp/write.out && kill -0 $pid 2>/dev/null && [ "$NOW" -lt $end ]; do
      sleep 0.3
      now
    done
    if grep -q '^paused' /tmp/write.out; then
      put paused "$(grep -m1 '^paused' /tmp/write.out)"
      [ "$ROLE" = ts-watch ] || wait_key data/lab-go $STEP >/dev/null || say "no go from dom0"
    fi
    echo go >&3
    exec 3>&-
    wait $pid
    rc=$?
    done_line=$(grep '^done' /tmp/write.out)
    if [ $rc -ne 0 ] || [ -z "$done_line" ]; then
      put result "FAIL write rc=$rc: $(tail -n 2 /tmp/write.out | tr '\n' ' ')"
    elif demo_logged /tmp/verify.out verify --count $n; then
      put result "PASS $done_line; $(tail -n 1 /tmp/verify.out)"
    else
      put result "FAIL verify: $(tail -n 2 /tmp/verify.out | tr '\n' ' ')"
    fi
  fi
  trap 'say "power off requested"; poweroff -f' USR1 USR2 TERM
  say "finished, waiting for xl shutdown"
  while :; do
    sleep 3600 &
    wait $!
  done
}

case $ROLE in
  writer1) writer1 ;;
  writer2) writer2 ;;
  hostile) hostile ;;
  repl-writer) repl_writer ;;
  repl-verifier) repl_verifier ;;
  drv-guest) drv_guest ;;
  bench) bench ;;
  ts-create | ts-watch) ts_guest ;;
  ext4-run | ext4-verify)
    # The ext4 scenario (issue 8): its guest side comes with the ext4
    # overlay dom0 appends to this image (tests/lab/ext4-guest.sh).
    if [ -f /lab/ext4-guest.sh ]; then
      # shellcheck source=ext4-guest.sh
      . /lab/ext4-guest.sh
      if [ "$ROLE" = ext4-run ]; then ext4_run; else ext4_verify; fi
    else
      put result "FAIL /lab/ext4-guest.sh missing: the image has no ext4 overlay"
    fi
    ;;
  *) say "unknown role '$ROLE'" ;;
esac
say "finished, uptime $(cut -d' ' -f1 /proc/uptime)"
# dom0 destroys us.
while :; do sleep 3600; done
