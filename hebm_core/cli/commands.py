"""The subcommands, their arguments and `main`: one function per subcommand in :data:`COMMANDS`."""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

from hebm_core.cli.boltzmann import add_boltzmann_args, cmd_boltzmann
from hebm_core.cli.checkpoints import (
    add_checkpoint_args,
    add_export_args,
    add_nll_args,
    cmd_evaluate,
    cmd_export,
    cmd_sample,
)
from hebm_core.cli.errors import os_error, show_warning, user_errors
from hebm_core.cli.printing import fmt, print_compare, print_report, print_summary, say
from hebm_core.config import (
    ConfigError,
    RunConfig,
    cli_overrides,
    get_registry,
    resolve_config,
    toml_value,
)
from hebm_core.objectives import OBJECTIVES
from hebm_core.samplers import SAMPLERS

__all__ = ["main", "COMMANDS", "build_parser"]


def cmd_plugins(args: argparse.Namespace) -> int:
    """Installed plugins and what each registers; broken ones with their reason."""
    reg = get_registry()
    data = {
        "plugins": {name: p.summary(list(reg.statistics(name))) for name, p in sorted(reg.plugins.items())},
        "failures": dict(sorted(reg.failures.items())),
        "core": {"objectives": sorted(OBJECTIVES), "samplers": sorted(SAMPLERS)},
    }
    if args.json:
        say(json.dumps(data, indent=2))
        return 0
    for name, summary in data["plugins"].items():
        say(f"{name}: {summary['description']}")
        for kind in ("datasets", "models", "statistics", "metrics", "objectives", "samplers", "targets", "pretrained"):
            if summary[kind] or kind in ("datasets", "models", "statistics", "metrics"):
                say(f"  {kind + ':':12s} {', '.join(summary[kind]) or '-'}")
    for name, reason in data["failures"].items():
        say(f"{name}: BROKEN: {reason}")
    if not data["plugins"] and not data["failures"]:
        say("no plugins installed (entry-point group 'hebm.plugins')")
    say(f"core objectives: {', '.join(data['core']['objectives'])}")
    say(f"core samplers:   {', '.join(data['core']['samplers'])}")
    return 0


def _config(args: argparse.Namespace) -> RunConfig:
    statistics = [] if args.no_statistics else args.statistic
    overrides = cli_overrides(
        plugin=args.plugin,
        dataset=args.dataset,
        model=args.model,
        objective=args.objective,
        sampler=getattr(args, "sampler", None),
        statistics=statistics,
        steps=args.steps,
        seed=args.seed,
        device=args.device,
        n_samples=getattr(args, "n", None),
        assignments=args.set,
        strict=True if getattr(args, "strict", False) else None,
    )
    return resolve_config(args.config, overrides)


def cmd_config(args: argparse.Namespace) -> int:
    """The resolved configuration as JSON (plugin default < --config file < options), or the key reference."""
    if args.reference:
        from hebm_core.config.reference import reference_table

        say(reference_table())
        return 0
    from hebm_core.runs.report import jsonable

    say(json.dumps(jsonable(_config(args).to_dict()), indent=2))
    return 0


def _resume(args: argparse.Namespace) -> bool | str:
    return args.resume if args.resume is not None else False


def cmd_train(args: argparse.Namespace) -> int:
    """Train only; writes checkpoints and ``report.json`` (no samples)."""
    from hebm_core.runs import run

    cfg = _config(args)
    out = args.out or f"runs/{cfg.plugin}-{cfg.data.name}"
    print_report(run(cfg, out, resume=_resume(args), train_only=True))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """Train, sample and evaluate (the quick start: the toy plugin's default config into runs/demo)."""
    from hebm_core.runs import run

    cfg = _config(args)
    print_report(run(cfg, args.out or "runs/demo", resume=_resume(args)))
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    """Vanilla against hybrid with the same seed, model and budget (``--seeds``: once per seed, summarised)."""
    from hebm_core.runs import compare, compare_seeds

    cfg = _config(args)
    out = Path(args.out or "runs/compare")
    if args.seeds:
        res = compare_seeds(cfg, out, args.seeds, folds=args.folds, resume=bool(args.resume))
        for seed in args.seeds:
            say(f"seed {seed}: {out / f'seed{seed}' / 'compare.json'}")
        print_summary(res["summary"])
        say(f"wrote {out / 'compare_seeds.json'}")
        return 0
    if args.folds:
        raise ConfigError("--folds needs --seeds (seed S holds out fold S)")
    res = compare(cfg, out, resume=bool(args.resume))
    print_compare(res)
    say(f"wrote {out / 'compare.json'}")
    return 0


def cmd_select(args: argparse.Namespace) -> int:
    """Which candidate statistics (the config's ``statistics``) the vanilla network's tilt needs."""
    from hebm_core.runs.select import select_statistics

    out = Path(args.out or "runs/select")
    rep = select_statistics(_config(args), out, checkpoint=args.checkpoint, n=args.n)
    for c in rep["components"]:
        gap = f"{c['decision']:4s} {c['name']:28s} gap {fmt(c['gap_before_sd'])} -> {fmt(c['gap_after_sd'])} sd, "
        if c["interval"] is None:  # dropped before the gains were computed: constant or unreachable
            say(gap + c["reason"].split(":")[0])
            continue
        lo, hi = c["interval"]
        say(gap + f"held-out gain {fmt(c['held_out_gain'])} nats [{fmt(lo)}, {fmt(hi)}]")
    summary = rep["summary"]
    gains = f"{fmt(summary['predicted_gain_nats'])} nats, held-out {fmt(summary['held_out_gain_nats'])}"
    say(f"tilt: predicted gain {gains}")
    for note in rep["notes"]:
        say(f"note: {note}")
    say(f"statistics = {toml_value(rep['statistics'])}")
    say(f"wrote {out / 'selection.json'}")
    return 0


