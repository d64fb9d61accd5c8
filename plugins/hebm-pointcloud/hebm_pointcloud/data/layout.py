"""The base of the ShapeNet layouts: the split (the layout's own split files, or a hash split) and the
record of the files a layout lists but cannot use."""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from pathlib import Path

import numpy as np

__all__ = ["Layout", "MAX_LISTED", "MAX_LIST_BYTES"]

#: skipped files listed (with the detail) in ``info["skipped_files"]``
MAX_LISTED = 50
#: a split file (``<synset>/{train,test}.lst``) may be at most this large
MAX_LIST_BYTES = 64 * 2**20


def _hash_split(ids: list[str], test_fraction: float, fold: int = 0) -> set[str]:
    """Deterministic test ids: block ``fold`` of ``m = ceil(f·n)`` ids in sha1 order (stable under adding
    files elsewhere). Fold 0 is the first ``m``; folds ``0 … ceil(n/m) − 1`` hold each id out exactly once."""
    if test_fraction <= 0 or not ids:
        return set()
    order = sorted(ids, key=lambda s: hashlib.sha1(s.encode()).hexdigest())
    m = math.ceil(test_fraction * len(ids))
    if fold * m >= len(ids):
        last = math.ceil(len(ids) / m) - 1
        raise ValueError(f"fold {fold} has no test shapes: {len(ids)} shapes in blocks of {m} give folds 0…{last}")
    return set(order[fold * m : (fold + 1) * m])


def _read_list(path: Path) -> list[str]:
    """The shape ids of a split file, one a line (blank lines ignored); a binary or huge file is an error."""
    try:
        size = path.stat().st_size
        if size > MAX_LIST_BYTES:
            raise ValueError(f"{path}: split file of {size >> 20} MiB; at most {MAX_LIST_BYTES >> 20} MiB")
        data = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"{path}: cannot read the split file ({exc.strerror or exc})") from None
    if b"\x00" in data:
        raise ValueError(f"{path}: not a text split file (binary data); expected one shape id a line")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a UTF-8 split file; expected one shape id a line") from None
    return [s.strip() for s in text.splitlines() if s.strip()]


class Layout:
    """A ShapeNet layout under ``root``: which files each split reads, and how to read one.

    Files the layout lists but cannot use are recorded with :meth:`skip` (reason -> count, and the
    first :data:`MAX_LISTED` with their detail).
    """

    #: how the split is made, for reports
    split_rule = ""

    def __init__(self, root: str | Path, test_fraction: float = 0.25, fold: int = 0) -> None:
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise FileNotFoundError(f"ShapeNet root not found: {self.root} (set [data] root to the dataset folder)")
        if not 0 <= test_fraction < 1:
            raise ValueError(f"test_fraction must lie in [0, 1), got {test_fraction}")
        if fold < 0 or (fold and not test_fraction):
            raise ValueError(f"fold must be >= 0, and 0 when test_fraction is 0; got {fold}")
        self.test_fraction, self.fold = test_fraction, fold
        self.skipped: Counter[str] = Counter()
        self.skipped_files: list[dict[str, str]] = []

    def skip(self, reason: str, path: Path, detail: str) -> None:
        self.skipped[reason] += 1
        if len(self.skipped_files) < MAX_LISTED:
            rel = path.relative_to(self.root).as_posix() if path.is_relative_to(self.root) else str(path)
            self.skipped_files.append({"file": rel, "reason": reason, "detail": detail})

    def _no_folds(self, what: str) -> None:
        if self.fold:
            raise ValueError(f"fold = {self.fold} needs the hash split, but {self.root} has {what}; leave fold at 0")

    def synsets(self) -> list[str]:
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and p.name.isdigit())

    @classmethod
    def detect(cls, root: Path) -> bool:
        raise NotImplementedError

    def raw_file_names(self, synset: str, split: str) -> list[Path]:
        raise NotImplementedError

    def process(self, path: Path, n_pool: int, seed: int) -> np.ndarray:
        raise NotImplementedError

    def _split(self, synset: str, ids: dict[str, Path], split: str) -> list[Path]:
        folder = self.root / synset
        lists = {s: folder / f"{s}.lst" for s in ("train", "test")}
        if any(p.is_file() for p in lists.values()):
            self._no_folds("its own <synset>/{train,test}.lst split")
            absent = [s for s, p in lists.items() if not p.is_file()]
            if absent:
                raise ValueError(
                    f"{folder}: has {lists['test' if absent == ['train'] else 'train'].name} but no "
                    f"{absent[0]}.lst; give both split files, or neither (the hash split)"
                )
            names = {s: _read_list(p) for s, p in lists.items()}
            both = set(names["train"]) & set(names["test"])
            if both:
                raise ValueError(
                    f"{folder}: {len(both)} shape ids are in both train.lst and test.lst (e.g. {sorted(both)[0]!r})"
                )
            self.split_rule = "<synset>/{train,test}.lst files"
            out, seen = [], set()
            for n in names[split]:
                if n in seen:
                    self.skip("listed twice in a split file", lists[split], f"{n!r} is listed twice")
                elif n not in ids:
                    self.skip("listed in a split file but missing", lists[split], f"no file for {n!r}")
                else:
                    out.append(ids[n])
                seen.add(n)
            return out
        try:
            test = _hash_split(sorted(ids), self.test_fraction, self.fold)
        except ValueError as err:
            raise ValueError(f"{folder}: {err}") from None
        k, m = self.fold, f"m = ceil({self.test_fraction}·n)"
        self.split_rule = (
            f"fold {k}: shape ids {k}·m … {k + 1}·m − 1 in sha1 order ({m}) are test, the rest train"
            if k
            else f"first ceil({self.test_fraction}·n) shape ids in sha1 order are test, the rest train"
        )
        keep = (lambda i: i in test) if split == "test" else (lambda i: i not in test)
        return [ids[i] for i in sorted(ids) if keep(i)]
