"""Online detectors: the residual against expected power, River's HalfSpaceTrees on scaled
inputs, and a robust z-score.

All follow `detectors.base.AnomalyDetector`: scores in [0, 1], high = anomalous.
"""

from __future__ import annotations

import math
import struct
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from river import anomaly

from detectors.base import MAX_VALUE, AnomalyDetector, Features
from detectors.state import (
    DetectorState,
    ExpectedPowerState,
    ExplainedState,
    HSTState,
    ResidualState,
    StateMismatch,
    ZScoreState,
)

Vector = npt.NDArray[np.floating[Any]]


class HalfSpaceTreesDetector(AnomalyDetector):
    """River `HalfSpaceTrees` with fixed feature ranges, so every input is scaled to [0, 1].

    HalfSpaceTrees assumes its inputs lie in [0, 1]; values are clipped into ``limits`` and
    scaled there. Fixed limits (from the machine's rated power) rather than a running
    min-max scaler, because a running scaler moves the very space the trees partition.

    The reference window is counted in readings. Choose it to span a few hours of one
    machine's data (`streams` does: ``window_seconds / interval``), so a shift change is a
    visited region and not an anomaly. The defaults (10 trees of height 8) cost about 17 µs a
    score+learn; 25 trees of height 15 stall 120-140 ms at each window pivot (measured).

    Parameters
    ----------
    limits
        ``{feature: (low, high)}``; features not listed are ignored.
    n_trees, height, window_size
        Passed to River.
    seed
        Random seed of the trees.

    Examples
    --------
    >>> det = HalfSpaceTreesDetector(limits={"p": (0.0, 100.0)}, window_size=50, seed=1)
    >>> for i in range(200):
    ...     det.learn_one({"p": 40.0 + (i % 5)})
    >>> det.score_one({"p": 95.0}) > det.score_one({"p": 42.0})
    True
    """

    def __init__(
        self,
        limits: Mapping[str, tuple[float, float]],
        n_trees: int = 10,
        height: int = 8,
        window_size: int = 250,
        seed: int = 42,
    ) -> None:
        self.limits = dict(limits)
        self.n_trees = n_trees
        self.height = height
        self.window_size = window_size
        self.seed = seed

    _hst: anomaly.HalfSpaceTrees | None = None  # River's model, built on first use

    @property
    def _model(self) -> anomaly.HalfSpaceTrees:
        model = self._hst
        if model is None:
            model = self._hst = anomaly.HalfSpaceTrees(
                n_trees=self.n_trees, height=self.height, window_size=self.window_size,
                seed=self.seed,
            )
        return model

    #: The trees' nodes in state order and their thresholds' CRC, once River has built them.
    _flat: tuple[anomaly.HalfSpaceTrees, list[Any], int] | None = None

    def _index(self) -> tuple[list[Any], int]:
        m = self._model
        flat = self._flat
        if flat is None or flat[0] is not m or not flat[1]:
            nodes = _nodes(m)
            flat = self._flat = (m, nodes, _thresholds_crc(nodes))
        return flat[1], flat[2]

    def _scale(self, x: Features) -> dict[str, float]:
        out = {}
        for name, (lo, hi) in self.limits.items():
            v = x.get(name)
            if v is None:
                continue
            out[name] = min(1.0, max(0.0, (v - lo) / (hi - lo)))
        return out

    def learn_one(self, x: Features) -> None:
        """Learn one observation (scaled into its limits)."""
        self._model.learn_one(self._scale(x))  # type: ignore[no-untyped-call]  # River is untyped here

    def score_one(self, x: Features) -> float:
        """Anomaly score in [0, 1] (0 until the first reference window is full)."""
        return float(self._model.score_one(self._scale(x)))  # type: ignore[no-untyped-call]  # River

    def state(self) -> HSTState:
        """The detector's state as data: River's node masses (`detectors.state.HSTState`).

        Examples
        --------
        >>> det = HalfSpaceTreesDetector(limits={"p": (0.0, 100.0)}, n_trees=2, height=2,
        ...                              window_size=3, seed=1)
        >>> for i in range(4):
        ...     det.learn_one({"p": 40.0 + i})
        >>> s = det.state()
        >>> s.features, s.counter, s.first_window, len(s.l_mass)  # 2 trees of 7 nodes
        (['p'], 1, False, 14)
        >>> clone = HalfSpaceTreesDetector(limits={"p": (0.0, 100.0)}, n_trees=2, height=2,
        ...                                window_size=3, seed=1)
        >>> clone.load(s)
        >>> clone.score_one({"p": 90.0}) == det.score_one({"p": 90.0})
        True
        """
        m = self._model
        nodes, check = self._index()
        return HSTState(
            n_trees=self.n_trees, height=self.height, window_size=self.window_size,
            seed=self.seed, features=sorted(m.limits), check=check,
            counter=m.counter, first_window=m._first_window,  # noqa: SLF001 - River's flag
            l_mass=[node.l_mass for node in nodes], r_mass=[node.r_mass for node in nodes])

    def load(self, state: HSTState | ZScoreState) -> None:
        """Take a state from `state` (of a detector with the same parameters).

        River builds the trees again from the seed; `StateMismatch` when the state is of
        another detector, other parameters, or trees this River does not build.
        """
        params = (self.n_trees, self.height, self.window_size, self.seed)
        if not isinstance(state, HSTState) or params != (
                state.n_trees, state.height, state.window_size, state.seed):
            msg = f"{_name(state)} does not fit {self!r}"
            raise StateMismatch(msg)
        self._hst = None
        m = self._model
        if state.features:  # the trees exist: build them as River did, on those features
            m.learn_one(dict.fromkeys(state.features, 0.0))  # type: ignore[no-untyped-call]  # River
        nodes, check = self._index()
        if (len(nodes) != len(state.l_mass) or len(nodes) != len(state.r_mass)
                or check != state.check):
            msg = "the stored masses are not of the trees this River builds from the seed"
            raise StateMismatch(msg)
        for node, left, right in zip(nodes, state.l_mass, state.r_mass, strict=True):
            node.l_mass, node.r_mass = left, right
        m.counter = state.counter
        m._first_window = state.first_window  # noqa: SLF001 - River keeps it private


