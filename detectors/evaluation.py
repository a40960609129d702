"""Pure evaluation helpers: running a detector over a series, point-wise metrics (SKAB),
threshold sweeps and splitting a corpus in two halves for frozen-threshold scores.

Examples
--------
>>> m = pointwise_metrics([1, 1, 0, 0, 1], [1, 0, 0, 1, 1])
>>> round(m.f1, 4), round(m.far, 4), round(m.mar, 4)
(0.6667, 0.5, 0.3333)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from detectors.base import AnomalyDetector


def run_detector(
    det: AnomalyDetector,
    xs: Iterable[Mapping[str, float]],
    *,
    train: int = 0,
) -> NDArray[np.float64]:
    """Scores of one online pass: score each row, then learn it (one pass, no look-ahead).

    The first ``train`` rows are only learned (their score is reported as 0).

    Examples
    --------
    >>> from detectors.online import RobustZScore
    >>> s = run_detector(RobustZScore("v", half_life=5), [{"v": v} for v in [1, 1, 1, 1, 9]])
    >>> int(s.argmax())
    4
    """
    out = []
    for i, x in enumerate(xs):
        out.append(det.score_one(x) if i >= train else 0.0)
        det.learn_one(x)
    return np.asarray(out, dtype=float)


@dataclass(frozen=True)
class PointwiseMetrics:
    """Confusion counts and point-wise F1, false alarm rate and missed alarm rate."""

    tp: int
    fp: int
    fn: int
    tn: int

    @property
    def precision(self) -> float:
        """TP / (TP + FP) (0 when nothing is flagged)."""
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        """TP / (TP + FN) (0 when nothing is anomalous)."""
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        """2 TP / (2 TP + FP + FN)."""
        d = 2 * self.tp + self.fp + self.fn
        return 2 * self.tp / d if d else 0.0

    @property
    def far(self) -> float:
        """False alarm rate FP / (FP + TN)."""
        return self.fp / (self.fp + self.tn) if self.fp + self.tn else 0.0

    @property
    def mar(self) -> float:
        """Missed alarm rate FN / (FN + TP)."""
        return self.fn / (self.fn + self.tp) if self.fn + self.tp else 0.0


def pointwise_metrics(predicted: ArrayLike, actual: ArrayLike) -> PointwiseMetrics:
    """Point-wise metrics of boolean predictions against boolean labels (pooled rows)."""
    p = np.asarray(predicted, dtype=bool)
    a = np.asarray(actual, dtype=bool)
    return PointwiseMetrics(
        tp=int((p & a).sum()), fp=int((p & ~a).sum()),
        fn=int((~p & a).sum()), tn=int((~p & ~a).sum()),
    )


@dataclass(frozen=True)
class F1Sweep:
    """The threshold maximising the pooled F1, and the metrics at it."""

    threshold: float
    metrics: PointwiseMetrics


def best_f1_threshold(scores: ArrayLike, actual: ArrayLike) -> F1Sweep:
    """Sweep the distinct score values (a row is flagged when score >= θ); maximise F1.

    Examples
    --------
    >>> r = best_f1_threshold([0.1, 0.9, 0.8, 0.3, 0.7], [0, 1, 1, 0, 0])
    >>> r.threshold, r.metrics.f1
    (0.8, 1.0)
    """
    s = np.asarray(scores, dtype=float)
    a = np.asarray(actual, dtype=bool)
    if s.size == 0:
        return F1Sweep(math.inf, pointwise_metrics([], []))
    order = np.argsort(-s, kind="stable")
    sv, av = s[order], a[order]
    tp = np.cumsum(av)
    fp = np.cumsum(~av)
    last = np.r_[sv[1:] != sv[:-1], True]
    tp, fp, th = tp[last], fp[last], sv[last]
    pos = int(a.sum())
    f1 = 2 * tp / np.maximum(tp + pos + fp, 1)  # 2TP / (2TP + FP + FN), FN = pos - TP
    k = int(np.argmax(f1))
    return F1Sweep(float(th[k]), pointwise_metrics(s >= th[k], a))


def hold(scores: ArrayLike, threshold: float, rows: int) -> NDArray[np.bool_]:
    """Alerts that fire at the first crossing of θ and then stay quiet for ``rows`` rows.

    Causal (each alert depends only on earlier rows), so it is an online post-processing.

    Examples
    --------
    >>> hold([0, 1, 1, 1, 0, 1, 1], threshold=0.5, rows=3).astype(int).tolist()
    [0, 1, 0, 0, 0, 1, 0]
    """
    s = np.asarray(scores, dtype=float)
    out = np.zeros(s.size, dtype=bool)
    quiet_until = -1
    for i in np.flatnonzero(s >= threshold):
        if i > quiet_until:
            out[i] = True
            quiet_until = int(i) + rows
    return out


def split_halves(names: Sequence[str], group: Callable[[str], str] | None = None
                 ) -> tuple[list[str], list[str]]:
    """Two halves of a corpus, alternating within each group (e.g. NAB category), sorted.

    Examples
    --------
    >>> split_halves(["a/1", "a/2", "b/1", "b/2", "b/3"], group=lambda n: n.split("/")[0])
    (['a/1', 'b/1', 'b/3'], ['a/2', 'b/2'])
    """
    key = group or (lambda _n: "")
    a: list[str] = []
    b: list[str] = []
    groups: dict[str, list[str]] = {}
    for n in sorted(names):
        groups.setdefault(key(n), []).append(n)
    flip = 0
    for g in sorted(groups):
        for n in groups[g]:
            (a if flip % 2 == 0 else b).append(n)
            flip += 1
    return sorted(a), sorted(b)
