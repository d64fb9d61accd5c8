"""The EDG sampler (hebm_core.edg): the bound, the weights, log Z, divergence and exact resume.

Small budgets on purpose (each test a few seconds on one CPU thread): the properties tested hold for
any network weights (an upper bound on KL, consistent self-normalised weights, a lower bound on
log Z), so they need no long training.
"""

from __future__ import annotations

import math

import pytest
import torch

from hebm_core.edg import (
    EDG,
    EDGDivergenceError,
    EDGOptions,
    WeightOptions,
    bound_terms,
    draw_weighted,
    encoder_log_density,
    summarise_log_weights,
    train_edg,
)
from hebm_core.options import ConfigError
from hebm_core.training import TrainConfig

torch.set_num_threads(1)

PREC = torch.tensor([0.5, 2.0])  # Gaussian target: precision diag(P), mean M
MEAN = torch.tensor([1.0, -0.5])


def gauss_u(x: torch.Tensor, sigma=None) -> torch.Tensor:
    return 0.5 * (PREC * (x - MEAN).pow(2)).sum(-1)


GAUSS_LOG_Z = float(0.5 * 2 * math.log(2 * math.pi) - 0.5 * PREC.log().sum())

#: a 2-D mixture of two Gaussians with unequal weights
MIX_MU = torch.tensor([[-2.0, 0.0], [2.0, 0.5]])
MIX_W = torch.tensor([0.3, 0.7])
MIX_S = 0.8


def mix_u(x: torch.Tensor, sigma=None) -> torch.Tensor:
    d = (x[:, None, :] - MIX_MU).pow(2).sum(-1)
    comp = MIX_W.log() - 0.5 * d / MIX_S**2 - math.log(2 * math.pi * MIX_S**2)
    return -torch.logsumexp(comp, 1)


def small_train(steps: int, **kw) -> TrainConfig:
    base = dict(steps=steps, batch_size=64, lr=3e-3, ema_decay=None, tensorboard=False, progress=False, log_every=5)
    base.update(kw)
    return TrainConfig(**base)


SMALL = dict(ghd_steps=2, hidden=16, depth=1, score_hidden=32, score_depth=2)
RK4 = dict(method="rk4", ode_steps=24)


# --------------------------------------------------------------------------- the bound
def _linear_decoder_kl(model: EDG) -> float:
    """KL(p_D(x) ‖ π) in closed form for a Gaussian target and a decoder without GHD steps or networks:
    x = A (loc + s W z) + ½σ²P M + σ ξ, A = I − ½σ²P, so p_D(x) is Gaussian."""
    d = model.decoder
    with torch.no_grad():
        sig2 = d.final_std.pow(2).double()
        a = torch.diag(1 - 0.5 * sig2 * PREC.double())
        w = d.scale.double()[:, None] * d.lin_x.weight.double()
        mu = a @ d.loc.double() + 0.5 * sig2 * PREC.double() * MEAN.double()
        cov = a @ w @ w.T @ a.T + torch.diag(sig2)
    p, m = torch.diag(PREC.double()), MEAN.double()
    k = 2
    kl_norm = 0.5 * (torch.trace(p @ cov) + (m - mu) @ p @ (m - mu) - k - torch.logdet(p) - torch.logdet(cov))
    return float(kl_norm)


def test_loss_is_an_upper_bound_on_the_kl_for_a_gaussian_target():
    torch.manual_seed(0)
    opts = EDGOptions(ghd_steps=0, depth=0, final_std=0.5, score_hidden=32, score_depth=2)
    model = EDG(gauss_u, 2, opts, scale=1.0)
    with torch.no_grad():  # an arbitrary (not optimal) Gaussian decoder
        model.decoder.lin_x.weight.copy_(torch.tensor([[1.3, 0.4], [-0.2, 0.6]]))
        model.decoder.loc.copy_(torch.tensor([0.3, 0.2]))
    kl = _linear_decoder_kl(model)
    recon, enc = bound_terms(model, 20000)
    terms = (recon + enc).detach().double()
    bound = float(terms.mean()) + GAUSS_LOG_Z
    se = float(terms.std()) / math.sqrt(terms.numel())
    assert kl > 0.05
    assert bound > kl - 3 * se, (bound, kl, se)
    # training lowers the bound and keeps it above the (new) KL
    run = train_edg(gauss_u, 2, opts, small_train(150, batch_size=128, lr=1e-2))
    kl2 = _linear_decoder_kl(run.model)
    recon, enc = bound_terms(run.model, 20000)
    terms = (recon + enc).detach().double()
    bound2 = float(terms.mean()) + GAUSS_LOG_Z
    se2 = float(terms.std()) / math.sqrt(terms.numel())
    assert bound2 > kl2 - 3 * se2, (bound2, kl2, se2)
    assert bound2 < bound