def _nodes(model: anomaly.HalfSpaceTrees) -> list[Any]:
    """Every node of the trees, tree after tree, each depth first (River's pivot order)."""
    return [node for tree in model.trees
            for node in tree.iter_dfs()]  # type: ignore[no-untyped-call]  # River is untyped


def _thresholds_crc(nodes: list[Any]) -> int:
    """CRC-32 of the split thresholds, in node order (0 before the trees exist)."""
    thresholds = [float(t) for node in nodes if (t := getattr(node, "threshold", None)) is not None]
    return zlib.crc32(struct.pack(f"<{len(thresholds)}d", *thresholds)) if thresholds else 0


def _name(state: object) -> str:
    return f"a {type(state).__name__}"


class RobustZScore(AnomalyDetector):
    """Exponentially weighted robust z-score of one feature, squashed to [0, 1].

    Keeps an EW mean and an EW mean absolute deviation (MAD), so one outlier moves neither
    much. ``score = tanh(|z| / scale)``: with scale 6, z = 3 gives 0.46, z = 6 gives 0.76 and
    z = 12 gives 0.96.

    Parameters
    ----------
    feature
        Name of the feature scored.
    half_life
        Half-life of the weights, in observations.
    scale
        z at which the score reaches tanh(1) = 0.76.
    min_mad
        Floor of the MAD, in feature units, so a flat signal does not divide by zero.

    Examples
    --------
    >>> det = RobustZScore("v", half_life=20)
    >>> for v in [10.0, 10.2, 9.9] * 20:
    ...     det.learn_one({"v": v})
    >>> det.score_one({"v": 30.0}) > 0.9 > det.score_one({"v": 10.1})
    True
    """

    def __init__(
        self, feature: str, half_life: float = 200.0, scale: float = 6.0, min_mad: float = 1e-6
    ) -> None:
        self.feature = feature
        self.half_life = half_life
        self.scale = scale
        self.min_mad = min_mad

    _s: ZScoreState | None = None  # built on first use

    def _state(self) -> ZScoreState:
        s = self._s
        if s is None:
            s = self._s = ZScoreState()
        return s

    def z(self, x: Features) -> float:
        """Signed deviation of ``x`` from the mean, in robust standard deviations."""
        s = self._state()
        v = x.get(self.feature)
        if v is None or s.n == 0:
            return 0.0
        sigma = 1.2533 * max(s.mad, self.min_mad)  # mean abs deviation -> sigma (Gaussian)
        return (v - s.mean) / sigma

    def learn_one(self, x: Features) -> None:
        """Learn one value (a NaN, or a value past `MAX_VALUE`, is left out)."""
        v = x.get(self.feature)
        if v is None or not math.isfinite(v) or abs(v) > MAX_VALUE:  # its square must stay finite
            return
        s = self._state()
        n, mean, mad = s.n, s.mean, s.mad
        if n == 0:
            s.n, s.mean, s.mad = 1.0, v, 0.0
            return
        # Early on weigh like a plain mean, later like an EW mean with the given half-life.
        alpha = max(1.0 - 0.5 ** (1.0 / self.half_life), 1.0 / (n + 1.0))
        mad += alpha * (abs(v - mean) - mad)
        mean += alpha * (v - mean)
        s.n, s.mean, s.mad = n + 1.0, mean, mad

    def score_one(self, x: Features) -> float:
        """``tanh(|z| / scale)``."""
        return math.tanh(abs(self.z(x)) / self.scale)

    def state(self) -> ZScoreState:
        """The detector's state as data (the live struct: encode it, do not keep it).

        Examples
        --------
        >>> det = RobustZScore("v")
        >>> for v in (1.0, 2.0, 3.0):
        ...     det.learn_one({"v": v})
        >>> det.state()
        ZScoreState(n=3.0, mean=2.0, mad=0.833...)
        """
        return self._state()

    def load(self, state: HSTState | ZScoreState) -> None:
        """Take the state `state` gave (`StateMismatch` for another detector's)."""
        if not isinstance(state, ZScoreState):
            msg = f"{_name(state)} does not fit {self!r}"
            raise StateMismatch(msg)
        self._s = state


