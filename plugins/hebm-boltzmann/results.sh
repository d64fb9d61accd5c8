#!/usr/bin/env bash
# Regenerate plugins/hebm-boltzmann/results/: `hebm boltzmann` on each target (EDG, then HMC, MALA and
# AIS at EDG's number of evaluations), one report.json per target copied to results/<target>.json,
# and the 2-D pictures to results/<target>.png. Runs go to runs/boltzmann/<target>.
# Targets: the arguments, else mog2, mog6, gmm40, ring, manywell and lj13, plus blr_heart when
# HEBM_BLR_DATA names the BLR folder. The quoted figures' budget: 1,000 EDG training steps (half the
# default), 2,000 samples per sampler; HEBM_BOLTZMANN_ARGS adds options to every run.
# Run it on an otherwise idle machine: the reports record wall times.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
bash scripts/setup.sh boltzmann
OUT=plugins/hebm-boltzmann/results
mkdir -p "$OUT"
TARGETS=("$@")
if [ "${#TARGETS[@]}" -eq 0 ]; then
    TARGETS=(mog2 mog6 gmm40 ring manywell lj13)
    if [ -n "${HEBM_BLR_DATA:-}" ]; then TARGETS+=(blr_heart); fi
fi
for t in "${TARGETS[@]}"; do
    own=()  # LJ-13: the generator's kicks must be small where overlapping particles make ∇U huge
    if [ "$t" = lj13 ]; then own=(--set edg.step_size=0.002 --set edg.grad_clip=100); fi
    # shellcheck disable=SC2086  # the extra options are words on purpose
    .venv/bin/hebm boltzmann --target "$t" --steps 1000 --out "runs/boltzmann/$t" "${own[@]}" ${HEBM_BOLTZMANN_ARGS:-}
    cp "runs/boltzmann/$t/report.json" "$OUT/$t.json"
    if [ -f "runs/boltzmann/$t/samples.png" ]; then cp "runs/boltzmann/$t/samples.png" "$OUT/$t.png"; fi
done
echo "results: $OUT"
