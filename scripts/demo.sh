#!/usr/bin/env bash
# Quick start: set up .venv, then train + sample + evaluate the toy demo into runs/demo.
# Arguments go to `hebm run` (e.g. --steps 500, --out runs/x, --config my.toml).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
# The demo's network is tiny: one intra-op thread is as fast as two on an idle machine and
# many times faster when anything else competes for the cores. Set OMP_NUM_THREADS to override.
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
exec .venv/bin/hebm run "$@"
