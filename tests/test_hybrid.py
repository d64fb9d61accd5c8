"""The hybrid energy: sign convention, score decomposition, moment matching and η calibration."""

import math
import warnings
from types import SimpleNamespace

import pytest
import torch
from _util import fit

from hebm_core import EnergyModel, HybridEnergy, MLPEnergy, runs
from hebm_core.calibration import CalibrationOptions, calibrate, median_of_means
from hebm_core.config import ConfigError
from hebm_core.models import GaussianEnergy
from hebm_core.objectives import DenoisingScoreMatching
from hebm_core.samplers import MALA
from hebm_core.statistics import identity, radius, sin_sum, square, statistic


def toy_gaussian(statistics, data, sampler, **overrides):
    """The toy plugin's N(0, I) base (SSM) tilted by ``statistics``, on its Gaussian ``data``, sampled by Langevin."""
    from hebm_core.config import resolve_config

    cfg = {
        "plugin": "toy",
        "statistics": statistics,
        "data": {"name": "gaussian", **data},
        "model": {"name": "gaussian"},
        "objective": {"name": "ssm"},
        "sampler": {"name": "langevin", **sampler},
        **overrides,
    }
    return runs.build(resolve_config(overrides=cfg))


def calibrated(exp, model=None, n=None, **options):
    """:func:`hebm_core.runs.calibrate_eta` with these calibration options; the model then takes the
    η it found (the stage itself leaves the model's η as it was). Returns the history."""
    model = model or exp.model
    before = model.eta_vector().clone()
    result = runs.calibrate_eta(model, exp, options=CalibrationOptions(**options) if options else None, n=n)
    assert torch.equal(model.eta_vector(), before)
    model.load_eta(result.eta)
    return result.history


def test_starts_vanilla_and_follows_the_sign_convention():
    base = GaussianEnergy(dim=2)
    model = HybridEnergy(base, [identity], example=torch.zeros(1, 2))
    x = torch.randn(16, 2)
    assert torch.equal(model.energy(x), base.energy(x))  # η = 0 at initialisation
    with torch.no_grad():
        model.eta["identity"].copy_(torch.tensor([0.5, -1.0]))
    # log p = F + η·T − log Z  ⇔  E_hybrid = E_base − η·T
    assert torch.allclose(model.energy(x), base.energy(x) - x @ torch.tensor([0.5, -1.0]))
    # score = ∇F + η·∇T = base score + η (for T = x)
    assert torch.allclose(model.score(x), base.score(x) + torch.tensor([0.5, -1.0]), atol=1e-6)
    assert model.eta_report() == {"identity": [0.5, -1.0]}


def test_sigma_power_scales_the_statistic_term_with_the_noise_level():
    base = GaussianEnergy(dim=2)
    model = HybridEnergy(base, [square], example=torch.zeros(1, 2), sigma_power=2, sigma_ref=0.1)
    with torch.no_grad():
        model.eta["square"].copy_(torch.tensor([0.5, -1.0]))
    x = torch.randn(4, 2)
    sigma = torch.tensor([0.1, 0.2, 1.0, 0.05])
    term = (x**2 @ torch.tensor([0.5, -1.0])) * (0.1 / sigma) ** 2
    assert torch.allclose(model.energy(x, sigma), base.energy(x, sigma) - term)
    assert torch.allclose(model.energy(x), base.energy(x) - x**2 @ torch.tensor([0.5, -1.0]))  # no σ: unscaled
    with pytest.raises(ValueError, match="sigma_power >= 0"):
        HybridEnergy(base, [square], example=torch.zeros(1, 2), sigma_power=-1)


