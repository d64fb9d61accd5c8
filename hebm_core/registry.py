"""Plugin registry: domains register through the entry-point group ``hebm.plugins``.

A distribution declares, in its ``pyproject.toml``::

    [project.entry-points."hebm.plugins"]
    mol = "hebm_mol:plugin"

and the object named there is a :class:`Plugin` (or a zero-argument callable returning one).
One plugin that fails to import is reported with its reason; the others keep working.
"""

from __future__ import annotations

import importlib
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from hebm_core.data import DataBundle
from hebm_core.energy import EnergyModel
from hebm_core.metrics import CORE_METRICS, Metric
from hebm_core.objectives import OBJECTIVES, Objective
from hebm_core.pretrained import Pretrained
from hebm_core.samplers import SAMPLERS, Sampler
from hebm_core.statistics import Statistic
from hebm_core.targets import Target
from hebm_core.tree import Sample

__all__ = [
    "ENTRY_POINT_GROUP",
    "STATISTICS_GROUP",
    "Plugin",
    "PluginRegistry",
    "UnknownNameError",
    "get_registry",
    "import_object",
    "lookup",
]

ENTRY_POINT_GROUP = "hebm.plugins"
#: entry points that add statistics to a domain: ``"<domain>.<name>" = "package.module:object"``
STATISTICS_GROUP = "hebm.statistics"


class UnknownNameError(KeyError):
    """An unknown plugin / dataset / model / statistic / objective / sampler name; ``str()`` is the one-line message."""

    def __str__(self) -> str:
        return str(self.args[0])


def lookup(table: dict[str, Any], name: str, kind: str, owner: str = "") -> Any:
    """``table[name]`` or an :class:`UnknownNameError` that lists the known names."""
    try:
        return table[name]
    except KeyError:
        where = f" in plugin {owner!r}" if owner else ""
        known = ", ".join(sorted(table)) or "none"
        raise UnknownNameError(f"unknown {kind} {name!r}{where}; known: {known}") from None


def import_object(path: str) -> Any:
    """``"package.module:attribute"`` (the attribute may be dotted) as the object; one-line errors."""
    module, sep, attr = path.partition(":")
    if not sep or not module or not attr:
        raise UnknownNameError(f"{path!r} is not an import path: write 'package.module:name'")
    try:
        obj: Any = importlib.import_module(module)
    except Exception as exc:  # a module that does not import is the user's to fix: say why in one line
        raise UnknownNameError(f"cannot import {module!r} for {path!r}: {type(exc).__name__}: {exc}") from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise UnknownNameError(f"{path!r}: module {module!r} has no {attr!r}")
        obj = getattr(obj, part)
    return obj


@dataclass
class Plugin:
    """What a domain brings.

    - ``datasets``: name -> factory ``(**options) -> DataBundle``
    - ``models``: name -> factory ``(example: Sample, **options) -> EnergyModel``
    - ``statistics``: name -> factory ``(**options) -> Statistic``
    - ``metrics``: name -> factory ``(statistics: list[Statistic], **options) -> Metric``; a factory that
      names a ``bundle`` keyword also gets the :class:`DataBundle` (e.g. training SMILES for novelty);
      the core's ``delta_t`` is available to every plugin
    - ``objectives`` / ``samplers``: name -> class, next to the core's built-in ``OBJECTIVES`` /
      ``SAMPLERS`` (a plugin's own name wins in its runs)
    - ``targets``: name -> factory ``(**options) -> Target``, energies to sample without data
      (:class:`hebm_core.targets.Target`)
    - ``prior``: ``(n, bundle, sigma) -> Sample``, where samplers start (default: σ·noise in the space
      around training examples' structure); e.g. molecular graphs draw node counts from the training data
    - ``finalize``: ``(samples, bundle) -> Sample``, maps the sampler's continuous output to final samples
      (e.g. GDSS quantisation of graphs); metrics, ΔT and written files all see its output
    - ``write_samples``: ``(samples, out_dir, bundle) -> list[path]``: samples on disk and a picture
    - ``default_config``: the run configuration used when the user gives none (see :mod:`hebm_core.config`)
    - ``pretrained``: name -> :class:`~hebm_core.pretrained.Pretrained`, trained models that ship with
      the plugin (``hebm sample --pretrained NAME``)
    """

    name: str
    description: str = ""
    datasets: dict[str, Callable[..., DataBundle]] = field(default_factory=dict)
    models: dict[str, Callable[..., EnergyModel]] = field(default_factory=dict)
    statistics: dict[str, Callable[..., Statistic]] = field(default_factory=dict)
    metrics: dict[str, Callable[..., Metric]] = field(default_factory=dict)
    objectives: dict[str, type[Objective]] = field(default_factory=dict)
    samplers: dict[str, type[Sampler]] = field(default_factory=dict)
    targets: dict[str, Callable[..., Target]] = field(default_factory=dict)
    prior: Callable[[int, DataBundle, float], Sample] | None = None
    finalize: Callable[[Sample, DataBundle], Sample] | None = None
    write_samples: Callable[..., list[str]] | None = None
    default_config: dict[str, Any] = field(default_factory=dict)
    pretrained: dict[str, Pretrained] = field(default_factory=dict)

    def all_objectives(self) -> dict[str, type[Objective]]:
        """The core's objectives and this plugin's."""
        return {**OBJECTIVES, **self.objectives}

    def all_samplers(self) -> dict[str, type[Sampler]]:
        """The core's samplers and this plugin's."""
        return {**SAMPLERS, **self.samplers}

    def all_metrics(self) -> dict[str, Callable[..., Metric]]:
        """The core's metrics (``delta_t``) and this plugin's."""
        return {**CORE_METRICS, **self.metrics}

    def summary(self, extra_statistics: list[str] | None = None) -> dict[str, Any]:
        return {
            "description": self.description,
            "datasets": sorted(self.datasets),
            "models": sorted(self.models),
            "statistics": sorted({*self.statistics, *(extra_statistics or [])}),
            "metrics": sorted(self.metrics),
            "objectives": sorted(self.objectives),
            "samplers": sorted(self.samplers),
            "targets": sorted(self.targets),
            "pretrained": sorted(self.pretrained),
        }


