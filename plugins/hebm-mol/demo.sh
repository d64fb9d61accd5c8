#!/usr/bin/env bash
# Install hebm-core plus only the molecule plugin into .venv, then draw 1,000 molecules from the
# shipped QM9 model (no training, no data download) into runs/mol-demo: smiles.txt, molecules.sdf,
# molecules.png (seconds on a CPU). With arguments, trains instead: they go to `hebm run --plugin mol`,
# e.g. --config plugins/hebm-mol/configs/qm9_cpu.toml --out runs/qm9 (the QM9 configs read qm9.csv and
# valid_idx_qm9.json from data/qm9, relative to the repository root where this script runs, and fetch
# them there, sha256-checked, when missing; --set data.root=DIR names another folder). Without a QM9
# copy, `hebm run --plugin mol` trains on the embedded RDKit NCI sample (431 molecules).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
bash scripts/setup.sh mol
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
if [ "$#" -eq 0 ]; then
    exec .venv/bin/hebm sample --pretrained qm9 --n 1000 --out runs/mol-demo
fi
exec .venv/bin/hebm run --plugin mol "$@"
