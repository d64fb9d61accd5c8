"""Metrics in the torchmetrics style: ``update`` with batches of samples, ``compute`` a dict of floats."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from hebm_core import tree
from hebm_core.data import DataBundle
from hebm_core.options import check_int, check_number
from hebm_core.statistics import Statistic
from hebm_core.tree import Sample

__all__ = ["Metric", "StatisticGap", "GaussianMMD", "delta_t", "CORE_METRICS"]


class Metric(ABC):
    """Accumulate with :meth:`update` (generated samples, optionally reference data), read with :meth:`compute`."""

    name = "metric"

    @abstractmethod
    def update(self, samples: Sample, reference: Sample | None = None) -> None: ...

    @abstractmethod
    def compute(self) -> dict[str, float]: ...

    def reset(self) -> None:
        self.__init__()  # subclasses keep constructor arguments on self


class StatisticGap(Metric):
    """ΔT = |E_model[T] − E_data[T]| per statistic (mean over components), and the two expectations.

    ``train`` (optional, e.g. the training split when the reference is the test split) adds
    ``delta_t_train/<name>`` and ``train_t/<name>``: the gap to the data η was fitted on. With a
    small test split the two data means differ, and that difference bounds the test-side ΔT of
    a model that matches the training data exactly.

    Standard errors (mean over components; each side needs two or more clouds): ``data_t_se/<name>``
    of the reference mean, and ``delta_t_se/<name>`` of the difference of the two means
    (``delta_t_train_se/<name>`` likewise against the training data). A ΔT
    within about one ``delta_t_se`` of 0 is not resolved by this many samples and references; the
    reference side of it is common to every model scored against the same reference.
    """

    name = "delta_t"

    def __init__(self, statistics: Sequence[Statistic], train: Sample | None = None, chunk: int = 1024) -> None:
        self.statistics = list(statistics)
        self.train, self.chunk = train, int(chunk)
        self._counts = {"model": 0, "data": 0, "train": 0}
        self._acc = {"model": {}, "data": {}, "train": {}}
        self._acc2 = {"model": {}, "data": {}, "train": {}}  # sums of squares, for the standard errors

    def _add(self, which: str, x: Sample) -> None:
        with torch.no_grad():
            for s in self.statistics:
                t = s(x).double()
                acc, acc2 = self._acc[which], self._acc2[which]
                acc[s.name] = acc.get(s.name, 0) + t.sum(0).cpu()
                acc2[s.name] = acc2.get(s.name, 0) + t.pow(2).sum(0).cpu()
        self._counts[which] += tree.batch_size(x)

    def _sq_se(self, which: str, name: str) -> Tensor | None:
        """Squared standard error of one side's mean, per component (None below two clouds)."""
        n = self._counts[which]
        if n < 2:
            return None
        mean = self._acc[which][name] / n
        var = ((self._acc2[which][name] - n * mean.pow(2)) / (n - 1)).clamp_min(0)
        return var / n

    def update(self, samples: Sample, reference: Sample | None = None) -> None:
        self._add("model", samples)
        if reference is not None:
            self._add("data", reference)

    def compute(self) -> dict[str, float]:
        if not self._counts["model"] or not self._counts["data"]:
            raise RuntimeError("StatisticGap needs both generated samples and reference data")
        if self.train is not None and not self._counts["train"]:
            n = tree.batch_size(self.train)
            for i in range(0, n, self.chunk):
                self._add("train", tree.index(self.train, slice(i, min(i + self.chunk, n))))
        out: dict[str, float] = {}
        for s in self.statistics:
            m = self._acc["model"][s.name] / self._counts["model"]
            d = self._acc["data"][s.name] / self._counts["data"]
            out[f"delta_t/{s.name}"] = float((m - d).abs().mean())
            out[f"model_t/{s.name}"] = float(m.mean())
            out[f"data_t/{s.name}"] = float(d.mean())
            se_m, se_d = self._sq_se("model", s.name), self._sq_se("data", s.name)
            if se_d is not None:
                out[f"data_t_se/{s.name}"] = float(se_d.sqrt().mean())
            if se_m is not None and se_d is not None:
                out[f"delta_t_se/{s.name}"] = float((se_m + se_d).sqrt().mean())
            if self._counts["train"]:
                t = self._acc["train"][s.name] / self._counts["train"]
                out[f"delta_t_train/{s.name}"] = float((m - t).abs().mean())
                out[f"train_t/{s.name}"] = float(t.mean())
                se_t = self._sq_se("train", s.name)
                if se_m is not None and se_t is not None:
                    out[f"delta_t_train_se/{s.name}"] = float((se_m + se_t).sqrt().mean())
        return out

    def reset(self) -> None:
        self.__init__(self.statistics, self.train, self.chunk)


class GaussianMMD(Metric):
    """Squared MMD with a Gaussian kernel between flat samples and reference (unbiased estimator).

    ``bandwidth=None`` uses the median pairwise distance of the pooled points. At most
    ``max_points`` of each side are used (the kernel matrix is ``(2·max_points)²`` doubles).
    """

    name = "mmd"

    def __init__(self, bandwidth: float | None = None, max_points: int = 2000) -> None:
        if bandwidth is not None:
            check_number("mmd", "bandwidth", bandwidth, 0, open_low=True)
        self.bandwidth, self.max_points = bandwidth, check_int("mmd", "max_points", max_points, 2, 100_000)
        self._x: list[Tensor] = []
        self._y: list[Tensor] = []

    def update(self, samples: Tensor, reference: Tensor | None = None) -> None:
        self._x.append(samples.detach().flatten(1).double().cpu())
        if reference is not None:
            self._y.append(reference.detach().flatten(1).double().cpu())

    def compute(self) -> dict[str, float]:
        x = torch.cat(self._x)[: self.max_points]
        y = torch.cat(self._y)[: self.max_points]
        if len(x) < 2 or len(y) < 2:
            raise ValueError(f"MMD needs at least 2 samples and 2 reference points, got {len(x)} and {len(y)}")
        z = torch.cat([x, y])
        d2 = torch.cdist(z, z).pow(2)
        h = self.bandwidth
        if h is None:
            h = float(d2[d2 > 0].median().sqrt())
        k = torch.exp(-d2 / (2 * h * h))
        n, m = x.shape[0], y.shape[0]
        kxx, kyy, kxy = k[:n, :n], k[n:, n:], k[:n, n:]
        mmd = (
            (kxx.sum() - kxx.diag().sum()) / (n * (n - 1))
            + (kyy.sum() - kyy.diag().sum()) / (m * (m - 1))
            - 2 * kxy.mean()
        )
        return {"mmd": float(mmd), "mmd_bandwidth": h}

    def reset(self) -> None:
        self.__init__(self.bandwidth, self.max_points)


def delta_t(statistics: list[Statistic], bundle: DataBundle, max_train: int = 10000, chunk: int = 1024) -> Metric:
    """ΔT per statistic against the reference split, and (when the data has a test split) against
    up to ``max_train`` training samples, the data η is fitted on."""
    train = bundle.training_subset(max_train) if bundle.test is not None else None
    return StatisticGap(statistics, train=train, chunk=chunk)


#: metrics every plugin has (the core's ΔT); a run always computes ``delta_t``
CORE_METRICS: dict[str, Callable[..., Metric]] = {"delta_t": delta_t}
