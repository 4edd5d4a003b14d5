#!/usr/bin/env bash
# Entry point of the compose Locust image: cachelab-locust ROLE [ARGS...]
#   master [LOCUST ARGS]      Locust master with the web UI (LOCUST_WEB_HOST/LOCUST_WEB_PORT, 0.0.0.0:8089)
#   worker [LOCUST ARGS]      a Locust worker of the master at LOCUST_MASTER_NODE_HOST (locust-master)
#   load SCENARIO [ARGS]      a headless `cachelab load` run (results under /work/results, a compose volume),
#                             with --stub-admin CACHELAB_STUB_ADMIN unless that is empty
#   anything else             run as a command (e.g. bash)
# Master and workers run the locustfile of LOCUST_SCENARIO (steady | stampede | outage | key-order | compare)
# against the API URL in CACHELAB_API_URL_FILE (/shared/api_url, written by the deploy service), or
# CACHELAB_API_URL when set. Options given after the role come last, so they override these defaults.
set -euo pipefail

role="${1:-master}"
if [[ $# -gt 0 ]]; then
  shift
fi

api_url() {
  local file="${CACHELAB_API_URL_FILE:-/shared/api_url}" url="${CACHELAB_API_URL:-}"
  if [[ -z "$url" ]]; then
    if [[ ! -s "$file" ]]; then
      echo "cachelab-locust: no API URL in $file: the deploy service writes it once the stack is deployed" \
        "(docker compose up deploy; docker compose logs deploy), or set CACHELAB_API_URL" >&2
      return 1
    fi
    read -r url < "$file"
  fi
  printf '%s\n' "${url%/}"
}

locustfile() {
  python - "${LOCUST_SCENARIO:-steady}" <<'PY'
import sys

from loadtests.runner import SCENARIOS, locustfile

name = sys.argv[1].replace("_", "-")
if name not in SCENARIOS:
    sys.exit(f"cachelab-locust: unknown LOCUST_SCENARIO {sys.argv[1]!r}; choose one of: {', '.join(SCENARIOS)}")
print(locustfile(name))
PY
}

case "$role" in
  master | worker)
    host="$(api_url)"
    file="$(locustfile)"
    echo "cachelab-locust: $role, $file against $host" >&2
    exec locust -f "$file" "--$role" --host "$host" "$@"
    ;;
  load)
    if [[ $# -eq 0 ]]; then
      echo "cachelab-locust: load needs a scenario: load SCENARIO [cachelab load options]" >&2
      exit 2
    fi
    scenario="$1"
    shift
    host="$(api_url)"
    # An empty CACHELAB_STUB_ADMIN (a real upstream, e.g. a deployment on AWS) means no stub admin API.
    stub=()
    if [[ -n "${CACHELAB_STUB_ADMIN:-}" ]]; then
      stub=(--stub-admin "$CACHELAB_STUB_ADMIN")
    fi
    exec cachelab load "$scenario" --host "$host" "${stub[@]}" "$@"
    ;;
  *)
    exec "$role" "$@"
    ;;
esac
