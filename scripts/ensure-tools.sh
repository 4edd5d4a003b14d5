#!/usr/bin/env bash
# Installs the system tools the project drives for real when they are missing (default: redis-server and chromium,
# what the test suite needs). As root it uses apt-get; otherwise it stops with the command to run.
#   scripts/ensure-tools.sh                          # redis-server chromium, required
#   scripts/ensure-tools.sh --optional redis-server  # install when possible, carry on without it otherwise
set -euo pipefail

optional=false
if [ "${1:-}" = "--optional" ]; then
  optional=true
  shift
fi
wanted=("$@")
[ ${#wanted[@]} -eq 0 ] && wanted=(redis-server chromium)

missing=()
for tool in "${wanted[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
[ ${#missing[@]} -eq 0 ] && exit 0

give_up() {
  if $optional; then
    echo "note: ${missing[*]} not installed; carrying on without it ($1)" >&2
    exit 0
  fi
  echo "error: ${missing[*]} is needed but not installed ($1)." >&2
  echo "       Install it, then run make again:  sudo apt-get install -y ${missing[*]}" >&2
  exit 1
}

[ "$(id -u)" -eq 0 ] || give_up "installing needs root"
command -v apt-get >/dev/null 2>&1 || give_up "no apt-get here; use your package manager"
echo "installing ${missing[*]} with apt-get ..."
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq || give_up "apt-get update failed"
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || give_up "apt-get install failed"
echo "installed ${missing[*]}"
