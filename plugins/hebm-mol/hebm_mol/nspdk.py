"""Neighbourhood subgraph pairwise distance kernel (NSPDK) features and MMD, vectorised with numpy.

Re-implementation of the feature map of EDeN's ``vectorize(graphs, complexity=4, discrete=True)``
(fabriziocosta/EDeN, ``eden/graph.py``, as used by GDSS for its NSPDK MMD), written from its description:

* Edges are turned into vertices (EDeN's edge-to-vertex transform), so distances in that expanded graph are twice
  the bond distances and bond labels take part in the neighbourhood labels.
* The neighbourhood of a root of radius ``r`` is summarised, as in EDeN, not by an exact canonical label but by the
  sequence, level by level up to expanded distance ``2r``, of the multiset of ``(label, degree in the whole expanded
  graph)`` of the vertices at that level. A radius ``r`` exists for a root only if some vertex lies at distance exactly
  ``2r`` from it (EDeN's ``radius < len(neigh_graph_hash)``).
* For every ordered pair of atoms ``(v, u)`` at bond distance ``d <= D`` (``d = 0`` pairs an atom with itself) and
  every radius ``r <= R`` existing for both, two features get +1 in block ``(r, d)``: the pair feature
  ``(r, d, {N_r(v), N_r(u)})`` and EDeN's "half" (context) feature ``(r, d, N_r(u))``.
* Each ``(r, d)`` block is L2-normalised, then the whole vector (EDeN's ``inner_normalization`` and
  ``normalization``), so the linear kernel of a graph with itself is 1.

Differences from EDeN, on purpose: R = D = 4 as with ``complexity=4``, but hashing is deterministic (EDeN hashes
string labels with Python's per-process salted ``hash``, so its features change from run to run) and features are
63-bit keys, not folded into EDeN's default 2**16 columns. Folding makes unrelated features collide: on 600 QM9
graphs EDeN's 16-bit MMD was 0.8 % off the exact value. Multisets and sequences are hashed with splitmix64 mixing
instead of Python tuple hashes. Checked: on 2,000 QM9 graphs (211k distinct features) the kernel matrix equals that
of an exact, hash-free implementation to 1e-14, and EDeN with ``nbits=28`` agrees up to its own hash collisions
(its MMD 5.47683e-2 vs ours 5.47681e-2 on 300 vs 300 graphs). ``nbits`` folds our keys like EDeN's bitmask (same
collision rate, different colliding pairs); values of a key met in two blocks then add up (EDeN keeps the last).
A graph with no vertices gets the zero vector (EDeN raises).

The linear-kernel MMD ``mean(K_xx) + mean(K_yy) - 2 mean(K_xy)`` equals ``||mean(x) - mean(y)||^2`` exactly, which is
what :func:`nspdk_mmd` computes (O(nnz) instead of forming the kernel matrices).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import networkx as nx
import numpy as np
import scipy.sparse as sp

__all__ = ["R", "D", "NSPDKMean", "graph_arrays", "nspdk_features", "nspdk_mean", "nspdk_mmd", "nspdk_triplets"]

R = 4  #: maximal neighbourhood radius (bonds), EDeN complexity=4
D = 4  #: maximal distance between the two roots (bonds), EDeN complexity=4
_CHUNK = 2048  # graphs vectorised together
_U = np.uint64

# A graph as arrays: atom label ids (n,), bond endpoints (m, 2), bond label ids (m,).
GraphArrays = tuple[np.ndarray, np.ndarray, np.ndarray]


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser on a uint64 array (wraps modulo 2**64)."""
    x = np.asarray(x, dtype=_U).copy()
    x ^= x >> _U(30)
    x *= _U(0xBF58476D1CE4E5B9)
    x ^= x >> _U(27)
    x *= _U(0x94D049BB133111EB)
    x ^= x >> _U(31)
    return x


