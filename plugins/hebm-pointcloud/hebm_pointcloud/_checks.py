"""Checks of the factories' options: types, ranges and sane upper bounds, each a one-line ``ValueError``.

The core turns a ``ValueError`` raised by a factory into ``hebm: error: bad option for … : <message>``,
so each message names the option, what it must be and what it got. Booleans are not integers here
(``n_points = true`` is a mistake, not 1), and an integer option takes only integers.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

__all__ = [
    "integer",
    "optional_integer",
    "number",
    "optional_number",
    "flag",
    "choice",
    "text",
    "names",
    "memory_budget",
    "check_memory",
]


def _got(value: Any) -> str:
    return (
        f"{value!r} ({type(value).__name__})"
        if not isinstance(value, int | float) or isinstance(value, bool)
        else repr(value)
    )


def integer(name: str, value: Any, lo: int, hi: int) -> int:
    """``value`` as an int in ``[lo, hi]``; a bool, a string, a float or anything else is refused."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer in [{lo}, {hi}], got {_got(value)}")
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be an integer in [{lo}, {hi}], got {value}")
    return int(value)


def optional_integer(name: str, value: Any, lo: int, hi: int) -> int | None:
    """``None`` or :func:`integer`."""
    return None if value is None else integer(name, value, lo, hi)


def number(name: str, value: Any, lo: float, hi: float, *, lo_open: bool = False, hi_open: bool = False) -> float:
    """``value`` (an int or a float, not a bool) as a finite float in the interval ``lo … hi``."""
    left, right = "(" if lo_open else "[", ")" if hi_open else "]"
    what = f"{name} must be a finite number in {left}{lo:g}, {hi:g}{right}"
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{what}, got {_got(value)}")
    try:
        v = float(value)
    except OverflowError:  # an int too large for a float
        raise ValueError(f"{what}, got an integer of {len(str(abs(value)))} digits") from None
    if not math.isfinite(v) or v < lo or v > hi or (lo_open and v == lo) or (hi_open and v == hi):
        raise ValueError(f"{what}, got {value!r}")
    return v


def optional_number(name: str, value: Any, lo: float, hi: float, **kw: bool) -> float | None:
    """``None`` or :func:`number`."""
    return None if value is None else number(name, value, lo, hi, **kw)


def flag(name: str, value: Any) -> bool:
    """``value`` as a bool: only ``true``/``false`` (not 0/1, not "yes")."""
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false, got {_got(value)}")
    return value


def choice(name: str, value: Any, options: Sequence[str]) -> str:
    """``value`` as one of ``options``."""
    if not isinstance(value, str) or value not in options:
        raise ValueError(f"unknown {name} {value!r}; known: {', '.join(options)}")
    return value


def text(name: str, value: Any, max_len: int = 4096) -> str:
    """``value`` as a non-empty string of at most ``max_len`` characters without NUL bytes."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be a non-empty string, got {_got(value)}")
    if len(value) > max_len or "\x00" in value:
        raise ValueError(f"{name} must be a string of at most {max_len} characters without NUL bytes")
    return value


def names(name: str, value: Any, max_items: int = 1000) -> list[str]:
    """``value`` (a string or a non-empty list of strings) as a list of strings."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not items:
        raise ValueError(f"{name} must be a name or a non-empty list of names, got {_got(value)}")
    if len(items) > max_items:
        raise ValueError(f"{name} lists {len(items)} names; at most {max_items}")
    for item in items:
        text(f"each entry of {name}", item, 256)
    return [str(i) for i in items]


def memory_budget() -> int:
    """Bytes one dataset may hold: half of this machine's physical memory (1 TiB if it cannot be read)."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2
    except (ValueError, OSError, AttributeError):
        return 2**40


def check_memory(what: str, n_bytes: int) -> None:
    """Refuse (before allocating) a dataset that would take more than :func:`memory_budget`."""
    budget = memory_budget()
    if n_bytes > budget:
        raise ValueError(
            f"{what} would take {n_bytes / 2**30:.3g} GiB, more than half of this machine's memory "
            f"({2 * budget / 2**30:.3g} GiB); lower it"
        )
