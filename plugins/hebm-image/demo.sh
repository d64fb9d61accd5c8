#!/usr/bin/env bash
# Install hebm-core plus only the image plugin into .venv, then train a hybrid conv energy with the
# border-margin (one η per side), ink and sin_sum statistics on scikit-learn's embedded 8x8 digits (no
# data files), sample 500 images, and report margin ΔT, bits/dim with forward/reverse AIS bounds and a
# classifier FID, into runs/image-demo (report.json, samples.npz, samples.png; several CPU minutes).
# Arguments go to `hebm run`, e.g. --config plugins/hebm-image/configs/mnist_cpu.toml --out runs/mnist
# --set data.root=DIR: the MNIST / Fashion-MNIST configs read the four IDX .gz files from data/mnist or
# data/fashion_mnist (relative to the repository root, where this script runs), or fetch them there,
# sha256-checked, with --set data.download=true.
# Vanilla against hybrid: .venv/bin/hebm compare --config plugins/hebm-image/configs/digits_cpu.toml --out runs/image_digits
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
bash scripts/setup.sh image
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
exec .venv/bin/hebm run --plugin image --out runs/image-demo "$@"
