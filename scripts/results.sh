#!/usr/bin/env bash
# Regenerate every JSON behind a figure quoted in README.md and the plugins' RESULTS.md, one
# command each, into docs/results/ and plugins/<name>/results/ (runs themselves go to runs/results/).
# QM9 runs only when HEBM_QM9_ROOT names a folder with qm9.csv and valid_idx_qm9.json.
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
$H compare --set hybrid.calibrate_rounds=0 --out "$R/toy_rings_sm"   # score matching alone fits η
cp "$R/toy_rings_sm/compare.json" docs/results/toy_compare_sm.json

.venv/bin/python benchmarks/sampler_overhead.py --out docs/results/sampler_overhead.json
.venv/bin/python benchmarks/sampler_cost.py --threads 1 --out docs/results/sampler_cost.json

$H compare --plugin mol --out "$R/mol_nci"
cp "$R/mol_nci/compare.json" plugins/hebm-mol/results/nci_compare.json

$H compare --plugin pointcloud --out "$R/pc_primitives"
cp "$R/pc_primitives/compare.json" plugins/hebm-pointcloud/results/primitives_compare.json

mkdir -p plugins/hebm-image/results
$H compare --config plugins/hebm-image/configs/digits_cpu.toml --out "$R/img_digits"
cp "$R/img_digits/compare.json" plugins/hebm-image/results/digits_compare.json
if [ -n "${HEBM_MNIST_ROOT:-}" ]; then  # a folder with MNIST's four IDX .gz files
    # the budget of the quoted figures: 400 steps, 100 samples, 2 x 64 calibration, 40 AIS temperatures
    $H compare --config plugins/hebm-image/configs/mnist_cpu.toml --set data.root="$HEBM_MNIST_ROOT" --steps 400 \
        --set sampler.n_samples=100 --set hybrid.calibrate_rounds=2 --set hybrid.calibrate_samples=64 \
        --set 'evaluate.metrics=["sample_quality", {name="bits_per_dim", n_chains=32, n_temps=40, max_test=500, pf_ode_images=4}]' \
        --out "$R/img_mnist"
    cp "$R/img_mnist/compare.json" plugins/hebm-image/results/mnist_compare.json
fi
if [ -n "${HEBM_FASHION_ROOT:-}" ]; then  # the same budget on Fashion-MNIST
    $H compare --config plugins/hebm-image/configs/fashion_mnist_cpu.toml --set data.root="$HEBM_FASHION_ROOT" \
        --steps 400 --set sampler.n_samples=100 --set hybrid.calibrate_rounds=2 --set hybrid.calibrate_samples=64 \
        --set 'evaluate.metrics=["sample_quality", {name="bits_per_dim", n_chains=32, n_temps=40, max_test=500, pf_ode_images=4}]' \
        --out "$R/img_fashion"
    cp "$R/img_fashion/compare.json" plugins/hebm-image/results/fashion_mnist_compare.json
fi

HEBM_BLR_DATA="${HEBM_BLR_DATA:-}" bash plugins/hebm-boltzmann/results.sh
.venv/bin/python benchmarks/ais_accuracy.py --out docs/results/ais_accuracy.json
.venv/bin/python benchmarks/kill_resume.py --trials 35 --out docs/results/kill_resume.json

if [ -n "${HEBM_QM9_ROOT:-}" ]; then  # vanilla, valency and the selected bank on one QM9 network; the shipped one's rows
    HEBM=$H bash plugins/hebm-mol/benchmarks/qm9_bank.sh "$HEBM_QM9_ROOT" "$R/qm9_bank"
    HEBM=$H bash plugins/hebm-mol/benchmarks/qm9_long.sh "$HEBM_QM9_ROOT" "$R/qm9_long"  # the 24k-step rows
fi
echo "results: docs/results/ plugins/hebm-mol/results/ plugins/hebm-pointcloud/results/"
