#!/usr/bin/env bash
# Installs the Debian packages faultline needs to build, test and benchmark,
# and does nothing when all of them are present. With --bench it also
# installs Redis, which only the KV benchmark compares against, etcd,
# which only the Raft benchmark compares against, and bc.
set -euo pipefail

packages=(
  build-essential cmake pkg-config   # toolchain
  libcjson-dev libsqlite3-dev check  # libraries found with pkg-config
  libnl-3-dev libnl-route-3-dev libnftables-dev libseccomp-dev
  nftables                           # nft, for tests that inspect rules
  chromium                           # the browser test of the reports
  sqlite3                            # the database tests' integrity check
  clang libclang-rt-dev              # libFuzzer harnesses
  time                               # peak memory in bench/
)
case "${1:-}" in
  "") ;;
  --bench) packages+=(redis-server redis-tools etcd-server bc) ;;
  *)
    echo "install-deps: unknown argument \"$1\": expected nothing or --bench" >&2
    exit 2
    ;;
esac

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}"
sudo=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    sudo=(sudo)
  else
    echo "install-deps: missing packages: ${missing[*]}" >&2
    echo "install-deps: run this script as root, or install them yourself" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
