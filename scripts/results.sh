#!/usr/bin/env bash
# Regenerate every JSON behind a figure quoted in README.md and the plugins' RESULTS.md, one
# command each, into docs/results/ and plugins/<name>/results/ (runs themselves go to runs/results/).
# QM9 runs only when HEBM_QM9_ROOT names a folder with qm9.csv and valid_idx_qm9.json (or set
# HEBM_QM9_ROOT=download to fetch them, sha256-checked, into data/qm9).
# Run it on an otherwise idle machine: the reports record wall times.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh all
H=.venv/bin/hebm
R=runs/results
mkdir -p docs/results plugins/hebm-mol/results plugins/hebm-pointcloud/results

$H run --out "$R/toy_demo"
cp "$R/toy_demo/report.json" docs/results/toy_demo.json

$H compare --out "$R/toy_rings"
cp "$R/toy_rings/compare.json" docs/results/toy_compare.json

.venv/bin/python benchmarks/sampler_overhead.py --out docs/results/sampler_overhead.json

$H compare --plugin mol --out "$R/mol_nci"
cp "$R/mol_nci/compare.json" plugins/hebm-mol/results/nci_compare.json

$H compare --plugin pointcloud --out "$R/pc_primitives"
cp "$R/pc_primitives/compare.json" plugins/hebm-pointcloud/results/primitives_compare.json

if [ -n "${HEBM_QM9_ROOT:-}" ]; then
    root=$([ "$HEBM_QM9_ROOT" = download ] && echo data/qm9 || echo "$HEBM_QM9_ROOT")
    $H compare --config plugins/hebm-mol/configs/qm9_cpu.toml --set "data.root=\"$root\"" --out "$R/qm9_cpu"
    cp "$R/qm9_cpu/compare.json" plugins/hebm-mol/results/qm9_cpu_compare.json
fi
echo "results: docs/results/ plugins/hebm-mol/results/ plugins/hebm-pointcloud/results/"
