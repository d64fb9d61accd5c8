"""Typed option sections: a dataclass per config section that owns its defaults, types and ranges.

Each field is declared once with :func:`option` (its default, what a valid value is, and a
predicate); :class:`Options` checks every field when the dataclass is built, from Python or from
a config table (:meth:`Options.from_dict`), and reports a bad value as one :class:`ConfigError`
line such as ``[train] lr must be a number > 0, got float -1.0``. Nothing else in the suite
restates a default or re-checks a type.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

__all__ = ["ConfigError", "Options", "option", "is_int", "is_number", "check_int", "check_number"]


class ConfigError(ValueError):
    """A configuration problem; ``str()`` is one line for the user."""


def is_int(v: Any) -> bool:
    """An integer that is not a bool."""
    return isinstance(v, int) and not isinstance(v, bool)


def is_number(v: Any) -> bool:
    """An int or float that is not a bool."""
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _num(v: float) -> str:
    return str(v) if is_int(v) else f"{v:g}"


def _range_words(low: float | None, high: float | None, open_low: bool) -> str:
    if low is not None and high is not None:
        return f" in {'(' if open_low else '['}{_num(low)}, {_num(high)}]"
    if low is not None:
        return f" {'>' if open_low else '>='} {_num(low)}"
    return f" <= {_num(high)}" if high is not None else ""


def check_int(owner: str, name: str, value: Any, low: int | None = None, high: int | None = None) -> int:
    """``value`` as an int in ``[low, high]``, else a one-line ``ValueError`` naming ``owner`` and ``name``
    (for factory arguments: a plugin's dataset, model or statistic checks its options with it)."""
    if not is_int(value) or (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"{owner}: {name} must be an integer{_range_words(low, high, False)}, got {value!r}")
    return int(value)


def check_number(
    owner: str, name: str, value: Any, low: float | None = None, high: float | None = None, open_low: bool = False
) -> float:
    """``value`` as a finite float in ``[low, high]`` (``(low, high]`` with ``open_low``), else a one-line error."""
    ok = is_number(value) and math.isfinite(value)
    if ok and low is not None:
        ok = value > low if open_low else value >= low
    if ok and high is not None:
        ok = value <= high
    if not ok:
        raise ValueError(f"{owner}: {name} must be a finite number{_range_words(low, high, open_low)}, got {value!r}")
    return float(value)


_TYPE_WORDS = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}


def option(
    default: Any = dataclasses.MISSING,
    want: str | None = None,
    ok: Callable[[Any], bool] | None = None,
    doc: str = "",
    finite: bool = True,
) -> Any:
    """A field with its default, ``want`` (how a valid value reads: "a number > 0"), a range
    predicate ``ok`` (not called on ``None``), ``doc`` (one line for the config reference) and
    whether a float must be finite (NaN never passes)."""
    meta = {"want": want, "ok": ok, "doc": doc, "finite": finite}
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda d=default: type(d)(d), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def _kinds(annotation: Any) -> tuple[tuple[type, ...], bool]:
    """The plain types an annotation allows and whether it allows ``None``."""
    args = typing.get_args(annotation) if typing.get_origin(annotation) in (typing.Union, types.UnionType) else ()
    members = args or (annotation,)
    nullable = type(None) in members
    plain = tuple(typing.get_origin(m) or m for m in members if m is not type(None))
    return plain, nullable


def _type_ok(value: Any, plain: tuple[type, ...]) -> bool:
    for t in plain:
        if t is bool and isinstance(value, bool):
            return True
        if t is int and is_int(value):
            return True
        if t is float and is_number(value):
            return True
        if t not in (bool, int, float) and isinstance(value, t):
            return True
    return False


class Options:
    """Base of the typed sections: validates every field after ``__init__`` (ints given for float
    fields become floats; a non-finite float needs ``ok`` to accept it explicitly)."""

    #: the section name used in error messages (``[train]``)
    section: ClassVar[str] = ""

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            if f.metadata.get("internal"):
                continue
            value = getattr(self, f.name)
            plain, nullable = _kinds(hints[f.name])
            if value is None and nullable:
                continue
            want = f.metadata.get("want") or " or ".join(_TYPE_WORDS.get(t, t.__name__) for t in plain)
            got = repr(value) if plain == (bool,) else f"{type(value).__name__} {value!r}"
            bad = ConfigError(f"{self.where()}{f.name} must be {want}, got {got}")
            if not _type_ok(value, plain):
                raise bad
            if float in plain and int not in plain and is_number(value):
                value = float(value)
                object.__setattr__(self, f.name, value)
            if isinstance(value, float) and (math.isnan(value) or math.isinf(value) and f.metadata.get("finite", True)):
                raise bad
            ok = f.metadata.get("ok")
            if ok is not None and not ok(value):
                raise bad

    @classmethod
    def where(cls) -> str:
        return f"[{cls.section}] " if cls.section else ""

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls) if not f.metadata.get("internal")]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Options:
        """Build from a config table; an unknown key is one error naming the known ones."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"{cls.where()}must be a table, got {type(data).__name__} {data!r}")
        known = cls.field_names()
        for key in data:
            if key not in known:
                raise ConfigError(f"{cls.where()}unknown key {key!r}; known: {', '.join(known)}")
        return cls(**dict(data))

    def to_dict(self) -> dict[str, Any]:
        """Every field by name (what a checkpoint's spec and a report hold)."""
        return {name: _plain(getattr(self, name)) for name in self.field_names()}

    @classmethod
    def reference(cls) -> list[tuple[str, Any, str]]:
        """``(key, default, doc)`` per field: the config reference table's rows."""
        rows = []
        for f in dataclasses.fields(cls):
            if f.metadata.get("internal"):
                continue
            default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
            rows.append((f.name, default, f.metadata.get("doc", "")))
        return rows


def _plain(v: Any) -> Any:
    if isinstance(v, Options):
        return v.to_dict()
    if isinstance(v, list):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    return v
