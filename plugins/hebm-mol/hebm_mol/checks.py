"""Checks of the molecule factories' options: each bad value is one ``ValueError`` line naming the option.

The core turns such an error into ``hebm: error: bad option for <kind> <name>: …`` before any work.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hebm_core.options import check_int, check_number, is_int

__all__ = [
    "MAX_ATOMS",
    "check_bool",
    "check_path",
    "check_optional_dir",
    "check_optional_count",
    "check_seed",
    "check_elements",
    "element_symbols",
    "check_fraction",
    "check_max_atoms",
    "check_int",
    "check_number",
    "is_int",
    "shorten",
    "shown",
]

#: most heavy atoms per molecule (graphs are dense: N x N per molecule)
MAX_ATOMS = 512


def shorten(text: str, limit: int = 60) -> str:
    """``text`` cut to ``limit`` characters (with the full length) for messages and skip examples."""
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text):,} characters)"


def shown(value: Any, limit: int = 80) -> str:
    """``repr(value)``, shortened: a hostile option value must not make a message long."""
    return shorten(repr(value), limit)


def check_bool(owner: str, name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{owner}: {name} must be true or false, got {type(value).__name__} {shown(value)}")
    return value


def check_path(owner: str, name: str, value: Any) -> Path:
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{owner}: {name} must be a file name (a non-empty string), got {shown(value)}")
    if "\x00" in value:
        raise ValueError(f"{owner}: {name} must not contain a NUL character, got {shown(value)}")
    return Path(value).expanduser()


def check_optional_dir(owner: str, name: str, value: Any) -> Path | None:
    """``None`` or a folder name; an existing non-folder is refused."""
    if value is None:
        return None
    path = check_path(owner, name, value)
    try:
        bad = path.exists() and not path.is_dir()
    except OSError as exc:
        raise ValueError(f"{owner}: {name} {shorten(str(path))!r} is not usable ({exc.strerror or exc})") from None
    if bad:
        raise ValueError(f"{owner}: {name} {shorten(str(path))!r} exists and is not a folder")
    return path


def check_optional_count(owner: str, name: str, value: Any) -> int | None:
    """``None`` (no limit) or an integer >= 1."""
    return None if value is None else check_int(owner, name, value, 1, None)


def check_seed(owner: str, value: Any) -> int:
    if not is_int(value) or not -(2**63) <= value < 2**63:
        raise ValueError(f"{owner}: seed must be a 64-bit integer, got {type(value).__name__} {shown(value)}")
    return int(value)


@functools.cache
def element_symbols() -> frozenset[str]:
    """The symbols of elements 1-118 in RDKit's periodic table (asking RDKit for an unknown one logs to stderr)."""
    from rdkit import Chem

    table = Chem.GetPeriodicTable()
    return frozenset(table.GetElementSymbol(z) for z in range(1, 119))


def check_elements(owner: str, name: str, value: Any) -> tuple[str, ...]:
    """A non-empty list of distinct element symbols RDKit knows (atomic number >= 1)."""
    example = '["C", "N", "O", "F"]'
    if isinstance(value, str) or not isinstance(value, Sequence) or not value:
        raise ValueError(f"{owner}: {name} must be a non-empty list of elements like {example}, got {shown(value)}")
    if len(value) > 118:
        raise ValueError(f"{owner}: {name} lists {len(value)} elements; there are 118")
    known = element_symbols()
    out = []
    for k, sym in enumerate(value):
        if not isinstance(sym, str):
            raise ValueError(f"{owner}: {name}[{k}] must be an element symbol (a string), got {shown(sym)}")
        if sym not in known:
            hint = ""
            fixed = sym.strip().capitalize()
            if fixed != sym and fixed.isalpha():
                hint = f" (element symbols are case-sensitive and unpadded: {fixed!r}?)"
            raise ValueError(f"{owner}: {name}[{k}] = {shorten(sym, 20)!r}: unknown element{hint}")
        out.append(sym)
    if len(set(out)) != len(out):
        dup = sorted({s for s in out if out.count(s) > 1})
        raise ValueError(f"{owner}: {name} lists {', '.join(dup)} more than once")
    return tuple(out)


def check_fraction(owner: str, name: str, value: Any) -> float:
    """A finite number in ``[0, 1)``."""
    if not (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)):
        raise ValueError(f"{owner}: {name} must be a number in [0, 1), got {type(value).__name__} {shown(value)}")
    if not 0 <= value < 1:
        raise ValueError(f"{owner}: {name} must be a number in [0, 1), got {shown(value)}")
    return float(value)


def check_max_atoms(owner: str, value: Any) -> int:
    return check_int(owner, "max_atoms", value, 1, MAX_ATOMS)
