"""What the CLI prints: a run's report, a comparison, a summary over seeds."""

from __future__ import annotations

from typing import Any

__all__ = ["say", "fmt", "print_report", "print_compare", "print_summary"]


def say(msg: str = "") -> None:
    print(msg, flush=True)


def fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, list):
        return "[" + ", ".join(fmt(x) for x in v) + "]"
    return str(v)


# --------------------------------------------------------------------------- commands
def print_report(rep: dict[str, Any]) -> None:
    if rep.get("rank"):  # other ranks under torchrun: rank 0 reports
        return
    tr = rep.get("training") or {}
    if tr:
        say(
            f"trained {tr.get('steps')} steps in {fmt(tr.get('wall_time_s'))} s "
            f"({fmt(tr.get('steps_per_s'))} steps/s) on {tr.get('device')}"
        )
    if rep.get("eta"):
        say("eta:     " + ", ".join(f"{k}={fmt(v)}" for k, v in rep["eta"].items()))
    sm = rep.get("sampling")
    if sm:
        say(
            f"sampled {sm['n_samples']} with {sm['sampler']} in {fmt(sm['wall_time_s'])} s "
            f"({fmt(sm['samples_per_s'])}/s)"
        )
        _print_diagnostics(sm.get("diagnostics") or {})
    if rep.get("delta_t"):
        say("delta_t: " + ", ".join(f"{k}={fmt(v)}" for k, v in rep["delta_t"].items()))
    other = {k: v for k, v in (rep.get("metrics") or {}).items() if "/" not in k}
    if other:
        say("metrics: " + ", ".join(f"{k}={fmt(v)}" for k, v in other.items()))
    _print_targets(rep.get("metrics") or {})
    ll = rep.get("log_likelihood")
    if ll:
        _print_nll(ll)
    for note in rep.get("notes", []):
        say(f"note: {note}")
    for f in rep.get("files", []):
        say(f"wrote {f}")


def _print_targets(metrics: dict[str, Any], prefix: str = "") -> None:
    """One line per targeted component: the asked mean, the samples' (± se) and the hit rate."""
    for key, value in metrics.items():
        if not key.startswith("target/"):
            continue
        c = key.split("/", 1)[1]
        hit = metrics.get(f"target_hit/{c}")
        say(
            f"{prefix}target {c}: {fmt(value)} -> {fmt(metrics[f'target_model/{c}'])} ± "
            f"{fmt(metrics[f'target_model_se/{c}'])}" + ("" if hit is None else f" (hit {fmt(hit)})")
        )


def _print_diagnostics(dg: dict[str, Any]) -> None:
    parts = [f"acceptance={fmt(dg['acceptance'])}"] if dg.get("acceptance") is not None else []
    tr = dg.get("trace")
    if isinstance(tr, dict) and tr.get("max_rhat") is not None:
        parts.append(f"max R-hat={fmt(tr['max_rhat'])}, min bulk ESS={fmt(tr['min_ess_bulk'])}")
    if dg.get("ksd") is not None:
        parts.append(f"KSD={fmt(dg['ksd'])}")
    if parts:
        say("chains:  " + ", ".join(parts))


def _print_nll(ll: dict[str, Any]) -> None:
    ais = ll["ais"]
    say(
        f"nll:     {fmt(ll['nll_nats'])} nats = {fmt(ll['bits_per_dim'])} bits/dim (log Z "
        f"{fmt(ais['log_z'])} ± {fmt(ais['log_z_stderr'])} by forward AIS, ESS {fmt(ais['ess'])}/{ais['n_chains']})"
    )
    if ll.get("nll_upper") is not None:
        valid = "a valid bound" if ll.get("upper_bound_valid") else "NOT a valid bound"
        bpd = fmt(ll["bits_per_dim_upper"])
        say(f"         upper {fmt(ll['nll_upper'])} nats = {bpd} bits/dim by reverse AIS ({valid})")
    if ll.get("warning"):
        say(f"warning: {ll['warning']}")


def print_compare(res: dict[str, Any], prefix: str = "") -> None:
    for stat, d in res.get("delta_t", {}).items():
        red = d["delta_t_reduction_pct"]
        side = {
            k: fmt(d[k]) + (f" ± {fmt(d[k + '_se'])}" if d.get(k + "_se") is not None else "")
            for k in ("vanilla", "hybrid")
        }
        say(
            f"{prefix}delta_t {stat}: vanilla {side['vanilla']} -> hybrid {side['hybrid']} "
            f"({'n/a' if red is None else f'{red:+.1f} % reduction'})"
        )
    for k, d in res.get("metrics", {}).items():
        if "/" not in k:
            say(f"{prefix}{k}: vanilla {fmt(d['vanilla'])} -> hybrid {fmt(d['hybrid'])}")
    _print_targets({k: d["hybrid"] for k, d in res.get("metrics", {}).items() if k.startswith("target")}, prefix)
    if res.get("eta"):
        say(f"{prefix}eta (hybrid): " + ", ".join(f"{k}={fmt(v)}" for k, v in res["eta"].items()))


def print_summary(summary: dict[str, Any]) -> None:
    """One line per metric: both means, the paired difference ± SE, seeds where the hybrid is no worse."""
    for key, s in summary.items():
        se = f" ± {s['diff_se']:.3g}" if s["diff_se"] is not None else ""
        say(
            f"{key:36s} vanilla {s['vanilla_mean']:.5g}  hybrid {s['hybrid_mean']:.5g}  "
            f"diff {s['diff_mean']:+.3g}{se}  hybrid no worse {s['seeds_hybrid_no_worse']}/{s['seeds']}"
        )
