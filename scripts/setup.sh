#!/usr/bin/env bash
# Create .venv in the repository root (if missing) and install hebm-core into it, editable.
# Arguments name plugins to install too (editable, from plugins/hebm-<name>): mol, pointcloud, image, or all.
# torch is installed only when `import torch` fails in that venv, pinned to the CPU build
# (an unpinned torch would pull several GB of CUDA wheels); a CUDA torch already there stays.
# Override the pin with HEBM_TORCH_SPEC (e.g. HEBM_TORCH_SPEC="torch==2.13.0 --index-url ...").
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON="${PYTHON:-python3}"
VENV=.venv
TORCH_SPEC="${HEBM_TORCH_SPEC:-torch==2.13.0}"

if [ ! -x "$VENV/bin/python" ]; then
    echo "setup: creating $VENV with $("$PYTHON" --version 2>&1)"
    "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"

if ! "$PY" -c "import torch" >/dev/null 2>&1; then
    echo "setup: installing $TORCH_SPEC"
    # shellcheck disable=SC2086  # the spec may carry pip options on purpose
    "$PY" -m pip install --quiet $TORCH_SPEC
fi

# Re-install only when pyproject.toml changed since the last successful setup.
STAMP="$VENV/.hebm-setup-stamp"
if [ ! -f "$STAMP" ] || [ pyproject.toml -nt "$STAMP" ] || ! "$PY" -c "import hebm_core, pytest, ruff, matplotlib" >/dev/null 2>&1; then
    echo "setup: pip install -e .[plot,test]"
    "$PY" -m pip install --quiet -e ".[plot,test]"
    touch "$STAMP"
fi
# Plugins: each one's dependencies resolve with torch held at the installed version (a constraint
# file), so no plugin's unpinned torch requirement (fcd has one) can pull a CUDA build.
PLUGINS=("$@")
if [ "${#PLUGINS[@]}" -eq 1 ] && [ "${PLUGINS[0]}" = all ]; then
    PLUGINS=()
    for d in plugins/hebm-*/; do PLUGINS+=("$(basename "$d" | sed 's/^hebm-//')"); done
fi
for name in "${PLUGINS[@]}"; do
    dir="plugins/hebm-$name"
    if [ ! -f "$dir/pyproject.toml" ]; then
        echo "setup: unknown plugin '$name' (have: $(ls plugins | grep '^hebm-' | sed 's/^hebm-//' | tr '\n' ' '))" >&2
        exit 2
    fi
    stamp="$VENV/.hebm-setup-$name"
    if [ ! -f "$stamp" ] || [ "$dir/pyproject.toml" -nt "$stamp" ]; then
        echo "setup: pip install -e $dir"
        constraints="$(mktemp)"
        "$PY" -c 'import torch; print("torch==" + torch.__version__.split("+")[0])' >"$constraints"
        "$PY" -m pip install --quiet -c "$constraints" -e "$dir"
        rm -f "$constraints"
        touch "$stamp"
    fi
done
echo "setup: ready ($("$PY" -c 'import torch; print("torch", torch.__version__)'))"
