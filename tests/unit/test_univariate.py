"""The univariate (and the T²) detectors: behaviour beyond the common contract."""

from __future__ import annotations

import math
import pickle
import random

from detectors.evaluation import run_detector
from detectors.univariate import AnomalyLikelihood, HotellingT2


def test_likelihood_flags_a_level_shift_after_warmup() -> None:
    rnd = random.Random(0)
    xs = [{"value": 10 + rnd.gauss(0, 1)} for _ in range(800)]
    xs += [{"value": 16 + rnd.gauss(0, 1)} for _ in range(50)]
    s = run_detector(AnomalyLikelihood(), xs)
    assert s[:100].max() == 0.0  # warmup
    assert s[800:850].max() > 0.5 > s[300:800].max()


def test_likelihood_seasonal_term_catches_a_missing_daily_peak() -> None:
    # 5-minute rows, a daily peak at noon; on day 5 the peak is missing.
    def day(k: int, peak: bool) -> list[dict[str, float]]:
        return [{"value": 1.0 + (20.0 if peak and 140 <= i < 150 else 0.0) + 0.01 * (i % 3),
                 "t": (288 * k + i) * 300.0} for i in range(288)]

    xs = [x for k in range(5) for x in day(k, True)] + day(5, False)
    with_period = run_detector(AnomalyLikelihood(period=86400.0), xs)
    without = run_detector(AnomalyLikelihood(), xs)
    noon = slice(288 * 5 + 140, 288 * 5 + 160)
    assert with_period[noon].max() > 0.3 > 0.05 > without[noon].max()


def test_likelihood_ignores_missing_values() -> None:
    det = AnomalyLikelihood()
    det.learn_one({"other": 1.0})
    assert det.score_one({"value": math.nan}) == 0.0


def test_t2_is_frozen_after_fit_rows_and_pickles() -> None:
    rnd = random.Random(1)
    det = HotellingT2(("a", "b"), fit_rows=100, smooth_half_life=0)
    for _ in range(100):
        a = rnd.gauss(0, 1)
        det.learn_one({"a": a, "b": a + rnd.gauss(0, 0.1)})
    before = det.t2({"a": 1.0, "b": -1.0})
    det.learn_one({"a": 50.0, "b": -50.0})  # past fit_rows: the model does not move
    assert det.t2({"a": 1.0, "b": -1.0}) == before > 50  # breaks the correlation
    clone = pickle.loads(pickle.dumps(det))  # noqa: S301
    assert clone.score_one({"a": 1.0, "b": 1.0}) == det.score_one({"a": 1.0, "b": 1.0})
