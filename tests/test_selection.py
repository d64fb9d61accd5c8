"""Statistic selection: the tilt's gain has a closed form on exact samples; a useless statistic is
dropped, an informative one kept, over ten seeds; the CLI writes the report."""

from __future__ import annotations

import json
import math

import pytest
import torch

from hebm_core.cli import main
from hebm_core.selection import SelectionOptions, fit_tilt, select, tilt_gain


def tilted_radius(n: int, eta: float, g: torch.Generator) -> torch.Tensor:
    """Exact draws of N(0, I₂)·exp(η‖x‖): a uniform angle and the radius density r·exp(−r²/2 + ηr) by inverse CDF."""
    grid = torch.linspace(0, 12, 200_001, dtype=torch.float64)
    cdf = torch.cumsum(grid * torch.exp(-(grid**2) / 2 + eta * grid), 0)
    r = grid[torch.searchsorted(cdf / cdf[-1], torch.rand(n, generator=g, dtype=torch.float64))]
    theta = 2 * math.pi * torch.rand(n, generator=g, dtype=torch.float64)
    return torch.stack([r * theta.cos(), r * theta.sin()], 1)


W = torch.randn(2, 3, generator=torch.Generator().manual_seed(99), dtype=torch.float64)
B = 2 * math.pi * torch.rand(3, generator=torch.Generator().manual_seed(98), dtype=torch.float64)
NAMES = ["radius", "sin_sum", "random_feature0", "random_feature1", "random_feature2"]


def candidates(x: torch.Tensor) -> torch.Tensor:
    """The informative ‖x‖, the paper's control sin(Σx) and three random Fourier features."""
    return torch.cat([x.norm(dim=1, keepdim=True), torch.sin(x.sum(1, keepdim=True)), torch.cos(x @ W + B)], 1)


def test_fit_tilt_is_the_moment_matching_eta_and_its_gain_the_kl_it_removes():
    """T = x on N(0, 1) samples, data N(m, 1): the tilt is N(η, 1), so η = m, and the gain is
    KL(N(m,1) ‖ N(0,1)) − 0 = m²/2."""
    g = torch.Generator().manual_seed(0)
    model = torch.randn(200_000, 1, generator=g, dtype=torch.float64)
    m = 0.7
    eta = fit_tilt(model, torch.tensor([m], dtype=torch.float64), ridge=0.0)
    assert eta.item() == pytest.approx(m, abs=0.01)
    assert tilt_gain(eta, model, torch.tensor([m], dtype=torch.float64)).item() == pytest.approx(m**2 / 2, abs=0.01)


def test_selection_keeps_the_informative_statistic_and_rejects_the_control_in_ten_seeds():
    """Data drawn exactly from the base tilted by η* = 1.5 on the radius: the radius must be kept with
    η ≈ 1.5, and sin_sum and the random features, which add nothing once the radius is matched, dropped."""
    kept, etas = [], []
    for seed in range(10):
        g = torch.Generator().manual_seed(seed)
        data = tilted_radius(5000, 1.5, g)
        model = torch.randn(3000, 2, generator=g, dtype=torch.float64)
        res = select(candidates(model), candidates(data[:3500]), candidates(data[3500:]), NAMES,
                     SelectionOptions(seed=seed, n_boot=60))  # fmt: skip
        kept.append(res.kept)
        etas.append(res.eta.get("radius", math.nan))
        assert {c["name"]: c["decision"] for c in res.components}["sin_sum"] == "drop"
    assert kept == [["radius"]] * 10, kept
    assert all(abs(e - 1.5) < 0.25 for e in etas), etas
    radius = next(c for c in res.components if c["name"] == "radius")
    assert radius["gap_before_sd"] > 0.5 > 0.01 > radius["gap_after_sd"]
    assert radius["interval"][0] > 0.1 and res.summary["held_out_gain_nats"] > 0.5


def test_select_statistics_through_the_cli(tmp_path, capsys):
    out = tmp_path / "sel"
    argv = ["select-statistics", "--statistic", "radius", "--statistic", "sin_sum", "--steps", "300"]
    argv += ["--set", "data.n=2000", "--set", "sampler.n_samples=1000", "--set", "sampler.steps_per_sigma=20"]
    assert main([*argv, "--out", str(out)]) == 0
    stdout = capsys.readouterr().out
    rep = json.loads((out / "selection.json").read_text())
    assert [c["name"] for c in rep["components"]] == ["radius", "sin_sum"]
    assert {c["decision"] for c in rep["components"]} <= {"keep", "drop"} and "statistics = " in stdout
    assert all(math.isfinite(c["held_out_gain"]) for c in rep["components"])
    assert (out / "vanilla" / "checkpoint.pt").exists()  # the network it tilted
    again = tmp_path / "again"
    assert main([*argv, "--out", str(again), "--checkpoint", str(out / "vanilla" / "checkpoint.pt")]) == 0
    assert json.loads((again / "selection.json").read_text())["components"] == rep["components"]