#: Balance points (deg C) of the heating and cooling hinge terms. A machine's own balance
#: point is unknown online, so a few fixed hinges span it (a piecewise-linear curve).
HEAT_BALANCES_C = (8.0, 12.0, 16.0)
COOL_BALANCES_C = (16.0, 20.0, 24.0)
#: Relative ridge per regressor. While the weather stays on one side of a hinge, the hinges
#: are collinear and the ridge decides how a slope is split between them: the inner hinges
#: are penalised 100 times more, so the slope goes to the widest one (16 °C) and carries on
#: when the temperature crosses an inner balance point, as a degree-day model would. Small
#: enough that a fraction of a percent of the data past a kink moves the slope to its hinge
#: (at 10^-3 it took 5 % and a mild Sunday was flagged as a drift).
_RIDGE = np.array([1e-7, 1e-7, *([1e-5] * (len(HEAT_BALANCES_C) - 1)), 1e-7,
                   1e-7, *([1e-5] * (len(COOL_BALANCES_C) - 1)), 1e-7])
#: What each regressor stands for, for explanations ("base 3.1 kW + production 7.0 kW").
#: The last regressor is 1 while a machine that reports production reports none: its
#: standby load is its own level, not the intercept of its load line (fitted on shifts only,
#: that intercept put a conveyor's idle at 1.0 kW instead of 1.5, and ten idle readings
#: could not move it against hours of production: every idle reading was "off shift").
TERMS = ("base", "production", *("heating",) * len(HEAT_BALANCES_C),
         *("cooling",) * len(COOL_BALANCES_C), "base")


