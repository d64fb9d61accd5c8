"""The QM9 results table of the README, from the compare JSON files in ``plugins/hebm-mol/results``.

One row per model side (vanilla or hybrid of each compare), GDSS's public checkpoint first (its
figures measured on this machine class, ``../shared/REFERENCE.md``); every other figure is read
from the JSON named in the row, so the table cannot drift from the files.

    python plugins/hebm-mol/benchmarks/qm9_table.py > /tmp/table.md
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parents[1] / "results"
GDSS = {"validity": 0.9518, "validity_connected": 0.853, "uniqueness": 0.9811, "novelty": 0.817,
        "nspdk_mmd": 0.0036, "fcd": 2.49, "samples_per_s": 3.58}  # fmt: skip
TARGETS = {"validity": 0.99, "validity_connected": 0.90, "uniqueness": 0.98, "novelty": 0.80,
           "nspdk_mmd": 0.0036, "fcd": 2.49}  # fmt: skip
COLUMNS = ("validity", "validity_connected", "uniqueness", "novelty", "nspdk_mmd", "fcd")
#: (label, compare file, side)
ROWS = [
    ("vanilla, 4k steps (`qm9_cpu.toml`)", "qm9_valency_compare.json", "vanilla"),
    ("hybrid: valency", "qm9_valency_compare.json", "hybrid"),
    ("hybrid: selected bank", "qm9_bank_compare.json", "hybrid"),
    ("vanilla, 24k steps (`qm9_long.toml`, shipped)", "qm9_long_vf_compare.json", "vanilla"),
    ("hybrid: valency excess + fragments", "qm9_long_vf_compare.json", "hybrid"),
    ("hybrid: selected bank, tilt η start", "qm9_long_bank_compare.json", "hybrid"),
    ("hybrid: selected bank, 10 × 2,000 chains from η = 0 (kept η = 0)", "qm9_long_bank_slow_compare.json", "hybrid"),
]


def cell(key: str, value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.4f}" if key == "nspdk_mmd" else f"{value:.2f}" if key == "fcd" else f"{100 * value:.2f} %"


def main() -> int:
    head = "| model | validity | valid & connected | unique | novel | NSPDK | FCD | molecules/s | file |"
    lines = [head, "|" + "---|" * 9]
    gdss = " | ".join(cell(k, GDSS[k]) for k in COLUMNS)
    lines.append(f"| GDSS public checkpoint, 1000 PC steps | {gdss} | {GDSS['samples_per_s']} | REFERENCE.md |")
    for label, name, side in ROWS:
        path = RESULTS / name
        if not path.exists():
            continue
        rep = json.loads(path.read_text())
        m = {k: rep["metrics"].get(k, {}).get(side) for k in COLUMNS}
        speed = rep.get("sampling", {}).get(side, {}).get("samples_per_s")
        cells = " | ".join(cell(k, m[k]) for k in COLUMNS)
        lines.append(f"| {label} | {cells} | {speed if speed is not None else '–'} | {name} |")
    goal = " | ".join(("≥ " if k not in ("nspdk_mmd", "fcd") else "≤ ") + cell(k, TARGETS[k]) for k in COLUMNS)
    lines.append(f"| target (issue 28) | {goal} | ≥ 7.16 | |")
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
