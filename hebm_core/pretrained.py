"""Pretrained models a plugin ships: a slim checkpoint file, its sha256 and a model card.

A plugin lists them in ``Plugin.pretrained`` (name -> :class:`Pretrained`); ``hebm sample
--pretrained qm9`` (or ``mol:qm9``) resolves the name across installed plugins, checks the file's
sha256 against the one the plugin declares (a damaged install is one clear error, not odd samples)
and loads it like any checkpoint. Files are written by :func:`hebm_core.runs.export.export_checkpoint`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from hebm_core.checkpoint import CheckpointError

if TYPE_CHECKING:
    from hebm_core.registry import PluginRegistry

__all__ = ["Pretrained", "resolve_pretrained", "file_sha256"]


@dataclass(frozen=True)
class Pretrained:
    """``file``: the checkpoint; ``sha256``: its expected digest; ``card``: the model card (Markdown);
    ``summary``: one line for ``hebm plugins``."""

    file: Path
    sha256: str
    card: Path | None = None
    summary: str = ""


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _candidates(ref: str, registry: PluginRegistry) -> list[tuple[str, Pretrained]]:
    owner, sep, name = ref.rpartition(":")
    owner = owner.removeprefix("hebm-") if sep else ""
    if sep:
        plugin = registry.get(owner)
        return [(f"{plugin.name}:{name}", plugin.pretrained[name])] if name in plugin.pretrained else []
    return [(f"{p.name}:{ref}", p.pretrained[ref]) for p in registry.plugins.values() if ref in p.pretrained]


def resolve_pretrained(ref: str, registry: PluginRegistry) -> tuple[str, Pretrained]:
    """``ref`` (``name``, ``plugin:name`` or ``hebm-plugin:name``) as ``(qualified name, entry)``,
    its file present and intact; one-line errors otherwise."""
    found = _candidates(ref, registry)
    if not found:
        known = [f"{p.name}:{n}" for p in registry.plugins.values() for n in p.pretrained]
        raise CheckpointError(f"unknown pretrained model {ref!r}; installed: {', '.join(known) or 'none'}")
    if len(found) > 1:
        raise CheckpointError(f"pretrained model {ref!r} is ambiguous: {', '.join(q for q, _ in found)}")
    qualified, entry = found[0]
    if not entry.file.is_file():
        raise CheckpointError(f"pretrained model {qualified}: {entry.file} is missing; reinstall its plugin")
    digest = file_sha256(entry.file)
    if digest != entry.sha256:
        raise CheckpointError(
            f"pretrained model {qualified}: {entry.file} has sha256 {digest[:12]}…, expected {entry.sha256[:12]}…; "
            "the file is damaged, reinstall its plugin"
        )
    return qualified, entry
