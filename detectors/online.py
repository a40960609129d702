"""Online detectors: River's HalfSpaceTrees on scaled inputs, and a robust z-score.

Both follow `detectors.base.AnomalyDetector`: scores in [0, 1], high = anomalous.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from river import anomaly

from detectors.base import AnomalyDetector, Features


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

    @property
    def _model(self) -> anomaly.HalfSpaceTrees:
        model = self.__dict__.get("_hst")
        if model is None:
            model = anomaly.HalfSpaceTrees(
                n_trees=self.n_trees, height=self.height, window_size=self.window_size,
                seed=self.seed,
            )
            self.__dict__["_hst"] = model
        return model

    def _scale(self, x: Features) -> dict[str, float]:
        out = {}
        for name, (lo, hi) in self.limits.items():
            v = x.get(name)
            if v is None:
                continue
            out[name] = min(1.0, max(0.0, (v - lo) / (hi - lo)))
        return out

    def learn_one(self, x: Features) -> None:  # noqa: D102
        self._model.learn_one(self._scale(x))

    def score_one(self, x: Features) -> float:  # noqa: D102
        return float(self._model.score_one(self._scale(x)))


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

    def _state(self) -> list[float]:
        # [n, mean, mad]; a list so that pickling is trivial.
        return self.__dict__.setdefault("_s", [0.0, 0.0, 0.0])  # type: ignore[no-any-return]

    def z(self, x: Features) -> float:
        """Signed deviation of ``x`` from the mean, in robust standard deviations."""
        n, mean, mad = self._state()
        v = x.get(self.feature)
        if v is None or n == 0:
            return 0.0
        sigma = 1.2533 * max(mad, self.min_mad)  # mean abs deviation -> sigma (Gaussian)
        return (v - mean) / sigma

    def expected(self) -> float | None:
        """The current mean, or None before any data."""
        n, mean, _ = self._state()
        return mean if n else None

    def learn_one(self, x: Features) -> None:  # noqa: D102
        v = x.get(self.feature)
        if v is None:
            return
        s = self._state()
        n, mean, mad = s
        if n == 0:
            s[:] = [1.0, v, 0.0]
            return
        # Early on weigh like a plain mean, later like an EW mean with the given half-life.
        alpha = max(1.0 - 0.5 ** (1.0 / self.half_life), 1.0 / (n + 1.0))
        mad += alpha * (abs(v - mean) - mad)
        mean += alpha * (v - mean)
        s[:] = [n + 1.0, mean, mad]

    def score_one(self, x: Features) -> float:  # noqa: D102
        return math.tanh(abs(self.z(x)) / self.scale)


class ExpectedPower:
    """Expected power from production and weather: recursive least squares with forgetting.

    ``power ≈ θ · [1, throughput, max(0, 15 °C - T), max(0, T - 18 °C)]`` (base load, load per
    unit of throughput, heating and cooling degree terms with fixed, generic balance points),
    refitted online. Meter noise grows with load, so residuals are taken relative to the
    prediction (``(y - ŷ) / max(ŷ, floor)``) and scaled by their own exponentially weighted
    mean absolute deviation. ``leverage`` tells whether the drivers lie where the model has seen data: a
    machine's first production shift is new, not anomalous.

    Not an `AnomalyDetector`: it gives the expected value, the robust residual z and the
    leverage that `MachineScorer` combines with the detector's score.

    Parameters
    ----------
    forgetting
        RLS forgetting factor λ; memory of about 1 / (1 - λ) readings.
    half_life
        Half-life of the residual scale, in readings.
    floor
        Smallest denominator of a relative residual, in kW (a few % of rated power).

    Examples
    --------
    >>> m = ExpectedPower()
    >>> for i in range(300):
    ...     u = 100.0 * (i % 2)                  # alternating idle / producing
    ...     m.learn_one({"throughput_units_per_hour": u}, 5.0 + 0.2 * u + (i % 3) * 0.1)
    >>> round(m.predict({"throughput_units_per_hour": 100.0}), 1)
    25.1
    >>> m.z({"throughput_units_per_hour": 0.0}, 25.0) > 10
    True
    """

    def __init__(
        self, forgetting: float = 0.9995, half_life: float = 200.0, floor: float = 1.0
    ) -> None:
        self.forgetting = forgetting
        self.half_life = half_life
        self.floor = floor

    def _relative(self, y: float, yhat: float) -> float:
        return (y - yhat) / max(abs(yhat), self.floor)

    @staticmethod
    def features(x: Features) -> list[float]:
        """The regressors of a reading's drivers."""
        u = x.get("throughput_units_per_hour") or 0.0
        t = x.get("outdoor_temp_c")
        hdd = max(0.0, 15.0 - t) if t is not None else 0.0
        cdd = max(0.0, t - 18.0) if t is not None else 0.0
        return [1.0, u, hdd, cdd]

    def _state(self) -> dict[str, object]:
        import numpy as np

        s = self.__dict__.get("_s")
        if s is None:
            s = {"theta": np.zeros(4), "P": np.eye(4) * 1e4, "n": 0, "mad": 0.0}
            self.__dict__["_s"] = s
        return s

    def predict(self, x: Features) -> float:
        """Expected power for these drivers (0 before any data; never below 0)."""
        import numpy as np

        s = self._state()
        return max(0.0, float(np.dot(s["theta"], self.features(x))))  # type: ignore[arg-type]

    def leverage(self, x: Features) -> float:
        """In [0, 1): near 1 where the model has no data (a new operating state)."""
        import numpy as np

        s = self._state()
        phi = np.asarray(self.features(x))
        q = float(phi @ s["P"] @ phi)  # type: ignore[operator]
        return q / (1.0 + q)

    def z(self, x: Features, y: float) -> float:
        """Residual of ``y`` in robust standard deviations (0 before any data)."""
        s = self._state()
        if not s["n"]:
            return 0.0
        sigma = 1.2533 * max(float(s["mad"]), 1e-3)  # type: ignore[arg-type]
        return self._relative(y, self.predict(x)) / sigma

    def learn_one(self, x: Features, y: float) -> None:
        """One RLS step, and the residual scale."""
        import numpy as np

        s = self._state()
        phi = np.asarray(self.features(x))
        P, theta, lam = s["P"], s["theta"], self.forgetting
        yhat = float(theta @ phi)  # type: ignore[operator]
        err = y - yhat
        n = int(s["n"])  # type: ignore[call-overload]
        if n:
            alpha = max(1.0 - 0.5 ** (1.0 / self.half_life), 1.0 / (n + 1.0))
            rel = abs(self._relative(y, yhat))
            s["mad"] = float(s["mad"]) + alpha * (rel - float(s["mad"]))  # type: ignore[arg-type]
        Pphi = P @ phi  # type: ignore[operator]
        k = Pphi / (lam + phi @ Pphi)
        s["theta"] = theta + k * err  # type: ignore[operator]
        s["P"] = (P - np.outer(k, Pphi)) / lam  # type: ignore[operator]
        s["n"] = n + 1