def test_sigma_powers_give_one_statistic_its_own_noise_scaling():
    """``sigma_powers`` overrides ``sigma_power`` per statistic: here x keeps a fixed weight at every
    σ while x² grows as (σ_ref/σ)², in the energy and hence in the score."""
    base = GaussianEnergy(dim=2)
    model = HybridEnergy(
        base, [identity, square], example=torch.zeros(1, 2), sigma_power=2, sigma_ref=0.1, sigma_powers={"identity": 0}
    )
    eta1, eta2 = torch.tensor([0.5, -1.0]), torch.tensor([0.25, 2.0])
    with torch.no_grad():
        model.eta["identity"].copy_(eta1)
        model.eta["square"].copy_(eta2)
    x = torch.randn(4, 2)
    sigma = torch.tensor([0.1, 0.2, 1.0, 0.05])
    w = ((0.1 / sigma) ** 2)[:, None]
    assert torch.allclose(model.energy(x, sigma), base.energy(x, sigma) - x @ eta1 - (x**2 @ eta2) * w[:, 0])
    assert torch.allclose(model.score(x, sigma), base.score(x, sigma) + eta1 + 2 * eta2 * x * w, atol=1e-5)
    assert model.sigma_powers == {"identity": 0.0} and "sigma_powers" in repr(model)
    same = HybridEnergy(base, [square], example=torch.zeros(1, 2), sigma_power=2, sigma_powers={"square": 2})
    assert same.sigma_powers == {}  # an override equal to the default is no override
    with pytest.raises(ValueError, match=r"sigma_powers names \['cube'\]"):
        HybridEnergy(base, [square], example=torch.zeros(1, 2), sigma_powers={"cube": 1})
    with pytest.raises(ValueError, match="sigma_power >= 0"):
        HybridEnergy(base, [square], example=torch.zeros(1, 2), sigma_powers={"square": -1})


class NoisyGaussian(EnergyModel):
    """N(0, s0² I) convolved with N(0, σ² I): the exact noise-conditional energy of Gaussian data."""

    noise_conditional = True

    def __init__(self, s0: float = 0.5) -> None:
        super().__init__()
        self.s0 = s0

    def energy(self, x, sigma=None):
        var = self.s0**2 + (0.0 if sigma is None else sigma[:, None] ** 2)
        return 0.5 * (x**2 / var).sum(-1)


def test_denoised_statistic_gives_the_tilted_models_noisy_score():
    """Data N(0, s0²I) tilted by exp(η·x) is N(s0²η, s0²I); its σ-noised score is the base score
    + s0²η/(s0²+σ²). ``denoised=True`` (T at x̂ = x + σ² s) gives exactly that at every σ, where
    T on the noisy x adds η at every σ, too much at large σ."""
    base, s0, eta = NoisyGaussian(0.5), 0.5, torch.tensor([2.0, -1.0])
    denoised = HybridEnergy(base, [identity], example=torch.zeros(1, 2), denoised=True)
    plain = HybridEnergy(base, [identity], example=torch.zeros(1, 2))
    with torch.no_grad():
        denoised.eta["identity"].copy_(eta)
        plain.eta["identity"].copy_(eta)
    x = torch.randn(5, 2, generator=torch.Generator().manual_seed(0))
    for s in (0.01, 0.5, 3.0):
        sigma = torch.full((5,), s)
        exact = base.score(x, sigma) + s0**2 * eta / (s0**2 + s**2)
        assert torch.allclose(denoised.score(x, sigma), exact, atol=1e-5)
        term = x @ eta * s0**2 / (s0**2 + s**2)
        assert torch.allclose(denoised.energy(x, sigma), base.energy(x, sigma) - term, atol=1e-6)  # float32 near 0
    assert not torch.allclose(plain.score(x, sigma), exact, atol=0.1)  # σ = 3: the noisy-x term is 37 times too strong
    assert torch.allclose(denoised.energy(x), plain.energy(x))  # no σ: the clean density, T at x
    assert "denoised=True" in repr(denoised)
    with pytest.raises(ValueError, match="noise-conditional base"):
        HybridEnergy(GaussianEnergy(dim=2), [identity], example=torch.zeros(1, 2), denoised=True)


