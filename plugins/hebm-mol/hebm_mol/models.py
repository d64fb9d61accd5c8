"""EDP-GNN as an energy: one scalar per molecular graph, atoms and bonds scored jointly.

EDP-GNN (Niu et al., 2020) runs GIN-style message passing over a *multi-channel* adjacency and,
after every layer, predicts new edge channels from the old ones and the two end nodes' features.
Here the network ends in an energy instead of edge scores: a node head reads every atom's features
(so the score reaches X, the element one-hots) and an edge head reads every pair's channels (so it
reaches A, the bond orders); both are summed over the graph, which makes the energy invariant to
node permutations. As in NCSNv2 the noise level enters as an input (log σ) and the output is
divided by σ, so the score's scale follows the noise.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from hebm_core.energy import EnergyModel
from hebm_mol.checks import check_bool, check_int, check_number
from hebm_mol.space import pair_mask

__all__ = ["EDPGNNEnergy", "parameter_count", "LIMITS", "MAX_PARAMETERS"]

#: largest value of each size option (beyond these EDP-GNN on molecular graphs is not a sane configuration)
LIMITS = {"hidden": 2048, "depth": 32, "c_init": 8, "c_hid": 64, "edge_hidden": 1024}
#: most parameters a network may have (400 MB in float32), checked before anything is allocated
MAX_PARAMETERS = 100_000_000


def parameter_count(n_types: int, hidden: int, depth: int, c_init: int, c_hid: int, edge_hidden: int) -> int:
    """The number of parameters :class:`EDPGNNEnergy` with these sizes has (computed, not allocated)."""

    def mlp(i: int, h: int, o: int) -> int:
        return i * h + h + h * o + o

    total = mlp(n_types + 1, hidden, hidden) + mlp(hidden + n_types + 1, hidden, 1) + mlp(c_hid + 2, edge_hidden, 1)
    for i in range(depth):
        c_in = c_init if i == 0 else c_hid + 1
        total += mlp(hidden * (1 + c_in) + 1, hidden, hidden)  # node update
        total += (hidden + 1) * 2 * edge_hidden + 2 * edge_hidden  # pq
        total += c_in * edge_hidden + edge_hidden * c_hid + c_hid  # w, out
    return total


def _mlp(i: int, h: int, o: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(i, h), nn.SiLU(), nn.Linear(h, o))


class _EDPLayer(nn.Module):
    """One layer: per-channel neighbourhood sums update the nodes (residual), then the nodes and the
    old channels give the next edge channels.

    The edge network's first layer is factorised so nothing ``[B, N, N, hidden]``-wide is ever
    concatenated: ``z_ij = P h_i + P h_j + (Q h_i) ⊙ (Q h_j) + W c_ij`` is symmetric in i, j by
    construction (sum and product of the two end nodes, as EDP-GNN's pairwise features) and costs
    ``O(N² · edge_hidden)`` per graph.
    """

    def __init__(self, hidden: int, c_in: int, c_out: int, edge_hidden: int) -> None:
        super().__init__()
        self.node = _mlp(hidden * (1 + c_in) + 1, hidden, hidden)
        self.pq = nn.Linear(hidden + 1, 2 * edge_hidden)
        self.w = nn.Linear(c_in, edge_hidden, bias=False)
        self.out = nn.Linear(edge_hidden, c_out)
        self.edge_hidden = edge_hidden

    def forward(self, h: Tensor, chans: Tensor, m: Tensor, pair: Tensor, ls: Tensor) -> tuple[Tensor, Tensor]:
        b, n, d = h.shape
        lsn = ls[:, None, None].expand(b, n, 1)
        agg = torch.einsum("bcij,bjd->bicd", chans, h).reshape(b, n, -1)
        h = h + self.node(torch.cat([h, agg, lsn], -1)) * m.unsqueeze(-1)
        p, q = self.pq(torch.cat([h, lsn], -1)).split(self.edge_hidden, -1)
        z = p.unsqueeze(2) + p.unsqueeze(1) + q.unsqueeze(2) * q.unsqueeze(1) + self.w(chans.permute(0, 2, 3, 1))
        new = self.out(nn.functional.silu(z)).permute(0, 3, 1, 2) * pair.unsqueeze(1)
        return h, new


class EDPGNNEnergy(EnergyModel):
    """Noise-conditional EDP-GNN energy ``E(X, A, mask; σ)``, permutation invariant.

    ``E = E_gauss + f(tanh X, tanh A/3; σ)/σ``. ``E_gauss`` is the exact energy of the data's
    per-element / per-pair Gaussian blurred by σ (means and variances from the example batch,
    shared across nodes so it stays invariant); the network ``f`` sees squashed inputs, so its
    gradient is bounded and fades far from the data, where the Gaussian term pulls chains back.
    Without it a chain that wanders off the data can find directions in which a free network's
    energy falls without bound (observed: Langevin blow-ups on QM9 at σ ≈ 1).

    ``hidden`` node width, ``depth`` layers, ``c_init`` input adjacency channels (A, then A², A³, …
    normalised by the node count: walks of length k), ``c_hid`` edge channels between layers,
    ``edge_hidden`` the width of the (factorised) edge networks. ``n_types`` (element count) and
    the Gaussian term's moments come from ``example`` when given.
    """

    def __init__(
        self,
        n_types: int | None = None,
        hidden: int = 32,
        depth: int = 3,
        c_init: int = 2,
        c_hid: int = 6,
        edge_hidden: int = 16,
        noise_conditional: bool = True,
        max_bond: float = 3.0,
        example: tuple[Tensor, Tensor, Tensor] | None = None,
    ) -> None:
        super().__init__()
        owner = "EDPGNNEnergy"
        if n_types is not None:
            n_types = check_int(owner, "n_types", n_types, 1, 118)
        if example is not None:
            if n_types is not None and n_types != int(example[0].shape[-1]):
                raise ValueError(
                    f"{owner}: n_types={n_types} but the data has {int(example[0].shape[-1])} element types; "
                    "leave n_types out (it is read from the data)"
                )
            n_types = int(example[0].shape[-1])
        if n_types is None:
            raise ValueError(f"{owner}: give n_types or an example batch (X, A, mask)")
        for name, value in (("hidden", hidden), ("depth", depth), ("c_init", c_init), ("c_hid", c_hid)):
            check_int(owner, name, value, 1, LIMITS[name])
        check_int(owner, "edge_hidden", edge_hidden, 1, LIMITS["edge_hidden"])
        check_bool(owner, "noise_conditional", noise_conditional)
        max_bond = check_number(owner, "max_bond", max_bond, 0.0, 100.0, open_low=True)
        n_params = parameter_count(n_types, hidden, depth, c_init, c_hid, edge_hidden)
        if n_params > MAX_PARAMETERS:
            raise ValueError(
                f"{owner}: hidden={hidden}, depth={depth}, c_hid={c_hid}, edge_hidden={edge_hidden} would have "
                f"{n_params:,} parameters ({n_params * 4 / 2**30:.1f} GiB in float32); the limit is {MAX_PARAMETERS:,}"
            )
        self.noise_conditional = noise_conditional
        self.c_init, self.max_bond = c_init, max_bond
        self.embed = _mlp(n_types + 1, hidden, hidden)
        self.layers = nn.ModuleList(
            _EDPLayer(hidden, c_init if i == 0 else c_hid + 1, c_hid, edge_hidden) for i in range(depth)
        )
        self.node_head = _mlp(hidden + n_types + 1, hidden, 1)
        self.edge_head = _mlp(c_hid + 2, edge_hidden, 1)
        stats = (
            _moments(example)
            if example is not None
            else (
                torch.full((n_types,), 1.0 / n_types),
                torch.full((n_types,), 0.25),
                torch.tensor(0.1),
                torch.tensor(0.1),
            )
        )
        for name, t in zip(("mu_x", "var_x", "mu_a", "var_a"), stats):
            self.register_buffer(name, t.float())

    def gaussian_energy(self, x: Tensor, a: Tensor, m: Tensor, pair: Tensor, s: Tensor) -> Tensor:
        """Energy of the data's per-entry Gaussian convolved with N(0, σ²)."""
        s2 = (s * s)[:, None, None]
        ex = ((x - self.mu_x) ** 2 / (2 * (self.var_x + s2)) * m.unsqueeze(-1)).sum((1, 2))
        ea = ((a - self.mu_a) ** 2 / (2 * (self.var_a + s2)) * pair).sum((1, 2))
        return ex + ea

    def energy(self, g: tuple[Tensor, Tensor, Tensor], sigma: Tensor | None = None) -> Tensor:
        x, a, mask = g
        b, n, _ = x.shape
        m = mask.to(x.dtype)
        pair = pair_mask(mask, x.dtype)
        if sigma is None or not self.noise_conditional:
            s = torch.ones(b, dtype=x.dtype, device=x.device)
        else:
            s = sigma.to(x.dtype).expand(b) if sigma.dim() == 0 else sigma.to(x.dtype)
        ls = s.log()
        base = self.gaussian_energy(x, a, m, pair, s)
        x = torch.tanh(x)
        a = torch.tanh(a / self.max_bond) * pair
        powers = [a]
        for _ in range(self.c_init - 1):
            powers.append(powers[-1] @ a / n)
        chans = torch.stack(powers, 1)
        h = self.embed(torch.cat([x, ls[:, None, None].expand(b, n, 1)], -1)) * m.unsqueeze(-1)
        for i, layer in enumerate(self.layers):
            h, new = layer(h, chans, m, pair, ls)
            chans = torch.cat([a.unsqueeze(1), new], 1) if i + 1 < len(self.layers) else new
        node = self.node_head(torch.cat([h, x, ls[:, None, None].expand(b, n, 1)], -1)).squeeze(-1)
        lse = ls[:, None, None, None].expand(b, n, n, 1)
        edge_in = torch.cat([chans.permute(0, 2, 3, 1), a.unsqueeze(-1), lse], -1)
        edge = self.edge_head(edge_in).squeeze(-1)
        e = (node * m).sum(1) + 0.5 * (edge * pair).sum((1, 2))
        return base + (e / s if self.noise_conditional else e)


def _moments(example: tuple[Tensor, Tensor, Tensor]) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Per-element mean/variance of X over real nodes, mean/variance of A over real pairs."""
    x, a, mask = (t.detach().cpu() for t in example)
    m = mask.double()
    pair = pair_mask(mask, torch.float64)
    nx, npair = m.sum().clamp_min(1), pair.sum().clamp_min(1)
    mu_x = (x.double() * m.unsqueeze(-1)).sum((0, 1)) / nx
    var_x = ((x.double() - mu_x) ** 2 * m.unsqueeze(-1)).sum((0, 1)) / nx
    mu_a = (a.double() * pair).sum() / npair
    var_a = ((a.double() - mu_a) ** 2 * pair).sum() / npair
    return mu_x, var_x.clamp_min(1e-2), mu_a, var_a.clamp_min(1e-2)
