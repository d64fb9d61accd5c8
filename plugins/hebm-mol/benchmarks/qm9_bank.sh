#!/usr/bin/env bash
# QM9, GDSS protocol, 10,000 molecules: vanilla vs the valency hybrid vs the hybrid with the statistics
# `hebm select-statistics` keeps from the bank. One network (train.eta_lr = 0: every η by moment
# matching), so the three differ by their tilt alone. Usage: bash plugins/hebm-mol/benchmarks/qm9_bank.sh QM9_ROOT [OUT]
# (QM9_ROOT holds qm9.csv and valid_idx_qm9.json). JSON goes to plugins/hebm-mol/results/.
set -euo pipefail
ROOT="${1:?usage: qm9_bank.sh QM9_ROOT [OUT]}"
OUT="${2:-runs/qm9_bank}"
H="${HEBM:-.venv/bin/hebm}"
RES=plugins/hebm-mol/results
CFG=(--config plugins/hebm-mol/configs/qm9_cpu.toml --set "data.root=\"$ROOT\"" --set train.eta_lr=0)
BANK='[{name="valency", components=["excess", "hydrogens", "bonds"]}, "elements", "bond_orders", "rings", "charge", "fragments"]'
mkdir -p "$RES"

# 1. vanilla and the valency hybrid (the hybrid takes the vanilla network)
$H compare "${CFG[@]}" --out "$OUT/valency" --resume
cp "$OUT/valency/compare.json" "$RES/qm9_valency_compare.json"

# 2. which of the bank the vanilla network's tilt needs (2,000 samples of it)
$H select-statistics "${CFG[@]}" --set "statistics=$BANK" --n 2000 \
    --checkpoint "$OUT/valency/vanilla/checkpoint.pt" --out "$OUT/select"
cp "$OUT/select/selection.json" "$RES/qm9_selection.json"
SELECTED=$(.venv/bin/python -c "import json,sys; print(json.load(open(sys.argv[1]))['statistics_toml'])" "$OUT/select/selection.json")

# 3. the selected bank's hybrid on the same network (the vanilla run is reused, not retrained)
mkdir -p "$OUT/bank"
[ -d "$OUT/bank/vanilla" ] || cp -r "$OUT/valency/vanilla" "$OUT/bank/vanilla"
$H compare "${CFG[@]}" --set "statistics=$SELECTED" --set hybrid.calibrate_method=\"joint\" --out "$OUT/bank" --resume
cp "$OUT/bank/compare.json" "$RES/qm9_bank_compare.json"
echo "results: $RES/qm9_valency_compare.json $RES/qm9_selection.json $RES/qm9_bank_compare.json"
