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
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from tqdm.auto import tqdm

from hebm_mol.graph import QM9_SPEC, GraphSpec, MolConversionError, mol_to_graph, parse_smiles, to_pyg

__all__ = ["MolGraphDataset", "sha256_of", "download_file", "default_cache_dir", "DownloadError"]

#: bump when the processed format changes, so old caches are not read
PROCESS_VERSION = 1


class DownloadError(RuntimeError):
    """A download failed or its content does not have the expected sha256."""


def sha256_of(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def default_cache_dir() -> Path:
    """``$HEBM_CACHE`` or ``$XDG_CACHE_HOME/hebm`` (``~/.cache/hebm``)."""
    if os.environ.get("HEBM_CACHE"):
        return Path(os.environ["HEBM_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "hebm"


def download_file(url: str, dest: str | Path, sha256: str | None, timeout: float = 60.0) -> Path:
    """Fetch ``url`` to ``dest`` atomically; with ``sha256`` the content must match or nothing is kept."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    h = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            while block := resp.read(1 << 20):
                h.update(block)
                out.write(block)
        if sha256 is not None and h.hexdigest() != sha256:
            raise DownloadError(f"{url}: sha256 {h.hexdigest()} does not match the expected {sha256}")
        os.replace(tmp, dest)
    except (urllib.error.URLError, OSError) as exc:
        raise DownloadError(f"cannot download {url}: {exc}") from None
    finally:
        Path(tmp).unlink(missing_ok=True)
    return dest


class MolGraphDataset:
    """Molecules from raw files as dense graphs; subclasses give the files and read the SMILES.

    Subclasses set ``name``, ``raw_file_names``, optionally ``urls``/``sha256`` (per raw file) for
    :meth:`fetch`, and implement :meth:`read_smiles` and :meth:`split`. Rows that cannot be
    encoded (unparsable, other elements, too many atoms, several fragments when
    ``single_fragment``) are skipped and counted by reason in :attr:`skipped`, never fatal.
    """

    name = "molecules"
    raw_file_names: Sequence[str] = ()
    urls: dict[str, str] = {}
    sha256: dict[str, str] = {}

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
        missing = [f for f in self.raw_file_names if not (self.root / f).is_file()]
        if missing and download:
            self.fetch(self.root, base_url)
            missing = [f for f in self.raw_file_names if not (self.root / f).is_file()]
        if missing:
            hint = " (or set download=true)" if self.urls else ""
            raise FileNotFoundError(f"{self.name}: missing {', '.join(missing)} in {self.root}{hint}")
        self.raw_sha256 = {f: sha256_of(self.root / f) for f in self.raw_file_names}
        self._load_or_process()

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
    @property
    def cache_key(self) -> str:
        blob = json.dumps(
            {
                "v": PROCESS_VERSION,
                "name": self.name,
                "sha256": self.raw_sha256,
                "spec": self.spec.to_dict(),
                "single_fragment": self.single_fragment,
            },
            sort_keys=True,
        )
        return hashlib.sha256(blob.encode()).hexdigest()[:20]

    @property
    def processed_path(self) -> Path:
        return self.cache_dir / f"{self.name}_{self.cache_key}.pt"

    def _load_or_process(self) -> None:
        path = self.processed_path
        data = None
        if path.is_file():
            try:
                data = torch.load(path, map_location="cpu", weights_only=True)
            except Exception:  # a truncated or foreign cache file is rebuilt, not trusted
                data = None
        if data is None:
            data = self.process()
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            os.close(fd)
            try:
                torch.save(data, tmp)
                os.replace(tmp, path)
            finally:
                Path(tmp).unlink(missing_ok=True)
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

    def process(self) -> dict[str, Any]:
        """Encode every row; count the ones that cannot be encoded by reason (first few kept as examples)."""
        from rdkit import Chem

        smiles = self.read_smiles()
        xs, as_, ns, rows, kept = [], [], [], [], []
        skipped: Counter[str] = Counter()
        examples: list[str] = []
        show = self.progress if self.progress is not None else len(smiles) > 20000
        for i, s in enumerate(tqdm(smiles, desc=f"processing {self.name}", disable=not show, leave=False)):
            if s is None:
                skipped["malformed row"] += 1
                if len(examples) < 10:
                    examples.append(f"row {i}: malformed")
                continue
            try:
                if self.single_fragment and "." in s:
                    raise MolConversionError("several fragments", "several fragments")
                mol = parse_smiles(s)
                x, a, n = mol_to_graph(mol, self.spec)
            except MolConversionError as exc:
                skipped[exc.reason] += 1
                if len(examples) < 10:
                    examples.append(f"row {i}: {s!r}: {exc}")
                continue
            xs.append(x.to(torch.uint8))
            as_.append(a.to(torch.uint8))
            ns.append(n)
            rows.append(i)
            kept.append(Chem.MolToSmiles(mol))
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
