#!/bin/sh
# Installs the Debian 12 packages vnvram needs to build and test.
#   tools/install-deps.sh          install whatever is missing (apt-get)
#   tools/install-deps.sh --check  exit 0 when nothing is missing, 1 otherwise
#   --fuzz (with either): also clang-14 and its libFuzzer/sanitizer runtimes,
#                         which `make fuzz` needs (docs/fuzzing.md)
# Runs apt-get as root directly, through sudo otherwise.
set -eu

PACKAGES="
  build-essential cmake pkg-config
  libxen-dev xenstore-utils
  libzmq3-dev cppzmq-dev
  libboost-test-dev
  libspdlog-dev libfmt-dev
  nlohmann-json3-dev libcli11-dev
  spin
  gnuplot-nox
  qemu-utils libnbd-bin
  libsystemd-dev
  debhelper dpkg-dev fakeroot debootstrap
"
# make fuzz: clang++-14 with -fsanitize=fuzzer,address,undefined
# (libclang_rt.fuzzer and the sanitizer runtimes are in libclang-rt-14-dev).
FUZZ_PACKAGES="clang-14 libclang-rt-14-dev"

CHECK=0
for arg in "$@"; do
  case "$arg" in
    --check) CHECK=1 ;;
    --fuzz) PACKAGES="$PACKAGES $FUZZ_PACKAGES" ;;
    *) echo "usage: $0 [--check] [--fuzz]" >&2; exit 2 ;;
  esac
done

missing() {
  for p in $PACKAGES; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
      echo "$p"
    fi
  done
}

MISSING=$(missing)
if [ "$CHECK" = 1 ]; then
  [ -z "$MISSING" ]
  exit $?
fi
if [ -z "$MISSING" ]; then
  echo "deps: all packages present"
  exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
  SUDO=""
elif command -v sudo >/dev/null 2>&1; then
  SUDO="sudo"
else
  echo "deps: missing packages and not root (no sudo):" $MISSING >&2
  exit 1
fi

echo "deps: installing:" $MISSING
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $MISSING
