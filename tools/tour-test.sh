#!/bin/bash
# tour_test (ctest): runs `make tour`'s script against the build's binaries
# and checks the transcript the README shows: exit 0, the failover's ok
# line, the same CRC on the three copies, every record verified, both paths
# detached and monitor's view of the failover. Usage: tour-test.sh TOUR_SH BIN_DIR
set -euo pipefail
out=$(mktemp)
trap 'rm -f "$out"' EXIT
fail() { tail -n 60 "$out"; echo "tour_test: $*" >&2; exit 1; }
bash "$1" "$2" >"$out" 2>&1 || fail "the tour failed"
for want in "$ nvram-tool cluster status" "host drv2             tcp://" \
  "(domain 1): ok, path 0 -> 1 in" "remapped gen=2" "host drv2, backend domain 2, vnvramd running" \
  "role primary, epoch 2," "done records=3000" "verified 3000" \
  "detached device 0 of domain 1" "detached device 1 of domain 1" "removed volume journal1" \
  "multipath failover/result: (none) -> ok" "frontend dev 1 path-role: standby -> active" \
  "# tour done"; do
  grep -qF -- "$want" "$out" || fail "the transcript lacks '$want'"
done
# inspect: one line per host, one CRC for all three.
crcs=$(grep -E '^host (dom0|drv2|witness) epoch 2 ' "$out" | awk '{print $NF}' | sort -u)
[[ $(grep -cE '^host (dom0|drv2|witness) epoch 2 ' "$out") -eq 3 ]] || fail "not three inspect lines"
[[ $(wc -l <<<"$crcs") -eq 1 ]] || fail "the copies differ: $crcs"
echo "tour_test: the tour ran to its end; copies agree (crc32c $crcs)"
