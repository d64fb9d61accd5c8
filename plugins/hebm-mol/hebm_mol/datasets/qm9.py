"""QM9 (133,885 molecules of ≤ 9 heavy atoms C/N/O/F) from its SMILES CSV, with the GDSS test split."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import torch
from torch import Tensor

from hebm_mol.checks import shorten, shown
from hebm_mol.datasets.base import MolGraphDataset
from hebm_mol.datasets.files import MAX_ROWS, MAX_SPLIT_BYTES, iter_lines, read_text

__all__ = ["QM9", "read_smiles_csv", "gdss_split"]

_SELFIES = "https://raw.githubusercontent.com/aspuru-guzik-group/selfies/eb6177e5f20cfd8787f2ac4423f5b38dce6eeeb8"
_MOFLOW = "https://raw.githubusercontent.com/calvin-zcx/moflow/3611c637260272b3d34a298f221623cb59e01091"


#: separators tried, in order, when the header has no ``column`` with a comma
_DELIMITERS = (",", ";", "\t", "|")


def _header_cell(cell: str) -> str:
    """A header name compared case-insensitively, without padding or the quotes of a padded quoted name."""
    name = cell.strip().lstrip("\ufeff").strip()
    if len(name) >= 2 and name[0] == name[-1] and name[0] in "\"'":
        name = name[1:-1].strip()
    return name.lower()


def read_smiles_csv(
    path: str | Path, column: str = "smiles", max_rows: int = MAX_ROWS, text: str | None = None
) -> list[str | None]:
    """One SMILES per data row from the column named ``column`` (case-insensitive); a row without it,
    or with an empty cell, is ``None`` so that row numbers keep their meaning.

    The file is read with :func:`~hebm_mol.datasets.files.read_text` (size limit, BOM, UTF-8 checked);
    the separator is a comma, else the first of ``; TAB |`` whose header names ``column``. A
    malformed file (an unterminated quote, more than ``max_rows`` rows) is one ``ValueError``.
    """
    path = Path(path)
    if not isinstance(column, str) or not column.strip():
        raise ValueError(f"{path}: the SMILES column must be a non-empty name, got {column!r}")
    if text is None:
        text = read_text(path, what="CSV file")
    first = next((ln.rstrip("\r\n") for ln in iter_lines(text) if ln.strip()), None)
    if first is None:
        raise ValueError(f"{path}: empty CSV file")
    want = column.strip().lower()
    delimiter, names = ",", []
    for d in _DELIMITERS:
        try:
            names = [_header_cell(h) for h in next(csv.reader([first], delimiter=d))]
        except csv.Error:
            continue
        if want in names:
            delimiter = d
            break
    else:
        header = shorten(first.lstrip("\ufeff"), 100)
        raise ValueError(f"{path}: no column {column!r} in the header {header!r}")
    k = names.index(want)
    old = csv.field_size_limit()
    csv.field_size_limit(max(old, len(text) + 1))  # long cells are skipped later, by length and counted
    out: list[str | None] = []
    try:
        reader = csv.reader(iter_lines(text), delimiter=delimiter, strict=True)
        for row in reader:  # the header: the first row that is not blank
            if row and any(c.strip() for c in row):
                break
        for row in reader:
            if len(out) >= max_rows:
                raise ValueError(f"{path}: more than {max_rows:,} rows; split the file")
            cell = row[k].strip() if len(row) > k else ""
            out.append(cell or None)
    except csv.Error as exc:
        raise ValueError(f"{path}: malformed CSV at line {reader.line_num}: {exc}") from None
    finally:
        csv.field_size_limit(old)
    return out


class QM9(MolGraphDataset):
    """QM9 as GDSS uses it: ``qm9.csv`` (column ``smiles``, row i = gdb_(i+1)) and the MoFlow/GDSS test
    split ``valid_idx_qm9.json`` whose entries are 0-based row numbers (13,082 test, 120,803 train).

    ``download=True`` fetches both files from their canonical commits (selfies, MoFlow) and checks
    their sha256; any other copy in ``root`` is used as it is, its sha256 recorded in reports.
    """

    name = "qm9"
    raw_file_names = ("qm9.csv", "valid_idx_qm9.json")
    urls = {
        "qm9.csv": f"{_SELFIES}/tests/test_sets/qm9.csv",
        "valid_idx_qm9.json": f"{_MOFLOW}/data/valid_idx_qm9.json",
    }
    sha256 = {
        "qm9.csv": "80c060e299a44112b89be3fc6d95145dfeda97aa3eab1e2662aafdfbb00f7929",
        "valid_idx_qm9.json": "889fd232a33d8a2c00f057c807b119e72abd5baa48f6fab93e8d8b7a79340f4d",
    }
    raw_limits = {"valid_idx_qm9.json": MAX_SPLIT_BYTES}

    def read_smiles(self) -> list[str | None]:
        return read_smiles_csv(self.root / "qm9.csv")

    def split(self, n_rows: int) -> dict[str, Tensor]:
        return gdss_split(self.root / "valid_idx_qm9.json", n_rows)


_SPLIT_KEYS = ("valid_idxs", "train_idxs")


def _row_numbers(items: object, where: str, key: str, n_rows: int) -> list[int]:
    """The entries of one list of 0-based row numbers (ints, or digit strings as MoFlow writes them)."""
    if not isinstance(items, list):
        raise ValueError(f"{where}: {key} must be a list of row numbers, got {type(items).__name__} {shown(items)}")
    out: list[int] = []
    first: dict[int, int] = {}
    for k, v in enumerate(items):
        if isinstance(v, int) and not isinstance(v, bool):
            r = v
        elif isinstance(v, str) and v.isascii() and v.isdigit():
            r = int(v) if len(v) <= 20 else n_rows  # more digits than any row number
        else:
            raise ValueError(f"{where}: {key}[{k}] = {shown(v, 30)} is not a row number (a whole number >= 0)")
        if not 0 <= r < n_rows:
            what = "test rows" if key == "valid_idxs" else "rows"
            raise ValueError(
                f"{where}: {key}[{k}] = {shown(v, 30)}: {what} must lie in [0, {n_rows}) (0-based data rows of the CSV)"
            )
        if r in first:
            raise ValueError(f"{where}: row {r} is listed twice in {key} (entries {first[r]} and {k})")
        first[r] = k
        out.append(r)
    return out


def gdss_split(path: str | Path, n_rows: int) -> dict[str, Tensor]:
    """Train/test row numbers from a MoFlow/GDSS ``valid_idx`` file: its entries are the test rows, 0-based.

    The file is ``{"valid_idxs": [rows]}`` (or a bare list); entries are integers or digit strings,
    each in range and listed once. An optional ``"train_idxs"`` names the training rows explicitly
    (disjoint from the test rows; rows in neither list are unused); without it every other row trains.
    """
    path = Path(path)

    def no_constant(name: str):
        raise ValueError(f"{name} is not a row number")

    try:
        raw = json.loads(read_text(path, MAX_SPLIT_BYTES, "split file"), parse_constant=no_constant)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None
    except RecursionError:
        raise ValueError(f"{path}: nested too deeply to be a split file") from None
    except ValueError as exc:
        if str(exc).startswith(str(path)):
            raise
        raise ValueError(f"{path}: {exc}") from None
    if isinstance(raw, list):
        raw = {"valid_idxs": raw}
    if not isinstance(raw, dict) or "valid_idxs" not in raw:
        got = f"a {type(raw).__name__}" if not isinstance(raw, dict) else f"keys {sorted(raw)[:5]}"
        raise ValueError(f"{path}: expected {{'valid_idxs': [row numbers]}}, got {got}")
    unknown = sorted(set(raw) - set(_SPLIT_KEYS))
    if unknown:
        raise ValueError(f"{path}: unknown key {shorten(unknown[0], 40)!r}; a split file has {', '.join(_SPLIT_KEYS)}")
    test_rows = _row_numbers(raw["valid_idxs"], str(path), "valid_idxs", n_rows)
    if not test_rows:
        raise ValueError(f"{path}: valid_idxs is empty: no test rows")
    test = torch.tensor(sorted(test_rows), dtype=torch.long)
    is_test = torch.zeros(n_rows, dtype=torch.bool)
    is_test[test] = True
    if "train_idxs" in raw:
        train = torch.tensor(sorted(_row_numbers(raw["train_idxs"], str(path), "train_idxs", n_rows)), dtype=torch.long)
        both = train[is_test[train]]
        if both.numel():
            shown_rows = ", ".join(str(r) for r in both[:5].tolist())
            more = f" and {both.numel() - 5} more" if both.numel() > 5 else ""
            raise ValueError(f"{path}: rows {shown_rows}{more} are in both train_idxs and valid_idxs")
    else:
        train = torch.nonzero(~is_test).flatten()
    return {"train": train, "test": test}