def test_selection_drops_an_unreachable_component_and_keeps_an_edge_constraint():
    """Three components on exact samples: the radius (informative, as above); an 'element' the model
    never makes (T = 0 on every model sample, 5 % of the data): the tilt cannot reach it, so it is
    dropped as unreachable instead of reported with a ridge-sized gain; and an 'excess' that is 0 on
    every data row and on 30 % of model samples: conditioning on the edge is a tilt with the finite
    gain −log 0.3, so it is kept."""
    g = torch.Generator().manual_seed(0)
    data = tilted_radius(5000, 1.5, g)
    model = torch.randn(4000, 2, generator=g, dtype=torch.float64)
    element_data = (torch.rand(5000, generator=g, dtype=torch.float64) < 0.05).double()
    excess_model = torch.where(
        torch.rand(4000, generator=g, dtype=torch.float64) < 0.3, 0.0, 1.0 + torch.rand(4000, generator=g)
    )

    def stats(x, element, excess):
        return torch.stack([x.norm(dim=1), element, excess], 1)

    data_t = stats(data, element_data, torch.zeros(5000, dtype=torch.float64))
    model_t = stats(model, torch.zeros(4000, dtype=torch.float64), excess_model.double())
    res = select(model_t, data_t[:3500], data_t[3500:], ["radius", "element", "excess"], SelectionOptions(n_boot=40))
    rows = {c["name"]: c for c in res.components}
    assert rows["element"]["decision"] == "drop" and rows["element"]["unreachable"], rows["element"]
    assert rows["element"]["held_out_gain"] is None and "cannot reach" in rows["element"]["reason"]
    assert res.kept == ["radius", "excess"] and abs(res.eta["radius"] - 1.5) < 0.25
    assert rows["excess"]["gap_after_sd"] < 0.05 and res.eta["excess"] < -5
    # the gain of the pair is the radius tilt's KL plus −log 0.3 for conditioning on zero excess
    alone = select(model_t[:, :1], data_t[:3500, :1], data_t[3500:, :1], ["radius"], SelectionOptions(n_boot=40))
    extra = res.summary["predicted_gain_nats"] - alone.summary["predicted_gain_nats"]
    assert -math.log(0.3) - 0.15 < extra <= -math.log(0.3) + 0.05, extra


def test_selection_drops_a_component_constant_everywhere():
    g = torch.Generator().manual_seed(1)
    model, data = torch.randn(500, 1, generator=g), 0.5 + torch.randn(600, 1, generator=g)
    res = select(torch.cat([model, torch.ones(500, 1)], 1), torch.cat([data, torch.ones(600, 1)], 1)[:400],
                 torch.cat([data, torch.ones(600, 1)], 1)[400:], ["x", "one"], SelectionOptions(n_boot=30))  # fmt: skip
    rows = {c["name"]: c for c in res.components}
    assert rows["one"]["decision"] == "drop" and "constant" in rows["one"]["reason"]
    assert res.kept == ["x"] and abs(res.eta["x"] - 0.5) < 0.2


def test_the_selection_eta_starts_the_calibration(tmp_path, capsys):
    """select-statistics writes the tilt's η as ``eta_start``; ``[hybrid] calibrate_start`` makes the
    calibration's round 0 measure there instead of at the model's η (0 for a frozen-η hybrid)."""
    sel = tmp_path / "sel"
    argv = ["select-statistics", "--statistic", "radius", "--steps", "200", "--set", "data.n=2000"]
    argv += ["--set", "sampler.n_samples=800", "--set", "sampler.steps_per_sigma=20", "--out", str(sel)]
    assert main(argv) == 0
    rep = json.loads((sel / "selection.json").read_text())
    start = rep["eta_start"]
    assert set(start) == {"radius"} and start["radius"] == pytest.approx(rep["eta"]["radius"])
    run = tmp_path / "run"
    argv = ["run", "--statistic", "radius", "--steps", "200", "--set", "data.n=2000", "--set", "train.eta_lr=0"]
    argv += ["--set", "sampler.n_samples=400", "--set", "sampler.steps_per_sigma=20", "--out", str(run)]
    argv += ["--set", f"hybrid.calibrate_start={rep['eta_start_toml']}", "--set", "hybrid.calibrate_rounds=1"]
    assert main(argv) == 0
    history = json.loads((run / "report.json").read_text())["training"]["eta_calibration"]
    assert history[0]["eta"]["radius"] == pytest.approx(start["radius"], rel=1e-6)
    capsys.readouterr()
    assert main([*argv[:-4], "--set", "hybrid.calibrate_start={nope = 1.0}", "--set", "hybrid.calibrate_rounds=1"]) == 2
    assert "calibrate_start names ['nope']" in capsys.readouterr().err
