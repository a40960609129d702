"""Point-wise metrics, F1 sweep, hold and halves, on hand examples."""

from __future__ import annotations

import numpy as np
import pytest

from detectors.evaluation import (
    best_f1_threshold,
    hold,
    pointwise_metrics,
    run_detector,
    split_halves,
)
from detectors.online import RobustZScore


def test_pooled_f1_far_mar_by_hand() -> None:
    # Two files pooled: file 1 predicted [1,1,0,0], actual [1,0,0,1];
    #                   file 2 predicted [1,0,0],   actual [1,1,0].
    # TP = 1 + 1 = 2, FP = 1 + 0 = 1, FN = 1 + 1 = 2, TN = 1 + 1 = 2.
    # F1 = 2*2/(2*2 + 1 + 2) = 4/7; FAR = 1/(1 + 2) = 1/3; MAR = 2/(2 + 2) = 1/2.
    m = pointwise_metrics(np.r_[[1, 1, 0, 0], [1, 0, 0]], np.r_[[1, 0, 0, 1], [1, 1, 0]])
    assert (m.tp, m.fp, m.fn, m.tn) == (2, 1, 2, 2)
    assert m.f1 == pytest.approx(4 / 7)
    assert m.far == pytest.approx(1 / 3)
    assert m.mar == pytest.approx(1 / 2)
    assert m.precision == pytest.approx(2 / 3) and m.recall == pytest.approx(1 / 2)


def test_empty_and_degenerate_metrics() -> None:
    m = pointwise_metrics([0, 0], [0, 0])
    assert (m.f1, m.far, m.mar) == (0.0, 0.0, 0.0)


def test_best_f1_threshold_matches_brute_force() -> None:
    rng = np.random.default_rng(1)
    y = rng.random(300) < 0.3
    s = np.round(rng.random(300) * 0.6 + 0.4 * y, 2)
    got = best_f1_threshold(s, y)
    brute = max(pointwise_metrics(s >= t, y).f1 for t in np.unique(s))
    assert got.metrics.f1 == pytest.approx(brute)
    assert pointwise_metrics(s >= got.threshold, y).f1 == pytest.approx(brute)


def test_hold_fires_on_first_crossing_then_waits() -> None:
    s = [0.0, 0.9, 0.9, 0.9, 0.9, 0.0, 0.9]
    assert hold(s, 0.5, rows=2).astype(int).tolist() == [0, 1, 0, 0, 1, 0, 0]
    assert hold(s, 0.5, rows=0).astype(int).tolist() == [0, 1, 1, 1, 1, 0, 1]


def test_run_detector_scores_before_learning() -> None:
    # The first row can't be anomalous for a fresh detector: scored before it is learned.
    s = run_detector(RobustZScore("v"), [{"v": 100.0}, {"v": 100.0}, {"v": 0.0}], train=1)
    assert s[0] == 0.0 and s[1] == pytest.approx(0.0) and s[2] > 0.9


def test_split_halves_is_disjoint_and_balanced() -> None:
    names = [f"{c}/{i}" for c in "abc" for i in range(5)]
    a, b = split_halves(names, group=lambda n: n[0])
    assert set(a) | set(b) == set(names) and not set(a) & set(b)
    assert abs(len(a) - len(b)) <= 1
