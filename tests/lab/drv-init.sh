#!/bin/sh
# drv-init.sh - PID 1 of the lab's driver domain (a PV domain created with
# driver_domain=1; busybox initramfs built by run-lab.sh with vnvramd, the
# Xen modules and xen-netfront). It brings up its end of the vif to dom0,
# then runs vnvramd as the backend of the vnvram devices dom0 attaches with
# --backend <this domid>, with the cluster file dom0 hands it (ZeroMQ
# replication to dom0's vnvramd and the witness over the vif).
#
# dom0 creates this domain paused and, before unpausing it, makes
# /local/domain/<D>/vnvram owned by D (vnvramd's daemon and replication
# keys go there) and writes, in the domain's own data/ directory:
#   data/lab-drv-args     "KEY=VALUE ..." (host-id, ip, dom0-ip, volumes)
#   data/lab-drv-cluster  the cluster file (JSON), or "none"
# This domain answers in data/ too:
#   data/lab-drv-net      "PASS ..." once dom0 answers ping over the vif
#   data/lab-drv-ready    "PASS vnvramd ready ..." or "FAIL why"
# vnvramd logs to the console (dom0's xenconsoled keeps it in
# /var/log/xen/console/guest-NAME.log). The domain runs until dom0
# destroys it.
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
mkdir -p /var/lib/vnvram /etc/vnvram
for m in xen-evtchn xen-gntdev xenfs xen-netfront; do modprobe "$m" || echo "modprobe $m failed"; done
# gntalloc: every page of the regions this domain serves plus their page
# directories (the default limit is 1024 pages).
modprobe xen-gntalloc limit=16384 || echo "modprobe xen-gntalloc failed"
mkdir -p /proc/xen
mount -t xenfs xenfs /proc/xen

DOMID=$(xenstore-read domid)
say() { echo "drv dom$DOMID: $*"; }
put() { xenstore-write "data/lab-$1" "$2" || say "cannot write data/lab-$1"; }
now() {
  read -r NOW _ </proc/uptime
  NOW=${NOW%.*}
}
up() { cut -d' ' -f1 /proc/uptime; }
say "up, uptime $(up)"

ARGS=$(xenstore-read data/lab-drv-args 2>/dev/null)
HOST_ID=lab-drv
IP=10.78.0.2
DOM0_IP=10.78.0.1
PERSIST_TIMEOUT=30000
for kv in $ARGS; do
  case $kv in
    host-id=*) HOST_ID=${kv#*=} ;;
    ip=*) IP=${kv#*=} ;;
    dom0-ip=*) DOM0_IP=${kv#*=} ;;
    persist-timeout-ms=*) PERSIST_TIMEOUT=${kv#*=} ;;
  esac
done

# ------------------------------------------------------------- the vif
# netfront's eth0, a static address on the link to dom0 (10.78.0.0/24
# exists only inside the lab VM); no default route.
ip link set lo up
now
end=$((NOW + 60))
NIC=""
while [ -z "$NIC" ]; do
  for n in /sys/class/net/*; do
    case ${n##*/} in lo | '*') ;; *) NIC=${n##*/} ;; esac
  done
  [ -n "$NIC" ] && break
  now
  [ "$NOW" -lt "$end" ] || break
  sleep 0.2
done
if [ -z "$NIC" ]; then
  put drv-net "FAIL no network interface (xen-netfront)"
else
  ip addr add "$IP/24" dev "$NIC"
  ip link set "$NIC" up
  say "$NIC $(cat "/sys/class/net/$NIC/address") $IP/24"
  T=$(up)
  now
  end=$((NOW + 60))
  until ping -c 1 -W 1 "$DOM0_IP" >/dev/null 2>&1; do
    now
    [ "$NOW" -lt "$end" ] || break
    sleep 0.2
  done
  if ping -c 1 -W 2 "$DOM0_IP" >/tmp/ping.out 2>&1; then
    put drv-net "PASS $NIC $IP: dom0 $DOM0_IP answers ping ($(grep -m1 'round-trip' /tmp/ping.out | sed 's/.*= //'); first answer after $(awk -v a="$T" -v b="$(up)" 'BEGIN { printf "%.1f", b - a }')s)"
  else
    put drv-net "FAIL $NIC $IP: dom0 $DOM0_IP never answered ping"
  fi
fi

# ------------------------------------------------------------- vnvramd
CL=""
if C=$(xenstore-read data/lab-drv-cluster 2>/dev/null) && [ "$C" != none ]; then
  printf '%s\n' "$C" >/etc/vnvram/cluster.json
  CL="--cluster /etc/vnvram/cluster.json --persist-timeout-ms $PERSIST_TIMEOUT"
fi
mkfifo /run/vnvramd.ready
T=$(up)
# shellcheck disable=SC2086 # CL is a list of options
vnvramd --platform xen --vault-dir /var/lib/vnvram --host-id "$HOST_ID" $CL --log-level info \
  --ready-fd 3 3>/run/vnvramd.ready &
PID=$!
if [ "$(timeout 60 head -c 1 /run/vnvramd.ready | wc -c)" -eq 1 ]; then
  put drv-ready "PASS vnvramd ready in $(awk -v a="$T" -v b="$(up)" 'BEGIN { printf "%.2f", b - a }')s (pid $PID, host $HOST_ID${CL:+, with the cluster file})"
else
  put drv-ready "FAIL vnvramd did not get ready (exit: $(kill -0 $PID 2>/dev/null && echo running || echo gone))"
fi
# dom0 destroys this domain.
while :; do sleep 3600; done
