#!/usr/bin/env bash
# Install hebm-core plus only the molecule plugin into .venv, then train a hybrid EDP-GNN energy with
# the valency statistic on the embedded RDKit NCI sample (431 molecules), sample 500 molecules and
# score them by the GDSS protocol, into runs/mol-demo (a few minutes on two CPU cores).
# Arguments go to `hebm run` (e.g. --config plugins/hebm-mol/configs/qm9_cpu.toml --out runs/qm9).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
bash scripts/setup.sh mol
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
exec .venv/bin/hebm run --plugin mol --out runs/mol-demo "$@"