#: Readings of a machine idle (or producing) that are learned, not judged, before that state
#: is known: a fast meter's model extrapolated from hours of one shift does not know the
#: machine's idle power, whatever its leverage says. Few, so that a fault that begins soon
#: after (lights left on minutes after the first shift ends) is not learned as the state.
NEW_STATE_READINGS = 10


class ExpectedPower:
    """Expected power from production and weather: least squares with a memory in event time.

    ``power ≈ θ · [1, throughput, max(0, b - T) for b in 8/12/16 °C, max(0, T - b) for b in
    16/20/24 °C]``: base load, load per unit of throughput, and heating and cooling hinges
    at a few balance points (a piecewise-linear degree-day curve; the machine's own balance
    point need not be known). The weighted sums ``A = Σ w φφᵀ``, ``b = Σ w φ y`` decay with
    a half-life in *event time* (default two days), and ``θ`` is re-solved at most once a
    minute of event time.

    Why a memory in time and not a forgetting factor per reading: a per-reading factor
    forgets a 1-second machine's production coefficient within one quiet night, and plain
    RLS forgetting then "winds up" in the directions a weekend does not excite, so Monday's
    first shift is predicted wildly (measured here: hundreds of false critical anomalies a
    week). Two days of memory keep Friday's production in view on Monday morning while
    still following a slow change.

    Meter noise grows with load, so residuals are relative to the prediction
    (``(y - ŷ) / max(ŷ, floor)``) and scaled by their exponentially weighted mean absolute
    deviation. ``leverage`` tells whether the drivers lie where the model has seen data: a
    machine's first production shift, or a temperature it has not met, is new, not
    anomalous.

    Parameters
    ----------
    half_life_s
        Half-life of the least-squares memory, in seconds of event time (used when the
        caller passes ``t``; without it nothing is forgotten).
    scale_half_life_s
        Half-life of the residual scale, in seconds of event time (readings without ``t``
        count as 30 s). Long on purpose: a scale that follows a slow drift hides it.
    floor
        Smallest denominator of a relative residual, in kW (a few % of rated power).
    resolve_s
        Event time between two solves of ``θ`` (the first 50 readings, and a reading whose
        drivers are new to the last solve, solve at once).

    Examples
    --------
    >>> m = ExpectedPower()
    >>> for i in range(300):
    ...     u = 50.0 * (i % 3)                   # idle, half and full production
    ...     m.learn_one({"throughput_units_per_hour": u}, 5.0 + 0.2 * u + (i // 3 % 2) * 0.2,
    ...                 t=30.0 * i)
    >>> round(m.predict({"throughput_units_per_hour": 100.0}), 1)
    25.1
    >>> m.z({"throughput_units_per_hour": 0.0}, 25.0) > 10
    True
    >>> {k: round(v, 1) for k, v in m.contributions({"throughput_units_per_hour": 100.0}).items()}
    {'production': 20.0, 'base': 5.1}
    """

    def __init__(self, half_life_s: float = 2 * 86_400.0, scale_half_life_s: float = 6 * 3600.0,
                 floor: float = 1.0, resolve_s: float = 60.0) -> None:
        self.half_life_s = half_life_s
        self.scale_half_life_s = scale_half_life_s
        self.floor = floor
        self.resolve_s = resolve_s

    def _relative(self, y: float, yhat: float) -> float:
        return (y - yhat) / max(abs(yhat), self.floor)

    @staticmethod
    def features(x: Features) -> list[float]:
        """The regressors of a reading's drivers."""
        reported = x.get("throughput_units_per_hour")
        u = reported or 0.0
        idle = 1.0 if reported is not None and u <= 0.0 else 0.0
        t = x.get("outdoor_temp_c")
        if t is None:
            return [1.0, u, *(0.0 for _ in HEAT_BALANCES_C), *(0.0 for _ in COOL_BALANCES_C),
                    idle]
        return [1.0, u, *(max(0.0, b - t) for b in HEAT_BALANCES_C),
                *(max(0.0, t - b) for b in COOL_BALANCES_C), idle]

    _s: _Fit | None = None  # built on first use

    def _state(self) -> _Fit:
        s = self._s
        if s is None:
            d = len(TERMS)
            s = self._s = _Fit(A=np.zeros((d, d)), b=np.zeros(d), theta=np.zeros(d),
                               inv=np.eye(d) * 1e6)
        return s

    def predict(self, x: Features) -> float:
        """Expected power for these drivers (0 before any data; never below 0)."""
        return max(0.0, float(np.dot(self._state().theta, self.features(x))))

    def contributions(self, x: Features) -> dict[str, float]:
        """The expected power split by term (kW), largest terms first; zero terms left out."""
        parts: dict[str, float] = {}
        for name, c in zip(TERMS, self._state().theta * self.features(x), strict=True):
            parts[name] = parts.get(name, 0.0) + float(c)
        return dict(sorted(((k, v) for k, v in parts.items() if abs(v) > 1e-9),
                           key=lambda kv: -abs(kv[1])))

    def _q(self, phi: Vector) -> float:
        """``φᵀ A⁻¹ φ`` at the last solve: about 1 / (readings seen like this one)."""
        return float(phi @ self._state().inv @ phi)

    def novel(self, x: Features) -> bool:
        """Whether a regressor of ``x`` lies outside the range of every reading learned so
        far (idle after a first shift, a colder day than any yet). The leverage alone does
        not say it for a fast meter: after 18,000 readings of one shift, an extrapolation
        to idle has a leverage of 0.07, yet the model has never seen the machine idle."""
        s = self._state()
        if not s.lo:
            return s.n == 0  # (a state written before the range was kept: no range test)
        if self.new_state(x):
            return True  # idle, or producing, for the first minutes ever: still learning it
        for i, (v, lo, hi) in enumerate(zip(self.features(x), s.lo, s.hi, strict=True)):
            margin = 0.05 * (hi - lo) + 1e-9
            if i == 1:  # throughput: a tenth more than the most yet is the same state
                margin = max(margin, 0.1 * hi)
            if v < lo - margin or v > hi + margin:
                return True
        return False

    def new_state(self, x: Features) -> bool:
        """Whether ``x`` is idle (or producing) and the model has learned fewer than
        `NEW_STATE_READINGS` readings of the machine so."""
        s = self._state()
        seen = s.idle_seen if self.features(x)[1] <= 0 else s.busy_seen
        return seen < NEW_STATE_READINGS

    def leverage(self, x: Features) -> float:
        """In [0, 1): near 1 where the model has no data (a new operating state)."""
        q = self._q(np.asarray(self.features(x)))
        return q / (1.0 + q)

    def z(self, x: Features, y: float) -> float:
        """Residual of ``y`` in robust standard deviations (0 before any data)."""
        return self.z_of(y, self.predict(x))

    def z_of(self, y: float, expected: float) -> float:
        """`z` for an already computed ``expected = predict(x)``."""
        s = self._state()
        if not s.n:
            return 0.0
        sigma = 1.2533 * max(s.mad, 1e-3)
        return self._relative(y, expected) / sigma

    @property
    def refused(self) -> int:
        """Readings not learned because they would have made the model NaN or infinite."""
        return self._state().refused

    def learn_one(self, x: Features, y: float, t: float | None = None, w: float = 1.0) -> None:
        """Add one reading (``t``: its event time in seconds; ``w``: its weight) and update
        the residual scale.

        A reading that could make the model's sums or scale NaN or infinite (a value past
        `detectors.base.MAX_VALUE`, or a NaN) is refused and counted in
        `refused`; the model stays as it was. Below that bound every product and sum stays
        finite, so the check costs a few comparisons, not a pass over the matrices.
        """
        s = self._state()
        features = self.features(x)
        if not (-MAX_VALUE < y < MAX_VALUE and 0.0 <= w <= 1.0
                and all(-MAX_VALUE < v < MAX_VALUE for v in features)):
            s.refused += 1
            return
        phi = np.asarray(features)
        n = s.n
        mad = float(s.mad)
        if n:
            # At most 5 min per reading: a gap in the data is no evidence about the noise.
            dt = 30.0 if t is None or s.t is None else min(max(0.0, t - s.t), 300.0)
            alpha = max(1.0 - 0.5 ** (dt / self.scale_half_life_s), 1.0 / (n + 1.0))
            rel = abs(self._relative(y, float(s.theta @ phi)))
            mad += w * alpha * (rel - mad)
        if not math.isfinite(mad):
            s.refused += 1
            return
        s.mad = mad
        if t is not None and s.t is not None and t > s.t:
            decay = 0.5 ** ((t - s.t) / self.half_life_s)
            s.A *= decay
            s.b *= decay
        s.A += w * np.outer(phi, phi)
        s.b += (w * y) * phi
        extended = False
        if w > 0:  # a reading past the range solves at once: the next one is judged by it
            extended = not s.lo or any(
                v < lo or v > hi for v, lo, hi in zip(features, s.lo, s.hi, strict=True))
            if phi[1] <= 0:
                s.idle_seen += 1
            else:
                s.busy_seen += 1
            if extended:
                s.lo = list(features) if not s.lo else [
                    min(a, v) for a, v in zip(s.lo, features, strict=True)]
                s.hi = list(features) if not s.hi else [
                    max(a, v) for a, v in zip(s.hi, features, strict=True)]
        if t is not None:
            s.t = t if s.t is None else max(t, s.t)
        s.n = n + 1
        s.since += 1
        new_region = self._q(phi) > 0.05  # drivers the last solve did not know
        due = (n < 50 or new_region or extended or (t is None and s.since >= 50)
               or (t is not None and (s.t_solved is None or t - s.t_solved >= self.resolve_s)))
        if due:
            self._solve(s, t)

    @staticmethod
    def _solve(s: _Fit, t: float | None) -> None:
        # A relative ridge: a regressor never seen (a hinge the weather has not reached) keeps
        # θ = 0 and a huge leverage; collinear hinges stay solvable.
        # The leverage uses the bare data (a tiny ridge): the split-deciding ridge is a prior,
        # and counting it as data would call a temperature past a kink well known.
        a, diag = s.A, np.diag(s.A)
        try:
            theta = np.linalg.solve(a + np.diag(_RIDGE * diag + 1e-9), s.b)
            inv = np.linalg.inv(a + np.diag(1e-7 * diag + 1e-9))
        except np.linalg.LinAlgError:
            pass  # keep the last good solve
        else:
            if np.isfinite(theta).all() and np.isfinite(inv).all():
                s.theta, s.inv = theta, inv  # else keep the last good solve
        s.t_solved = s.t if t is not None else None
        s.since = 0

    def forget(self, keep: float = 0.01) -> None:
        """Keep only ``keep`` of the memory: a lasting change becomes the new normal quickly."""
        s = self._state()
        s.A *= keep
        s.b *= keep
        s.t_solved = None  # solve again at the next reading

    def state(self) -> ExpectedPowerState:
        """The model's state as data: matrices row by row as lists of floats (exact).

        Examples
        --------
        >>> m = ExpectedPower()
        >>> m.learn_one({"throughput_units_per_hour": 10.0}, 7.0, t=0.0)
        >>> s = m.state()
        >>> len(s.a), s.n, s.t
        (81, 1, 0.0)
        >>> clone = ExpectedPower()
        >>> clone.load(s)
        >>> clone.predict({"throughput_units_per_hour": 10.0}) == m.predict(
        ...     {"throughput_units_per_hour": 10.0})
        True
        """
        s = self._state()
        return ExpectedPowerState(
            a=s.A.ravel().tolist(), b=s.b.tolist(), theta=s.theta.tolist(),
            inv=s.inv.ravel().tolist(), n=s.n, mad=s.mad, t=s.t, t_solved=s.t_solved,
            since=s.since, refused=s.refused, lo=list(s.lo), hi=list(s.hi),
            idle_seen=s.idle_seen, busy_seen=s.busy_seen)

    def load(self, state: ExpectedPowerState) -> None:
        """Take the state `state` gave (`StateMismatch` when its sizes are not this model's)."""
        d = len(TERMS)
        k = len(state.b)  # a state written before the idle term has one term less
        if not (len(state.a) == len(state.inv) == k * k and len(state.theta) == k
                and k in (d, d - 1)):
            msg = f"an expected-power state of another size (this model has {d} terms)"
            raise StateMismatch(msg)
        a, inv = np.zeros((d, d)), np.eye(d) * 1e6
        a[:k, :k] = np.array(state.a).reshape(k, k)
        inv[:k, :k] = np.array(state.inv).reshape(k, k)
        b, theta = np.zeros(d), np.zeros(d)
        b[:k], theta[:k] = state.b, state.theta
        lo, hi = list(state.lo), list(state.hi)
        if lo and k < d:  # the idle term of the old readings is not known: no range for it
            lo, hi = [*lo, 0.0], [*hi, 1.0]
        self._s = _Fit(
            A=a, b=b, theta=theta, inv=inv, n=state.n, mad=state.mad, t=state.t,
            t_solved=state.t_solved, since=state.since, refused=state.refused,
            lo=lo, hi=hi, idle_seen=state.idle_seen,
            busy_seen=state.busy_seen)


