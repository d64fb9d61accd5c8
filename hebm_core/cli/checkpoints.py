"""The subcommands that start from a finished model: ``sample``, ``evaluate`` (a checkpoint file or
a plugin's ``--pretrained`` model) and ``export`` (a run as a slim, shippable checkpoint)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hebm_core.cli.printing import print_report, say
from hebm_core.config import ConfigError, get_registry, merge, parse_assignment
from hebm_core.samplers import SAMPLERS

__all__ = ["cmd_sample", "cmd_evaluate", "cmd_export", "add_checkpoint_args", "add_nll_args", "add_export_args"]


def _assignments(assignments: list[str] | None, allowed: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """``--set`` values grouped by section (``sampler``, ``data``), deep-merged in order."""
    out: dict[str, dict[str, Any]] = {k: {} for k in allowed}
    for a in assignments or []:
        d = parse_assignment(a)
        if not set(d) <= set(allowed):
            keys = " or ".join(f"{k}.KEY=VALUE" for k in allowed)
            raise ConfigError(f"this command takes only --set {keys}, got {a!r}")
        out = merge(out, d)  # sampler.train.steps and sampler.train.lr both stay
    return out


def _checkpoint(args: argparse.Namespace) -> tuple[str, Path]:
    """The checkpoint to load and the default output folder's parent, for ``--checkpoint`` or ``--pretrained``."""
    if args.pretrained:
        from hebm_core.pretrained import resolve_pretrained

        name, entry = resolve_pretrained(args.pretrained, get_registry())
        return str(entry.file), Path("runs") / f"pretrained-{name.replace(':', '-')}"
    ck = Path(args.checkpoint).resolve()
    return args.checkpoint, ck.parent.parent if ck.parent.name == "checkpoints" else ck.parent


def cmd_sample(args: argparse.Namespace) -> int:
    """Samples on disk and a picture from a checkpoint or a pretrained model."""
    from hebm_core.runs import sample_from_checkpoint

    return _from_checkpoint(args, sample_from_checkpoint, "sample")


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Metrics (ΔT per statistic among them) of fresh samples from a checkpoint, as JSON; ``--nll`` adds AIS."""
    from hebm_core.runs import evaluate_checkpoint

    nll = {"n_chains": args.ais_chains, "n_temps": args.ais_temps} if args.nll else None
    return _from_checkpoint(args, evaluate_checkpoint, "evaluate", nll=nll)


def _from_checkpoint(args: argparse.Namespace, fn: Callable[..., dict], leaf: str, **extra: Any) -> int:
    checkpoint, run_dir = _checkpoint(args)
    sets = _assignments(args.set, ("sampler", "data"))
    rep = fn(
        checkpoint,
        args.out or run_dir / leaf,
        n=args.n,
        sampler=args.sampler,
        sampler_options={**sets["sampler"], **({"strict": True} if args.strict else {})},
        device=args.device,
        data=sets["data"] or None,
        **extra,
    )
    if args.pretrained:
        rep["pretrained"] = args.pretrained
    print_report(rep)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """A run's checkpoint as a slim file to ship: spec, EMA weights, calibrated η; no optimiser state."""
    from hebm_core.runs.export import export_checkpoint

    data = _assignments(args.set, ("data",))["data"]
    info = export_checkpoint(args.checkpoint, args.out, data=data or None)
    say(f"wrote {info['file']}: {info['parameters']:,} parameters, sha256 {info['sha256']}")
    return 0


def add_checkpoint_args(p: argparse.ArgumentParser) -> None:
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--checkpoint", help="checkpoint written by 'hebm train' or 'hebm run'")
    which.add_argument("--pretrained", metavar="NAME", help="a model a plugin ships, e.g. qm9 or mol:qm9")
    p.add_argument("--n", type=int, metavar="N", help="number of samples (default: the run's n_samples)")
    p.add_argument("--sampler", help=f"one of {', '.join(sorted(SAMPLERS))} (default: the run's)")
    p.add_argument(
        "--set",
        action="append",
        metavar="sampler.KEY=VALUE",
        help="sampler option, or data.KEY=VALUE over the checkpoint's [data] (repeatable)",
    )
    p.add_argument("--strict", action="store_true", help="chains that run off are an error, not a warning")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, ...")
    p.add_argument("--out", metavar="DIR", help="output folder (default: next to the run)")


def add_nll_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--nll", action="store_true", help="also estimate the test NLL and bits/dim (log Z by AIS)")
    p.add_argument("--ais-chains", type=int, default=256, metavar="N", help="AIS chains (default 256)")
    p.add_argument("--ais-temps", type=int, default=1000, metavar="N", help="AIS temperatures (default 1000)")


def add_export_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True, help="checkpoint written by 'hebm train', 'run' or 'compare'")
    p.add_argument("--out", required=True, metavar="FILE", help="the slim checkpoint to write")
    p.add_argument(
        "--set", action="append", metavar="data.KEY=VALUE", help="replace the spec's [data] values (repeatable)"
    )
