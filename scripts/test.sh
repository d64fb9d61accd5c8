#!/usr/bin/env bash
# Set up .venv (core + all plugins), lint, run the tests. Arguments go to pytest (e.g. -k cli, -x).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh all  # the core and every plugin: the suite tests them all
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/pytest -q "$@"