def test_denoised_statistic_differentiates_through_the_network():
    """With a network base, x̂ depends on x through the network's score, so the hybrid score carries
    the Jacobian (I + σ²∇s)ᵀ∇T(x̂): it matches finite differences of the energy, and η gets a
    gradient through a score-matching loss (which differentiates the score once more)."""
    torch.manual_seed(0)
    base = MLPEnergy(dim=2, hidden=16, noise_conditional=True).double()
    model = HybridEnergy(base, [square], example=torch.zeros(1, 2, dtype=torch.float64), denoised=True).double()
    with torch.no_grad():
        model.eta["square"].copy_(torch.tensor([0.7, -0.3], dtype=torch.float64))
    x = torch.randn(3, 2, dtype=torch.float64)
    sigma = torch.full((3,), 0.8, dtype=torch.float64)
    score = model.score(x, sigma)
    h = 1e-6
    for j in range(2):
        dx = torch.zeros_like(x)
        dx[:, j] = h
        fd = -(model.energy(x + dx, sigma) - model.energy(x - dx, sigma)) / (2 * h)
        assert torch.allclose(score[:, j], fd.detach(), atol=1e-6)
    naive = base.score(x, sigma) + 2 * model.eta["square"] * (x + 0.64 * base.score(x, sigma))
    assert not torch.allclose(score, naive.detach(), atol=1e-3)  # the Jacobian term is there
    loss = DenoisingScoreMatching(sigma_min=0.1, sigma_max=1.0, n_sigmas=3)(model, x).loss
    loss.backward()
    assert model.eta["square"].grad is not None and model.eta["square"].grad.abs().sum() > 0


def test_positive_eta_raises_the_statistic_under_the_model():
    """With η > 0 on T = x, a standard Gaussian base shifts its mean to +η (exactly, by completing the square)."""
    torch.manual_seed(0)
    model = HybridEnergy(GaussianEnergy(dim=2), [identity], example=torch.zeros(1, 2))
    with torch.no_grad():
        model.eta["identity"].fill_(0.7)
    x = MALA(step_size=0.3, n_steps=300, adapt_steps=100).run(model, torch.randn(4000, 2))
    assert torch.allclose(x.mean(0), torch.full((2,), 0.7), atol=0.06)


def test_eta_per_component_and_by_name():
    @statistic(name="pair", component_names=["a", "b"])
    def pair(x):
        return torch.stack([x[:, 0], x[:, 1] ** 2], 1)

    model = HybridEnergy(MLPEnergy(dim=2, noise_conditional=False), [pair, sin_sum], example=torch.zeros(3, 2))
    assert set(model.eta_report()) == {"pair", "sin_sum"}
    assert model.eta["pair"].shape == (2,) and model.eta["sin_sum"].shape == (1,)
    assert pair.names(2) == ["pair.a", "pair.b"]
    with pytest.raises(ValueError, match="unique"):
        HybridEnergy(GaussianEnergy(dim=2), [sin_sum, sin_sum], example=torch.zeros(1, 2))


class BoundedMLP(EnergyModel):
    """An MLP energy squashed into (-4, 4): it cannot confine mass far from the data, as any network
    that only saw data nearby; only the statistic can supply the missing moments."""

    def __init__(self):
        super().__init__()
        self.net = MLPEnergy(dim=2, hidden=32, depth=2, noise_conditional=False)

    def energy(self, x, sigma=None):
        return 4 * torch.tanh(self.net(x) / 4)


def _skewed_data(n=20000):
    g = torch.Generator().manual_seed(0)
    comp = torch.rand(n, generator=g) < 0.3
    z = torch.randn(n, 2, generator=g)
    return z * torch.tensor([0.5, 0.8]) + torch.tensor([1.0, -0.5]) + comp[:, None] * torch.tensor([0.7, 0.8])


