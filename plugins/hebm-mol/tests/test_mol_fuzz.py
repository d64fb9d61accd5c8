"""Hostile inputs to the molecule plugin through the real ``hebm`` command (``hebm_core.testing.run_cli``).

Every case is one pytest item: a seeded generator writes its input files, the CLI runs on them in this
process with a timeout, and the case passes when there is no traceback, no hang, exit status 0 or 2, exactly
one ``hebm: error:`` line on exit 2, and only finite numbers in what it wrote. Most cases also say what
must happen: ``train`` (exit 0: the control cases, and hostile inputs the plugin reads despite their
oddity, e.g. a BOM or CRLF), ``refuse`` (exit 2, the error line naming ``match``), or ``skip`` (exit 0 with
the given rows counted by reason in the report's ``dataset.skipped``).

Files hold at least 16 usable molecules and at most 8 hostile rows, and ``data.test_fraction = 0.5``,
so both random splits always hold usable molecules and a usable file must train.
"""

from __future__ import annotations

import bz2
import codecs
import gzip
import io
import json
import os
import random
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from rdkit import Chem

from hebm_core.testing import run_cli

#: 24 distinct small molecules of C/N/O/F (<= 9 heavy atoms)
GOOD = [
    "CCO",
    "CC=O",
    "C1CC1",
    "CCN",
    "COC",
    "CC(=O)O",
    "CCCC",
    "C#N",
    "OCCO",
    "CC(C)O",
    "NCC=O",
    "FC(F)F",
    "C1CCOC1",
    "CC#CC",
    "OC1CC1",
    "CN(C)C",
    "O=C1CCC1",
    "CC(N)=O",
    "C=CC=O",
    "NC(=O)N",
    "c1ccoc1",
    "CC(F)CO",
    "N#CC#N",
    "OCC(O)CO",
]
N_GOOD = 16  # usable rows in every file that should train
#: rows the plugin cannot use, by the skip reason it must count them under
HOSTILE = {
    "unparsable": ["C1CC", "xyz", "C(C", "CC)", "[Cc]", "C%1", "c1cccc1", "[NH5]", "C\x0bC", "日本", "ＣＣＯ", "C=>C"],
    "element not allowed": ["CCS", "CCCl", "C[Si](C)C", "BrCBr", "CP", "[Na+].[Cl-]", "*C", "[Fe]"],
    "too many atoms": ["CCCCCCCCCC", "c1ccc2ccccc2c1", "OCC(O)C(O)C(O)C(O)CO", "C" * 60],
    "SMILES too long": ["C" * 1200, "C(" * 700 + "C" + ")" * 700, "[CH4]." * 300],
}
BASE = ["--steps", "2", "--set", "model.hidden=8", "--set", "model.depth=1", "--set", "model.edge_hidden=4"]
BASE += ["--set", "model.c_hid=2", "--set", "train.batch_size=4", "--set", "data.test_fraction=0.5"]
TIMEOUT = 60


@dataclass(frozen=True)
class Case:
    """One CLI call: files to write (bytes, or an int: a sparse file of that size), ``--set`` assignments
    (``{dir}`` is the input folder), what must happen, and for ``refuse`` a part of the error line."""

    id: str
    files: dict[str, bytes | int] = field(default_factory=dict)
    sets: tuple[str, ...] = ()
    expect: str = "either"  # train | refuse | skip | either
    match: str | None = None
    skipped: tuple[tuple[str, int], ...] = ()
    command: str = "train"
    dataset: str = "smiles"  # smiles: data.path = {dir}/<the first file>; qm9: data.root = {dir}


def _heavy_atoms(smiles: str) -> int:
    return Chem.MolFromSmiles(smiles).GetNumAtoms()


def _rows(n: int = N_GOOD, rng: random.Random | None = None) -> list[str]:
    rows = list(GOOD)
    if rng is not None:
        rng.shuffle(rows)
    return rows[:n]


def _csv(rows: list[str], header: str = "smiles", sep: str = ",", nl: str = "\n") -> str:
    return nl.join([header, *rows]) + nl


def _smi(rows: list[str], nl: str = "\n") -> str:
    return nl.join(rows) + nl


def _text(suffix: str, rows: list[str], nl: str = "\n") -> str:
    return _csv(rows, nl=nl) if suffix in (".csv", ".tsv") else _smi(rows, nl=nl)


