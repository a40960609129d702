"""The Numenta Anomaly Benchmark (NAB) score, as numenta/NAB's scorer (`nab/scorer.py`) defines it.

Pure: rows are integer positions in a file, windows are inclusive ``(L, R)`` row pairs.
The threshold sweep is exact and vectorised: the raw score S(θ) of a corpus is a step
function of θ that only changes at the score values, so every candidate is evaluated by
one sort and one cumulative sum.

Examples
--------
>>> f = FileLabels(n_rows=100, windows=((50, 59),))
>>> hit_first = [0.0] * 100; hit_first[50] = 1.0
>>> s = raw_score([hit_first], [f], STANDARD, threshold=0.5)
>>> round(s, 6), normalised(s, [f], STANDARD)
(1.0, 100.0)
>>> normalised(raw_score([[0.0] * 100], [f], STANDARD, threshold=0.5), [f], STANDARD)
0.0
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from numpy.typing import ArrayLike, NDArray


@dataclass(frozen=True)
class Profile:
    """Weights of a NAB application profile."""

    name: str
    a_tp: float
    a_fn: float
    a_fp: float


STANDARD = Profile("standard", a_tp=1.0, a_fn=1.0, a_fp=0.11)
REWARD_LOW_FP = Profile("reward_low_FP", a_tp=1.0, a_fn=1.0, a_fp=0.22)
REWARD_LOW_FN = Profile("reward_low_FN", a_tp=1.0, a_fn=2.0, a_fp=0.11)
PROFILES: dict[str, Profile] = {p.name: p for p in (STANDARD, REWARD_LOW_FP, REWARD_LOW_FN)}


def probationary_rows(n_rows: int) -> int:
    """Rows at the start of a file that are not scored: ``min(floor(0.15 N), 750)``.

    Examples
    --------
    >>> probationary_rows(4032), probationary_rows(15902), probationary_rows(10)
    (604, 750, 1)
    """
    return min(math.floor(0.15 * n_rows), 750)


def scaled_sigmoid(y: ArrayLike) -> NDArray[np.float64]:
    """``2 / (1 + e^(5y)) - 1``: +1 far before, 0 at y = 0, -1 far after.

    Examples
    --------
    >>> [round(float(v), 4) for v in scaled_sigmoid([-1.0, 0.0, 1.0])]
    [0.9866, 0.0, -0.9866]
    """
    z = np.clip(5.0 * np.asarray(y, dtype=float), -700.0, 700.0)
    return np.asarray(2.0 / (1.0 + np.exp(z)) - 1.0)


@dataclass(frozen=True)
class FileLabels:
    """One file's length and its labelled windows (inclusive row ranges, sorted)."""

    n_rows: int
    windows: tuple[tuple[int, int], ...] = field(default=())

    @property
    def probation(self) -> int:
        """Number of unscored rows at the start."""
        return probationary_rows(self.n_rows)

    def window_of_row(self) -> NDArray[np.int64]:
        """Index of the window each row is in, or -1."""
        out = np.full(self.n_rows, -1, dtype=np.int64)
        for k, (lo, hi) in enumerate(self.windows):
            out[lo : hi + 1] = k
        return out

    def tp_weights(self, profile: Profile) -> NDArray[np.float64]:
        """Worth of a detection at each row inside a window (0 outside windows)."""
        w = np.zeros(self.n_rows)
        s1 = float(scaled_sigmoid(-1.0))
        for lo, hi in self.windows:
            width = hi - lo + 1
            i = np.arange(lo, hi + 1)
            w[lo : hi + 1] = profile.a_tp * scaled_sigmoid(-(hi - i + 1) / width) / s1
        return w

    def fp_weights(self, profile: Profile) -> NDArray[np.float64]:
        """Cost (<= 0) of a detection at each row outside the windows (0 inside)."""
        w = np.full(self.n_rows, -profile.a_fp)
        for k, (lo, hi) in enumerate(self.windows):
            w[lo : hi + 1] = 0.0
            end = self.windows[k + 1][0] if k + 1 < len(self.windows) else self.n_rows
            i = np.arange(hi + 1, end)
            y = (i - hi) / max(hi - lo, 1)  # (i - R') / (W' - 1); a 1-row window uses 1
            w[hi + 1 : end] = np.where(y > 3.0, -profile.a_fp, profile.a_fp * scaled_sigmoid(y))
        return w


@lru_cache(maxsize=512)
def _weights(labels: FileLabels, profile: Profile) -> tuple[NDArray[np.float64],
                                                             NDArray[np.float64]]:
    """(TP, FP) weights of a file, cached: a threshold sweep asks for them many times."""
    tp, fp = labels.tp_weights(profile), labels.fp_weights(profile)
    tp.flags.writeable = fp.flags.writeable = False
    return tp, fp


