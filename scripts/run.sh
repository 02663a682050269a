#!/usr/bin/env bash
# Sets everything up and runs the demo: the server with a demo device, until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh run
exec .venv/bin/aiolwm2m demo "$@"
