"""The NAB scorer against the spec (the rules of numenta/NAB's scorer), with hand arithmetic."""

from __future__ import annotations

import math

import numpy as np
import pytest

from detectors import nab
from detectors.nab import PROFILES, STANDARD, FileLabels

# 100 rows: probation = min(floor(15.0), 750) = 15 rows. One window, rows 50..59 (W = 10).
ONE = FileLabels(n_rows=100, windows=((50, 59),))
# Two files, three windows in all.
TWO = [FileLabels(n_rows=200, windows=((40, 49), (120, 139))),
       FileLabels(n_rows=100, windows=((80, 89),))]


def sig(y: float) -> float:
    return 2.0 / (1.0 + math.exp(5.0 * y)) - 1.0


def spikes(n: int, rows: list[int], value: float = 1.0) -> np.ndarray:
    s = np.zeros(n)
    s[rows] = value
    return s


@pytest.mark.parametrize("profile", list(PROFILES.values()), ids=list(PROFILES))
def test_null_detector_scores_zero(profile: nab.Profile) -> None:
    zeros = [np.zeros(f.n_rows) for f in TWO]
    raw = nab.raw_score(zeros, TWO, profile, threshold=0.5)
    assert raw == -profile.a_fn * 3
    assert nab.normalised(raw, TWO, profile) == 0.0


@pytest.mark.parametrize("profile", list(PROFILES.values()), ids=list(PROFILES))
def test_first_row_of_every_window_scores_100(profile: nab.Profile) -> None:
    s = [spikes(200, [40, 120]), spikes(100, [80])]
    raw = nab.raw_score(s, TWO, profile, threshold=0.5)
    assert raw == pytest.approx(3 * profile.a_tp)
    assert nab.normalised(raw, TWO, profile) == pytest.approx(100.0)
    assert nab.sweep(s, TWO, profile).score == pytest.approx(100.0)


def test_probationary_rows_are_ignored() -> None:
    assert nab.probationary_rows(100) == 15 and nab.probationary_rows(10_000) == 750
    # A detection in row 14 (probation) is not an FP; row 15 is the first scored row.
    assert nab.score_detections(spikes(100, [14]) > 0, ONE) == -1.0
    assert nab.score_detections(spikes(100, [15]) > 0, ONE) == pytest.approx(-1.0 - 0.11)
    # A window inside the probation cannot be hit: it counts as missed.
    early = FileLabels(n_rows=100, windows=((5, 9),))
    assert nab.score_detections(spikes(100, [5]) > 0, early) == -1.0


def test_hand_computed_tp_in_window() -> None:
    # Detection at row 55 of window 50..59 (R = 59, W = 10): y = -(59 - 55 + 1)/10 = -0.5.
    # sig(-0.5) = 2/(1 + e^-2.5) - 1 = 2/1.082085 - 1 = 0.848284;
    # sig(-1)   = 2/(1 + e^-5)   - 1 = 2/1.006738 - 1 = 0.986614.
    # worth = 0.848284 / 0.986614 = 0.859793.
    got = nab.score_detections(spikes(100, [55]) > 0, ONE)
    assert got == pytest.approx(0.859793, abs=2e-6)
    assert got == pytest.approx(sig(-0.5) / sig(-1.0))
    # Best (earliest) detection counts only: rows 52 and 57 -> only 52 is scored,
    # y = -(59 - 52 + 1)/10 = -0.8, sig(-0.8) = 2/(1+e^-4) - 1 = 0.964028 -> 0.977108.
    assert nab.score_detections(spikes(100, [52, 57]) > 0, ONE) == pytest.approx(
        0.964028 / 0.986614, abs=1e-6)


def test_fp_before_first_window_costs_full_a_fp() -> None:
    # Row 20: before the window -> -A_FP; window missed -> -A_FN.
    for p in PROFILES.values():
        got = nab.score_detections(spikes(100, [20]) > 0, ONE, p)
        assert got == pytest.approx(-p.a_fp - p.a_fn)


def test_fp_right_after_window_costs_almost_nothing() -> None:
    # Hit at 50 (+1), FP at 60: y = (60 - 59)/(10 - 1) = 0.111111;
    # sig(0.111111) = 2/(1 + e^0.555556) - 1 = 2/2.742909 - 1 = -0.270849;
    # worth = 0.11 * -0.270849 = -0.029793.
    got = nab.score_detections(spikes(100, [50, 60]) > 0, ONE)
    assert got == pytest.approx(1.0 - 0.029793, abs=1e-6)
    # Far after (y = (95 - 59)/9 = 4 > 3): the full -A_FP.
    assert nab.score_detections(spikes(100, [50, 95]) > 0, ONE) == pytest.approx(1.0 - 0.11)


def test_hand_computed_small_corpus_and_normalisation() -> None:
    # File 1: hit window (40..49) at 45: y = -(49-45+1)/10 = -0.5 -> 0.859794 (above);
    #         miss window (120..139) -> -1; FP at 35 (before the first window) -> -0.11.
    # File 2: FP at 95, after window 80..89 (W = 10): y = (95 - 89)/9 = 0.666667,
    #         sig = 2/(1 + e^3.333333) - 1 = 2/29.03032 - 1 = -0.931107 -> 0.11 * that
    #         = -0.102422; window 80..89 missed -> -1.
    # S = 0.859794 - 1 - 0.11 - 0.102422 - 1 = -1.352628.
    # normalised = 100 (S + 3)/(3 + 3) = 27.4562.
    s = [spikes(200, [35, 45]), spikes(100, [95])]
    raw = nab.raw_score(s, TWO, STANDARD, threshold=0.5)
    assert raw == pytest.approx(-1.352628, abs=1e-5)
    assert nab.normalised(raw, TWO, STANDARD) == pytest.approx(27.4562, abs=1e-3)
    # reward_low_FN: A_FN = 2 -> S = 0.859794 - 2 - 0.11 - 0.102422 - 2 = -3.352628,
    # normalised = 100 (S + 6)/(3 + 6) = 29.4152.
    low_fn = PROFILES["reward_low_FN"]
    raw = nab.raw_score(s, TWO, low_fn, threshold=0.5)
    assert nab.normalised(raw, TWO, low_fn) == pytest.approx(29.4152, abs=1e-3)


def test_sweep_picks_the_maximum_and_matches_brute_force() -> None:
    rng = np.random.default_rng(0)
    scores = [rng.random(f.n_rows) ** 4 for f in TWO]
    scores[0][42] = scores[1][81] = 0.99
    for p in PROFILES.values():
        best = nab.sweep(scores, TWO, p)
        brute = max([-p.a_fn * 3] + [nab.raw_score(scores, TWO, p, float(t))
                                      for t in np.unique(np.concatenate(scores))])
        assert best.raw == pytest.approx(brute)
        assert nab.raw_score(scores, TWO, p, best.threshold) == pytest.approx(best.raw)


def test_sweep_of_null_detector_detects_nothing() -> None:
    best = nab.sweep([np.zeros(100)], [ONE], STANDARD)
    assert best.score == pytest.approx(0.0) or best.threshold == math.inf
