"""A PyG-style molecular dataset: raw files, ``fetch()``, ``process()``, a cache keyed by content.

Like ``torch_geometric.data.InMemoryDataset`` a dataset names its ``raw_file_names``, can
``fetch()`` them (sha256-checked) and ``process()`` them once into tensors. Two differences, on purpose: the
processed tensors are dense ``(X, A, n_atoms)`` (what the energy network and the sampler work on;
PyG ``Data`` objects come from :meth:`MolGraphDataset.get`), and the cache is loaded with
``torch.load(weights_only=True)`` only (PyG falls back to unpickling code when that fails). The
cache key holds the sha256 of every raw file and the graph spec, so a changed file is re-processed.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from tqdm.auto import tqdm

from hebm_core.download import DownloadError, default_cache_dir, download_file, sha256_of
from hebm_mol.checks import shorten
from hebm_mol.datasets.files import MAX_GRAPH_BYTES, MAX_TEXT_BYTES, check_raw_file, human_bytes
from hebm_mol.graph import QM9_SPEC, GraphSpec, MolConversionError, mol_to_graph, parse_smiles, to_pyg

__all__ = ["MolGraphDataset", "sha256_of", "download_file", "default_cache_dir", "DownloadError"]

#: bump when the processed format changes, so old caches are not read
PROCESS_VERSION = 2
#: the keys of a processed cache file (one that lacks any, or holds other types, is rebuilt)
_CACHE_KEYS = ("x", "a", "n_atoms", "rows", "smiles", "n_rows", "skipped", "skipped_examples")


class MolGraphDataset:
    """Molecules from raw files as dense graphs; subclasses give the files and read the SMILES.

    Subclasses set ``name``, ``raw_file_names``, optionally ``urls``/``sha256`` (per raw file) for
    :meth:`fetch` and ``raw_limits`` (most bytes per raw file, default :data:`MAX_TEXT_BYTES`), and
    implement :meth:`read_smiles` and :meth:`split`. Rows that cannot be encoded (unparsable, too
    long to be a molecule of ``max_atoms``, other elements, too many atoms, several fragments when
    ``single_fragment``) are skipped and counted by reason in :attr:`skipped`, never fatal. A raw
    file that cannot be read as a whole (too large, binary, not UTF-8, malformed) is one
    ``ValueError`` naming the file.
    """

    name = "molecules"
    raw_file_names: Sequence[str] = ()
    urls: dict[str, str] = {}
    sha256: dict[str, str] = {}
    raw_limits: dict[str, int] = {}

    def __init__(
        self,
        root: str | Path,
        spec: GraphSpec = QM9_SPEC,
        cache_dir: str | Path | None = None,
        download: bool = False,
        base_url: str | None = None,
        single_fragment: bool = False,
        progress: bool | None = None,
    ) -> None:
        self.root = Path(root).expanduser()
        self.spec = spec
        self.single_fragment = single_fragment
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir() / "mol"
        self.progress = progress
        missing = self._missing()
        if missing and download:
            self.fetch(self.root, base_url)
            missing = self._missing()
        if missing:
            hint = " (or set download=true)" if self.urls else ""
            raise FileNotFoundError(f"{self.name}: missing {', '.join(missing)} in {self.root}{hint}")
        for f in self.raw_file_names:  # sizes and kinds are checked before anything is read
            check_raw_file(self.root / f, self.raw_limits.get(f, MAX_TEXT_BYTES), f"{self.name} input file")
        try:
            self.raw_sha256 = {f: sha256_of(self.root / f) for f in self.raw_file_names}
        except OSError as exc:
            raise ValueError(f"{self.name}: cannot read {exc.filename or self.root} ({exc.strerror or exc})") from None
        self._load_or_process()

    def _missing(self) -> list[str]:
        """Raw files that do not exist at all (a folder or device of that name is refused later, by name)."""
        out = []
        for f in self.raw_file_names:
            try:
                os.stat(self.root / f)
            except FileNotFoundError:
                out.append(f)
            except OSError:
                pass  # reported with its reason by check_raw_file
        return out

    # ------------------------------------------------------------------ raw files
    @property
    def raw_paths(self) -> list[Path]:
        return [self.root / f for f in self.raw_file_names]

    @classmethod
    def fetch(cls, root: str | Path, base_url: str | None = None) -> list[Path]:
        """Download the missing raw files into ``root`` from ``urls`` (or ``base_url/<file>``), each
        checked against its sha256; returns the paths fetched. Nothing is kept on a mismatch."""
        root = Path(root).expanduser()
        if not cls.urls and base_url is None:
            raise FileNotFoundError(f"{cls.name}: no download source is known; put the files in {root}")
        fetched = []
        for f in cls.raw_file_names:
            if (root / f).is_file():
                continue
            url = f"{base_url.rstrip('/')}/{f}" if base_url else cls.urls[f]
            fetched.append(download_file(url, root / f, cls.sha256.get(f)))
        return fetched

    def read_smiles(self) -> list[str | None]:
        """SMILES per data row of the raw files, ``None`` for a malformed row (kept so row numbers stay)."""
        raise NotImplementedError

    def split(self, n_rows: int) -> dict[str, Tensor]:
        """Row indices per split (``train``, ``test``) of the raw rows (before skipping)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ processing and cache
    def reader_options(self) -> dict[str, Any]:
        """Options that change what :meth:`read_smiles` returns (part of the cache key)."""
        return {}

    @property
    def cache_key(self) -> str:
        blob = json.dumps(
            {
                "v": PROCESS_VERSION,
                "name": self.name,
                "sha256": self.raw_sha256,
                "spec": self.spec.to_dict(),
                "single_fragment": self.single_fragment,
                **self.reader_options(),
            },
            sort_keys=True,
        )
        return hashlib.sha256(blob.encode()).hexdigest()[:20]

    @property
    def processed_path(self) -> Path:
        return self.cache_dir / f"{self.name}_{self.cache_key}.pt"

    def _cache_ok(self, data: Any) -> bool:
        """Whether a loaded cache file has this dataset's layout (else it is rebuilt, not trusted)."""
        if not isinstance(data, dict) or any(k not in data for k in _CACHE_KEYS):
            return False
        x, a, n, rows = data["x"], data["a"], data["n_atoms"], data["rows"]
        if not all(isinstance(t, Tensor) for t in (x, a, n, rows)):
            return False
        m, f, k = self.spec.max_atoms, self.spec.n_types, n.shape[0] if n.dim() == 1 else -1
        return (
            x.shape == (k, m, f)
            and a.shape == (k, m, m)
            and rows.shape == (k,)
            and isinstance(data["smiles"], list)
            and len(data["smiles"]) == k
            and isinstance(data["n_rows"], int)
            and isinstance(data["skipped"], dict)
            and isinstance(data["skipped_examples"], list)
            and (k == 0 or (int(n.min()) >= 1 and int(n.max()) <= m and int(rows.max()) < data["n_rows"]))
        )

    def _load_or_process(self) -> None:
        path = self.processed_path
        data = None
        if path.is_file():
            try:
                data = torch.load(path, map_location="cpu", weights_only=True)
            except Exception:  # a truncated or foreign cache file is rebuilt, not trusted
                data = None
            if not self._cache_ok(data):
                data = None
        if data is None:
            data = self.process()
            self._write_cache(path, data)
            self.from_cache = False
        else:
            self.from_cache = True
        self.x: Tensor = data["x"]
        self.a: Tensor = data["a"]
        self.n_atoms: Tensor = data["n_atoms"]
        self.rows: Tensor = data["rows"]
        self.smiles: list[str] = list(data["smiles"])
        self.n_rows = int(data["n_rows"])
        self.skipped: dict[str, int] = dict(data["skipped"])
        self.skipped_examples: list[str] = list(data["skipped_examples"])

    def _write_cache(self, path: Path, data: dict[str, Any]) -> None:
        tmp = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            os.close(fd)
            torch.save(data, tmp)
            os.replace(tmp, path)
        except OSError as exc:
            raise ValueError(
                f"{self.name}: cannot write the processed cache in {path.parent} ({exc.strerror or exc}); "
                "set cache_dir (or $HEBM_CACHE) to a writable folder"
            ) from None
        finally:
            if tmp is not None:
                Path(tmp).unlink(missing_ok=True)

    def check_memory(self, n_rows: int) -> None:
        """Refuse, before encoding, a dataset whose dense graphs would not fit :data:`MAX_GRAPH_BYTES`
        (per molecule ``N² + N·F`` bytes stored, four times that for the float train/test copies)."""
        m, f = self.spec.max_atoms, self.spec.n_types
        need = n_rows * (m * m + m * f) * 5
        if need > MAX_GRAPH_BYTES:
            raise ValueError(
                f"{self.name}: {n_rows:,} rows as dense graphs of max_atoms={m} would need about {human_bytes(need)} "
                f"(limit {human_bytes(MAX_GRAPH_BYTES)}); lower max_atoms or use a smaller file"
            )

    def max_smiles_length(self) -> int:
        """Longest SMILES string encoded: 100 characters per allowed atom (a bracket atom with isotope,
        chirality, charge and ring bonds is ~40); longer cells are skipped as ``SMILES too long``
        before RDKit parses them (its parser's cost grows with the length)."""
        return 100 * self.spec.max_atoms + 100

    def process(self) -> dict[str, Any]:
        """Encode every row; count the ones that cannot be encoded by reason (first few kept as examples)."""
        from rdkit import Chem

        smiles = self.read_smiles()
        self.split(len(smiles))  # a bad split file is refused before the (long) encoding
        self.check_memory(len(smiles))
        longest = self.max_smiles_length()
        xs, as_, ns, rows, kept = [], [], [], [], []
        skipped: Counter[str] = Counter()
        examples: list[str] = []

        def skip(i: int, reason: str, what: str) -> None:
            skipped[reason] += 1
            if len(examples) < 10:
                examples.append(f"row {i}: {what}")

        show = self.progress if self.progress is not None else len(smiles) > 20000
        for i, s in enumerate(tqdm(smiles, desc=f"processing {self.name}", disable=not show, leave=False)):
            if s is None:
                skip(i, "malformed row", "malformed")
                continue
            if len(s) > longest:
                skip(i, "SMILES too long", f"{len(s):,} characters > {longest:,} for max_atoms={self.spec.max_atoms}")
                continue
            try:
                if self.single_fragment and "." in s:
                    raise MolConversionError("several fragments", "several fragments")
                mol = parse_smiles(s)
                x, a, n = mol_to_graph(mol, self.spec)
                canonical = Chem.MolToSmiles(mol)
            except MolConversionError as exc:
                skip(i, exc.reason, f"{shorten(s)!r}: {shorten(' '.join(str(exc).split()), 120)}")
                continue
            except Exception as exc:  # RDKit raises several types on odd input; one row must not end the run
                skip(i, "RDKit error", f"{shorten(s)!r}: {type(exc).__name__}")
                continue
            xs.append(x.to(torch.uint8))
            as_.append(a.to(torch.uint8))
            ns.append(n)
            rows.append(i)
            kept.append(canonical)
        m, f = self.spec.max_atoms, self.spec.n_types
        return {
            "x": torch.stack(xs) if xs else torch.zeros(0, m, f, dtype=torch.uint8),
            "a": torch.stack(as_) if as_ else torch.zeros(0, m, m, dtype=torch.uint8),
            "n_atoms": torch.tensor(ns, dtype=torch.long),
            "rows": torch.tensor(rows, dtype=torch.long),
            "smiles": kept,
            "n_rows": len(smiles),
            "skipped": dict(skipped),
            "skipped_examples": examples,
        }

    # ------------------------------------------------------------------ access
    def __len__(self) -> int:
        return int(self.n_atoms.numel())

    def graphs(self, index: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """Dense float ``(X, A, mask)`` of the molecules at ``index`` (all when ``None``)."""
        idx = torch.arange(len(self)) if index is None else index
        n = self.n_atoms[idx]
        mask = torch.arange(self.spec.max_atoms)[None, :] < n[:, None]
        return self.x[idx].float(), self.a[idx].float(), mask

    def get(self, i: int):
        """Molecule ``i`` as a PyG ``Data`` (``x`` one-hot, ``edge_attr`` one-hot bond order, ``smiles``)."""
        x, a, mask = self.graphs(torch.tensor([i]))
        data = to_pyg(x[0], a[0], mask[0])
        data.smiles = self.smiles[i]
        return data

    def split_indices(self) -> dict[str, Tensor]:
        """Indices into the kept molecules per split (rows that were skipped drop out of their split)."""
        raw = self.split(self.n_rows)
        position = torch.full((self.n_rows,), -1, dtype=torch.long)
        position[self.rows] = torch.arange(len(self))
        out = {}
        for k, rows in raw.items():
            p = position[rows]
            out[k] = p[p >= 0]
        return out

    def info(self) -> dict[str, Any]:
        """What goes into every report: source files and their sha256, counts, skips, spec."""
        return {
            "source": {f: str(self.root / f) for f in self.raw_file_names},
            "sha256": dict(self.raw_sha256),
            "canonical_sha256": all(self.sha256.get(f, v) == v for f, v in self.raw_sha256.items())
            if self.sha256
            else None,
            "spec": self.spec.to_dict(),
            "n_rows": self.n_rows,
            "n_molecules": len(self),
            "skipped": dict(self.skipped),
            "skipped_examples": list(self.skipped_examples[:5]),
            "cache": str(self.processed_path),
        }