def score_detections(
    detected: ArrayLike, labels: FileLabels, profile: Profile = STANDARD
) -> float:
    """Raw NAB score of one file from a boolean detection per row.

    Examples
    --------
    >>> f = FileLabels(n_rows=40, windows=((20, 29),))
    >>> d = [False] * 40; d[10] = True       # FP before the window (after 6 probation rows)
    >>> score_detections(d, f)               # -A_FN - A_FP
    -1.11
    """
    d = np.asarray(detected, dtype=bool).copy()
    d[: labels.probation] = False
    tp_w, fp_w = _weights(labels, profile)
    total = float(fp_w[d].sum())
    for lo, hi in labels.windows:
        hits = np.flatnonzero(d[lo : hi + 1])
        total += float(tp_w[lo + hits[0]]) if hits.size else -profile.a_fn
    return total


def raw_score(
    scores: Sequence[ArrayLike],
    labels: Sequence[FileLabels],
    profile: Profile,
    threshold: float,
) -> float:
    """Raw score S(θ) of a corpus: a row is a detection when its score is >= θ."""
    return sum(
        score_detections(np.asarray(s, dtype=float) >= threshold, f, profile)
        for s, f in zip(scores, labels, strict=True)
    )


def null_score(labels: Sequence[FileLabels], profile: Profile) -> float:
    """S of the detector that detects nothing: ``-A_FN`` per window."""
    return -profile.a_fn * sum(len(f.windows) for f in labels)


def perfect_score(labels: Sequence[FileLabels], profile: Profile) -> float:
    """S of the detector that hits the first row of every window: ``A_TP`` per window."""
    return profile.a_tp * sum(len(f.windows) for f in labels)


def normalised(raw: float, labels: Sequence[FileLabels], profile: Profile) -> float:
    """``100 (S - S_null) / (S_perfect - S_null)``; 0 for a corpus without windows."""
    lo, hi = null_score(labels, profile), perfect_score(labels, profile)
    return 100.0 * (raw - lo) / (hi - lo) if hi > lo else 0.0


def _events(
    scores: ArrayLike, f: FileLabels, profile: Profile
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(value, ΔS) pairs: S(θ) = S_null + Σ ΔS over events with value >= θ."""
    s = np.asarray(scores, dtype=float).copy()
    s[: f.probation] = -np.inf
    win = f.window_of_row()
    outside = (win < 0) & np.isfinite(s)
    vals = [s[outside]]
    tp_w, fp_w = _weights(f, profile)
    deltas = [fp_w[outside]]
    for lo, hi in f.windows:
        seg = s[lo : hi + 1]
        if not np.isfinite(seg).any():
            continue
        # The earliest detection is the first prefix-maximum record at or above θ.
        pm = np.maximum.accumulate(seg)
        rec = np.flatnonzero(np.r_[True, pm[1:] > pm[:-1]] & np.isfinite(pm))
        w = tp_w[lo + rec]
        d = np.empty_like(w)
        d[-1] = w[-1] + profile.a_fn
        d[:-1] = w[:-1] - w[1:]
        vals.append(seg[rec])
        deltas.append(d)
    return np.concatenate(vals), np.concatenate(deltas)


@dataclass(frozen=True)
class Sweep:
    """Result of a threshold sweep: the best θ and its raw and normalised scores."""

    threshold: float
    raw: float
    score: float


def sweep(
    scores: Sequence[ArrayLike], labels: Sequence[FileLabels], profile: Profile
) -> Sweep:
    """The θ among the distinct score values (or +inf: detect nothing) maximising S.

    Ties go to the highest θ (fewest detections).

    Examples
    --------
    >>> f = FileLabels(n_rows=100, windows=((50, 59),))
    >>> s = [0.0] * 100; s[50] = 0.7; s[80] = 0.9
    >>> sweep([s], [f], STANDARD).threshold     # 0.9 would add an FP, 0.7 catches the window
    0.7
    """
    vs, ds = zip(*(_events(s, f, profile) for s, f in zip(scores, labels, strict=True)),
                 strict=True) if labels else ((), ())
    v = np.concatenate(vs) if vs else np.empty(0)
    d = np.concatenate(ds) if ds else np.empty(0)
    base = null_score(labels, profile)
    best = Sweep(math.inf, base, normalised(base, labels, profile))
    if v.size == 0:
        return best
    order = np.argsort(-v, kind="stable")
    v, d = v[order], d[order]
    cum = base + np.cumsum(d)
    last_of_value = np.r_[v[1:] != v[:-1], True]  # S(θ) at θ = v counts every event == v
    cand_v, cand_s = v[last_of_value], cum[last_of_value]
    k = int(np.argmax(cand_s))
    if cand_s[k] > base + 1e-12:
        best = Sweep(float(cand_v[k]), float(cand_s[k]),
                     normalised(float(cand_s[k]), labels, profile))
    return best