@dataclass(slots=True)
class _Fit:
    """`ExpectedPower`'s sums and last solve (`ExpectedPowerState` as arrays)."""

    A: Vector  # the matrix of the normal equations
    b: Vector
    theta: Vector
    inv: Vector
    n: int = 0
    mad: float = 0.0
    t: float | None = None
    t_solved: float | None = None
    since: int = 0
    refused: int = 0
    lo: list[float] = field(default_factory=list)  # the range of the regressors learned
    hi: list[float] = field(default_factory=list)
    idle_seen: int = 0  # idle readings learned
    busy_seen: int = 0  # producing readings learned


class _WithExpectedPower:
    """The `ExpectedPower` model a detector scores against, built on first use with the
    detector's ``floor``."""

    floor: float
    _model: ExpectedPower | None = None

    @property
    def model(self) -> ExpectedPower:
        """The expected-power model (for the score, z, the expected value, explanations)."""
        model = self._model
        if model is None:
            model = self._model = ExpectedPower(floor=self.floor)
        return model


class ResidualDetector(_WithExpectedPower, AnomalyDetector):
    """How far a reading is from the power its drivers explain (`ExpectedPower`).

    ``x`` carries the target (``power_kw``), the drivers (throughput, outdoor temperature)
    and optionally ``t``, the event time in seconds (the model's memory is in event time).
    The score is the robust residual z squashed to [0, 1]: ``tanh(|z| · atanh(0.9) / z90)``,
    so ``z90`` robust σ (default 6) scores 0.9, 3 σ about 0.6 and 10 σ 0.98.

    Why 6 σ and not the usual 3 or 4: a plant of eight machines sends about 200,000 readings
    a day, and a Gaussian meter noise passes 5 σ about once a week at that rate (measured on
    the simulator: one false alarm a week), 6 σ once in centuries. Faults worth an alarm are
    far beyond it; slow ones are the drift test's job (`detectors.scoring`).

    Parameters
    ----------
    target
        The feature whose deviation is scored.
    z90
        Robust σ that scores 0.9 (the default threshold).
    floor
        Passed to `ExpectedPower` (kW; a few % of rated power).

    Examples
    --------
    >>> det = ResidualDetector()
    >>> for i in range(400):
    ...     u = 600.0 * (i // 50 % 2)
    ...     det.learn_one({"power_kw": 4.0 + 0.03 * u + 0.1 * (i % 3),
    ...                    "throughput_units_per_hour": u, "t": 30.0 * i})
    >>> det.score_one({"power_kw": 22.1, "throughput_units_per_hour": 600.0}) < 0.5
    True
    >>> det.score_one({"power_kw": 22.1, "throughput_units_per_hour": 0.0}) > 0.9
    True
    """

    def __init__(self, target: str = "power_kw", z90: float = 6.0, floor: float = 1.0) -> None:
        self.target = target
        self.z90 = z90
        self.floor = floor


    def z(self, x: Features) -> float:
        """Signed residual of the target in robust σ (0 when the target is missing)."""
        y = x.get(self.target)
        return 0.0 if y is None else self.model.z(x, y)

    def learn_one(self, x: Features, w: float = 1.0) -> None:
        """Learn one observation, with weight ``w`` (River's sample-weight convention)."""
        y = x.get(self.target)
        if y is not None:
            self.model.learn_one(x, y, x.get("t"), w)

    def score_one(self, x: Features) -> float:
        """``tanh(|z| · atanh(0.9) / z90)``."""
        return math.tanh(abs(self.z(x)) * math.atanh(0.9) / self.z90)

    def state(self) -> ResidualState:
        """The detector's state as data: its model's (`ExpectedPower.state`)."""
        return ResidualState(model=self.model.state())

    def load(self, state: DetectorState) -> None:
        """Take the state `state` gave (`StateMismatch` for another detector's)."""
        if not isinstance(state, ResidualState):
            msg = f"{_name(state)} does not fit {self!r}"
            raise StateMismatch(msg)
        self.model.load(state.model)


