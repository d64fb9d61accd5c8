#!/usr/bin/env bash
# Install hebm-core plus only the molecule plugin into .venv, then train a hybrid EDP-GNN energy with
# the valency statistic on the embedded RDKit NCI sample (431 molecules), sample 500 molecules and
# score them by the GDSS protocol, into runs/mol-demo (a few minutes on two CPU cores).
# Arguments go to `hebm run`, e.g. --config plugins/hebm-mol/configs/qm9_cpu.toml --out runs/qm9: the QM9
# configs read qm9.csv and valid_idx_qm9.json from data/qm9 (relative to the repository root, where this
# script runs) and fetch them there, sha256-checked, when missing; --set data.root=DIR names another folder.
# Vanilla against hybrid: .venv/bin/hebm compare --config plugins/hebm-mol/configs/qm9_cpu.toml --out runs/qm9_cpu
# (add --seeds 0 1 2 for several training seeds and a paired summary).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
bash scripts/setup.sh mol
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
exec .venv/bin/hebm run --plugin mol --out runs/mol-demo "$@"