class PluginRegistry:
    """Discovers plugins from entry points (or takes them explicitly, for tests and embedding).

    Entry points are imported lazily: a run imports only the plugin it names (``get``), so the toy
    demo never waits for RDKit or Open3D; ``plugins`` and ``failures`` import every one of them.
    """

    def __init__(self, eps: list[EntryPoint] | None = None, statistic_eps: list[EntryPoint] | None = None) -> None:
        self._plugins: dict[str, Plugin] = {}
        self._failures: dict[str, str] = {}
        self._pending: dict[str, EntryPoint] = {}
        for ep in eps if eps is not None else list(entry_points(group=ENTRY_POINT_GROUP)):
            self._pending.setdefault(ep.name, ep)
        if statistic_eps is None:
            statistic_eps = [] if eps is not None else list(entry_points(group=STATISTICS_GROUP))
        self._extra_pending = list(statistic_eps)
        self._extra: dict[str, dict[str, Callable[..., Statistic]]] = {}

    @property
    def plugins(self) -> dict[str, Plugin]:
        """Every installed plugin that loads, by name."""
        self._load_all()
        return self._plugins

    @property
    def failures(self) -> dict[str, str]:
        """Entry points that failed to load, with the reason (statistics under ``statistic <domain>.<name>``)."""
        self._load_all()
        self._load_extra()
        return self._failures

    def _load_all(self) -> None:
        for name in list(self._pending):
            self._load(self._pending.pop(name))

    def _load_extra(self) -> None:
        """The ``hebm.statistics`` entry points, each isolated: a broken one is recorded, the rest load."""
        while self._extra_pending:
            ep = self._extra_pending.pop(0)
            domain, sep, name = ep.name.partition(".")
            try:
                if not sep or not domain or not name:
                    raise ValueError(f"entry point name {ep.name!r} must be '<domain>.<statistic>'")
                self._extra.setdefault(domain, {})[name] = ep.load()
            except BaseException as exc:  # isolated like plugins
                self._failures[f"statistic {ep.name}"] = f"{type(exc).__name__}: {exc}"

    def statistics(self, domain: str) -> dict[str, Callable[..., Statistic]]:
        """The statistics a domain's runs can name: the plugin's own and those other packages add to it."""
        self._load_extra()
        return {**self._extra.get(domain, {}), **self.get(domain).statistics}

    def statistic(self, domain: str, name: str) -> Callable[..., Statistic] | Statistic:
        """A statistic by name in ``domain``, or by import path ``package.module:name`` from anywhere."""
        if ":" in name:
            return import_object(name)
        return lookup(self.statistics(domain), name, "statistic", domain)

    def _load(self, ep: EntryPoint) -> None:
        try:
            obj = ep.load()
            plugin = obj() if callable(obj) and not isinstance(obj, Plugin) else obj
            if not isinstance(plugin, Plugin):
                raise TypeError(
                    f"entry point {ep.value!r} gave {type(plugin).__name__}, not a hebm_core.registry.Plugin"
                )
        except BaseException as exc:  # a broken plugin (even one calling sys.exit) must not take the others down
            last = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
            where = f" ({last.filename}:{last.lineno})" if last else ""
            self._failures[ep.name] = f"{type(exc).__name__}: {exc}{where}"
            return
        if plugin.name in self._plugins:
            self._failures[ep.name] = f"duplicate plugin name {plugin.name!r}"
            return
        self._plugins[plugin.name] = plugin

    def register(self, plugin: Plugin) -> None:
        self._plugins[plugin.name] = plugin

    def get(self, name: str) -> Plugin:
        """The plugin ``name``: its own entry point first, every other one only if that does not give it."""
        if name not in self._plugins and name in self._pending:
            self._load(self._pending.pop(name))
        if name not in self._plugins and name not in self._failures:
            self._load_all()  # a distribution may register a plugin under another entry-point name
        if name in self._failures and name not in self._plugins:
            raise UnknownNameError(f"plugin {name!r} is installed but failed to load: {self._failures[name]}")
        return lookup(self._plugins, name, "plugin")


_REGISTRY: PluginRegistry | None = None


def get_registry() -> PluginRegistry:
    """The process-wide registry of installed plugins (entry points are read once)."""
    global _REGISTRY
    if _REGISTRY is None:
        _REGISTRY = PluginRegistry()
    return _REGISTRY
