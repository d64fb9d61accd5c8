"""A markdown table of ``hebm boltzmann`` reports: one row per target and sampler, the figures the
plugin's README quotes (``python -m hebm_boltzmann.summary results/*.json``)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

__all__ = ["table"]

#: the target-specific metric each row shows next to the common ones, first found wins
OWN = ("mode_weight_error", "radius_mean_error", "right_well_error", "test_accuracy", "energy_w2")


def _fmt(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _row(report: dict[str, Any], name: str, row: dict[str, Any]) -> list[str]:
    raw, m = row.get("metrics", {}), row.get("metrics_reweighted") or row.get("metrics", {})
    own = next((f"{k} {_fmt(m[k])}" for k in OWN if k in m), "—")
    mmd = _fmt(m.get("mmd_anice"))
    if "metrics_reweighted" in row:  # the unweighted draw too: weights that went wrong show here
        mmd = f"{_fmt(raw.get('mmd_anice'))} / {mmd}"
    w = row.get("weights", {})
    log_z = w.get("log_z", row.get("log_z"))
    upper = row.get("log_z_upper")
    return [
        report["target"],
        name,
        _fmt(row.get("evals")),
        mmd,
        _fmt(m.get("w2")),
        own,
        _fmt(log_z) + (f" … {_fmt(upper)}" if upper is not None else ""),
        _fmt(report.get("log_z_true")),
        _fmt(w.get("ress")),
        _fmt(row.get("seconds")),
    ]


def table(paths: list[Path]) -> str:
    """Markdown for the reports at ``paths``; weighted rows (EDG, AIS) show the reweighted metrics, and
    the MMD of the unweighted draw next to the reweighted one."""
    mmd = "MMD (A-NICE-MC; raw / reweighted)"
    head = ["target", "sampler", "evals", mmd, "W2", "own metric", "log Z", "true", "rESS", "s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for p in paths:
        report = json.loads(Path(p).read_text())
        for name, row in report["samplers"].items():
            lines.append("| " + " | ".join(_row(report, name, row)) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(table([Path(a) for a in sys.argv[1:]]))
