"""Molecules as dense graphs: SMILES ↔ (node one-hot X, bond-order adjacency A, node mask) ↔ PyG ``Data``.

The encoding follows GDSS / MoFlow for QM9: molecules are kekulised, hydrogens are implicit, a
node is one-hot over the allowed elements, ``A[i, j]`` is the bond order (0 none, 1 single,
2 double, 3 triple) and formal charges are not encoded. Decoding rebuilds the molecule atom by
atom and bond by bond *without* sanitising it (so invalid graphs stay countable) and, as GDSS
does, gives an N or O whose explicit valence exceeds its usual valence by exactly one a formal
charge of +1 (ammonium-like N⁺, oxonium O⁺).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from rdkit import Chem, RDLogger
from torch import Tensor

from hebm_mol.checks import check_elements, check_max_atoms

__all__ = [
    "GraphSpec",
    "QM9_SPEC",
    "MolConversionError",
    "BOND_ORDER",
    "mol_to_graph",
    "parse_smiles",
    "smiles_to_graph",
    "graph_to_mol",
    "quantize",
    "graphs_to_mols",
    "to_pyg",
    "from_pyg",
]

#: RDKit bond type per bond order 1..3 (index 0 unused)
BOND_TYPES = (None, Chem.BondType.SINGLE, Chem.BondType.DOUBLE, Chem.BondType.TRIPLE)
BOND_ORDER = {Chem.BondType.SINGLE: 1, Chem.BondType.DOUBLE: 2, Chem.BondType.TRIPLE: 3}
#: usual valence per atomic number, for GDSS's +1 charge rule (only N and O are charged)
_CHARGEABLE = {7: 3, 8: 2, 16: 2}


class MolConversionError(ValueError):
    """A SMILES or molecule that cannot be encoded with the given :class:`GraphSpec`; ``reason`` is a
    short category for skip counts (``unparsable``, ``too many atoms``, ``element not allowed``, ...)."""

    def __init__(self, message: str, reason: str = "other") -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class GraphSpec:
    """Which elements a node may be and how many nodes a graph has at most."""

    atoms: tuple[str, ...] = ("C", "N", "O", "F")
    max_atoms: int = 9

    def __post_init__(self) -> None:
        object.__setattr__(self, "atoms", check_elements("GraphSpec", "atoms", self.atoms))
        check_max_atoms("GraphSpec", self.max_atoms)

    @property
    def n_types(self) -> int:
        return len(self.atoms)

    @property
    def atomic_numbers(self) -> tuple[int, ...]:
        table = Chem.GetPeriodicTable()
        return tuple(table.GetAtomicNumber(a) for a in self.atoms)

    def to_dict(self) -> dict:
        return {"atoms": list(self.atoms), "max_atoms": self.max_atoms}


QM9_SPEC = GraphSpec(("C", "N", "O", "F"), 9)


def mol_to_graph(mol: Chem.Mol, spec: GraphSpec = QM9_SPEC) -> tuple[Tensor, Tensor, int]:
    """``(X [max_atoms, F] one-hot, A [max_atoms, max_atoms] bond orders, n_atoms)`` of a kekulised copy.

    Raises :class:`MolConversionError` for a disallowed element, too many atoms, or a bond that is
    not single/double/triple after kekulisation.
    """
    mol = Chem.Mol(mol)
    mol = Chem.RemoveHs(mol, sanitize=False)
    try:
        Chem.Kekulize(mol, clearAromaticFlags=True)
    except Exception as exc:  # RDKit raises KekulizeException (a ValueError subclass in new versions)
        raise MolConversionError(f"cannot kekulise: {exc}", "not kekulisable") from None
    n = mol.GetNumAtoms()
    if n == 0:
        raise MolConversionError("empty molecule", "empty")
    if n > spec.max_atoms:
        raise MolConversionError(f"{n} heavy atoms > max_atoms={spec.max_atoms}", "too many atoms")
    index = {z: i for i, z in enumerate(spec.atomic_numbers)}
    x = torch.zeros(spec.max_atoms, spec.n_types)
    for atom in mol.GetAtoms():
        k = index.get(atom.GetAtomicNum())
        if k is None:
            raise MolConversionError(f"element {atom.GetSymbol()} not in {list(spec.atoms)}", "element not allowed")
        x[atom.GetIdx(), k] = 1.0
    a = torch.zeros(spec.max_atoms, spec.max_atoms)
    for bond in mol.GetBonds():
        order = BOND_ORDER.get(bond.GetBondType())
        if order is None:
            raise MolConversionError(f"bond type {bond.GetBondType()} is not single/double/triple", "bond type")
        i, j = bond.GetBeginAtomIdx(), bond.GetEndAtomIdx()
        a[i, j] = a[j, i] = float(order)
    return x, a, n


def parse_smiles(smiles: str) -> Chem.Mol:
    """RDKit's sanitised molecule, or :class:`MolConversionError` (RDKit's own log kept quiet)."""
    RDLogger.DisableLog("rdApp.*")
    try:
        mol = Chem.MolFromSmiles(smiles)
    finally:
        RDLogger.EnableLog("rdApp.*")
    if mol is None:
        raise MolConversionError(f"RDKit cannot parse SMILES {smiles!r}", "unparsable")
    return mol


def smiles_to_graph(smiles: str, spec: GraphSpec = QM9_SPEC) -> tuple[Tensor, Tensor, int]:
    """:func:`mol_to_graph` of a SMILES string; :class:`MolConversionError` if RDKit cannot parse it."""
    return mol_to_graph(parse_smiles(smiles), spec)


def _explicit_valence(mol: Chem.RWMol, idx: int) -> int:
    return sum(BOND_ORDER[b.GetBondType()] for b in mol.GetAtomWithIdx(idx).GetBonds())


def graph_to_mol(x: Tensor, a: Tensor, mask: Tensor | None = None, spec: GraphSpec = QM9_SPEC) -> Chem.Mol:
    """Unsanitised ``Mol`` from one *discrete* graph (X one-hot or argmax-able, A in {0, 1, 2, 3}).

    Atoms are the argmax of X over the masked nodes; bonds come from the upper triangle of A.
    After each bond an N or O with explicit valence one above its usual one gets charge +1 (GDSS).
    """
    if mask is None:
        mask = torch.ones(x.shape[0], dtype=torch.bool)
    keep = torch.nonzero(mask, as_tuple=False).flatten().tolist()
    types = x.argmax(-1).tolist()
    zs = spec.atomic_numbers
    mol = Chem.RWMol()
    new = {}
    for i in keep:
        new[i] = mol.AddAtom(Chem.Atom(zs[types[i]]))
    orders = a.round().long().clamp(0, 3)
    for ii, i in enumerate(keep):
        for j in keep[ii + 1 :]:
            o = int(orders[i, j])
            if o == 0:
                continue
            mol.AddBond(new[i], new[j], BOND_TYPES[o])
            for end in (new[i], new[j]):
                atom = mol.GetAtomWithIdx(end)
                usual = _CHARGEABLE.get(atom.GetAtomicNum())
                if usual is not None:
                    atom.SetFormalCharge(1 if _explicit_valence(mol, end) == usual + 1 else 0)
    return mol.GetMol()


def quantize(x: Tensor, a: Tensor, mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """GDSS quantisation of continuous samples: bond orders by thresholds 0.5 / 1.5 / 2.5, atoms by argmax.

    Works on a batch (``[B, N, F]``, ``[B, N, N]``, ``[B, N]``); A is symmetrised and zeroed on the
    diagonal and on padding; X becomes one-hot on real nodes and zero on padding.
    """
    m = mask.to(x.dtype)
    a = 0.5 * (a + a.transpose(-1, -2))
    q = torch.bucketize(a, torch.tensor([0.5, 1.5, 2.5], dtype=a.dtype, device=a.device), right=True).to(x.dtype)
    eye = torch.eye(a.shape[-1], dtype=torch.bool, device=a.device)
    q = q.masked_fill(eye, 0) * (m.unsqueeze(-1) * m.unsqueeze(-2))
    xq = torch.nn.functional.one_hot(x.argmax(-1), x.shape[-1]).to(x.dtype) * m.unsqueeze(-1)
    return xq, q, mask


def graphs_to_mols(graphs: Sequence[Tensor], spec: GraphSpec = QM9_SPEC) -> list[Chem.Mol]:
    """Quantise a batch ``(X, A, mask)`` and decode every graph (unsanitised mols)."""
    x, a, mask = quantize(*graphs)
    return [graph_to_mol(x[i], a[i], mask[i], spec) for i in range(x.shape[0])]


def to_pyg(x: Tensor, a: Tensor, mask: Tensor | None = None):
    """PyG ``Data`` of one dense graph: ``x`` one-hot rows of real nodes, ``edge_index`` both directions,
    ``edge_attr`` one-hot bond order (single, double, triple)."""
    from torch_geometric.data import Data

    if mask is None:
        mask = torch.ones(x.shape[0], dtype=torch.bool)
    keep = torch.nonzero(mask, as_tuple=False).flatten()
    sub = a[keep][:, keep].round().long()
    edge_index = torch.nonzero(sub > 0, as_tuple=False).t().contiguous()
    orders = sub[edge_index[0], edge_index[1]]
    edge_attr = torch.nn.functional.one_hot(orders - 1, 3).float()
    return Data(x=x[keep].float(), edge_index=edge_index, edge_attr=edge_attr, num_nodes=int(keep.numel()))


def from_pyg(data, spec: GraphSpec = QM9_SPEC) -> tuple[Tensor, Tensor, Tensor]:
    """Dense ``(X [max_atoms, F], A [max_atoms, max_atoms], mask [max_atoms])`` of a PyG ``Data``.

    ``edge_attr`` may be one-hot bond orders (3 columns) or plain orders (1 column / 1-D); without
    it every edge is single.
    """
    n = int(data.num_nodes)
    if n > spec.max_atoms:
        raise MolConversionError(f"{n} nodes > max_atoms={spec.max_atoms}", "too many atoms")
    if data.x is None or data.x.shape[-1] != spec.n_types:
        raise MolConversionError(f"node features must be one-hot over {list(spec.atoms)}", "node features")
    x = torch.zeros(spec.max_atoms, spec.n_types)
    x[:n] = data.x.float()
    a = torch.zeros(spec.max_atoms, spec.max_atoms)
    ei = data.edge_index
    attr = getattr(data, "edge_attr", None)
    if attr is None:
        orders = torch.ones(ei.shape[1])
    elif attr.dim() == 2 and attr.shape[1] == 3:
        orders = attr.argmax(1).float() + 1
    else:
        orders = attr.flatten().float()
    a[ei[0], ei[1]] = orders
    a = torch.maximum(a, a.t())
    mask = torch.arange(spec.max_atoms) < n
    return x, a, mask
