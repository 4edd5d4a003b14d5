#!/usr/bin/env bash
# The compose `deploy` service: deploy sam/template.yaml into LocalStack, check that one request goes through
# API Gateway -> the proxy Lambda -> Redis and the stub API, then publish the API URL for Locust and notebooks.
#
# Environment (compose.yaml sets them):
#   CACHELAB_LOCALSTACK_ENDPOINT  LocalStack inside the compose network (http://localstack:4566)
#   CACHELAB_STACK                CloudFormation stack name (cachelab)
#   CACHELAB_DEPLOY_PARAMS        extra template parameters, space-separated Name=Value (empty)
#   CACHELAB_API_URL_FILE         where the API URL is written (/shared/api_url)
#   CACHELAB_SMOKE_TIMEOUT        seconds to wait for the first proxied answer (300; 0 = skip the check)
#   CACHELAB_PUBLIC_ENDPOINT, CACHELAB_PUBLIC_STUB, CACHELAB_PUBLIC_LOCUST
#                                 the same services as seen from the host, for the closing message
#   CACHELAB_APP_DIR              the source tree with cachelab/ and sam/ (/app)
# Exit status: 0 = deployed and answering; otherwise the failing step's status, with its message on stderr.
set -euo pipefail

endpoint="${CACHELAB_LOCALSTACK_ENDPOINT:-http://localstack:4566}"
stack="${CACHELAB_STACK:-cachelab}"
url_file="${CACHELAB_API_URL_FILE:-/shared/api_url}"
smoke_timeout="${CACHELAB_SMOKE_TIMEOUT:-300}"
app_dir="${CACHELAB_APP_DIR:-/app}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

params=()
read -r -a extra <<< "${CACHELAB_DEPLOY_PARAMS:-}"
for param in "${extra[@]}"; do
  params+=(--param "$param")
done

# A URL from an earlier run must not outlive a failed deploy.
rm -f "$url_file"

cd "$app_dir"
echo "deploy: sam deploy of sam/template.yaml to $endpoint (stack $stack)" >&2
# Its output is shown as it comes (stderr) and kept for the "API URL:" line.
output="$(python -m cachelab deploy --target localstack --endpoint-url "$endpoint" --stack-name "$stack" \
  --no-build --yes "${params[@]}" | tee /dev/stderr)" || {
  status=$?
  echo "deploy: cachelab deploy failed (status $status); its output is above" >&2
  exit "$status"
}

api_url="$(sed -n 's/^API URL: //p' <<< "$output" | head -n 1)"
api_url="${api_url%/}"
if [[ -z "$api_url" ]]; then
  echo "deploy: cachelab deploy printed no 'API URL:' line" >&2
  exit 1
fi

if [[ "$smoke_timeout" != "0" ]]; then
  python "$here/check_api.py" "$api_url" --timeout "$smoke_timeout"
fi

tmp="$url_file.tmp.$$"
printf '%s\n' "$api_url" > "$tmp"
mv -f "$tmp" "$url_file"

public_url="$api_url"
if [[ -n "${CACHELAB_PUBLIC_ENDPOINT:-}" && "$api_url" == "$endpoint"* ]]; then
  public_url="${CACHELAB_PUBLIC_ENDPOINT%/}${api_url#"$endpoint"}"
fi
cat <<MESSAGE
cachelab is deployed to LocalStack (stack $stack).
  API, inside compose   $api_url   (written to $url_file)
  API, from this host   $public_url
  try                   curl -i $public_url/items/1
  stub API              ${CACHELAB_PUBLIC_STUB:-http://127.0.0.1:8081}/__admin/
  Locust web UI         ${CACHELAB_PUBLIC_LOCUST:-http://127.0.0.1:8089}
MESSAGE