def _gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def _zip(data: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("mols.csv", data)
    return buf.getvalue()


# ----------------------------------------------------------------------------- SMILES files
def smiles_file_cases() -> list[Case]:
    cases: list[Case] = []
    rng = random.Random(1)
    for suffix in (".csv", ".smi", ".txt", ".tsv"):
        good = _text(suffix, _rows()).encode()
        cases.append(Case(f"{suffix}-control", {f"m{suffix}": good}, expect="train"))
    for suffix in (".csv", ".smi"):
        text = _text(suffix, _rows())
        f = f"m{suffix}"
        ok = {
            "utf8-bom": codecs.BOM_UTF8 + text.encode(),
            "crlf": text.replace("\n", "\r\n").encode(),
            "cr-only": text.replace("\n", "\r").encode(),
            "bom-crlf": codecs.BOM_UTF8 + text.replace("\n", "\r\n").encode(),
            "utf16le-bom": codecs.BOM_UTF16_LE + text.encode("utf-16-le"),
            "utf16be-bom": codecs.BOM_UTF16_BE + text.encode("utf-16-be"),
            "utf32-bom": codecs.BOM_UTF32_LE + text.encode("utf-32-le"),
            "no-final-newline": text.rstrip("\n").encode(),
            "blank-lines-and-padding": ("\n\n" + text.replace("\n", "  \n\n")).encode(),
            "unicode-name-column": (
                _csv([f"{s},café-{i}" for i, s in enumerate(_rows())], "smiles,name")
                if suffix == ".csv"
                else _smi([f"{s}\tcafé-{i}" for i, s in enumerate(_rows())])
            ).encode(),
        }
        cases += [Case(f"{suffix}-{name}", {f: data}, expect="train") for name, data in ok.items()]
        bad = {
            "empty-file": (b"", "empty" if suffix == ".csv" else "no data rows"),
            "whitespace-only": (b" \n\t\n  \r\n", "empty" if suffix == ".csv" else "no data rows"),
            "nul-in-row": (text.replace("CCN", "C\x00CN").encode(), "NUL"),
            "nul-first-byte": (b"\x00" + text.encode(), "NUL"),
            "latin1-byte": (text.encode() + b"CC\xe9O\n", "not UTF-8"),
            "lone-continuation-byte": (b"\x80" + text.encode(), "not UTF-8"),
            "overlong-utf8": (text.encode() + b"C\xc0\x80C\n", "not UTF-8"),
            "utf16-without-bom": (text.encode("utf-16-le"), "NUL"),
            "gzip-compressed": (_gz(text.encode()), "gzip"),
            "bzip2-compressed": (bz2.compress(text.encode()), "bzip2"),
            "zip-archive": (_zip(text.encode()), "zip"),
            "truncated-utf8": (text.encode() + "é".encode()[:1], "not UTF-8"),
        }
        if suffix == ".csv":
            bad["header-only"] = (b"smiles\n", "no data rows")
        else:
            bad["comments-only"] = (b"# my molecules\n# none yet\n", "no data rows")
        cases += [Case(f"{suffix}-{name}", {f: data}, expect="refuse", match=m) for name, (data, m) in bad.items()]
        for k in range(4):  # binary garbage, seeded
            blob = random.Random(100 + k).randbytes(64 + 997 * k)
            cases.append(Case(f"{suffix}-binary-garbage-{k}", {f: blob}, expect="refuse", match=f))
        printable = "".join(random.Random(7).choice("CNOF()=#[]@+-123%") for _ in range(3000)).encode()
        cases.append(Case(f"{suffix}-printable-garbage", {f: printable}, expect="refuse"))
        cases.append(Case(f"{suffix}-over-size-limit", {f: (1 << 30) + 1}, expect="refuse", match="limit"))
        huge = _text(suffix, _rows() + ["C" * 140_000])
        cases.append(
            Case(
                f"{suffix}-cell-over-csv-field-limit",
                {f: huge.encode()},
                expect="skip",
                skipped=(("SMILES too long", 1),),
            )
        )
        cases.append(
            Case(
                f"{suffix}-only-a-huge-cell",
                {f: _text(suffix, ["C" * 300_000]).encode()},
                expect="refuse",
                match="no usable molecule",
            )
        )
        cases.append(Case(f"{suffix}-two-mb-one-line", {f: b"C" * (2 << 20)}, expect="refuse"))
    # CSV structure
    rows = _rows()
    csv_ok = {
        "semicolon-separated": _csv([f"{i};{s}" for i, s in enumerate(rows)], "id;smiles"),
        "tab-separated": _csv([f"{i}\t{s}" for i, s in enumerate(rows)], "id\tsmiles"),
        "pipe-separated": _csv([f"{s}|{i}" for i, s in enumerate(rows)], "smiles|id"),
        "header-uppercase-padded": _csv(rows, '  "SMILES" '),
        "quoted-cells": _csv([f'"{s}","x,y"' for s in rows], "smiles,note"),
        "many-columns": _csv(
            [",".join([s] + ["1"] * 300) for s in rows], ",".join(["smiles"] + [f"c{k}" for k in range(300)])
        ),
        "duplicate-header": _csv([f"{s},{s}" for s in rows], "smiles,smiles"),
        "leading-blank-lines": "\n\n\n" + _csv(rows),
        "mixed-line-ends": "smiles\r" + "\r\n".join(rows[:5]) + "\n" + "\r".join(rows[5:]) + "\n",
        "extra-cells": _csv([f"{s},1,2,3,4" for s in rows], "smiles,a"),
    }
    cases += [Case(f".csv-{n}", {"m.csv": t.encode()}, expect="train") for n, t in csv_ok.items()]
    cases.append(
        Case(
            ".csv-other-column-option",
            {"m.csv": _csv([f"x,{s}" for s in rows], "a,mol").encode()},
            sets=('data.column="MOL"',),
            expect="train",
        )
    )
    cases.append(
        Case(
            ".csv-missing-cells",
            {"m.csv": _csv(rows + [",", "", "  "], "smiles,a").encode()},
            expect="skip",
            skipped=(("malformed row", 3),),
        )
    )
    cases.append(
        Case(
            ".csv-short-rows",
            {"m.csv": _csv([f"1,{s}" for s in rows] + ["2", "3"], "id,smiles").encode()},
            expect="skip",
            skipped=(("malformed row", 2),),
        )
    )
    csv_bad = {
        "missing-column": (_csv(rows, "smile"), "no column 'smiles'"),
        "no-header": ("\n".join(rows) + "\n", "no column 'smiles'"),
        "unbalanced-quote": ('smiles\n"CCO\n' + "\n".join(rows) + "\n", "malformed CSV"),
        "quote-inside-cell": (_csv(rows + ['"CC"O']), "malformed CSV"),
        "column-in-wrong-separator": (_csv(rows, "id:smiles"), "no column"),
    }
    cases += [Case(f".csv-{n}", {"m.csv": t.encode()}, expect="refuse", match=m) for n, (t, m) in csv_bad.items()]
    cases.append(
        Case(
            ".csv-column-not-there",
            {"m.csv": _csv(rows).encode()},
            sets=('data.column="name"',),
            expect="refuse",
            match="no column 'name'",
        )
    )
    # rows RDKit rejects or that are outside the spec, counted by reason
    for reason, bad_rows in HOSTILE.items():
        for suffix in (".csv", ".smi"):
            picked = bad_rows[:8]
            good = _rows(N_GOOD, rng)
            mixed = good + picked
            rng.shuffle(mixed)
            if suffix == ".smi":
                picked = [r for r in picked if r.split() == [r] and "#" not in r]
                mixed = [r for r in mixed if r.split() == [r] and not r.startswith("#")]
            data = (_csv(mixed) if suffix == ".csv" else _smi(mixed)).encode()
            cases.append(
                Case(
                    f"{suffix}-rows-{reason.replace(' ', '-')}",
                    {f"m{suffix}": data},
                    expect="skip",
                    skipped=((reason, len(picked)),),
                )
            )
        only = _csv(bad_rows[:6] * 3).encode()
        cases.append(
            Case(
                f".csv-all-rows-{reason.replace(' ', '-')}",
                {"m.csv": only},
                expect="refuse",
                match="no usable molecule",
            )
        )
    for k in range(12):  # random mixtures, seeded: every hostile kind at once, in both formats
        r = random.Random(1000 + k)
        chosen = [(reason, row) for reason, rows_ in HOSTILE.items() for row in rows_]
        picked = r.sample(chosen, r.randint(1, 8))
        lines = _rows(N_GOOD, r) + [row for _, row in picked]
        r.shuffle(lines)
        counts: dict[str, int] = {}
        for reason, _ in picked:
            counts[reason] = counts.get(reason, 0) + 1
        nl = r.choice(["\n", "\r\n"])
        bom = codecs.BOM_UTF8 if r.random() < 0.3 else b""
        cases.append(
            Case(
                f".csv-random-mixture-{k}",
                {"m.csv": bom + _csv(lines, nl=nl).encode()},
                expect="skip",
                skipped=tuple(sorted(counts.items())),
            )
        )
    frags = _rows() + ["CC.O", "C.C.C", "[NH4+].[O-]C=O"]
    cases.append(
        Case(
            ".smi-fragments-single-fragment",
            {"m.smi": _smi(frags).encode()},
            sets=("data.single_fragment=true",),
            expect="skip",
            skipped=(("several fragments", 3),),
        )
    )
    cases.append(Case(".smi-fragments-allowed", {"m.smi": _smi(frags).encode()}, expect="train"))
    cases.append(
        Case(
            ".smi-own-elements",
            {"m.smi": _smi(_rows() + ["CCS", "CSC", "OS(=O)O"]).encode()},
            sets=(
                'data.atoms=["C", "N", "O", "F", "S"]',
                'statistics=[{name="valency", atoms=["C", "N", "O", "F", "S"]}]',
            ),
            expect="train",
        )
    )
    over4 = sum(_heavy_atoms(s) > 4 for s in _rows(24))
    cases.append(
        Case(
            ".smi-small-max-atoms",
            {"m.smi": _smi(_rows(24)).encode()},
            sets=("data.max_atoms=4",),
            expect="skip",
            skipped=(("too many atoms", over4),),
        )
    )
    cases.append(
        Case(
            ".smi-charges-radicals-isotopes",
            {"m.smi": _smi(_rows() + ["[NH4+]", "[CH3]", "[13CH4]", "C/C=C/C", "[2H]OC"]).encode()},
            expect="train",
        )
    )
    cases.append(
        Case(
            ".smi-explicit-hydrogens",
            {"m.smi": _smi(_rows() + ["[H]C([H])([H])[H]", "[H][H]", "[H]"]).encode()},
            expect="train",
        )
    )
    cases.append(Case(".smi-same-molecule-repeated", {"m.smi": _smi(["CCO"] * 20).encode()}, expect="train"))
    return cases


def path_cases() -> list[Case]:
    good = {"m.csv": _csv(_rows()).encode()}
    return [
        Case("path-missing-file", good, sets=('data.path="{dir}/nope.smi"',), expect="refuse", match="nope.smi"),
        Case("path-is-a-folder", good, sets=('data.path="{dir}"',), expect="refuse", match="is a folder"),
        Case("path-empty-string", good, sets=('data.path=""',), expect="refuse", match="path"),
        Case("path-is-a-number", good, sets=("data.path=5",), expect="refuse", match="path"),
        Case("path-is-a-list", good, sets=('data.path=["a.smi"]',), expect="refuse", match="path"),
        Case("path-has-nul", good, sets=('data.path="a\\u0000b.smi"',), expect="refuse", match="NUL"),
        Case("path-too-long", good, sets=(f'data.path="{"x" * 5000}.smi"',), expect="refuse"),
        Case("path-device-dev-zero", good, sets=('data.path="/dev/zero"',), expect="refuse", match="regular file"),
        Case("path-fifo", good, sets=('data.path="{dir}/fifo.smi"',), expect="refuse", match="regular file"),
    ]


# ----------------------------------------------------------------------------- QM9 CSV and split JSON
QM9_ROWS = _rows(20)


def _qm9(csv_text: str | bytes | int | None = None, split: object = None, raw_split: bytes | int | None = None) -> dict:
    files: dict[str, bytes | int] = {}
    if csv_text is not None:
        files["qm9.csv"] = csv_text.encode() if isinstance(csv_text, str) else csv_text
    if raw_split is not None:
        files["valid_idx_qm9.json"] = raw_split
    elif split is not None:
        files["valid_idx_qm9.json"] = json.dumps(split).encode()
    return files


def qm9_cases() -> list[Case]:
    csv_ok = _csv(QM9_ROWS)
    test = {"valid_idxs": ["000001", "000005", "000009", "000013", "000017"]}
    q = lambda name, files, expect, match=None, skipped=(): Case(  # noqa: E731
        f"qm9-{name}", files, expect=expect, match=match, skipped=skipped, dataset="qm9"
    )
    cases = [
        q("control-digit-strings", _qm9(csv_ok, test), "train"),
        q("control-ints", _qm9(csv_ok, {"valid_idxs": [1, 5, 9, 13, 17]}), "train"),
        q("control-bare-list", _qm9(csv_ok, [0, 2, 4, 6]), "train"),
        q("control-train-idxs", _qm9(csv_ok, {"valid_idxs": [1, 2, 3], "train_idxs": [4, 5, 6, 7, 8, 9]}), "train"),
        q("csv-bom-crlf", _qm9(codecs.BOM_UTF8 + csv_ok.replace("\n", "\r\n").encode(), test), "train"),
        q("json-bom", _qm9(csv_ok, raw_split=codecs.BOM_UTF8 + json.dumps(test).encode()), "train"),
        q(
            "csv-extra-columns",
            _qm9(_csv([f"{i},{s},0.5" for i, s in enumerate(QM9_ROWS)], "idx,SMILES,mu"), test),
            "train",
        ),
        q(
            "csv-malformed-rows",
            _qm9(_csv(QM9_ROWS[:-3] + ["", "C1CC", "CCS"]), test),
            "skip",
            skipped=(("malformed row", 1), ("unparsable", 1), ("element not allowed", 1)),
        ),
        q("csv-truncated-mid-smiles", _qm9(csv_ok.rstrip("\n")[:-2], test), "skip", skipped=(("unparsable", 1),)),
        q("csv-truncated-in-quote", _qm9("smiles\n" + "\n".join(QM9_ROWS) + '\n"CC', test), "refuse", "malformed CSV"),
        q("csv-wrong-columns", _qm9(_csv(QM9_ROWS, "smi,mu"), test), "refuse", "no column 'smiles'"),
        q("csv-no-header", _qm9("\n".join(QM9_ROWS) + "\n", test), "refuse", "no column 'smiles'"),
        q("csv-empty", _qm9("", test), "refuse", "empty CSV"),
        q("csv-header-only", _qm9("smiles\n", test), "refuse", "lie in [0, 0)"),
        q("csv-binary", _qm9(random.Random(5).randbytes(4000), test), "refuse", "qm9.csv"),
        q("csv-not-utf8", _qm9(csv_ok.encode() + b"C\xffC\n", test), "refuse", "not UTF-8"),
        q("csv-over-size-limit", _qm9((1 << 30) + 5, test), "refuse", "limit"),
        q("csv-missing", _qm9(None, test), "refuse", "missing qm9.csv"),
        q("json-missing", _qm9(csv_ok, None), "refuse", "missing valid_idx_qm9.json"),
        q("csv-huge-cell", _qm9(_csv(QM9_ROWS + ["C" * 200_000]), test), "skip", skipped=(("SMILES too long", 1),)),
    ]
    bad_splits = {
        "floats": ({"valid_idxs": [1.7, 3.2]}, "valid_idxs[0] = 1.7 is not a row number"),
        "integral-floats": ({"valid_idxs": [1.0, 2.0]}, "valid_idxs[0] = 1.0 is not a row number"),
        "bools": ({"valid_idxs": [True, False]}, "valid_idxs[0] = True is not a row number"),
        "int-and-bool": ({"valid_idxs": [3, True]}, "valid_idxs[1] = True"),
        "negative": ({"valid_idxs": [1, -1]}, "valid_idxs[1] = -1"),
        "out-of-range": ({"valid_idxs": [1, 20]}, "must lie in [0, 20)"),
        "far-out-of-range": ({"valid_idxs": [999999]}, "must lie in [0, 20)"),
        "int64-max": ({"valid_idxs": [2**63 - 1]}, "must lie in [0, 20)"),
        "huge-digit-string": ({"valid_idxs": ["9" * 5000]}, "must lie in [0, 20)"),
        "duplicated": ({"valid_idxs": [1, 5, 1]}, "row 1 is listed twice"),
        "duplicated-as-string": ({"valid_idxs": [7, "007"]}, "row 7 is listed twice"),
        "word-string": ({"valid_idxs": ["abc"]}, "is not a row number"),
        "padded-string": ({"valid_idxs": [" 5"]}, "is not a row number"),
        "signed-string": ({"valid_idxs": ["-3"]}, "is not a row number"),
        "decimal-string": ({"valid_idxs": ["5.0"]}, "is not a row number"),
        "exponent-string": ({"valid_idxs": ["1e1"]}, "is not a row number"),
        "arabic-digit-string": ({"valid_idxs": ["٣"]}, "is not a row number"),
        "null-entry": ({"valid_idxs": [1, None]}, "is not a row number"),
        "nested-list": ({"valid_idxs": [[1, 2]]}, "is not a row number"),
        "dict-entry": ({"valid_idxs": [{"row": 1}]}, "is not a row number"),
        "not-a-list-int": ({"valid_idxs": 5}, "must be a list"),
        "not-a-list-string": ({"valid_idxs": "1,2,3"}, "must be a list"),
        "not-a-list-dict": ({"valid_idxs": {"0": 1}}, "must be a list"),
        "not-a-list-null": ({"valid_idxs": None}, "must be a list"),
        "top-level-number": (5, "expected {'valid_idxs'"),
        "top-level-string": ("1,2", "expected {'valid_idxs'"),
        "wrong-key": ({"idx": [1, 2]}, "expected {'valid_idxs'"),
        "unknown-extra-key": ({"valid_idxs": [1], "test": [2]}, "unknown key 'test'"),
        "empty-list": ({"valid_idxs": []}, "no test rows"),
        "every-row-is-test": ({"valid_idxs": list(range(20))}, "training split has no usable molecule"),
        "train-test-overlap": ({"valid_idxs": [1, 2, 3], "train_idxs": [3, 4, 5]}, "in both train_idxs and valid_idxs"),
        "train-idxs-floats": ({"valid_idxs": [1], "train_idxs": [2.5]}, "train_idxs[0] = 2.5"),
        "train-idxs-not-a-list": ({"valid_idxs": [1], "train_idxs": "all"}, "train_idxs must be a list"),
        "test-rows-all-skipped": ({"valid_idxs": [19]}, "test split has no usable molecule"),
    }
    for name, (split, match) in bad_splits.items():
        csv_text = _csv(QM9_ROWS[:-1] + ["C1CC"]) if name == "test-rows-all-skipped" else csv_ok
        cases.append(q(f"split-{name}", _qm9(csv_text, split), "refuse", match))
    raw_bad = {
        "invalid-json": (b'{"valid_idxs": [1, 2', "not valid JSON"),
        "empty-file": (b"", "not valid JSON"),
        "nan-literal": (b'{"valid_idxs": [1, NaN]}', "NaN is not a row number"),
        "infinity-literal": (b'{"valid_idxs": [Infinity]}', "Infinity is not a row number"),
        "comments": (b'// test rows\n{"valid_idxs": [1]}', "not valid JSON"),
        "top-level-null": (b"null", "expected {'valid_idxs'"),
        "deeply-nested": (b"[" * 200_000 + b"]" * 200_000, "valid_idx_qm9.json"),
        "not-utf8": (b'{"valid_idxs": ["\xff"]}', "not UTF-8"),
        "binary": (random.Random(9).randbytes(3000), "valid_idx_qm9.json"),
        "gzip": (_gz(json.dumps(test).encode()), "gzip"),
        "over-size-limit": ((64 << 20) + 1, "limit"),
        "trailing-garbage": (json.dumps(test).encode() + b" xyz", "not valid JSON"),
    }
    for name, (raw, match) in raw_bad.items():
        cases.append(q(f"json-{name}", _qm9(csv_ok, raw_split=raw), "refuse", match))
    qm9_opts = {
        "download-string": ('data.download="yes"', "download must be true or false"),
        "base-url-not-http": ('data.base_url="ftp://example.org/qm9"', "base_url must be an http"),
        "base-url-number": ("data.base_url=5", "base_url"),
        "download-unreachable": ('data.base_url="http://127.0.0.1:9"', "cannot download"),
        "root-empty": ('data.root=""', "root"),
        "root-is-a-file": ('data.root="{dir}/qm9.csv"', "not a folder"),
        "max-train-zero": ("data.max_train=0", "max_train"),
        "seed-float": ("data.seed=0.5", "seed"),
    }
    for name, (s, match) in qm9_opts.items():
        files = _qm9(csv_ok, test) if name != "download-unreachable" else {}
        sets = (s, "data.download=true") if name == "download-unreachable" else (s,)
        cases.append(Case(f"qm9-option-{name}", files, sets=sets, expect="refuse", match=match, dataset="qm9"))
    for k in range(6):  # random valid splits over random QM9-like files: must train
        r = random.Random(300 + k)
        rows = _rows(20, r)
        idx = r.sample(range(20), r.randint(2, 8))
        entries = [f"{i:06d}" if r.random() < 0.5 else i for i in idx]
        cases.append(q(f"split-random-valid-{k}", _qm9(_csv(rows), {"valid_idxs": entries}), "train"))
    for k in range(6):  # random invalid entries mixed into valid splits: must be refused
        r = random.Random(400 + k)
        idx: list = r.sample(range(20), 4)
        poison = r.choice([1.5, -2, 20 + r.randint(0, 9), True, "x", None, [1], idx[0]])
        idx.insert(r.randint(0, 4), poison)
        cases.append(q(f"split-random-poisoned-{k}", _qm9(csv_ok, {"valid_idxs": idx}), "refuse", "valid_idx_qm9.json"))
    return cases


# ----------------------------------------------------------------------------- factory options
def option_cases() -> list[Case]:
    good = {"m.csv": _csv(_rows()).encode()}
    opt = lambda name, sets, expect="refuse", match=None: Case(  # noqa: E731
        f"option-{name}",
        good,
        sets=tuple(sets) if isinstance(sets, (list, tuple)) else (sets,),
        expect=expect,
        match=match,
    )
    cases = [opt("control-all-defaults", (), "train")]
    data_bad = {
        "atoms-string": ('data.atoms="CNOF"', "list of elements"),
        "atoms-empty": ("data.atoms=[]", "list of elements"),
        "atoms-number": ("data.atoms=[6, 7]", "atoms[0] must be an element symbol"),
        "atoms-lowercase": ('data.atoms=["c", "n"]', "'C'?"),
        "atoms-unknown": ('data.atoms=["C", "Xx"]', "unknown element"),
        "atoms-wildcard": ('data.atoms=["C", "*"]', "unknown element"),
        "atoms-duplicate": ('data.atoms=["C", "N", "C"]', "more than once"),
        "atoms-nested": ('data.atoms=[["C"]]', "atoms[0]"),
        "atoms-table": ("data.atoms={C=1}", "list of elements"),
        "max-atoms-zero": ("data.max_atoms=0", "max_atoms must be an integer in [1, 512]"),
        "max-atoms-negative": ("data.max_atoms=-9", "max_atoms"),
        "max-atoms-float": ("data.max_atoms=9.5", "max_atoms"),
        "max-atoms-bool": ("data.max_atoms=true", "max_atoms"),
        "max-atoms-string": ('data.max_atoms="9"', "max_atoms"),
        "max-atoms-over-bound": ("data.max_atoms=513", "max_atoms"),
        "max-atoms-huge": ("data.max_atoms=100000", "max_atoms"),
        "max-atoms-int64": ("data.max_atoms=9223372036854775807", "max_atoms"),
        "test-fraction-negative": ("data.test_fraction=-0.1", "test_fraction"),
        "test-fraction-one": ("data.test_fraction=1.0", "test_fraction"),
        "test-fraction-big": ("data.test_fraction=1.5", "test_fraction"),
        "test-fraction-string": ('data.test_fraction="0.1"', "test_fraction"),
        "test-fraction-bool": ("data.test_fraction=true", "test_fraction"),
        "test-fraction-zero": ("data.test_fraction=0", "test split has no usable molecule"),
        "seed-float": ("data.seed=1.5", "seed"),
        "seed-string": ('data.seed="0"', "seed"),
        "seed-bool": ("data.seed=false", "seed"),
        "column-number": ("data.column=5", "column"),
        "column-empty": ('data.column=""', "column"),
        "column-list": ('data.column=["smiles"]', "column"),
        "single-fragment-string": ('data.single_fragment="no"', "single_fragment must be true or false"),
        "single-fragment-int": ("data.single_fragment=1", "single_fragment"),
        "cache-dir-number": ("data.cache_dir=5", "cache_dir"),
        "cache-dir-empty": ('data.cache_dir=""', "cache_dir"),
        "cache-dir-is-a-file": ('data.cache_dir="{dir}/m.csv"', "not a folder"),
        "cache-dir-under-a-file": ('data.cache_dir="{dir}/m.csv/sub"', "cache"),
        "max-train-zero": ("data.max_train=0", "max_train must be an integer >= 1"),
        "max-train-negative": ("data.max_train=-2", "max_train"),
        "max-train-float": ("data.max_train=2.5", "max_train"),
        "max-train-bool": ("data.max_train=true", "max_train"),
        "max-test-zero": ("data.max_test=0", "max_test"),
        "max-test-string": ('data.max_test="all"', "max_test"),
        "unknown-option": ("data.smiles_column=1", "unexpected"),
        "test-fraction-nan": ("data.test_fraction=nan", "finite"),
        "test-fraction-inf": ("data.test_fraction=inf", "finite"),
        "max-atoms-inf": ("data.max_atoms=-inf", "max_atoms"),
    }
    cases += [opt(f"data-{n}", s, "refuse", m) for n, (s, m) in data_bad.items()]
    cases += [
        opt("data-seed-negative", "data.seed=-1", "train"),
        opt("data-seed-int64-max", "data.seed=9223372036854775807", "train"),
        opt("data-max-train-huge", "data.max_train=1000000000", "train"),
        opt("data-max-test-one", "data.max_test=1", "train"),
        opt("data-column-uppercase", 'data.column="SMILES"', "train"),
        opt("data-test-fraction-tiny", "data.test_fraction=1e-300", "train"),
        opt("data-max-atoms-bound", ["data.max_atoms=512", "train.batch_size=2"], "train"),
    ]
    nci_bad = {
        "max-atoms-huge": ("data.max_atoms=100000", "max_atoms"),
        "atoms-string": ('data.atoms="CN"', "list of elements"),
        "test-fraction-nan-like": ('data.test_fraction="nan"', "test_fraction"),
        "path-not-an-option": ('data.path="x.smi"', "unexpected"),
    }
    cases += [
        Case(f"option-nci-{n}", {}, sets=('data.name="nci"', s), expect="refuse", match=m)
        for n, (s, m) in nci_bad.items()
    ]
    model_bad = {
        "hidden-negative": ("model.hidden=-4", "hidden must be an integer in [1, 2048]"),
        "hidden-zero": ("model.hidden=0", "hidden"),
        "hidden-float": ("model.hidden=1.5", "hidden"),
        "hidden-bool": ("model.hidden=true", "hidden"),
        "hidden-string": ('model.hidden="8"', "hidden"),
        "hidden-huge": ("model.hidden=1000000", "hidden"),
        "depth-zero": ("model.depth=0", "depth"),
        "depth-huge": ("model.depth=100000", "depth must be an integer in [1, 32]"),
        "depth-negative": ("model.depth=-1", "depth"),
        "c-init-zero": ("model.c_init=0", "c_init"),
        "c-init-huge": ("model.c_init=1000", "c_init"),
        "c-hid-huge": ("model.c_hid=100000", "c_hid"),
        "edge-hidden-zero": ("model.edge_hidden=0", "edge_hidden"),
        "edge-hidden-huge": ("model.edge_hidden=1000000", "edge_hidden"),
        "too-many-parameters": (["model.hidden=2048", "model.depth=32"], "parameters"),
        "noise-conditional-string": ('model.noise_conditional="yes"', "noise_conditional must be true or false"),
        "max-bond-zero": ("model.max_bond=0", "max_bond"),
        "max-bond-negative": ("model.max_bond=-3", "max_bond"),
        "max-bond-huge": ("model.max_bond=1e300", "max_bond"),
        "max-bond-string": ('model.max_bond="3"', "max_bond"),
        "max-bond-nan": ("model.max_bond=nan", "max_bond"),
        "hidden-inf": ("model.hidden=inf", "hidden"),
        "n-types-mismatch": ("model.n_types=3", "n_types=3 but the data has 4"),
        "n-types-zero": ("model.n_types=0", "n_types"),
        "n-types-float": ("model.n_types=4.0", "n_types"),
        "unknown-option": ("model.width=8", "unexpected"),
    }
    cases += [opt(f"model-{n}", s, "refuse", m) for n, (s, m) in model_bad.items()]
    cases += [
        opt("model-n-types-matching", "model.n_types=4", "train"),
        opt("model-max-bond-float", "model.max_bond=2.5", "train"),
        opt("model-not-noise-conditional", "model.noise_conditional=false", "train"),
    ]
    stat = lambda s: f'statistics=[{{name="valency", {s}}}]'  # noqa: E731
    stat_bad = {
        "components-unknown": (stat('components=["charge"]'), "components must be"),
        "components-empty": (stat("components=[]"), "components must be"),
        "components-number": (stat("components=[1]"), "components must be"),
        "components-duplicate": (stat('components=["bonds", "bonds"]'), "twice"),
        "components-table": (stat("components={a=1}"), "components must be"),
        "charged-n-string": (stat('charged_n="yes"'), "charged_n must be true or false"),
        "atoms-unknown": (stat('atoms=["C", "Qq"]'), "unknown element"),
        "atoms-metal": (stat('atoms=["C", "N", "O", "Fe"]'), "no default valence"),
        "atoms-string": (stat('atoms="CNOF"'), "list of elements"),
        "atoms-fewer-than-data": (stat('atoms=["C", "N"]'), "graphs have 4 element types"),
        "atoms-more-than-data": (stat('atoms=["C", "N", "O", "F", "S"]'), "graphs have 4 element types"),
        "unknown-option": (stat("weight=2"), "unexpected"),
    }
    cases += [opt(f"statistic-{n}", s, "refuse", m) for n, (s, m) in stat_bad.items()]
    cases += [
        opt("statistic-components-string", stat('components="bonds"'), "train"),
        opt("statistic-all-components", stat('components=["excess", "hydrogens", "bonds"]'), "train"),
        opt("statistic-charged-n-off", stat("charged_n=false"), "train"),
    ]
    return cases


RUN = ["--set", "sampler.n_samples=4", "--set", "sampler.batch_size=4", "--set", "sampler.steps_per_sigma=1"]
RUN += ["--set", "objective.n_sigmas=2", "--set", "sampler.progress=false", "--set", "hybrid.calibrate_samples=8"]
RUN += ["--set", "hybrid.calibrate_rounds=1"]


def run_cases() -> list[Case]:
    """``hebm run`` (train, sample 4 molecules, evaluate): reports must be finite even when FCD, uniqueness or
    novelty are undefined (a one-molecule test split, no valid sample), and bad metric options are refused."""
    good = {"m.csv": _csv(_rows()).encode()}
    met = lambda s: f'evaluate.metrics=[{{name="molecules", {s}}}]'  # noqa: E731
    tiny_test = {"m.smi": _smi(_rows(12)).encode()}
    cases = [
        Case("run-control", good, command="run", expect="train"),
        Case(
            "run-one-test-molecule-fcd-undefined",
            tiny_test,
            sets=("data.test_fraction=0.1",),
            command="run",
            expect="train",
        ),
        Case(
            "run-hostile-but-usable-file",
            {"m.csv": codecs.BOM_UTF8 + _csv(_rows() + ["C" * 200_000, "CCS", "x("], nl="\r\n").encode()},
            command="run",
            expect="skip",
            skipped=(("SMILES too long", 1), ("element not allowed", 1), ("unparsable", 1)),
        ),
        Case(
            "run-max-atoms-3",
            {"m.smi": _smi(_rows(24) + ["C", "O", "N", "CC", "CO"]).encode()},
            sets=("data.max_atoms=3",),
            command="run",
            expect="skip",
            skipped=(("too many atoms", sum(_heavy_atoms(s) > 3 for s in _rows(24))),),
        ),
        Case(
            "run-uncorrected-no-nspdk", good, sets=(met("correct=false, nspdk=false"),), command="run", expect="train"
        ),
    ]
    met_bad = {
        "correct-string": (met('correct="yes"'), "correct must be true or false"),
        "nspdk-int": (met("nspdk=1"), "nspdk must be true or false"),
        "fcd-string": (met('fcd="no"'), "fcd must be true or false"),
        "cache-dir-number": (met("cache_dir=5"), "cache_dir"),
        "cache-dir-is-a-file": (met('cache_dir="{dir}/m.csv"'), "not a folder"),
        "unknown-option": (met("validity=true"), "unexpected"),
    }
    cases += [
        Case(f"run-metric-{n}", good, sets=(s,), command="run", expect="refuse", match=m)
        for n, (s, m) in met_bad.items()
    ]
    return cases


CASES = smiles_file_cases() + path_cases() + qm9_cases() + option_cases() + run_cases()
assert len({c.id for c in CASES}) == len(CASES), "case ids must be unique"


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """One processed-data cache for the module (keyed by file content, so sharing it is safe)."""
    return tmp_path_factory.mktemp("mol_fuzz_cache")


def _write(folder: Path, files: dict[str, bytes | int]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        with open(folder / name, "wb") as f:
            if isinstance(data, int):
                f.truncate(data)  # sparse: a size claim, no disk used
            else:
                f.write(data)


def argv_of(case: Case, folder: Path, out: Path) -> list[str]:
    argv = [case.command, "--plugin", "mol", "--out", str(out), *BASE]
    if case.command == "run":
        argv += RUN
    if case.dataset == "qm9":
        argv += ["--set", 'data.name="qm9"', "--set", f'data.root="{folder}"']
    elif case.files:
        first = next(iter(case.files))
        argv += ["--set", 'data.name="smiles"', "--set", f'data.path="{folder / first}"']
    for s in case.sets:
        argv += ["--set", s.replace("{dir}", str(folder))]
    return argv


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_input(case: Case, tmp_path, cache, monkeypatch):
    monkeypatch.setenv("HEBM_CACHE", str(cache))
    folder = tmp_path / "in"
    _write(folder, case.files)
    if case.id == "path-fifo":
        os.mkfifo(folder / "fifo.smi")
    res = run_cli(argv_of(case, folder, tmp_path / "out"), timeout=TIMEOUT)
    assert not res.problems(), (res.problems(), res.stderr[-2000:])
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("hebm: error:")]
    if case.expect in ("train", "skip"):
        assert res.rc == 0, f"expected to train, got: {errors or res.stderr[-1000:]}"
    elif case.expect == "refuse":
        assert res.rc == 2, f"expected a refusal, exit {res.rc}"
        assert case.match is None or case.match in errors[0], errors[0]
        assert len(errors[0]) < 1000, "an error line must stay readable"
    if res.rc == 0:
        report = json.loads((tmp_path / "out" / "report.json").read_text())
        skipped = report["dataset"]["skipped"]
        assert all(isinstance(v, int) and v > 0 for v in skipped.values()), skipped
        for reason, count in case.skipped:
            assert skipped.get(reason) == count, (reason, skipped)
        if case.expect == "train":
            assert report["dataset"]["n_train"] >= 1 and report["dataset"]["n_test"] >= 1
        if case.command == "run":
            metrics = report["metrics"]
            assert metrics["n_generated"] == 4 and 0 <= metrics["validity"] <= 1


def test_the_suite_is_big_and_balanced():
    """At least 200 hostile cases, and enough must-train cases that refusing everything cannot pass."""
    kinds = {k: sum(c.expect == k for c in CASES) for k in ("train", "skip", "refuse", "either")}
    assert len(CASES) >= 200 and kinds["train"] + kinds["skip"] >= 60 and kinds["refuse"] >= 100, kinds
