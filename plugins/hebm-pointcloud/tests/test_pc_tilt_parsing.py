"""benchmarks/tilt_statistics.py: how a --try names its statistics."""

import pytest
from _pcutil import load_benchmark


def _module():
    return load_benchmark("tilt_statistics")


def test_try_parsing_and_labels():
    mod = _module()
    assert mod.parse_try("laplacian_shape, size") == ["laplacian_shape", "size"]
    items = mod.parse_try('[{"name": "laplacian", "k": 8}, "spacing"]')
    assert items == [{"name": "laplacian", "k": 8}, "spacing"]
    assert mod.label(items) == "laplacian_k8+spacing"
    for bad in (" , ", "[]"):
        with pytest.raises(ValueError, match="--try"):
            mod.parse_try(bad)
