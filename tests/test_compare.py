"""``hebm compare --seeds``: the per-seed summary (means, paired difference, direction of "better"),
finished seeds read back, and ``--folds`` giving each seed its own held-out fold."""

import json

import pytest

from hebm_core.cli import main
from hebm_core.runs import comparison as compare_module
from hebm_core.runs import summarise


def test_summary_means_paired_difference_and_direction():
    per_seed = {
        0: {
            "metrics": {
                "pointflow/mmd_cd": {"vanilla": 1.0, "hybrid": 0.8},
                "pointflow/cov_cd_pct": {"vanilla": 20.0, "hybrid": 30.0},
                "pointflow/cd_time_s": {"vanilla": 1.0, "hybrid": 2.0},
                "pointflow/class_pct/chair": {"vanilla": 20.0, "hybrid": 30.0},
                "pointflow/class_tv_pct": {"vanilla": 30.0, "hybrid": 20.0},
            }
        },
        1: {
            "metrics": {
                "pointflow/mmd_cd": {"vanilla": 1.2, "hybrid": 1.4},
                "pointflow/cov_cd_pct": {"vanilla": 40.0, "hybrid": 30.0},
            }
        },
        2: {
            "metrics": {
                "pointflow/mmd_cd": {"vanilla": 1.1, "hybrid": 0.9},
                "pointflow/cov_cd_pct": {"vanilla": 30.0, "hybrid": 30.0},
            }
        },
    }
    s = summarise(per_seed)
    assert "pointflow/cd_time_s" not in s  # bookkeeping, not a quality metric
    assert "pointflow/class_pct/chair" not in s  # a class's share is better neither way; its distance is
    assert not s["pointflow/class_tv_pct"]["higher_is_better"] and s["pointflow/class_tv_pct"]["seeds"] == 1
    mmd, cov = s["pointflow/mmd_cd"], s["pointflow/cov_cd_pct"]
    assert not mmd["higher_is_better"] and cov["higher_is_better"]
    assert mmd["vanilla_mean"] == pytest.approx(1.1) and mmd["hybrid_mean"] == pytest.approx(3.1 / 3)
    # paired differences −0.2, +0.2, −0.2: mean −0.2/3, sd 0.2309, se sd/√3
    assert mmd["diff_mean"] == pytest.approx(-0.2 / 3)
    assert mmd["diff_se"] == pytest.approx(0.23094 / 3**0.5, rel=1e-4)
    assert mmd["seeds_hybrid_no_worse"] == 2 and mmd["seeds"] == 3
    assert cov["seeds_hybrid_no_worse"] == 2  # 30 ≥ 20 and 30 ≥ 30, not 30 ≥ 40


def test_resume_reads_finished_seeds_without_running_them(tmp_path, monkeypatch, capsys):
    for seed, (v, h) in {0: (1.0, 0.8), 3: (1.2, 1.4)}.items():
        folder = tmp_path / f"seed{seed}"
        folder.mkdir()
        metrics = {
            "pointflow/mmd_cd": {"vanilla": v, "hybrid": h},
            "delta_t_se/laplacian": {"vanilla": 0.1, "hybrid": 0.2},  # an error bar, not a metric
        }
        done = {"config": {"seed": seed}, "eta": {"t": -seed}, "delta_t": {}, "metrics": metrics, "training": {}}
        (folder / "compare.json").write_text(json.dumps(done))

    def refuse(*args, **kwargs):
        raise AssertionError("a finished seed must not run again")

    monkeypatch.setattr(compare_module, "compare", refuse)
    assert main(["compare", "--seeds", "0", "3", "--resume", "--out", str(tmp_path)]) == 0
    rep = json.loads((tmp_path / "compare_seeds.json").read_text())
    assert rep["seeds"] == [0, 3] and rep["eta"] == {"0": {"t": 0}, "3": {"t": -3}}
    assert set(rep["summary"]) == {"pointflow/mmd_cd"}
    assert rep["summary"]["pointflow/mmd_cd"]["hybrid_mean"] == pytest.approx(1.1)
    assert rep["summary"]["pointflow/mmd_cd"]["seeds_hybrid_no_worse"] == 1
    assert "pointflow/mmd_cd" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="must not run again"):  # seed 1 is not finished
        main(["compare", "--seeds", "0", "1", "--resume", "--out", str(tmp_path)])


def test_folds_give_each_seed_its_own_held_out_fold(tmp_path, monkeypatch):
    """``--folds``: seed S runs with data.fold = S on top of the user's own --set values."""
    seen = {}

    def fake_compare(cfg, out, registry=None, resume=False):
        seen[cfg.train.seed] = (cfg.data.options.get("fold"), cfg.train.steps)
        metrics = {"pointflow/mmd_cd": {"vanilla": 1.0, "hybrid": 0.9}}
        return {"config": cfg.to_dict(), "eta": {}, "delta_t": {}, "metrics": metrics, "training": {}}

    monkeypatch.setattr(compare_module, "compare", fake_compare)
    argv = ["compare", "--plugin", "toy", "--set", "train.steps=7", "--seeds", "0", "2", "--out", str(tmp_path)]
    assert main([*argv, "--folds"]) == 0
    assert seen == {0: (0, 7), 2: (2, 7)}
    assert json.loads((tmp_path / "compare_seeds.json").read_text())["folds"] == {"0": 0, "2": 2}
    seen.clear()
    assert main(argv) == 0
    assert seen == {0: (None, 7), 2: (None, 7)}


def test_folds_without_seeds_is_one_line_error(capsys):
    assert main(["compare", "--folds"]) == 2
    assert capsys.readouterr().err.strip() == "hebm: error: --folds needs --seeds (seed S holds out fold S)"
