"""Drift of a baseline's residuals: a two-sided tabular CUSUM with a decision interval."""

from __future__ import annotations

from detectors.state import CusumState


class TabularCusum:
    """Two-sided tabular CUSUM (Montgomery) on standardised residuals.

    ``S⁺ = max(0, S⁺ + z − k)``, ``S⁻ = max(0, S⁻ − z − k)``; an alarm when either exceeds
    ``h``. With k = 0.5 and h = 5 (in standard deviations) a lasting shift of one standard
    deviation is found after about 10 observations on average, with about one false alarm
    in 465 observations when nothing changed.

    Parameters
    ----------
    k
        Allowance (half the shift to detect), in standard deviations.
    h
        Decision interval, in standard deviations.

    Examples
    --------
    >>> c = TabularCusum()
    >>> [c.update(0.1) for _ in range(50)].count(True)
    0
    >>> alarms = [c.update(2.0) for _ in range(5)]
    >>> alarms.index(True), c.direction
    (3, 'up')
    """

    def __init__(self, k: float = 0.5, h: float = 5.0) -> None:
        self.k = k
        self.h = h

    _s: CusumState | None = None  # built on first use

    def _state(self) -> CusumState:
        s = self._s
        if s is None:
            s = self._s = CusumState()
        return s

    @property
    def s_hi(self) -> float:
        """The upper sum ``S⁺``."""
        return self._state().s_hi

    @property
    def s_lo(self) -> float:
        """The lower sum ``S⁻``."""
        return self._state().s_lo

    @property
    def n(self) -> int:
        """Residuals added since the last reset."""
        return self._state().n

    @property
    def direction(self) -> str | None:
        """``up`` or ``down`` after an alarm, else None."""
        return self._state().direction

    def reset(self) -> None:
        """Start again (after an alarm, or for a new model)."""
        self._s = CusumState()

    def update(self, z: float) -> bool:
        """Add one standardised residual; True on an alarm."""
        s = self._state()
        s.n += 1
        s.s_hi = max(0.0, s.s_hi + z - self.k)
        s.s_lo = max(0.0, s.s_lo - z - self.k)
        if s.s_hi > self.h:
            s.direction = "up"
            return True
        if s.s_lo > self.h:
            s.direction = "down"
            return True
        return False

    def state(self) -> CusumState:
        """The sums as data (the live struct: encode it, do not keep it)."""
        return self._state()

    def load(self, state: CusumState) -> None:
        """Take the state `state` gave."""
        self._s = state
