#!/usr/bin/env bash
# Builds the platform's binaries, the one way `make build` and the Dockerfile
# both build them: static (CGO_ENABLED=0), -trimpath, stripped, into OUT.
#
#   scripts/build.sh OUT            every binary below
#   scripts/build.sh OUT NAME...    only those, by binary name (data, comfortctl, ...)
#   scripts/build.sh --list         the binary names and their packages
set -euo pipefail
cd "$(dirname "$0")/.."

# Every binary the platform ships: name and main package. The images are the
# first seven; the all-in-one binary is for `make run` and tests only.
binaries=(
  data:services/data/cmd/data
  device:services/device/cmd/device
  notify:services/notify/cmd/notify
  main-gateway:gateways/main/cmd/main-gateway
  auth-gateway:gateways/auth/cmd/auth-gateway
  admin-gateway:gateways/admin/cmd/admin-gateway
  comfortctl:cli/comfortctl/cmd/comfortctl
  comfortech:deployments/allinone/cmd/comfortech
)

if [ "${1:-}" = --list ]; then
  printf '%s\n' "${binaries[@]}" | tr : ' '
  exit 0
fi
[ $# -ge 1 ] || { echo "usage: $0 OUT [NAME...] | --list" >&2; exit 2; }
out=$1
shift

pkgs=()
if [ $# -eq 0 ]; then
  for b in "${binaries[@]}"; do pkgs+=("./${b#*:}"); done
else
  for name in "$@"; do
    found=""
    for b in "${binaries[@]}"; do
      if [ "${b%%:*}" = "$name" ]; then found="./${b#*:}"; fi
    done
    [ -n "$found" ] || { echo "$0: no binary named $name (see --list)" >&2; exit 2; }
    pkgs+=("$found")
  done
fi

mkdir -p "$out"
CGO_ENABLED=0 exec "${GO:-go}" build -trimpath -ldflags='-s -w' -o "$out/" "${pkgs[@]}"
