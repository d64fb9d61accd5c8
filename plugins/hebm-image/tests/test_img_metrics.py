"""Sample quality: the Fréchet distance's known answers, the cached classifier and the FID metric's sanity."""

import pytest
import torch
from hebm_image.data import digits
from hebm_image.metrics import frechet_distance, sample_quality, train_classifier


def _features(n=2000, d=8, seed=0, shift=0.0, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=torch.float64) * scale + shift


def test_identical_sets_are_at_distance_zero_and_different_ones_are_not():
    a = _features()
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    assert frechet_distance(a, _features(seed=1)) < 0.05  # the same law: only sampling noise
    assert frechet_distance(a, _features(seed=1, shift=1.0)) > 1.0


def test_mean_shift_and_scale_give_the_closed_form():
    """Same covariance I, means 0.5 apart in each of 8 dims: FID = 8·0.25; covariances I and 4I: 8·(1+4−2·2)."""
    a, b = _features(20000), _features(20000, seed=1, shift=0.5)
    assert frechet_distance(a, b) == pytest.approx(2.0, rel=0.05)
    assert frechet_distance(a, _features(20000, seed=1, scale=2.0)) == pytest.approx(8.0, rel=0.05)


@pytest.fixture(scope="module")
def bundle():
    return digits(seed=0)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("classifier_cache")


def test_classifier_is_trained_once_then_read_from_its_cache(bundle, cache):
    net, info = train_classifier(bundle, epochs=1, cache=cache)
    assert not info["from_cache"] and info["test_accuracy_pct"] > 60
    again, info2 = train_classifier(bundle, epochs=1, cache=cache)
    assert info2["from_cache"] and info2["cache_file"] == info["cache_file"]
    assert info2["test_accuracy_pct"] == pytest.approx(info["test_accuracy_pct"])
    x = bundle.test[:16]
    with torch.no_grad():
        assert torch.allclose(net(x), again(x), atol=1e-6)


def test_fid_metric_is_near_its_floor_on_data_and_large_on_noise(bundle, cache):
    """The test images themselves score 0; training images score far better than uniform noise (FID is
    biased upwards at 359 images in 128-D, and the classifier is more confident on images it trained on)."""

    def score(samples):
        m = sample_quality([], bundle, epochs=1, cache_dir=str(cache))
        m.update(samples)
        return m.compute()

    assert score(bundle.test)["fid"] == pytest.approx(0.0, abs=1e-3)  # FID ~ 100 for noise
    on_train = score(bundle.train[:359])
    noise = score(torch.rand(359, 1, 8, 8, generator=torch.Generator().manual_seed(0)))
    assert on_train["fid"] > 0 and on_train["fid_train_test"] > 0
    assert noise["fid"] > 5 * max(on_train["fid"], on_train["fid_train_test"])
    assert on_train["classifier/agreement_pct"] > 80 and on_train["classifier/test_accuracy_pct"] > 80
    assert noise["classifier/class_tv_pct"] > on_train["classifier/class_tv_pct"]
    m = sample_quality([], bundle, epochs=1, cache_dir=str(cache))
    m.update(bundle.test[:1])
    with pytest.raises(ValueError, match="at least 2 samples"):
        m.compute()