class Explained(_WithExpectedPower, AnomalyDetector):
    """A detector with an expected-power model beside it, which explains what it scores.

    The detector scores; the model (`ExpectedPower`) gives the power expected for the
    drivers, the residual z and the explanation. ``learn_one(x, w)`` teaches the model with
    weight ``w`` and the detector in full (HalfSpaceTrees and the z-score take no weight).
    `ResidualDetector` needs no such companion: its model is what it scores.

    Parameters
    ----------
    detector
        The detector that scores (`HalfSpaceTreesDetector` or `RobustZScore`).
    target
        The feature the model predicts.
    floor
        Passed to `ExpectedPower` (kW; a few % of rated power).

    Examples
    --------
    >>> det = Explained(RobustZScore("power_kw"), floor=1.0)
    >>> for i in range(100):
    ...     det.learn_one({"power_kw": 10.0 + 0.1 * (i % 3), "t": 30.0 * i})
    >>> round(det.model.predict({}), 1), det.score_one({"power_kw": 30.0}) > 0.9
    (10.1, True)
    """

    def __init__(self, detector: HalfSpaceTreesDetector | RobustZScore,
                 target: str = "power_kw", floor: float = 1.0) -> None:
        self.detector = detector
        self.target = target
        self.floor = floor


    def learn_one(self, x: Features, w: float = 1.0) -> None:
        """Teach the detector ``x`` and the model ``x`` with weight ``w``."""
        self.detector.learn_one(x)
        y = x.get(self.target)
        if y is not None:
            self.model.learn_one(x, y, x.get("t"), w)

    def score_one(self, x: Features) -> float:
        """The detector's score."""
        return self.detector.score_one(x)

    def state(self) -> ExplainedState:
        """The detector's and the model's state as data."""
        return ExplainedState(detector=self.detector.state(), model=self.model.state())

    def load(self, state: DetectorState) -> None:
        """Take the state `state` gave (`StateMismatch` for another detector's)."""
        if not isinstance(state, ExplainedState):
            msg = f"{_name(state)} does not fit {self!r}"
            raise StateMismatch(msg)
        self.detector.load(state.detector)
        self.model.load(state.model)