def test_encoder_density_is_normalised():
    """The probability-flow ODE density log p_E(z₀ | x) integrates to 1 over a 2-D latent (grid quadrature)."""
    torch.manual_seed(1)
    model = EDG(gauss_u, 2, EDGOptions(ghd_steps=1, hidden=8, depth=1, final_std=0.8, score_hidden=16), scale=1.0)
    for p in model.encoder.net.parameters():  # a non-trivial correction network
        torch.nn.init.normal_(p, std=0.3)
    g = torch.linspace(-5, 5, 51)
    zz = torch.cartesian_prod(g, g)
    x = torch.tensor([[0.5, -0.3]]).expand(zz.shape[0], 2)
    lp = encoder_log_density(model, zz, x, WeightOptions(**RK4))
    mass = float(lp.exp().sum() * (g[1] - g[0]) ** 2)
    assert mass == pytest.approx(1.0, abs=0.03)


# --------------------------------------------------------------------------- weights
def test_reweighted_expectations_converge_on_a_mixture():
    """Self-normalised weights are consistent for any decoder (here an untrained one, broader than the
    target): the error of E[x] and of the right mode's mass shrinks as samples grow."""
    torch.manual_seed(0)
    model = EDG(mix_u, 2, EDGOptions(ghd_steps=0, depth=0, final_std=0.5, score_hidden=32, score_depth=2), scale=2.0)
    n_max = 4000
    ws = draw_weighted(model, WeightOptions(n_samples=n_max, chunk=1000, method="rk4", ode_steps=48), log_z=0.0)
    exact_mean = (MIX_W[:, None] * MIX_MU).sum(0).double()
    exact_right = float(MIX_W[1])

    def errors(n: int) -> list[float]:
        out = []
        for rep in range(n_max // n):
            sl = slice(rep * n, (rep + 1) * n)
            w = torch.softmax(ws.log_w[sl].double(), 0)
            x = ws.x[sl].double()
            mean_err = float(((w[:, None] * x).sum(0) - exact_mean).norm())
            right_err = abs(float((w * (x[:, 0] > 0)).sum()) - exact_right)
            out.append(mean_err + right_err)
        return out

    small, large = errors(125), errors(n_max)
    rms_small = math.sqrt(sum(e * e for e in small) / len(small))
    assert large[0] < 0.3, large
    assert large[0] < 0.5 * rms_small, (large, rms_small)
    assert ws.summary["log_z_error"] < 0.2, ws.summary  # E[w] = Z = 1
    assert ws.summary["log_z_lower"] < 0.0


def test_log_z_lower_bound_lies_below_the_truth():
    torch.manual_seed(0)
    run = train_edg(gauss_u, 2, EDGOptions(**SMALL), small_train(40), scale=1.0)
    ws = draw_weighted(run.model, WeightOptions(n_samples=1000, chunk=500, **RK4), log_z=GAUSS_LOG_Z)
    s = ws.summary
    assert s["log_z_lower"] < GAUSS_LOG_Z
    assert s["log_z_lower_gap"] > 0
    assert s["log_z"] < GAUSS_LOG_Z + 3 * s["log_z_stderr"] + 0.05
    recon, enc = bound_terms(run.model, 4096)  # -L, the training ELBO, is a lower bound too
    terms = (recon + enc).detach().double()
    assert -float(terms.mean()) < GAUSS_LOG_Z + 3 * float(terms.std()) / math.sqrt(terms.numel())
    assert 0 < s["ress"] <= 1


def test_summarise_log_weights_known_values():
    lw = torch.tensor([0.0, 0.0, math.log(2.0), math.log(2.0)])
    s = summarise_log_weights(lw, log_z=math.log(1.5))
    assert s["log_z"] == pytest.approx(math.log(1.5))
    assert s["ress"] == pytest.approx(36 / (4 * 10))
    assert s["log_z_error"] == pytest.approx(0.0, abs=1e-6)
    assert s["log_z_lower"] < math.log(1.5)


# --------------------------------------------------------------------------- failures
def test_divergent_samples_raise_a_clear_error():
    model = EDG(lambda x, sigma=None: gauss_u(x) / (x[:, 0] > 50).double().float(), 2, EDGOptions(**SMALL))
    with pytest.raises(EDGDivergenceError, match="EDG diverged"):
        draw_weighted(model, WeightOptions(n_samples=8, **RK4))


def test_divergent_training_raises_a_clear_error():
    def bad(x, sigma=None):
        return gauss_u(x) + torch.where(x[:, 0] > 0, torch.nan, 0.0)

    with pytest.raises(EDGDivergenceError, match="EDG training diverged.*step 1"):
        train_edg(bad, 2, EDGOptions(**SMALL), small_train(3))


def test_bad_options_are_one_config_error():
    with pytest.raises(ConfigError, match="ghd_steps"):
        EDGOptions(ghd_steps=-1)
    with pytest.raises(ConfigError, match="step_size"):
        EDGOptions(step_size=0.0)


# --------------------------------------------------------------------------- resume
def test_training_resumes_exactly(tmp_path):
    opts = EDGOptions(**SMALL)
    full = train_edg(gauss_u, 2, opts, small_train(12, checkpoint_every=6, ema_decay=0.9), out_dir=tmp_path / "a")
    train_edg(gauss_u, 2, opts, small_train(6, checkpoint_every=6, ema_decay=0.9), out_dir=tmp_path / "b")
    resumed = train_edg(
        gauss_u, 2, opts, small_train(12, checkpoint_every=6, ema_decay=0.9), out_dir=tmp_path / "b", resume=True
    )
    a, b = full.trainer.model.state_dict(), resumed.trainer.model.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    ea, eb = full.model.state_dict(), resumed.model.state_dict()  # the EMA sampling weights too
    for k in ea:
        assert torch.equal(ea[k], eb[k]), k
    assert full.train_evals == resumed.train_evals > 0
    assert (tmp_path / "b" / "metrics.csv").exists()


@pytest.mark.parametrize("floor", [0.0, 0.01])
def test_time_draws_are_importance_weighted(floor):
    """∫₀ᵀ f(t) dt = E[f(t) / p(t)] for the uniform and the mixture draw alike (f peaked at t = 0)."""
    from hebm_core.edg.loss import draw_times

    torch.manual_seed(0)
    t, inv_p = draw_times(400_000, 2.0, floor, torch.empty(0, dtype=torch.float64))
    assert float(t.min()) >= 0 and float(t.max()) <= 2.0
    est = (inv_p / (t + 0.05)).mean()
    assert float(est) == pytest.approx(math.log(2.05 / 0.05), rel=0.01)
    if floor:  # the mixture's estimate of this integral has a far smaller spread than uniform draws'
        u = torch.rand(400_000, dtype=torch.float64) * 2.0
        assert float((inv_p / (t + 0.05)).std()) < 0.5 * float((2.0 / (u + 0.05)).std())


def test_a_stiff_weight_solve_falls_back_to_rk4_and_is_counted():
    """An adaptive solve that needs more than ``max_steps`` steps is re-solved with rk4 and reported."""
    torch.manual_seed(0)
    run = train_edg(gauss_u, 2, EDGOptions(**SMALL), small_train(3))
    opts = WeightOptions(n_samples=16, chunk=8, rtol=1e-9, atol=1e-9, max_steps=2, ode_steps=8)
    ws = draw_weighted(run.model, opts)
    assert ws.summary["fallback_rows"] == 16 and bool(torch.isfinite(ws.log_w).all())
    torch.manual_seed(1)
    rk4 = draw_weighted(run.model, WeightOptions(n_samples=16, chunk=8, method="rk4", ode_steps=8))
    assert rk4.summary["fallback_rows"] == 0