def test_moment_matching_theorem_1():
    """DSM-trained hybrid with T = (x, x²): model moments of T (long MALA chains) match the data's;
    the vanilla model with the same network, seed and budget does not."""
    data = _skewed_data()
    sigma = 0.1
    # DSM fits the σ-noised data: its second moment is the data's plus σ²
    t_data = torch.cat([data.mean(0), data.pow(2).mean(0) + sigma**2])
    t_scale = torch.cat([data.std(0), data.pow(2).std(0)])
    errors = {}
    for kind in ("vanilla", "hybrid"):
        torch.manual_seed(1)
        model = BoundedMLP()
        if kind == "hybrid":
            model = HybridEnergy(model, [identity, square], example=data[:8])
        fit(model, DenoisingScoreMatching(sigmas=[sigma]), data, steps=500, lr=3e-3, eta_lr=5e-2)
        torch.manual_seed(2)
        x = MALA(step_size=0.05, n_steps=800, adapt_steps=200).run(model, torch.randn(4000, 2))
        t_model = torch.cat([x.mean(0), x.pow(2).mean(0)])
        errors[kind] = ((t_model - t_data).abs() / t_scale).max().item()
    assert errors["hybrid"] < 0.1, errors  # within 0.1 data-std of every moment
    assert errors["hybrid"] < errors["vanilla"] / 5, errors


def test_eta_calibration_informative_vs_sin():
    """The paper's ablation: on ring data the radius statistic gets a clearly non-zero η;
    the uninformative sin(1ᵀx) ends at least 5× smaller."""
    g = torch.Generator().manual_seed(0)
    n = 20000
    theta = 2 * math.pi * torch.rand(n, generator=g)
    r = 2 + 0.2 * torch.randn(n, generator=g)
    data = torch.stack([r * theta.cos(), r * theta.sin()], 1)
    eta = {}
    for stat in (radius, sin_sum):
        torch.manual_seed(1)
        model = HybridEnergy(MLPEnergy(dim=2, hidden=32, depth=2, noise_conditional=False), [stat], example=data[:8])
        fit(model, DenoisingScoreMatching(sigmas=[0.1]), data, steps=600, lr=1e-2)
        eta[stat.name] = abs(model.eta_report()[stat.name])
    assert eta["radius"] > 0.1, eta
    assert eta["sin_sum"] * 5 < eta["radius"], eta


def test_calibrate_eta_matches_the_data_moments():
    """With T = x on a unit Gaussian base, E_model[T] = η, so moment matching must land η on the data mean."""
    comps = toy_gaussian(
        ["identity"], {"n": 4000, "mean_scale": 1.5}, {"step_size": 0.05, "n_steps": 300, "n_samples": 4000}
    )
    assert comps.model.eta_report() == {"identity": [0.0, 0.0]}
    history = calibrated(comps, rounds=3, n=4000, lr=1.0)
    data_mean = comps.bundle.train.double().mean(0)
    eta = torch.tensor(history[-1]["eta"]["identity"], dtype=torch.float64)
    assert torch.allclose(eta, data_mean, atol=0.08)  # the base is N(0, I): the hybrid's mean is η
    first, last = (max(abs(g) for g in h["gap"]["identity"]) for h in (history[0], history[-1]))
    assert last < 0.08 < first

    # too large a rate overshoots: the step is undone, the secant through the rejected η lands
    # on the answer (the response is linear), and the model keeps the best η seen
    with torch.no_grad():
        comps.model.eta["identity"].zero_()
    history = calibrated(comps, rounds=3, n=4000, lr=8.0)
    assert not history[1]["kept"] and history[2]["step"] == "secant" and history[2]["kept"]
    sizes = [sum(abs(g) for g in h["gap"]["identity"]) for h in history if h["kept"]]
    assert sizes == sorted(sizes, reverse=True) and sizes[-1] < 0.08
    kept_eta = [h for h in history if h["kept"]][-1]["eta"]["identity"]
    assert comps.model.eta_report()["identity"] == pytest.approx(kept_eta)
    assert torch.allclose(torch.tensor(kept_eta, dtype=torch.float64), data_mean, atol=0.08)

    # far too small a rate: Newton steps alone would need ~40 rounds (10 % per round); the
    # secant measures the response after one step and closes the gap within two more (each
    # step at most 4× the previous one)
    with torch.no_grad():
        comps.model.eta["identity"].zero_()
    history = calibrated(comps, rounds=3, n=4000, lr=0.1)
    assert [h["step"] for h in history] == ["start", "newton", "secant", "secant"]
    assert torch.allclose(torch.tensor(comps.model.eta_report()["identity"], dtype=torch.float64), data_mean, atol=0.08)