# --------------------------------------------------------------------------- parser
def _add_config_args(p: argparse.ArgumentParser, sampling: bool) -> None:
    p.add_argument("--config", metavar="FILE", help="TOML run configuration (over the plugin's defaults)")
    p.add_argument("--plugin", help="plugin name (default: from the config, else 'toy')")
    p.add_argument("--dataset", help="dataset name of the plugin")
    p.add_argument("--model", help="model name of the plugin")
    p.add_argument("--objective", help=f"one of {', '.join(sorted(OBJECTIVES))}")
    p.add_argument("--statistic", action="append", metavar="NAME", help="train with this statistic (repeatable)")
    p.add_argument("--no-statistics", action="store_true", help="vanilla model: no statistics")
    p.add_argument("--steps", type=int, help="training steps")
    p.add_argument("--seed", type=int, help="random seed")
    p.add_argument("--device", help="auto, cpu, cuda, cuda:1, ...")
    p.add_argument("--out", metavar="DIR", help="output folder")
    p.add_argument(
        "--set", action="append", metavar="KEY=VALUE", help="any config value, e.g. train.lr=1e-3 (repeatable)"
    )
    p.add_argument(
        "--strict", action="store_true", help="a loss that blows up or chains that run off are errors, not warnings"
    )
    if sampling:
        p.add_argument("--sampler", help=f"one of {', '.join(sorted(SAMPLERS))}")
        p.add_argument("--n", "--n-samples", dest="n", type=int, metavar="N", help="number of samples")


def _add_resume(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--resume",
        nargs="?",
        const=True,
        default=None,
        metavar="CHECKPOINT",
        help="continue from the latest checkpoint in --out (or from CHECKPOINT)",
    )


def _add_compare_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue both runs from their checkpoints in --out (with --seeds: finished seeds are read, not rerun)",
    )
    p.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        metavar="S",
        help="one compare per training seed into <out>/seed<S>, then <out>/compare_seeds.json with paired differences",
    )
    p.add_argument(
        "--folds",
        action="store_true",
        help="with --seeds: seed S also holds out fold S of the data (data.fold = S), a cross-validation",
    )


#: name -> (function, argument adder, help)
COMMANDS: dict[str, tuple[Callable[[argparse.Namespace], int], Callable[[argparse.ArgumentParser], None], str]] = {
    "plugins": (
        cmd_plugins,
        lambda p: p.add_argument("--json", action="store_true", help="machine-readable"),
        "list installed plugins and what they register",
    ),
    "config": (
        cmd_config,
        lambda p: (
            _add_config_args(p, True),
            p.add_argument("--reference", action="store_true", help="every config key with its default and meaning"),
        ),
        "print the resolved configuration (or --reference: every key)",
    ),
    "select-statistics": (
        cmd_select,
        lambda p: (
            _add_config_args(p, True),
            p.add_argument("--checkpoint", help="take this finished run's network instead of training one"),
        ),
        "keep the candidate statistics whose tilt gains held-out likelihood",
    ),
    "train": (cmd_train, lambda p: (_add_config_args(p, False), _add_resume(p)), "train a model"),
    "sample": (cmd_sample, add_checkpoint_args, "draw samples from a checkpoint or a pretrained model"),
    "evaluate": (
        cmd_evaluate,
        lambda p: (add_checkpoint_args(p), add_nll_args(p)),
        "metrics of samples from a checkpoint (--nll: test NLL by AIS)",
    ),
    "export": (cmd_export, add_export_args, "a run's checkpoint as a slim file to ship (weights, spec, η)"),
    "run": (
        cmd_run,
        lambda p: (_add_config_args(p, True), _add_resume(p)),
        "train + sample + evaluate (no arguments: the toy demo into runs/demo)",
    ),
    "compare": (
        cmd_compare,
        lambda p: (_add_config_args(p, True), _add_compare_args(p)),
        "vanilla vs hybrid, same seed and budget (--seeds: several, summarised)",
    ),
    "boltzmann": (
        cmd_boltzmann,
        add_boltzmann_args,
        "sample a target energy without data (EDG, HMC, MALA at equal evaluations)",
    ),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hebm", description="Hybrid energy-based models: log p(x) = F(x) + η·T(x) − log Z"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (func, add_args, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=func.__doc__)
        add_args(p)
        p.set_defaults(func=func)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``hebm``; returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help or an argparse usage error
        return int(exc.code or 0)
    shown, warnings.showwarning = warnings.showwarning, show_warning
    try:
        return args.func(args)
    except user_errors() as exc:
        msg = " ".join(str(exc).split()) or type(exc).__name__
        print(f"hebm: error: {msg}", file=sys.stderr, flush=True)
        return 2
    except MemoryError:
        print("hebm: error: out of memory: lower the batch, sample or model size", file=sys.stderr, flush=True)
        return 2
    except OSError as exc:
        if isinstance(exc, BrokenPipeError):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - the reader left; flushed at exit
            return 141
        print(f"hebm: error: {os_error(exc)}", file=sys.stderr, flush=True)
        return 2
    except KeyboardInterrupt:
        print("hebm: interrupted", file=sys.stderr)
        return 130
    finally:
        warnings.showwarning = shown
