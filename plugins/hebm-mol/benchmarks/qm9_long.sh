#!/usr/bin/env bash
# The 24k-step QM9 rows of plugins/hebm-mol/README.md: the network of configs/qm9_long.toml (about
# 30 min on one thread), its valency-excess + fragments tilt, the bank `select-statistics` keeps for
# it with the calibration started at the selection's η, and the conditional run (two nitrogens).
# 10,000 molecules per side; one network throughout (train.eta_lr = 0). Usage:
#   bash plugins/hebm-mol/benchmarks/qm9_long.sh QM9_ROOT [OUT]
# JSON goes to plugins/hebm-mol/results/. Export of the shipped model:
#   hebm export --checkpoint OUT/vanilla/checkpoint.pt --out plugins/hebm-mol/hebm_mol/pretrained/qm9.pt \
#       --set 'data.name="nci"' --set 'data.node_counts=[0, 3, 4, 8, 26, 115, 558, 2903, 16541, 100645]'
set -euo pipefail
ROOT="${1:?usage: qm9_long.sh QM9_ROOT [OUT]}"
OUT="${2:-runs/qm9_long}"
H="${HEBM:-.venv/bin/hebm}"
PY="${PYTHON:-.venv/bin/python}"
RES=plugins/hebm-mol/results
CFG=(--config plugins/hebm-mol/configs/qm9_long.toml --set "data.root=\"$ROOT\"" --set train.eta_lr=0)
BANK='[{name="valency", components=["excess", "hydrogens", "bonds"]}, "elements", "bond_orders", "rings", "charge", "fragments"]'
field() { "$PY" -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$1" "$2"; }

$H train "${CFG[@]}" --no-statistics --out "$OUT/vanilla" --resume
for run in vf_cmp bank_start bank_slow; do mkdir -p "$OUT/$run"; [ -d "$OUT/$run/vanilla" ] || cp -r "$OUT/vanilla" "$OUT/$run/vanilla"; done

$H compare "${CFG[@]}" --set 'statistics=[{name = "valency", components = ["excess"]}, "fragments"]' \
    --set hybrid.calibrate_method=\"joint\" --out "$OUT/vf_cmp" --resume
cp "$OUT/vf_cmp/compare.json" "$RES/qm9_long_vf_compare.json"

$H select-statistics "${CFG[@]}" --set "statistics=$BANK" --n 2000 --checkpoint "$OUT/vanilla/checkpoint.pt" --out "$OUT/select"
cp "$OUT/select/selection.json" "$RES/qm9_long_selection.json"
$H compare "${CFG[@]}" --set "statistics=$(field "$OUT/select/selection.json" statistics_toml)" \
    --set "hybrid.calibrate_start=$(field "$OUT/select/selection.json" eta_start_toml)" \
    --set hybrid.calibrate_method=\"joint\" --out "$OUT/bank_start" --resume
cp "$OUT/bank_start/compare.json" "$RES/qm9_long_bank_compare.json"
$H compare "${CFG[@]}" --set "statistics=$(field "$OUT/select/selection.json" statistics_toml)" \
    --set hybrid.calibrate_method=\"joint\" --set hybrid.calibrate_rounds=10 --set hybrid.calibrate_samples=2000 \
    --set hybrid.calibrate_lr=0.5 --out "$OUT/bank_slow" --resume  # from η = 0, more and smaller steps
cp "$OUT/bank_slow/compare.json" "$RES/qm9_long_bank_slow_compare.json"

HEBM=$H bash plugins/hebm-mol/benchmarks/qm9_conditional.sh "$ROOT" "$OUT/vanilla" plugins/hebm-mol/configs/qm9_long.toml "$OUT/conditional"
"$PY" plugins/hebm-mol/benchmarks/qm9_sampler_sweep.py --checkpoint "$OUT/vanilla/checkpoint.pt" --n 2000 \
    --out "$RES/qm9_sampler_sweep.json" --setting steps_per_sigma=20,eps=2e-4 --setting steps_per_sigma=40,eps=1e-4 \
    --setting steps_per_sigma=40,eps=2e-4 --setting steps_per_sigma=20,eps=4e-4
for steps in 400 1000; do
    suffix=$([ "$steps" = 400 ] && echo "" || echo "_$steps")
    "$PY" plugins/hebm-mol/benchmarks/mol_sampling_speed.py --checkpoint plugins/hebm-mol/hebm_mol/pretrained/qm9.pt \
        --n 2000 --steps "$steps" --threads 2 --out "$RES/qm9_speed$suffix.json"
done
echo "results in $RES"
