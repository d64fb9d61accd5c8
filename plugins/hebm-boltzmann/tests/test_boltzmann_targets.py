"""Every target's energy and gradient against closed forms / finite differences, exact samples' moments,
and log Z against independent numerical integrals (scipy.integrate.quad)."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from hebm_boltzmann import TARGETS, plugin
from hebm_boltzmann.blr import auc, load_blr
from hebm_boltzmann.lj import energy_w2
from hebm_boltzmann.manywell import well_u
from hebm_boltzmann.rings import ring5_u, ring_u
from scipy import integrate, stats

torch.set_num_threads(1)
_REPO = Path(__file__).resolve().parents[3]
_CANDIDATES = [
    os.environ.get("HEBM_BLR_DATA"),
    _REPO / "shared" / "data" / "blr",
    _REPO.parent / "shared" / "data" / "blr",
]
BLR_DIR = next((Path(c) for c in _CANDIDATES if c and (Path(c) / "heart" / "data.npy").is_file()), Path("data/blr"))
HAVE_BLR = (BLR_DIR / "heart" / "data.npy").is_file()
CHEAP = ["mog2", "mog2_unequal", "mog6", "mog9", "gmm40", "ring", "ring5", "manywell", "lj13"]


def make(name: str):
    if name.startswith("blr_"):
        if not HAVE_BLR:
            pytest.skip(f"no BLR data at {BLR_DIR}")
        return TARGETS[name](data_dir=str(BLR_DIR))
    return TARGETS[name]()


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_plugin_registers_every_target():
    assert plugin.name == "boltzmann"
    assert set(plugin.targets) == {*CHEAP, "blr_australian", "blr_german", "blr_heart"}


@pytest.mark.parametrize("name", [*CHEAP, "blr_australian", "blr_german", "blr_heart"])
def test_gradient_matches_finite_differences(name):
    t = make(name)
    x = (t.sample(3, gen()) if t.sample is not None else t.start(3, gen())).double()
    x = x + 0.01 * torch.randn(x.shape, generator=gen(1), dtype=torch.float64)
    x.requires_grad_(True)
    (g,) = torch.autograd.grad(t.energy(x).sum(), x)
    h = 1e-6
    for k in range(min(t.dim, 6)):
        e = torch.zeros_like(x)
        e[:, k] = h
        with torch.no_grad():
            fd = (t.energy(x + e) - t.energy(x - e)) / (2 * h)
        assert torch.allclose(g[:, k], fd, rtol=1e-5, atol=1e-5), (name, k, g[:, k], fd)
    assert t.energy(x).shape == (3,)


def test_mixture_energies_match_scipy():
    for name in ["mog2", "mog2_unequal", "mog6", "mog9", "gmm40"]:
        t = make(name)
        x = t.sample(50, gen()) + 0.5
        m = t.energy.__self__
        dens = sum(
            float(w) * stats.multivariate_normal(mu.numpy(), float(s) ** 2).pdf(x.numpy())
            for mu, s, w in zip(m.means, m.stds, m.weights)
        )
        assert np.allclose(t.energy(x).numpy(), -np.log(dens), rtol=1e-4, atol=1e-4), name


def test_closed_form_energies():
    x = torch.tensor([[3.0, 4.0], [0.0, 1.2]])
    assert torch.allclose(make("ring").energy(x), torch.tensor([(3 / 0.4) ** 2, (0.8 / 0.4) ** 2]))
    assert torch.allclose(make("ring5").energy(x), torch.tensor([0.0, (0.2 / 0.2) ** 2]), atol=1e-5)
    mw = make("manywell")
    v = torch.zeros(1, 32)
    v[0, 0], v[0, 1] = 1.5, 2.0
    assert float(mw.energy(v)) == pytest.approx(1.5**4 - 6 * 1.5**2 - 0.75 + 2.0)
    # LJ: two particles at the LJ minimum r = 1 give −1, all others far away on a line
    lj = make("lj13")
    p = torch.zeros(13, 3)
    p[:, 0] = torch.tensor([0.0, 1.0] + [10.0 * k for k in range(2, 13)])
    u = float(lj.energy(p.reshape(1, -1)))
    pairs = [(i, j) for i in range(13) for j in range(i + 1, 13)]
    r = [float((p[i] - p[j]).norm()) for i, j in pairs]
    lj_sum = sum(rr**-12 - 2 * rr**-6 for rr in r)
    osc = 0.5 * float((p - p.mean(0)).pow(2).sum())
    assert u == pytest.approx(lj_sum + osc, rel=1e-4)
    assert lj_sum == pytest.approx(-1.0, abs=1e-3)


def test_manywell_log_z_matches_quad():
    t = make("manywell")
    one, _ = integrate.quad(lambda a: math.exp(-well_u(a)), -np.inf, np.inf, epsabs=0, epsrel=1e-12)
    expected = 16 * (math.log(one) + 0.5 * math.log(2 * math.pi))
    assert t.log_z == pytest.approx(expected, abs=1e-6)
    assert t.log_z == pytest.approx(164.6957, abs=1e-3)  # FAB's published value


@pytest.mark.parametrize(("name", "u"), [("ring", ring_u), ("ring5", ring5_u)])
def test_ring_log_z_matches_quad(name, u):
    t = make(name)
    breaks = [1.0, 2.0, 3.0, 4.0, 5.0]
    z, _ = integrate.quad(lambda r: 2 * math.pi * r * math.exp(-float(u(r))), 0, 12, points=breaks, limit=200)
    assert t.log_z == pytest.approx(math.log(z), abs=1e-5)


def test_mixture_samples_moments():
    for name in ["mog2", "mog6", "mog2_unequal", "gmm40"]:
        t = make(name)
        m = t.energy.__self__
        x = t.sample(200_000, gen()).double()
        mean = (m.weights[:, None] * m.means).sum(0).double()
        second = (m.weights[:, None, None] * (m.means[:, :, None] * m.means[:, None, :])).sum(0).double()
        second += torch.eye(2, dtype=torch.float64) * float((m.weights * m.stds**2).sum())
        scale = float(m.means.abs().max())
        assert torch.allclose(x.mean(0), mean, atol=0.02 * scale), name
        assert torch.allclose(x.T @ x / len(x), second, atol=0.02 * scale**2), name
        assert t.metrics["mode_weight_error"](x.float(), None) < 0.01
        one_mode = m.means[:1].expand(1000, 2)
        assert t.metrics["mode_weight_error"](one_mode, None) > 0.4


def test_ring_samples_match_the_radial_density():
    for name, u in [("ring", ring_u), ("ring5", ring5_u)]:
        t = make(name)
        x = t.sample(100_000, gen())
        r = x.double().norm(dim=1)
        z, _ = integrate.quad(lambda s, u=u: s * math.exp(-float(u(s))), 0, 12, points=[1, 2, 3, 4, 5], limit=200)
        m1, _ = integrate.quad(lambda s, u=u: s * s * math.exp(-float(u(s))), 0, 12, points=[1, 2, 3, 4, 5], limit=200)
        assert float(r.mean()) == pytest.approx(m1 / z, abs=0.01)
        assert abs(float(x[:, 0].mean())) < 0.03 and abs(float(x[:, 1].mean())) < 0.03
        assert t.metrics["radius_mean_error"](x, None) < 0.01


def test_manywell_samples_moments():
    t = make("manywell")
    x = t.sample(100_000, gen()).double()
    one, _ = integrate.quad(lambda a: math.exp(-well_u(a)), -6, 6)
    m1, _ = integrate.quad(lambda a: a * math.exp(-well_u(a)), -6, 6)
    m2, _ = integrate.quad(lambda a: a * a * math.exp(-well_u(a)), -6, 6)
    a, b = x[:, 0::2], x[:, 1::2]
    assert float(a.mean()) == pytest.approx(m1 / one, abs=0.01)
    assert float(a.pow(2).mean()) == pytest.approx(m2 / one, abs=0.02)
    assert float(b.mean()) == pytest.approx(0.0, abs=0.01)
    assert float(b.pow(2).mean()) == pytest.approx(1.0, abs=0.01)
    assert t.metrics["right_well_error"](x.float(), None) < 0.005
    with pytest.raises(ValueError, match="even"):
        TARGETS["manywell"](dim=3)


@pytest.mark.skipif(not HAVE_BLR, reason="no BLR data")
def test_blr_data_split_and_energy():
    xtr, ytr, xte, yte = load_blr("heart", BLR_DIR, seed=0)
    assert xtr.shape == (216, 14) and xte.shape == (54, 14)
    assert torch.allclose(xtr[:, 1:].mean(0), torch.zeros(13), atol=1e-5)
    assert torch.allclose(xtr[:, 0], torch.ones(216))
    t = make("blr_heart")
    v = 0.1 * torch.randn(2, 14, generator=gen())
    eta = (xtr.double() @ v.double().T).T
    yy = ytr.double()
    ref = -(yy * torch.log(torch.sigmoid(eta)) + (1 - yy) * torch.log(1 - torch.sigmoid(eta))).sum(1)
    ref += 0.5 * v.double().pow(2).sum(1)
    assert torch.allclose(t.energy(v).double(), ref, rtol=1e-4)
    again = load_blr("heart", BLR_DIR, seed=0)
    assert torch.equal(again[0], xtr)
    with pytest.raises(FileNotFoundError, match="HEBM_BLR_DATA"):
        load_blr("heart", "/nonexistent")
    with pytest.raises(ValueError, match="known"):
        load_blr("iris", BLR_DIR)


def test_auc_and_energy_w2():
    assert auc(torch.tensor([0.1, 0.4, 0.35, 0.8]), torch.tensor([0.0, 0.0, 1.0, 1.0])) == pytest.approx(0.75)
    a = torch.randn(5000, generator=gen())
    assert energy_w2(a, a) == pytest.approx(0.0, abs=1e-12)
    assert energy_w2(a + 1.0, a) == pytest.approx(1.0, abs=1e-6)


def test_lj_init_is_finite_and_low():
    t = make("lj13")
    x = t.start(4, gen())
    assert x.shape == (4, 39) and torch.isfinite(t.energy(x)).all() and float(t.energy(x).max()) < 0


def test_summary_table_has_a_row_per_sampler(tmp_path):
    from hebm_boltzmann.summary import table

    report = {
        "target": "mog2",
        "log_z_true": 0.0,
        "samplers": {
            "edg": {"evals": 10, "seconds": 1.0, "weights": {"ress": 0.5, "log_z": -0.1}, "metrics": {"mmd_anice": 0.2},
                    "metrics_reweighted": {"mmd_anice": 0.01, "mode_weight_error": 0.02}},
            "ais": {"evals": 9, "seconds": 0.5, "log_z": -0.2, "log_z_upper": 0.1, "metrics": {"mmd_anice": 0.03}},
        },
    }  # fmt: skip
    path = tmp_path / "mog2.json"
    path.write_text(__import__("json").dumps(report))
    lines = table([path]).splitlines()
    assert len(lines) == 4
    assert "| edg |" in lines[2] and "0.2 / 0.01" in lines[2] and "mode_weight_error 0.02" in lines[2]
    assert "-0.2 … 0.1" in lines[3]
