"""The sustained-deviation test: many readings a little off, for minutes, are a drift."""

from __future__ import annotations

import math

from detectors.state import SustainedState


class SustainedDeviation:
    """Fast and slow exponentially weighted means of the residual z, in event time.

    ``update(z, dt)`` moves both means toward z (clipped to ±6 σ, so one wild reading
    cannot carry them) by ``1 - exp(-dt / fast_s)`` and ``1 - exp(-dt / slow_s)`` of the
    way, ``dt`` being the seconds the reading stands for. The deviation is sustained
    (`holds`) when both means pass ``threshold`` on one side, the side of the reading's
    own z.

    Parameters
    ----------
    threshold
        Robust σ both means must pass (``drift_z``).
    slow_s, fast_s
        Time constants of the slow and the fast mean, in seconds of event time.

    Examples
    --------
    >>> sd = SustainedDeviation(threshold=2.0, slow_s=600.0, fast_s=60.0)
    >>> for _ in range(30):                  # a quarter of an hour at +3 σ, every 30 s
    ...     sd.update(3.0, 30.0)
    >>> sd.holds(3.0), sd.holds(-3.0), sd.leaning, round(sd.slow, 2)
    (True, False, True, 2.33)
    >>> sd.reset()
    >>> sd.holds(3.0), sd.state()
    (False, SustainedState(fast=0.0, slow=0.0))
    """

    def __init__(self, threshold: float = 2.0, slow_s: float = 600.0, fast_s: float = 60.0) -> None:
        self.threshold = threshold
        self.slow_s = slow_s
        self.fast_s = fast_s

    _s: SustainedState | None = None  # built on first use

    def _state(self) -> SustainedState:
        s = self._s
        if s is None:
            s = self._s = SustainedState()
        return s

    @property
    def slow(self) -> float:
        """The slow mean of z."""
        return self._state().slow

    @property
    def leaning(self) -> bool:
        """Whether the slow mean is past half the threshold (a drift may be starting)."""
        return abs(self._state().slow) >= self.threshold / 2

    def update(self, z: float, dt: float) -> None:
        """Feed one reading's z, standing for ``dt`` seconds."""
        s = self._state()
        zc = max(-6.0, min(6.0, z))
        s.fast += (1.0 - math.exp(-dt / self.fast_s)) * (zc - s.fast)
        s.slow += (1.0 - math.exp(-dt / self.slow_s)) * (zc - s.slow)

    def holds(self, z: float, threshold: float | None = None) -> bool:
        """Whether both means pass the threshold (``threshold``, default the part's) on one
        side, the side of ``z``."""
        s = self._state()
        th = self.threshold if threshold is None else threshold
        return (abs(s.slow) >= th and abs(s.fast) >= th and s.slow * s.fast > 0
                and s.slow * z > 0)

    def leans_with(self, z: float) -> bool:
        """Whether the slow mean alone passes the threshold on the side of ``z``."""
        slow = self._state().slow
        return slow * z > 0 and abs(slow) >= self.threshold

    def reset(self) -> None:
        """Forget the means (the level they measured against has changed)."""
        self._s = SustainedState()

    def state(self) -> SustainedState:
        """The means as data (the live struct: encode it, do not keep it)."""
        return self._state()

    def load(self, state: SustainedState) -> None:
        """Take the state `state` gave."""
        self._s = state

    def __repr__(self) -> str:
        return (f"SustainedDeviation(threshold={self.threshold!r}, slow_s={self.slow_s!r}, "
                f"fast_s={self.fast_s!r})")
