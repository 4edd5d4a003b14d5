#!/usr/bin/env bash
# JupyterLab on 0.0.0.0:8888 (compose publishes it on 127.0.0.1 only), rooted at /work (notebooks/, results/).
# JUPYTER_TOKEN: the login token; when it is empty, Jupyter makes a random one and prints the URL with it
# (`docker compose logs jupyter`). An empty JUPYTER_TOKEN must not reach Jupyter: it would mean "no token".
set -euo pipefail

if [[ -z "${JUPYTER_TOKEN:-}" ]]; then
  unset JUPYTER_TOKEN
fi
exec jupyter lab --ip=0.0.0.0 --port=8888 --no-browser --ServerApp.root_dir=/work "$@"
