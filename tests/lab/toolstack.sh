# shellcheck shell=sh
# toolstack.sh - the toolstack scenarios of the single-VM Xen lab (issue 9),
# sourced by dom0-init.sh (installed as /lab/toolstack.sh in the dom0
# image); dom0-init.sh calls ts_run after the hostile-fence scenario. Uses
# dom0-init.sh's helpers (mark, pass, fail, timing, info, wait_key, put,
# get_wait, up, since, LOGS, STEP, RECORDS, MORE). The guest side is
# guest-init.sh's ts_guest. See docs/lab.md, "The toolstack".
#
#   toolstack-create: `nvram-tool create CFG` with a `vnvram=` line makes
#     the guest; its init finds device 0 present with its backend in
#     InitWait or Connected (the device was there before the guest ran),
#     persists records and verifies them.
#   toolstack-status-json: while that guest holds the device open,
#     `nvram-tool status --domain D --json` is parsed and checked
#     (vnvram-lab-status-check: the schema, the device Connected, its
#     volume, size and statistics).
#   toolstack-watch: `nvram-tool watch` runs in dom0; a guest started with
#     plain `xl create` from /etc/vnvram/domains/NAME.cfg gets its device
#     from the watcher, persists and verifies.
#   toolstack-destroy-clean: `xl destroy` of the earlier scenarios' writer
#     and hostile guests (first, while the watcher runs), `xl shutdown` of
#     the created guest, `xl destroy` of the watched one; then
#     `xenstore-ls -f` shows no vnvram node of any of them (the watcher
#     removed them on @releaseDomain).

TS_VOL_C=5d6e7f80-91a2-4b3c-8d4e-5f6a7b8c9d0e # the created guest's volume
TS_VOL_W=9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b # the watched guest's volume
TS_SIZE=1M
TS_BYTES=1048576
TS_MEM=128
TS_DIR=/etc/vnvram/domains
TS_WATCH_PID=""

# ts_cfg NAME ROLE VOLUME: an xl config with a vnvram= line, on stdout.
ts_cfg() {
  cat <<EOF
# The lab's toolstack guest $1 (tests/lab/toolstack.sh).
name = "$1"
type = "pv"
kernel = "/guest/kernel"
ramdisk = "/guest/initrd.cpio.gz"
extra = "console=hvc0 rdinit=/init loglevel=4 vnvlab_role=$2 vnvlab_records=$RECORDS vnvlab_more=$MORE"
memory = $TS_MEM
vcpus = 1
on_crash = "preserve"
vnvram = [ 'volume=$3, size=$TS_SIZE' ]
EOF
}

