"""A stuck meter: the same power value many times in a row (real meters jitter)."""

from __future__ import annotations

import math

from detectors.state import StuckState


class StuckMeter:
    """Counts identical power values in a row; says so once, when the run is long enough.

    Long enough is ``run`` values for a meter that jitters, and longer for one whose values
    often repeat (a coarse resolution, a series that sits at 0): the meter's own rate ``p``
    of a value equal to the one before (exponentially weighted, half-life ``half_life``
    readings) asks for ``k`` repeats with
    ``p ** k <= odds``. A meter that repeats itself half of the time is stuck after 20,
    one that reads the same value 99 % of the time is never called stuck.

    Parameters
    ----------
    run
        Identical values in a row that mean a stuck meter, for a meter that jitters.
    odds
        How unlikely the run must be by the meter's own repeat rate.
    half_life
        Half-life of the repeat rate, in readings.

    Examples
    --------
    >>> meter = StuckMeter(run=3)
    >>> jitter = [meter.update(5.0 + 0.01 * (i % 7)) for i in range(100)]
    >>> [meter.update(p) for p in (5.0, 5.1, 5.1, 5.1, 5.1, 5.2)]
    [False, False, False, True, False, False]
    >>> meter.state()
    StuckState(last=5.2, same=0, rate=0.028..., n=106, called=False)
    >>> coarse = StuckMeter(run=3)
    >>> for i in range(500):                   # a meter of 1 kW steps: repeats half the time
    ...     _ = coarse.update(float(i // 2 % 3))
    >>> coarse.needed()
    20
    """

    def __init__(self, run: int = 8, odds: float = 1e-6, half_life: float = 2000.0) -> None:
        self.run = run
        self.odds = odds
        self.half_life = half_life

    _s: StuckState | None = None  # built on first use

    def _state(self) -> StuckState:
        s = self._s
        if s is None:
            s = self._s = StuckState()
        return s

    @property
    def repeating(self) -> bool:
        """Whether the current run was called stuck and goes on: its values are not
        measurements and must not be learned."""
        return self._state().called

    def needed(self) -> int:
        """Identical values in a row that mean stuck, by the meter's repeat rate."""
        p = self._state().rate
        if p <= 0.0:
            return self.run
        if p >= 1.0 - 1e-9:
            return 2**62  # a meter that never changes cannot be told stuck
        return max(self.run, math.ceil(math.log(self.odds) / math.log(p)))

    def update(self, power: float) -> bool:
        """Count one value; True for the reading that makes the run long enough."""
        s = self._state()
        same = power == s.last
        needed = self.needed()
        s.same = s.same + 1 if same else 0
        s.last = power
        if s.n:  # every repeat teaches the rate (a meter that reads 0.0 all night learns it)
            alpha = max(1.0 - 0.5 ** (1.0 / self.half_life), 1.0 / (s.n + 1.0))
            s.rate += alpha * (float(same) - s.rate)
        s.n += 1
        if not same:
            s.called = False
        if s.called or s.same + 1 < needed:
            return False
        s.called = True  # once per run
        return True

    def state(self) -> StuckState:
        """The last value and its repeats as data (the live struct: encode it, do not keep it)."""
        return self._state()

    def load(self, state: StuckState) -> None:
        """Take the state `state` gave."""
        self._s = state

    def __repr__(self) -> str:
        return f"StuckMeter(run={self.run!r}, odds={self.odds!r}, half_life={self.half_life!r})"