def _comb(a: np.ndarray, b: np.ndarray | int) -> np.ndarray:
    """Order-dependent hash of two uint64 arrays."""
    return _mix(_mix(a) ^ (np.asarray(b, dtype=_U) + _U(0x9E3779B97F4A7C15)))


def _label_id(label: Any) -> int:
    """Stable (process-independent) 63-bit id of a node or edge label."""
    if isinstance(label, (bool, np.bool_)):
        label = int(label)
    if isinstance(label, (int, np.integer)):
        return int(label) & 0x3FFFFFFFFFFFFFFF
    return (zlib.crc32(repr(label).encode()) << 8) | 0x4000000000000000


def graph_arrays(g: Any, key_label: str = "label") -> GraphArrays:
    """Atom/bond arrays of a networkx graph (node/edge attribute ``key_label``) or an RDKit mol (atom symbol, bond
    order as int as in GDSS's ``mols_to_nx``: aromatic 1.5 -> 1). Self-loops are dropped, as in EDeN."""
    if isinstance(g, nx.Graph):
        if g.is_directed() or g.is_multigraph():
            g = nx.Graph(g)
        nodes = list(g.nodes())
        index = {v: i for i, v in enumerate(nodes)}
        try:
            atoms = np.array([_label_id(g.nodes[v][key_label]) for v in nodes], dtype=_U)
            edges = [(index[u], index[v], _label_id(d[key_label])) for u, v, d in g.edges(data=True) if u != v]
        except KeyError as err:
            raise ValueError(f"nspdk: every node and edge needs a {key_label!r} attribute") from err
    elif hasattr(g, "GetAtoms"):
        atoms = np.array([_label_id(a.GetSymbol()) for a in g.GetAtoms()], dtype=_U)
        edges = [
            (b.GetBeginAtomIdx(), b.GetEndAtomIdx(), int(b.GetBondTypeAsDouble()))
            for b in g.GetBonds()
            if b.GetBeginAtomIdx() != b.GetEndAtomIdx()
        ]
    else:
        raise TypeError(f"nspdk: expected a networkx graph or an RDKit Mol, got {type(g).__name__}")
    ends = np.array([e[:2] for e in edges], dtype=np.int64).reshape(-1, 2)
    blabels = np.array([e[2] for e in edges], dtype=_U)
    return atoms, ends, blabels