# ts_vnvram_nodes DOMID...: the xenstore paths (xenstore-ls -f) that still
# belong to these domains' vnvram devices, one per line.
ts_vnvram_nodes() {
  xenstore-ls -f / 2>/dev/null | cut -d' ' -f1 | while read -r p; do
    for d in "$@"; do
      case $p in
        */backend/vnvram/"$d" | */backend/vnvram/"$d"/*) echo "$p" ;;
        /local/domain/"$d"/device/vnvram*) echo "$p" ;;
        /libxl/"$d"/device/vnvram*) echo "$p" ;;
      esac
    done
  done
}

ts_start_watcher() {
  mkdir -p "$TS_DIR"
  rm -f /run/ts-watch.ready
  mkfifo /run/ts-watch.ready
  nvram-tool --platform xen watch --config-dir "$TS_DIR" --ready-fd 3 \
    3>/run/ts-watch.ready >"$LOGS/nvram-tool-watch.log" 2>&1 &
  TS_WATCH_PID=$!
  [ "$(timeout 30 head -c 1 /run/ts-watch.ready | wc -c)" -eq 1 ]
}

ts_stop_watcher() {
  [ -n "$TS_WATCH_PID" ] || return 0
  kill -TERM "$TS_WATCH_PID" 2>/dev/null
  i=0
  while kill -0 "$TS_WATCH_PID" 2>/dev/null && [ $i -lt 40 ]; do sleep 0.25; i=$((i + 1)); done
  info "nvram-tool watch (pid $TS_WATCH_PID) stopped"
  TS_WATCH_PID=""
}

ts_run() {
  T=$(up)
  if ! ts_start_watcher; then
    for s in toolstack-create toolstack-status-json toolstack-watch toolstack-destroy-clean; do
      fail $s "nvram-tool watch did not get ready: $(tail -n 3 "$LOGS/nvram-tool-watch.log" | tr '\n' ' ')"
    done
    ts_stop_watcher
    return
  fi
  timing ts-watcher-ready "$(since "$T")s"
  info "nvram-tool watch at start: $(tr '\n' ';' <"$LOGS/nvram-tool-watch.log")"
  # The earlier scenarios' guests go first (memory for the two below);
  # the watcher cleans their nodes too.
  GONE=""
  HOW=""
  for n in lab-writer2 lab-hostile; do
    d=$(xl domid "$n" 2>/dev/null) || continue
    xl destroy "$n" && GONE="$GONE $d" && HOW="$HOW, dom$d ($n) xl destroy"
  done

  # ---- toolstack-create: nvram-tool create with vnvram= in the xl config.
  ts_cfg lab-ts-create ts-create "$TS_VOL_C" >/tmp/lab-ts-create.cfg
  T=$(up)
  timeout 120 nvram-tool --platform xen create /tmp/lab-ts-create.cfg --timeout 60 \
    >"$LOGS/nvram-tool-create.log" 2>&1
  RC=$?
  timing ts-create "$(since "$T")s (nvram-tool create: xl create -p, attach, InitWait, unpause; rc=$RC)"
  TC=$(xl domid lab-ts-create 2>/dev/null) || TC=""
  # The watched guest (plain xl create; the watcher attaches its device)
  # boots while the created one is checked.
  ts_cfg lab-ts-watch ts-watch "$TS_VOL_W" >"$TS_DIR/lab-ts-watch.cfg"
  TW_T=$(up)
  TW=""
  if xl create "$TS_DIR/lab-ts-watch.cfg" >/tmp/xl-create-lab-ts-watch.out 2>&1; then
    TW=$(xl domid lab-ts-watch 2>/dev/null) || TW=""
  fi
  if [ $RC -ne 0 ] || [ -z "$TC" ]; then
    fail toolstack-create "nvram-tool create rc=$RC: $(tail -n 3 "$LOGS/nvram-tool-create.log" | tr '\n' ' ')"
    fail toolstack-status-json "no guest made by nvram-tool create"
  else
    AT=$(get_wait "$TC" at-init "$STEP") || AT="no report within ${STEP}s"
    if get_wait "$TC" paused "$STEP" >/dev/null; then
      # The device is Connected and held open: the status a monitor would see.
      nvram-tool --platform xen status --domain "$TC" --json >"$LOGS/ts-status.json" 2>&1
      SRC=$?
      vnvram-lab-status-check --domain "$TC" --devid 0 --volume "$TS_VOL_C" --size $TS_BYTES \
        <"$LOGS/ts-status.json" >/tmp/ts-status-check.out 2>&1
      CRC=$?
      sed 's/^/  status-check: /' /tmp/ts-status-check.out
      if [ $SRC -eq 0 ] && [ $CRC -eq 0 ]; then
        pass toolstack-status-json "dom$TC: $(tail -n 1 /tmp/ts-status-check.out)"
      else
        fail toolstack-status-json "status rc=$SRC, check rc=$CRC: $(tail -n 1 /tmp/ts-status-check.out)"
      fi
    else
      fail toolstack-status-json "guest dom$TC never held its device open (paused)"
    fi
    put "$TC" go 1
    RC1=$(get_wait "$TC" result "$STEP") || RC1="no result within ${STEP}s"
    case "$AT|$RC1" in
      "present "*backend-state=[24]"|PASS"*)
        pass toolstack-create "dom$TC: at init: $AT; $RC1"
        ;;
      *) fail toolstack-create "dom$TC: at init: $AT; result: $RC1" ;;
    esac
  fi

  # ---- toolstack-watch: the watched guest's results (it boots meanwhile).
  if [ -z "$TW" ]; then
    fail toolstack-watch "xl create failed: $(tail -n 3 /tmp/xl-create-lab-ts-watch.out | tr '\n' ' ')"
  else
    RW=$(get_wait "$TW" result "$STEP") || RW="no result within ${STEP}s"
    AW=$(xenstore-read "/local/domain/$TW/data/lab-at-init" 2>/dev/null) || AW="not reported"
    timing ts-watch "$(since "$TW_T")s (xl create to the guest's verified records)"
    ATT=$(grep -m1 "attached domain $TW " "$LOGS/nvram-tool-watch.log")
    case "$RW" in
      PASS*)
        if [ -n "$ATT" ]; then
          pass toolstack-watch "dom$TW (plain xl create): watcher: $ATT; at init: $AW; $RW"
        else
          fail toolstack-watch "dom$TW verified its records but the watcher logged no attach: $(tail -n 2 "$LOGS/nvram-tool-watch.log" | tr '\n' ' ')"
        fi
        ;;
      *) fail toolstack-watch "dom$TW: at init: $AW; result: $RW; watcher: $(tail -n 2 "$LOGS/nvram-tool-watch.log" | tr '\n' ' ')" ;;
    esac
  fi

  # ---- toolstack-destroy-clean: xl shutdown / xl destroy, then no nodes.
  if [ -n "$TC" ]; then
    T=$(up)
    if timeout 90 xl shutdown -w lab-ts-create >/tmp/xl-shutdown.out 2>&1; then
      HOW="$HOW, dom$TC xl shutdown ($(since "$T")s)"
    else
      HOW="$HOW, dom$TC xl shutdown FAILED ($(tail -n 1 /tmp/xl-shutdown.out)), destroyed"
      xl destroy lab-ts-create
    fi
    GONE="$GONE $TC"
  fi
  if [ -n "$TW" ]; then
    xl destroy lab-ts-watch && GONE="$GONE $TW" && HOW="$HOW, dom$TW xl destroy"
  fi
  T=$(up)
  now
  end=$((NOW + 60))
  # shellcheck disable=SC2086 # GONE: domain ids
  while LEFT=$(ts_vnvram_nodes $GONE) && [ -n "$LEFT" ] && [ "$NOW" -lt $end ]; do
    sleep 0.5
    now
  done
  xenstore-ls -f / >"$LOGS/xenstore-after-destroy.txt" 2>&1
  if [ -z "$GONE" ]; then
    fail toolstack-destroy-clean "no domain to destroy"
  elif [ -n "$LEFT" ]; then
    fail toolstack-destroy-clean "${HOW#, }: after 60 s, vnvram nodes left: $(echo "$LEFT" | head -n 4 | tr '\n' ' ')"
  else
    case $HOW in
      *FAILED*) fail toolstack-destroy-clean "${HOW#, }; no vnvram nodes left" ;;
      *) pass toolstack-destroy-clean "${HOW#, }: xenstore-ls shows no vnvram node of domains$GONE ($(since "$T")s)" ;;
    esac
  fi
  ts_stop_watcher
}
