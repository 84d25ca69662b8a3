#!/bin/bash
# make lab-demo: the demo's story on real Xen. Runs the Xen lab
# (tests/lab/run-lab.sh --part all: real Xen 4.17 and PV domains under
# qemu, then two Xen hosts) and tells what happens as it happens: progress
# while the machines boot, one sentence per scenario as it passes or fails,
# then a summary table. The lab's own output goes to BUILD/lab/lab-demo.log.
#
#   tools/lab-demo.sh BUILD_DIR [run-lab.sh options, e.g. --cache DIR]
#   (LAB_DEMO_REPLAY=FILE narrates a recorded lab log instead of running one)
#
# Exit status: the lab's (0 every scenario passed, 77 the lab cannot run on
# this machine, anything else a failure).
set -uo pipefail

BUILD=${1:?usage: lab-demo.sh BUILD_DIR [run-lab.sh options]}
shift
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LOG=$BUILD/lab/lab-demo.log
mkdir -p "$BUILD/lab"
T0=$SECONDS

say() { printf '[%4ds] %s\n' $((SECONDS - T0)) "$*"; }

# What each scenario shows, in the demo's words (docs/lab.md has the detail).
story() {
  case $1 in
    platform-dom0) echo "Xen booted under qemu; the platform layer's runtime tests pass in dom0" ;;
    platform-guest) echo "the same tests pass inside a PV guest (grants, event channels, xenstore)" ;;
    schema-live) echo "dom0's live xenstore matches the documented schema" ;;
    persist-recreate) echo "a guest persists records into a 64 MiB volume; after a vnvramd restart a new guest finds every one" ;;
    isolation) echo "a second guest can neither read nor map the first guest's volume or nodes" ;;
    hostile-fence) echo "a hostile guest (garbage keys, a racing ring, an event-channel storm) fences only its own devices" ;;
    toolstack-create) echo "nvram-tool create starts a domain from an xl config with a vnvram= line" ;;
    toolstack-status-json) echo "nvram-tool status --json reports the device, volume and statistics" ;;
    toolstack-watch) echo "nvram-tool watch attaches the devices of a guest started with plain xl create" ;;
    toolstack-destroy-clean) echo "destroyed guests leave no vnvram node behind in xenstore" ;;
    ext4-external-journal) echo "ext4 keeps its journal on a vnvram volume (NBD through vnvram-frontd); the guest is destroyed mid-write and every fsync'd file is there" ;;
    driver-domain) echo "a driver domain serves a guest's volume, replicated to a witness in dom0" ;;
    multipath-failover) echo "the guest reaches one volume over two paths; the driver domain is destroyed and the guest fails over to dom0 and goes on" ;;
    net-link) echo "two Xen hosts (two qemu machines) see each other on one network" ;;
    replication-failover) echo "host a is lost mid-stream; host b is promoted and holds every acknowledged record" ;;
    *) echo "$1" ;;
  esac
}

# A figure from a scenario's line, where it has one.
detail() {
  local us
  case $1 in
    multipath-failover)
      us=$(sed -n 's/.*failover: result ok, reason [a-z-]*, [0-9]* -> [0-9]*, \([0-9]*\) us.*/\1/p' <<<"$2")
      [[ -n $us ]] && echo "failover in $((us / 1000)) ms (under TCG)" ;;
    persist-recreate) grep -o 'verified [0-9]*' <<<"$2" | head -n 1 ;;
    ext4-external-journal) grep -o 'all [0-9]* files reported durable intact' <<<"$2" | head -n 1 ;;
    hostile-fence) grep -o 'race: [0-9]* requests answered' <<<"$2" | head -n 1 ;;
    replication-failover) grep -o 'verified [0-9]* (mapped) of [0-9]* acknowledged' <<<"$2" | head -n 1 ;;
  esac
  return 0
}

say "the Xen lab: real Xen and PV domains under qemu (TCG), the product's own binaries from $BUILD/bin"
say "the lab's full output: $LOG"
rm -f "$LOG.rows"
last_tick=$SECONDS
run_lab() {
  # LAB_DEMO_REPLAY=FILE tells the story of a recorded lab log instead (to
  # work on the narration without booting anything).
  if [[ -n ${LAB_DEMO_REPLAY:-} ]]; then
    cat "$LAB_DEMO_REPLAY"
    return 0
  fi
  "$HERE/../tests/lab/run-lab.sh" --build-dir "$BUILD" --part all "$@"
}
run_lab "$@" 2>&1 | tee "$LOG" | {
  while IFS= read -r line; do
    case $line in
      *"Debian pieces cached"* | *"fetching"* | *"downloading"*)
        say "Debian pieces for the images: ${line#*] }" ;;
      *"images: "*) say "images built: ${line#*images: }" ;;
      *"booting Xen"*) say "booting Xen + dom0 under qemu (a few minutes under TCG)..." ;;
      *"two-host"*"boot"* | *"booting host"*) say "booting two Xen hosts for the replication story..." ;;
      *" scenario "*" PASS"* | *" scenario "*" FAIL"* | *" scenario "*" SKIP"*)
        name=${line#* scenario }
        name=${name%% *}
        result=PASS
        [[ $line == *" scenario $name FAIL"* ]] && result=FAIL
        [[ $line == *" scenario $name SKIP"* ]] && result=SKIP
        stamp=${line%%]*}
        stamp=${stamp#[}
        stamp=$(tr -s ' ' <<<"$stamp")
        d=$(detail "$name" "$line")
        say "$result  $(story "$name")${d:+ ($d)}"
        echo "ROW|$name|$result|$stamp|$d" ;;
      *"PASS: xen_lab"* | *"FAIL: xen_lab"* | *"SKIP"*"xen_lab"*) say "${line}" ;;
      *)
        # Progress while nothing else is said: one line a minute.
        if ((SECONDS - last_tick >= 60)); then
          last_tick=$SECONDS
          say "... still running (${line:0:100})"
        fi ;;
    esac
  done
} | while IFS= read -r out; do
  if [[ $out == ROW\|* ]]; then
    echo "$out" >>"$LOG.rows"
  else
    echo "$out"
  fi
done
rc=${PIPESTATUS[0]}

echo
echo "== summary of the lab"
printf '  %-26s %-6s %-15s %s\n' "scenario" "result" "machine, time" "figure"
if [[ -f $LOG.rows ]]; then
  while IFS='|' read -r _ name result stamp d; do
    printf '  %-26s %-6s %-15s %s\n' "$name" "$result" "$stamp" "$d"
  done <"$LOG.rows"
  rm -f "$LOG.rows"
fi
case $rc in
  0) echo "== every scenario passed on real Xen in $((SECONDS - T0)) s" ;;
  77) echo "== the Xen lab cannot run on this machine (see $LOG)" ;;
  *) echo "== the lab failed (exit $rc): see $LOG and docs/lab.md" ;;
esac
exit "$rc"