def _chunk_features(graphs: Sequence[GraphArrays], r_max: int, d_max: int, nbits: int | None):
    """(row, col, value) triplets of the normalised feature vectors of a chunk of graphs."""
    b = len(graphs)
    n = max(1, max(len(a) for a, _, _ in graphs))
    m = max(1, max(len(e) for _, e, _ in graphs))
    inf = 10**6
    amask = np.zeros((b, n), bool)
    alab = np.zeros((b, n), _U)
    adj = np.zeros((b, n, n), np.float32)
    emask = np.zeros((b, m), bool)
    elab = np.zeros((b, m), _U)
    ends = np.zeros((b, m, 2), np.int64)
    for i, (a, e, el) in enumerate(graphs):
        amask[i, : len(a)] = True
        alab[i, : len(a)] = a
        if len(e):
            emask[i, : len(e)] = True
            elab[i, : len(e)] = el
            ends[i, : len(e)] = e
            adj[i, e[:, 0], e[:, 1]] = 1.0
            adj[i, e[:, 1], e[:, 0]] = 1.0
    # Bond distances between atoms up to the deepest level EDeN visits (expanded depth 2*max(R, D)).
    depth = max(r_max, d_max)
    dist = np.full((b, n, n), inf, np.int64)
    reach = np.broadcast_to(np.eye(n, dtype=bool), (b, n, n)).copy() & amask[:, :, None]
    dist[reach] = 0
    for k in range(1, depth + 1):
        reach_new = reach | ((reach.astype(np.float32) @ adj) > 0)
        dist[reach_new & ~reach] = k
        reach = reach_new
    # Expanded-graph distance from atom v to bond-vertex e=(x, y): 2*min(dist(v,x), dist(v,y)) + 1.
    bidx = np.arange(b)[:, None, None]
    vidx = np.arange(n)[None, :, None]
    de = np.minimum(dist[bidx, vidx, ends[:, None, :, 0]], dist[bidx, vidx, ends[:, None, :, 1]])  # (b, n, m)
    de = np.where(emask[:, None, :], de, inf)
    # Vertex codes: hash(label, degree in the expanded graph); bond-vertices have degree 2.
    degree = adj.sum(-1).astype(np.uint64)
    acode = _mix(_comb(alab, degree) ^ _U(1))
    ecode = _mix(_comb(elab, 2) ^ _U(2))
    # Per root and expanded level L (even: atoms at bond distance L/2; odd: bonds at min distance (L-1)/2),
    # an order-free multiset hash (sum of mixed codes), then a running hash over levels 0..L.
    nlev = 2 * depth + 1
    running = np.zeros((b, n), _U)
    present = np.zeros((b, n, nlev), bool)
    nhash = np.zeros((b, n, r_max + 1), _U)
    for lev in range(nlev):
        k = lev // 2
        if lev % 2 == 0:
            sel = (dist == k) & amask[:, None, :]
            level = (np.where(sel, acode[:, None, :], _U(0))).sum(-1, dtype=_U)
        else:
            sel = de == k
            level = (np.where(sel, ecode[:, None, :], _U(0))).sum(-1, dtype=_U)
        present[:, :, lev] = sel.any(-1)
        running = _comb(running, _comb(level, lev))
        if lev % 2 == 0 and k <= r_max:
            nhash[:, :, k] = running
    # Radius r exists for a root iff some vertex lies at expanded distance exactly 2r (BFS levels are contiguous).
    has_r = present[:, :, 0 : 2 * r_max + 1 : 2] & amask[:, :, None]  # (b, n, R+1)
    # Pairs (v, u) at bond distance d <= D, radius r valid for both.
    pair = (dist <= d_max) & amask[:, :, None] & amask[:, None, :]
    ok = pair[:, :, :, None] & has_r[:, :, None, :] & has_r[:, None, :, :]  # (b, v, u, r)
    gi, vi, ui, ri = np.nonzero(ok)
    hv = nhash[gi, vi, ri]
    hu = nhash[gi, ui, ri]
    di = dist[gi, vi, ui]
    rd = (ri * (d_max + 1) + di).astype(_U)
    full = _comb(_comb(np.minimum(hv, hu), np.maximum(hv, hu)), rd)
    half = _comb(_comb(hu, rd), _U(0xC0FFEE))
    keys = np.concatenate([full, half])
    if nbits is not None:  # fold like EDeN's bitmask (its collisions, not its exact hash values)
        keys &= _U((1 << nbits) - 1)
    else:
        keys >>= _U(1)  # 63-bit non-negative keys
    rows = np.concatenate([gi, gi]).astype(np.int64)
    blocks = np.concatenate([rd, rd])
    # Count per (graph, block, key) through a 64-bit id of the triple; then block-wise and global L2 normalisation.
    ids = _comb(_comb(keys, rows.astype(_U)), blocks)
    _, first, counts = np.unique(ids, return_index=True, return_counts=True)
    urow, ukey, ublk = rows[first], keys[first].astype(np.int64), blocks[first].astype(np.int64)
    val = counts.astype(np.float64)
    nblocks = (r_max + 1) * (d_max + 1)
    rb = urow * nblocks + ublk
    _, rb_inv = np.unique(rb, return_inverse=True)
    val /= np.sqrt(np.bincount(rb_inv, weights=val**2))[rb_inv]
    val /= np.sqrt(np.bincount(urow, weights=val**2, minlength=b))[urow]
    return urow, ukey, val


