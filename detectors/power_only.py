"""Meters with power only: the time-of-week profile and the detector of readings without
drivers.

Most sub-meters send power and energy and nothing else. What such a meter draws is explained
by the hour of the week (shifts, nights, weekends), as LBNL's time-of-week-and-temperature
(TOWT) baseline model does for hourly energy: `TimeOfWeekProfile` keeps a level and a spread
per hour of the week, each with its own memory. `PowerOnlyDetector` scores a reading by how
unlikely the recent surprise of the series is (`detectors.univariate.AnomalyLikelihood`,
Numenta's anomaly-likelihood idea) and explains it against the profile: the expected power,
and the residual in robust σ of that hour.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime

from detectors.base import MAX_VALUE, AnomalyDetector, Features
from detectors.state import PowerOnlyState, ProfileState, StateMismatch
from detectors.univariate import AnomalyLikelihood

__all__ = ["PowerOnlyDetector", "TimeOfWeekProfile"]

_WEEK_HOURS = 168
#: Bins: 168 hours of the week, then 72 (hour of a weekday, of a Saturday, of a Sunday:
#: many plants work half a Saturday), then one overall.
_BINS = _WEEK_HOURS + 72 + 1


def _bins(t: float) -> tuple[int, int, int]:
    """The hour-of-week bin of ``t`` (epoch s, UTC), its day-type bin and the overall bin."""
    d = datetime.fromtimestamp(t, UTC)
    day = d.weekday()
    return day * 24 + d.hour, _WEEK_HOURS + 24 * max(0, day - 4) + d.hour, _BINS - 1


def _median(values: list[float]) -> float:
    v = sorted(values)
    k = len(v)
    return v[k // 2] if k % 2 else 0.5 * (v[k // 2 - 1] + v[k // 2])


class TimeOfWeekProfile:
    """A level and a spread per hour of the week, learned visit by visit.

    Every reading goes to three bins: its hour of the week (168), its hour of a weekday, a
    Saturday or a Sunday (72), and one overall bin. A bin's *visit* is what one day brings
    it (an hour-of-week bin is visited once a week, a weekday-hour bin five times); a visit
    keeps the mean of its readings and their mean absolute deviation, and counts once it
    holds ``min_seconds`` of data. A bin keeps its last ``visits`` visits.

    A reading is judged by the bins' *earlier* visits, never by today's: its level is the
    median of their means, its spread the larger of their median deviation and the spread
    of their means (two visits that disagree make a wide, lenient band). So what happens
    in an hour, an anomaly included, does not become that hour's norm while it happens;
    one odd visit is outvoted once three others agree; and a new meter's second Monday is
    judged by its first. A time is judged by its hour-of-week bin or its day-type bin,
    whichever has more earlier visits (the hour of the week on a tie: it is the more
    specific, and after a month it has as many as any), or by the overall bin (the day's
    mean level and its wide spread) while neither has one. (The spread: the visits' median
    deviation, or how far their means disagree, whichever is larger.)

    Parameters
    ----------
    visits
        Earlier visits a bin keeps (four: a month of one hour of the week).
    min_seconds
        Data a visit needs to count (20 minutes).
    floor
        Smallest spread, in kW (a flat meter does not divide by zero).
    edge_s
        Near the boundary of two hours, a reading is judged by the nearer level (`judge`).

    Examples
    --------
    >>> p = TimeOfWeekProfile(floor=0.1)
    >>> monday = datetime(2026, 1, 5, tzinfo=UTC).timestamp()
    >>> for i in range(14 * 24 * 12):             # two weeks, a reading every 5 minutes
    ...     t = monday + 300.0 * i
    ...     on = datetime.fromtimestamp(t, UTC).weekday() < 5 and 6 <= (i // 12) % 24 < 22
    ...     p.learn(t, (30.0 if on else 4.0) + 0.2 * (i % 3), 300.0)
    >>> next_monday = monday + 14 * 86400.0
    >>> [round(level, 1) for level, _ in p.levels(next_monday + 7 * 3600.0)]  # 07:00
    [30.2]
    >>> p.z(next_monday + 2 * 3600.0, 30.0) > 20     # 02:00, lights on
    True
    """

    def __init__(self, visits: int = 4, min_seconds: float = 1200.0, floor: float = 1e-6,
                 edge_s: float = 300.0) -> None:
        self.visits = visits
        self.min_seconds = min_seconds
        self.floor = floor
        self.edge_s = edge_s

    _s: ProfileState | None = None  # built on first use

    def _state(self) -> ProfileState:
        s = self._s
        if s is None:
            s = self._s = ProfileState(day=[-1] * _BINS, weight=[0.0] * _BINS,
                                       mean=[0.0] * _BINS, dev=[0.0] * _BINS,
                                       past=[[] for _ in range(_BINS)])
        return s

    def _close(self, s: ProfileState, b: int) -> None:
        """The bin's open visit becomes an earlier one (when it holds enough data)."""
        if s.weight[b] >= self.min_seconds:
            s.past[b] = [*s.past[b], [s.mean[b], s.dev[b]]][-self.visits:]
        s.weight[b] = s.mean[b] = s.dev[b] = 0.0

    def _earlier(self, s: ProfileState, b: int, day: int) -> list[list[float]]:
        """The bin's visits before ``day`` (its open visit too, when it is of an earlier
        day and counts)."""
        past = s.past[b]
        if s.day[b] != day and s.weight[b] >= self.min_seconds:
            past = [*past, [s.mean[b], s.dev[b]]][-self.visits:]
        return past

    def levels(self, t: float) -> list[tuple[float, float]]:
        """[(level, spread)] of ``t`` by the earlier visits of its hour-of-week or day-type
        bin (see the class), or of the overall bin; empty before any visit."""
        s = self._state()
        day = int(t // 86_400)
        week, kind, overall = (self._earlier(s, b, day) for b in _bins(t))
        # The bin with more earlier visits (a median of more is harder to fool); the
        # hour of the week on a tie, and once it has as many as the kind of day.
        past = week if len(week) >= len(kind) else kind
        # The overall bin only from two earlier days on: a first "day" that is the two hours
        # before midnight (the night level) judged the next morning's shift a spike.
        past = past or (overall if len(overall) >= 2 else [])
        if not past:
            return []
        level = _median([m for m, _ in past])
        dev = _median([d for _, d in past])
        # How far the visits disagree: half their range for two, the median absolute
        # deviation of their means from three on (one odd visit does not widen the band).
        apart = (0.5 * abs(past[0][0] - past[1][0]) if len(past) == 2
                 else _median([abs(m - level) for m, _ in past]) if len(past) > 2 else 0.0)
        return [(level, max(dev, apart))]

    def off_hours(self, level: float) -> bool:
        """Whether ``level`` is an idle hour's: below half of the busiest hour's level (the
        power-only meter's "no production")."""
        s = self._state()
        busiest = max((m for past in s.past[:_BINS - 1] for m, _ in past), default=0.0)
        return busiest > 0 and level < 0.5 * busiest

    def knows(self, t: float) -> bool:
        """Whether the hour-of-week or the day-type bin of ``t`` has an earlier visit."""
        s = self._state()
        day = int(t // 86_400)
        return any(self._earlier(s, b, day) for b in _bins(t)[:2])

    def expected(self, t: float) -> float | None:
        """The expected power at ``t`` (None before the profile can say)."""
        lv = self.levels(t)
        return None if not lv else lv[0][0]

    def judge(self, t: float, y: float) -> tuple[float, float] | None:
        """(expected power, z) of ``y`` at ``t``: its deviation in robust σ from the level
        of its hour of the week or of its hour on that kind of day, or of the neighbouring
        hour within ``edge_s`` of their boundary, whichever explains it best (None when the
        profile cannot say yet).

        Bins have hard edges at the full hour and schedules do not: lights that go off at
        22:00 draw full power in the reading stamped 22:00:00, a shift starts a minute
        early. A reading that close to the edge is judged by the nearer of the two hours,
        and one between their levels (a ramp) is explained (z 0).
        """
        own = self.levels(t)
        if not own:
            return None  # a neighbour hour only widens the reading's own: it cannot judge it
        best: tuple[float, float] | None = None
        levels = []
        neighbours = (*self.levels(t - self.edge_s), *self.levels(t + self.edge_s))
        for level, spread in (*own, *neighbours):
            levels.append(level)
            z = (y - level) / (1.2533 * max(spread, self.floor))
            if best is None or abs(z) < abs(best[1]):
                best = (level, z)
        if best is not None and min(levels) <= y <= max(levels):
            return best[0], 0.0  # between two levels: on its way from one to the other
        return best

    def z(self, t: float, y: float) -> float:
        """The deviation of ``y`` at ``t`` in robust σ (`judge`; 0 when it cannot say)."""
        j = self.judge(t, y)
        return 0.0 if j is None else j[1]

    def learn(self, t: float, y: float, seconds: float, w: float = 1.0) -> None:
        """Add ``y`` at ``t``, standing for ``seconds`` of data, with weight ``w`` in [0, 1]
        (0: a flagged reading, not part of its visit, where the bin has two earlier ones)."""
        if not (-MAX_VALUE < y < MAX_VALUE and math.isfinite(t)) or seconds <= 0:
            return
        s = self._state()
        day = int(t // 86_400)
        for b in _bins(t):
            if s.day[b] != day:
                self._close(s, b)
                s.day[b] = day
            # A bin of fewer than two earlier visits takes every reading, flagged or not: a
            # first visit that was all anomaly (nothing could tell) is then outvoted, not
            # kept as the only reference that flags every normal visit after it.
            add = (w if len(s.past[b]) >= 2 else 1.0) * seconds
            if add <= 0:
                continue
            total = s.weight[b] + add
            alpha = add / total
            s.dev[b] += alpha * (abs(y - s.mean[b]) - s.dev[b]) if s.weight[b] else 0.0
            s.mean[b] += alpha * (y - s.mean[b])
            s.weight[b] = total

    def forget(self) -> None:
        """Forget every visit: a lasting change is the new normal (not judged until the
        next day, then by the overall bin until the hours have been visited anew)."""
        self._s = None

    def state(self) -> ProfileState:
        """The bins as data (the live struct: encode it, do not keep it)."""
        return self._state()

    def load(self, state: ProfileState) -> None:
        """Take the state `state` gave (`StateMismatch` for one of another bin layout)."""
        if not (len(state.day) == len(state.weight) == len(state.mean) == len(state.dev)
                == len(state.past) == _BINS):
            msg = f"a time-of-week state of another layout (this profile has {_BINS} bins)"
            raise StateMismatch(msg)
        self._s = state

    def __repr__(self) -> str:
        return (f"TimeOfWeekProfile(visits={self.visits!r}, min_seconds={self.min_seconds!r}, "
                f"floor={self.floor!r}, edge_s={self.edge_s!r})")


class PowerOnlyDetector(AnomalyDetector):
    """The detector of readings without drivers: anomaly likelihood against the profile.

    ``score_one`` is `AnomalyLikelihood`'s score of the power (how unlikely the recent
    surprise of the series is against its own history: level, step, shift and daily
    seasonal terms); `profile` gives the expected power of the reading's hour of the week
    and the residual z that says by how much, and classifies it. The likelihood learns every
    reading (it scores surprise against its own history, anomalies included, as Numenta's
    does); the profile learns with the scorer's learning weight, so an anomaly does not
    become the hour's norm.

    Parameters
    ----------
    floor
        Smallest spread of the profile, in kW (`TimeOfWeekProfile`).
    tail_half_life
        Half-life of `tail`, in readings.
    likelihood
        Parameters of `AnomalyLikelihood` (``feature`` and ``time_feature`` are set here).

    Examples
    --------
    >>> det = PowerOnlyDetector(floor=0.1)
    >>> t0 = datetime(2026, 1, 5, tzinfo=UTC).timestamp()
    >>> def x(i, p):
    ...     return {"power_kw": p, "t": t0 + 300.0 * i}
    >>> for i in range(2000):
    ...     det.learn_one(x(i, 10.0 + 0.3 * (i % 4)), 300.0)
    >>> quiet = det.score_one(x(2000, 10.3))
    >>> for i in range(2000, 2005):                       # the level jumps and stays
    ...     det.learn_one(x(i, 60.0), 300.0, w=0.0)
    >>> quiet < 0.1 < det.score_one(x(2005, 60.0)), det.z(x(2005, 60.0)) > 20
    (True, True)
    """

    def __init__(self, floor: float = 1e-6, tail_half_life: float = 2000.0,
                 likelihood: Mapping[str, float | int | str] | None = None) -> None:
        self.floor = floor
        self.tail_half_life = tail_half_life
        self.likelihood = dict(likelihood or {})

    _tail: float = 0.0  # the largest |z| of the readings learned, decaying

    @property
    def tail(self) -> float:
        """The largest |z| against the profile among the readings learned, decaying with a
        half-life of ``tail_half_life`` readings: how far this meter's normal readings
        stray. A meter with heavy tails (a coarse or bursty series) needs a larger
        deviation to be a spike on its own than one with Gaussian noise."""
        return self._tail
    _profile: TimeOfWeekProfile | None = None
    _lik: AnomalyLikelihood | None = None

    @property
    def profile(self) -> TimeOfWeekProfile:
        """The time-of-week profile (expected power, z)."""
        p = self._profile
        if p is None:
            p = self._profile = TimeOfWeekProfile(floor=self.floor)
        return p

    @property
    def surprise(self) -> AnomalyLikelihood:
        """The anomaly likelihood of the power series."""
        lik = self._lik
        if lik is None:
            params = {"feature": "power_kw", "time_feature": "t", **self.likelihood}
            lik = self._lik = AnomalyLikelihood(**params)  # type: ignore[arg-type]
        return lik

    def z(self, x: Features) -> float:
        """The residual of the power against the profile, in robust σ."""
        t, y = x.get("t"), x.get("power_kw")
        return 0.0 if t is None or y is None else self.profile.z(t, y)

    def score_one(self, x: Features) -> float:
        """The anomaly likelihood of the power, in [0, 1]."""
        return self.surprise.score_one(x)

    def learn_one(self, x: Features, seconds: float = 30.0, w: float = 1.0,
                  profile: bool = True) -> None:
        """Learn a reading standing for ``seconds``: the likelihood fully, the profile with
        weight ``w`` (not at all with ``profile`` False: a stuck meter's repeats)."""
        self.surprise.learn_one(x)
        t, y = x.get("t"), x.get("power_kw")
        if t is not None and y is not None and profile:
            if w > 0:
                z = abs(self.profile.z(t, y))
                if math.isfinite(z):
                    self._tail = max(min(z, MAX_VALUE), self._tail * 0.5 ** (
                        1.0 / self.tail_half_life))
            self.profile.learn(t, y, seconds, w)

    def state(self) -> PowerOnlyState:
        """The profile's and the likelihood's state as data."""
        return PowerOnlyState(profile=self.profile.state(), likelihood=self.surprise.state(),
                              tail=self._tail)

    def load(self, state: PowerOnlyState) -> None:
        """Take the state `state` gave."""
        self.profile.load(state.profile)
        self.surprise.load(state.likelihood)
        self._tail = state.tail

    def __repr__(self) -> str:
        return f"PowerOnlyDetector(floor={self.floor!r}, likelihood={self.likelihood!r})"

