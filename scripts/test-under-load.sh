#!/usr/bin/env bash
# Runs a command (default: the whole pytest suite, as `make test` runs it) while CPU-bound processes compete for
# every core, the way a laptop that is compiling something or a shared CI runner does. The suite must pass like this.
#   scripts/test-under-load.sh                      # make pytest, with one CPU hog per core
#   scripts/test-under-load.sh make test-fast       # any command
#   LOAD_HOGS=4 scripts/test-under-load.sh          # more hogs than cores
#   LOAD_WITH=python scripts/test-under-load.sh     # Python busy loops instead of stress-ng
# The hogs are stress-ng (installed from apt when missing and we are root) or, without it, Python busy loops. They
# are stopped when the command ends, fails, or is interrupted (Ctrl-C); as a last resort they stop by themselves
# after LOAD_MAX_SECONDS. The exit code is the command's.
set -euo pipefail

hogs="${LOAD_HOGS:-$(nproc)}"
with="${LOAD_WITH:-stress-ng}"
max_seconds="${LOAD_MAX_SECONDS:-3600}"
python="${PYTHON:-python3}"
[ $# -eq 0 ] && set -- make pytest

pids=()
# shellcheck disable=SC2329  # invoked by the traps
stop_hogs() {
  local pid
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  pids=()
}
trap stop_hogs EXIT
trap 'stop_hogs; exit 130' INT
trap 'stop_hogs; exit 143' TERM

if [ "$with" = stress-ng ]; then
  scripts/ensure-tools.sh --optional stress-ng
  command -v stress-ng >/dev/null 2>&1 || with=python
fi
if [ "$with" = stress-ng ]; then
  stress-ng --cpu "$hogs" --timeout "${max_seconds}s" --quiet &
  pids+=("$!")
else
  for _ in $(seq "$hogs"); do
    # A busy loop that also ends by itself when its deadline passes or this script ($$) is gone.
    "$python" -c '
import os, sys, time
end, parent = time.monotonic() + float(sys.argv[1]), int(sys.argv[2])
n = 0
while True:
    n += 1
    if n % 1_000_000 == 0 and (time.monotonic() > end or os.getppid() != parent):
        break
' "$max_seconds" "$$" &
    pids+=("$!")
  done
fi
echo "test-under-load: $hogs CPU hogs ($with, pids ${pids[*]}) compete for the $(nproc) cores"

started=$(date +%s)
rc=0
"$@" || rc=$?
echo "test-under-load: '$*' exited $rc after $(($(date +%s) - started)) s; load average $(cut -d' ' -f1-3 /proc/loadavg)"
exit "$rc"