def _as_arrays(graphs: Sequence[Any] | Any) -> list[GraphArrays]:
    if isinstance(graphs, (nx.Graph,)) or hasattr(graphs, "GetAtoms"):
        raise TypeError("nspdk: expected a sequence of graphs, got a single graph")
    return [g if isinstance(g, tuple) else graph_arrays(g) for g in graphs]


def nspdk_triplets(
    graphs: Sequence[Any], r: int = R, d: int = D, nbits: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Normalised NSPDK feature vectors as (row, 63-bit feature key, value) triplets; a row appears once per key
    unless two blocks share a key (only possible when folding with ``nbits``), in which case values add up."""
    if nbits is not None and not 1 <= nbits <= 62:
        raise ValueError("nspdk: nbits must be None or in 1..62")
    if r < 0 or d < 0:
        raise ValueError("nspdk: radius and distance must be >= 0")
    arrays = _as_arrays(graphs)
    rows, keys, vals = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)], [np.zeros(0)]
    for start in range(0, len(arrays), _CHUNK):
        chunk = arrays[start : start + _CHUNK]
        nonempty = [i for i, g in enumerate(chunk) if len(g[0])]
        if not nonempty:
            continue
        rr, kk, vv = _chunk_features([chunk[i] for i in nonempty], r, d, nbits)
        rows.append(np.asarray(nonempty, np.int64)[rr] + start)
        keys.append(kk)
        vals.append(vv)
    return np.concatenate(rows), np.concatenate(keys), np.concatenate(vals)


def nspdk_features(graphs: Sequence[Any], **kwargs: Any) -> sp.csr_matrix:
    """Normalised NSPDK feature vectors, one CSR row per graph (networkx graphs with ``label`` attributes or RDKit
    mols). Columns index the distinct feature keys met in this call, so they compare only within one call: put all
    graphs to compare in one call (a zero-vertex graph gets a zero row)."""
    rows, keys, vals = nspdk_triplets(graphs, **kwargs)
    _, cols = np.unique(keys, return_inverse=True)
    ncols = int(cols.max()) + 1 if len(cols) else 1
    return sp.coo_matrix((vals, (rows, cols)), shape=(len(graphs), ncols)).tocsr()


@dataclass(frozen=True)
class NSPDKMean:
    """Mean feature vector of a graph set as sorted unique feature keys and values (all the MMD needs of one side)."""

    keys: np.ndarray
    values: np.ndarray
    n: int


def nspdk_mean(graphs: Sequence[Any], **kwargs: Any) -> NSPDKMean:
    """Mean NSPDK feature vector of a non-empty set of graphs."""
    if len(graphs) == 0:
        raise ValueError("nspdk: empty graph set")
    _, keys, vals = nspdk_triplets(graphs, **kwargs)
    ukeys, inv = np.unique(keys, return_inverse=True)
    return NSPDKMean(ukeys, np.bincount(inv, weights=vals, minlength=len(ukeys)) / len(graphs), len(graphs))


def nspdk_mmd(graphs_a: Sequence[Any] | NSPDKMean, graphs_b: Sequence[Any] | NSPDKMean, **kwargs: Any) -> float:
    """Squared MMD with the linear NSPDK kernel, mean(K_aa) + mean(K_bb) - 2 mean(K_ab) = ||mean_a - mean_b||^2.

    Each side is a sequence of graphs (networkx / RDKit mols) or a precomputed :class:`NSPDKMean` (made with the
    same ``r``, ``d``, ``nbits``)."""
    ma = graphs_a if isinstance(graphs_a, NSPDKMean) else nspdk_mean(graphs_a, **kwargs)
    mb = graphs_b if isinstance(graphs_b, NSPDKMean) else nspdk_mean(graphs_b, **kwargs)
    keys, inv = np.unique(np.concatenate([ma.keys, mb.keys]), return_inverse=True)
    diff = np.bincount(inv, weights=np.concatenate([ma.values, -mb.values]), minlength=len(keys))
    return float(diff @ diff)
