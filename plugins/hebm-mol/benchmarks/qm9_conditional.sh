#!/usr/bin/env bash
# Conditional generation on QM9 through the hybrid: a trained vanilla network tilted so that the
# samples' mean nitrogen count is 2 (QM9's is about 1) while valency is matched to the data, against
# the vanilla network reporting against the same target; 2,000 molecules each, GDSS metrics. Usage:
#   bash plugins/hebm-mol/benchmarks/qm9_conditional.sh QM9_ROOT VANILLA_RUN_DIR [CONFIG] [OUT]
# (VANILLA_RUN_DIR: a finished vanilla run of CONFIG, default configs/qm9_long.toml).
# JSON goes to plugins/hebm-mol/results/qm9_conditional_compare.json.
set -euo pipefail
ROOT="${1:?usage: qm9_conditional.sh QM9_ROOT VANILLA_RUN_DIR [CONFIG] [OUT]}"
VANILLA="${2:?usage: qm9_conditional.sh QM9_ROOT VANILLA_RUN_DIR [CONFIG] [OUT]}"
CONFIG="${3:-plugins/hebm-mol/configs/qm9_long.toml}"
OUT="${4:-runs/qm9_conditional}"
H="${HEBM:-.venv/bin/hebm}"
STATS='[{name = "valency", components = ["excess"]}, {name = "elements", components = ["N"], target = 2.0, tolerance = 0.5}]'
mkdir -p "$OUT"
[ -d "$OUT/vanilla" ] || cp -r "$VANILLA" "$OUT/vanilla"
$H compare --config "$CONFIG" --set "data.root=\"$ROOT\"" --set train.eta_lr=0 --set "statistics=$STATS" \
    --set hybrid.calibrate_method=\"joint\" --set sampler.n_samples=2000 --set sampler.progress=false \
    --out "$OUT" --resume
cp "$OUT/compare.json" plugins/hebm-mol/results/qm9_conditional_compare.json
