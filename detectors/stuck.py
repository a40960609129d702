"""A stuck meter: the same power value many times in a row (real meters jitter)."""

from __future__ import annotations

from detectors.state import StuckState


class StuckMeter:
    """Counts identical power values in a row; says so once, when the run reaches ``run``.

    Parameters
    ----------
    run
        Identical values in a row that mean a stuck meter.

    Examples
    --------
    >>> meter = StuckMeter(run=3)
    >>> [meter.update(p) for p in (5.0, 5.1, 5.1, 5.1, 5.1, 5.2)]
    [False, False, False, True, False, False]
    >>> meter.state()
    StuckState(last=5.2, same=0)
    """

    def __init__(self, run: int = 8) -> None:
        self.run = run

    _s: StuckState | None = None  # built on first use

    def _state(self) -> StuckState:
        s = self._s
        if s is None:
            s = self._s = StuckState()
        return s

    def update(self, power: float) -> bool:
        """Count one value; True for the reading that makes the run ``run`` long."""
        s = self._state()
        s.same = s.same + 1 if power == s.last else 0
        s.last = power
        return s.same + 1 == self.run

    def state(self) -> StuckState:
        """The last value and its repeats as data (the live struct: encode it, do not keep it)."""
        return self._state()

    def load(self, state: StuckState) -> None:
        """Take the state `state` gave."""
        self._s = state

    def __repr__(self) -> str:
        return f"StuckMeter(run={self.run!r})"
