#!/usr/bin/env bash
# Install hebm-core plus only the point-cloud plugin into .venv, then train a hybrid set energy with the
# Laplacian statistic on the embedded primitives (tables and chairs from Open3D boxes), sample,
# evaluate (PointFlow metrics) and write PLY files + PNG grids into runs/pointcloud-demo (a few CPU
# minutes). Arguments go to `hebm run` (e.g. --config plugins/hebm-pointcloud/configs/shapenet.toml
# --set data.root=DIR, DIR your ShapeNet copy in the ONet layout; see datasets/shapenet.md).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
bash scripts/setup.sh pointcloud
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
exec .venv/bin/hebm run --plugin pointcloud --out runs/pointcloud-demo "$@"