def test_calibration_warns_when_it_keeps_no_step():
    """A rate of 8 steps T = x eight times too far (the gap grows from m to 7m): with one round that step
    is undone and nothing else is tried, so η stays 0 and a warning says so; one more round's secant
    lands on the answer without a warning."""
    comps = toy_gaussian(
        ["identity"], {"n": 4000, "mean_scale": 1.5}, {"step_size": 0.05, "n_steps": 300, "n_samples": 2000}
    )
    with pytest.warns(UserWarning, match="kept none of its 1 steps"):
        history = calibrated(comps, rounds=1, n=2000, lr=8.0)
    assert [h["kept"] for h in history] == [True, False]
    assert comps.model.eta_report()["identity"] == [0.0, 0.0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        history = calibrated(comps, rounds=2, n=2000, lr=8.0)
    assert [h["kept"] for h in history] == [True, False, True]
    eta = torch.tensor(comps.model.eta_report()["identity"], dtype=torch.float64)
    assert torch.allclose(eta, comps.bundle.train.double().mean(0), atol=0.1)


def test_calibrate_eta_is_scale_free_across_components():
    """Components on scales 100 apart: Newton's first step divides by each one's variance, so both
    land on the data's moments in the same rounds (η·c = data mean for T = c·x on a N(0, I) base)."""
    comps = toy_gaussian([], {"n": 4000, "mean_scale": 1.5}, {"step_size": 0.05, "n_steps": 300, "n_samples": 4000})

    @statistic(name="scaled")
    def scaled(x):
        return x * torch.tensor([100.0, 0.01])

    model = HybridEnergy(comps.model, [scaled], example=comps.example)
    history = calibrated(comps, model, rounds=2, n=4000, lr=1.0)
    eta = torch.tensor(model.eta_report()["scaled"], dtype=torch.float64)
    data_mean = comps.bundle.train.double().mean(0)
    assert torch.allclose(eta * torch.tensor([100.0, 0.01], dtype=torch.float64), data_mean, atol=0.08), eta
    assert history[1]["step"] == "newton" and history[1]["kept"]


@pytest.mark.parametrize("a22", [0.2, 1e-3])
def test_calibrate_eta_steps_correlated_components_jointly(a22):
    """T = A·x with A = [[1, 0], [1, a22]] on a N(0, I) base: the components correlate at 0.98
    (a22 = 0.2) or repeat each other (1e-3), and E_η x = Aᵀ·η, so moment matching means Aᵀ·η = m
    (m: the data mean). Newton with the full covariance lands there in one step; a per-component
    step would overshoot twofold, and a plain inverse would amplify the noise along the repeated
    direction (the pseudo-inverse drops it). (η₂ itself is ill-determined: a22·η₂ is the mean of
    x₂, known to the sampler's ±0.03.)"""
    comps = toy_gaussian([], {"n": 4000, "mean_scale": 1.5}, {"step_size": 0.05, "n_steps": 300, "n_samples": 4000})
    a = torch.tensor([[1.0, 0.0], [1.0, a22]])

    @statistic(name="coupled")
    def coupled(x):
        return x @ a.T.to(x)

    model = HybridEnergy(comps.model, [coupled], example=comps.example)
    history = calibrated(comps, model, rounds=2, n=4000, lr=1.0)
    m = comps.bundle.train.double().mean(0)
    assert history[1]["step"] == "newton" and history[1]["kept"]
    for eta in (history[1]["eta"]["coupled"], model.eta_report()["coupled"]):
        mean = a.double().T @ torch.tensor(eta, dtype=torch.float64)
        assert torch.allclose(mean, m, atol=0.05), (mean, m)
    assert max(abs(g) for g in history[1]["gap"]["coupled"]) < 0.08 < max(abs(g) for g in history[0]["gap"]["coupled"])


def test_joint_calibration_fits_coupled_moments_where_per_component_secants_stall():
    """T = (x, x²) on a N(0, I) base, data with mean 1.5 per coordinate: the tilt exp(η₁x + η₂x²) is
    N(η₁·s², s²) with s² = 1/(1 − 2η₂), so moment matching has the exact answer η₁ = m/v,
    η₂ = (1 − 1/v)/2 (m, v: the data's mean and variance). x and x² then correlate at ~0.9 and the
    response to η is far from linear (a first Newton step overshoots and is undone). The joint rule
    (the current covariance and one measured response factor) lands on the exact η in 6 rounds;
    per-component secants, on the same draws, stay ~0.5 off in η₁."""
    from hebm_core.config import resolve_config

    errors = {}
    for method in ("joint", "secant"):
        comps = toy_gaussian(
            [{"name": "identity", "moments": 2}],
            {"n": 4000, "mean_scale": 1.5, "condition": 4.0},
            {"step_size": 0.02, "n_steps": 400, "n_samples": 4000},
            hybrid={"calibrate_method": method},
        )
        data = comps.bundle.train.double()
        m, v = data.mean(0), data.var(0)
        exact = torch.cat([m / v, (1 - 1 / v) / 2])
        hyb = comps.config.hybrid
        history = calibrated(comps, rounds=6, n=4000, lr=1.0, method=hyb.calibrate_method)
        assert not history[1]["kept"] and history[-1]["step"] == method
        eta = torch.tensor(comps.model.eta_report()["identity_m2"], dtype=torch.float64)
        errors[method] = (eta - exact).abs().max().item()
    assert errors["joint"] < 0.05 < 0.3 < errors["secant"], errors
    with pytest.raises(ConfigError, match="calibrate_method must be one of joint, secant"):
        resolve_config(overrides={"plugin": "toy", "statistics": ["identity"], "hybrid": {"calibrate_method": "adam"}})


def test_median_of_means_ignores_a_few_wild_rows():
    g = torch.Generator().manual_seed(0)
    t = torch.randn(1000, 2, generator=g, dtype=torch.float64) * 0.1 + torch.tensor([1.0, -2.0], dtype=torch.float64)
    clean = t.mean(0)
    t[3, 0] = t[500, 1] = 1e4  # two chains that ran off: the plain mean moves by 10
    assert torch.allclose(median_of_means(t), clean, atol=0.02)
    assert (t.mean(0) - clean).abs().min() > 5
    assert torch.equal(median_of_means(t[:15]), t[:15].mean(0))  # too few rows for groups: the mean


def test_calibration_survives_a_diverging_round():
    """T = x² with η > 1/2 makes exp(−x²/2 + η x²) improper and Langevin blow up: that round is
    undone (recorded as diverged) and the next tries back off, instead of aborting the run. None of
    the three tries beats the start here, which the calibration warns of."""
    comps = toy_gaussian(
        ["square"], {"n": 4000, "mean_scale": 1.5}, {"step_size": 0.05, "n_steps": 300, "n_samples": 2000}
    )
    with pytest.warns(UserWarning, match="kept none of its 3 steps"):
        history = calibrated(comps, rounds=3, n=2000, lr=20.0)
    assert "diverged" in history[1] and not history[1]["kept"]
    assert history[2]["step"] == "backtrack"
    eta = torch.tensor(comps.model.eta_report()["square"])
    assert torch.isfinite(eta).all() and (eta < 0.5).all()  # the model keeps a proper η


def exact_tilt(run_off, data):
    """Moment matching of the N(0, I) base tilted by T = x, measured on exact draws N(η, I) (the same
    noise every round) passed through ``run_off(x, η)`` to make chains run off: the algorithm alone,
    with no sampler or model. Returns ``(measure, target, η₀)`` for :func:`calibrate`."""

    def measure(eta):
        x = eta.float() + torch.randn(4000, 2, generator=torch.Generator().manual_seed(0))
        return run_off(x, eta.float())

    return measure, data, torch.zeros(2)


def test_calibration_treats_chains_that_ran_off_to_finite_values_as_diverged():
    """A sampler that returns huge but finite chains (here: N(η, 1) times 1e15 once any |η| > 4,
    for T = x on the N(0, I) base, whose moment-matching η is the data mean) gives no NaN to catch.
    Such a round counts as diverged and the next tries back off halfway (12 → 6 → 3 for a mean of
    1.5 at rate 8) until one is sane, and the secant through that one lands on the answer; a secant
    through the runaway gap would instead have cut the step to ~1e-15 and left η at 0."""
    comps = toy_gaussian(["identity"], {"n": 4000, "mean_scale": 1.5}, {"n_samples": 4000})

    def run_off(x, eta):
        return x * 1e15 if eta.abs().max() > 4 else x

    result = calibrate(*exact_tilt(run_off, comps.bundle.train), CalibrationOptions(rounds=5, lr=8.0), {"identity": 2})
    history = result.history
    assert ["diverged" in r for r in history] == [False, True, True, False, False, False]
    assert "chains ran off" in history[1]["diverged"] and history[1]["gap"]["identity"][0] > 1e14
    assert [r["step"] for r in history[2:5]] == ["backtrack", "backtrack", "secant"] and history[4]["kept"]
    data_mean = comps.bundle.train.double().mean(0)
    halves = [torch.tensor(history[r]["eta"]["identity"], dtype=torch.float64) for r in (1, 2, 3)]
    assert torch.allclose(halves[1], halves[0] / 2) and torch.allclose(halves[2], halves[0] / 4)
    assert result.eta.dtype == torch.float32  # every tried η is rounded to the start's dtype
    assert torch.allclose(result.eta.double(), data_mean, atol=0.05), (result.eta, data_mean)
    assert [r["ran_off"] for r in history] == [0, 4000, 4000, 0, 0, 0]


def test_calibration_counts_and_warns_of_a_few_chains_that_ran_off():
    """Three of 4,000 chains run off once η > 1, all in one of the ten interleaved groups: the
    median of means outvotes them, so η still lands on the data mean, but the history counts them
    and a warning says that sampling at this η can give such chains again."""
    comps = toy_gaussian(["identity"], {"n": 4000, "mean_scale": 1.5}, {"n_samples": 4000})

    def run_off(x, eta):
        if eta.max() > 1:
            x[0:30:10] *= 1e15
        return x

    with pytest.warns(UserWarning, match="at the kept η 3 of 4000 chains ran off"):
        result = calibrate(*exact_tilt(run_off, comps.bundle.train), CalibrationOptions(rounds=2, lr=1.0))
    assert [r["ran_off"] for r in result.history] == [0, 3, 3] and all(r["kept"] for r in result.history)
    assert set(result.history[0]["gap"]) == {"eta"}  # without blocks: one block named eta
    assert torch.allclose(result.eta.double(), comps.bundle.train.double().mean(0), atol=0.05)


def test_kl_bound_lets_the_calibration_reach_what_a_full_step_diverges_from():
    """The same T = x² and rate 20: the full first Newton step (predicted KL ~160) makes Langevin
    diverge. With ``calibrate_max_kl = 1`` that step is cut to KL 1 along the same direction, no
    round diverges, and 8 rounds land on the moment-matching η of this sampler: ULA with step h on
    the tilt N(0, 1/λ), λ = 1 − 2η, has stationary E[x²] = 1/(λ(1 − hλ/2)), so λ solves
    λ − hλ²/2 = 1/E_data[x²]."""
    from hebm_core.calibration import step_kl, within_kl

    h = 0.05
    comps = toy_gaussian(
        ["square"],
        {"n": 4000, "mean_scale": 1.5},
        {"step_size": h, "n_steps": 300, "n_samples": 2000},
        hybrid={"calibrate_rounds": 8, "calibrate_samples": 2000, "calibrate_lr": 20.0, "calibrate_max_kl": 1.0},
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        history = calibrated(comps)
    assert history[1]["step"] == "newton" and history[1]["bounded"] and history[1]["step_kl"] == pytest.approx(1.0)
    assert not any("diverged" in r for r in history)
    assert all(r["step_kl"] <= 1.0 + 1e-9 for r in history[1:])
    target = comps.bundle.train.double().pow(2).mean(0)
    lam = (1 - (1 - 2 * h / target).sqrt()) / h  # the root of λ − hλ²/2 = 1/target near 1/target
    exact = (1 - lam) / 2
    eta = torch.tensor(comps.model.eta_report()["square"], dtype=torch.float64)
    assert torch.allclose(eta, exact, atol=0.15), (eta, exact)  # 2,000 samples: E[x²] to ~3 %, η₂ ≈ −2 to ~0.08
    assert max(abs(g) for g in history[-1]["gap"]["square"]) < 0.05 * target.max()

    # the bound keeps a step's direction and scales its KL ½·ΔηᵀCΔη down to the limit, no further
    best = SimpleNamespace(sd=torch.tensor([2.0, 0.5], dtype=torch.float64), corr=torch.eye(2, dtype=torch.float64))
    step = torch.tensor([3.0, -4.0], dtype=torch.float64)
    assert step_kl(step, best) == pytest.approx(0.5 * (36 + 4))
    cut = within_kl(step, best, 2.0)
    assert step_kl(cut, best) == pytest.approx(2.0) and torch.allclose(cut / cut.norm(), step / step.norm())
    assert torch.equal(within_kl(step, best, 100.0), step)


@pytest.mark.parametrize("value", [0, -1.0, "1"])
def test_calibrate_max_kl_must_be_a_positive_number(value):
    from hebm_core.config import resolve_config

    with pytest.raises(ConfigError, match="calibrate_max_kl must be a number > 0"):
        resolve_config(overrides={"plugin": "toy", "statistics": ["identity"], "hybrid": {"calibrate_max_kl": value}})


def test_median_of_group_variances_ignores_a_wild_row():
    g = torch.Generator().manual_seed(1)
    t = torch.randn(1000, 1, generator=g, dtype=torch.float64)
    t[7, 0] = 190.0  # one runaway chain: the plain variance jumps from ~1 to ~37
    assert t.var(0, correction=0).item() > 30
    assert median_of_means(t, var=True).item() == pytest.approx(1.0, abs=0.15)


def test_moments_statistic_matches_the_data_variance_too():
    """T = x on a N(0, I) base: matching E[x] moves the mean and leaves the variance at the base's 1;
    with ``moments = 2`` the tilt exp(η₁x + η₂x²) also matches E[x²], so the hybrid's per-coordinate
    variance is the data's (0.86 and 0.39 here), as the maximum-entropy solution says. (A small mean
    keeps x and x² weakly correlated: on strongly coupled components the calibration's per-component
    secant steps after the first converge slowly.)"""
    from hebm_core.config import resolve_config
    from hebm_core.statistics import Moments

    def fitted(entry):
        comps = toy_gaussian(
            [entry],
            {"n": 4000, "mean_scale": 0.3, "condition": 4.0},
            {"step_size": 0.02, "n_steps": 400, "n_samples": 4000},
        )
        calibrated(comps, rounds=10, n=4000, lr=1.0)
        samples, _ = runs.SamplingPlan.build(comps).draw(comps.model, comps)
        return comps, samples.double()

    comps, two = fitted({"name": "identity", "moments": 2})
    stat = comps.statistics[0]
    assert isinstance(stat, Moments) and stat.name == "identity_m2" and len(comps.model.eta["identity_m2"]) == 4
    data = comps.bundle.train.double()
    assert torch.allclose(two.mean(0), data.mean(0), atol=0.08)
    assert torch.allclose(two.var(0), data.var(0), rtol=0.1), (two.var(0), data.var(0))
    _, one = fitted("identity")
    assert torch.allclose(one.mean(0), data.mean(0), atol=0.08)
    assert torch.allclose(one.var(0), torch.ones(2, dtype=torch.float64), rtol=0.1)  # the base's variance
    x = torch.tensor([[2.0, -1.0]])
    assert stat(x).tolist() == [[2.0, -1.0, 4.0, 1.0]]
    with pytest.raises(ConfigError, match="moments must be an integer >= 1"):
        runs.build(resolve_config(overrides={"plugin": "toy", "statistics": [{"name": "identity", "moments": 0}]}))
