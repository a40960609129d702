"""A deterministic plant simulator: readings for the catalogue machines, with labelled faults.

Pure: no clock, no I/O. The Kafka shell that paces these readings against the wall clock and
produces them is `streams.simulator`.

* `generate`. Given a seed, a start and a duration it returns a `Simulation`: a lazy,
  timestamp-ordered iterator of `Reading` records over all machines, and the list of injected
  anomalies (`Label`), planned up front from the seed so that the ground truth is known before
  the first reading. It reads no clock, does no I/O and keeps a bounded amount of memory (one
  chunk of readings per machine), so a month of 1-second data costs no more memory than a day.
* `simulations` cuts an unbounded run into one-day `Simulation` windows (the shell's
  ``run`` sends them one after the other).

The load model
--------------
Every machine type has a `Profile` (see `PROFILES`); its kW terms are fractions of the
machine's rated power ``R`` so that one profile serves both compressors. At time ``t`` the
expected power is (`Profile.mean_power_kw`)::

    P(t) = R * ( base
                 + load * u(t) / nominal_uph
                 + heat_per_c * max(0, heat_balance_c - T(t))
                 + cool_per_c * max(0, T(t) - cool_balance_c) )

and the reported power is ``max(0, P(t) * (1 + noise * e))`` with ``e ~ N(0, 1)`` i.i.d. per
reading. In absolute terms (`Profile.coefficients`): base load ``R*base`` kW, ``R*load /
nominal_uph`` kW per unit/h of throughput, ``R*heat_per_c`` kW per degree below the heating
balance point and ``R*cool_per_c`` kW per degree above the cooling balance point.

* ``u(t)``, the throughput in units/h (reported as ``throughput_units_per_hour``), is
  ``nominal_uph * shift(t) * (1 + wobble * w(t))`` (``wobble`` 0.06 unless the profile says
  otherwise). `shift_level` is 1 Monday-Friday
  06:00-22:00 UTC (two shifts), 0.6 on Saturday 06:00-14:00 UTC, and 0 otherwise (nights and
  Sunday: the machine idles at its base load plus any weather load). ``w(t)`` in [-1, 1] is a
  smooth per-machine wobble (two sines, periods 25-70 min and 3-8 h, phases from the seed).
  ``production_count`` is the units made in the reading's interval, ``u * interval / 3600``.
* ``T(t)``, the outdoor temperature in deg C (`outdoor_temperature_c`), is the same for every
  machine: ``17.5 - 9.5 cos(2 pi (day - 20) / 365.2425)`` (coldest around 20 January, for
  Izmir) ``+ 4.5 cos(2 pi (hour_utc - 12) / 24)`` (warmest at 12:00 UTC) plus weather, a sum of
  six sines with periods from 3 hours to 9 days and about 3 deg C of total amplitude, phases
  from the seed. The reported ``outdoor_temp_c`` adds N(0, 0.1) sensor noise; the power uses
  the true ``T(t)``.
* ``machine_temp_c = 20 + 0.25 (T - 20) + 50 * p / R + N(0, 0.3)`` with ``p`` the drawn power
  (after anomalies, before a ``stuck`` meter freezes it).
* ``pressure_bar`` (compressors only) is ``7.2 - 0.5 * p / R + N(0, 0.03)``, about 6.8-7.2 bar.
* ``energy_kwh = power_kw * interval_s / 3600``, the energy of that reading's interval.

Power-only meters
-----------------
A profile with ``power_only=True`` (``lighting``: the Lighting-Hall-1 sub-meter) reports
``power_kw`` and ``energy_kwh`` and nothing else: no throughput, production, temperatures or
pressure (`schemas.readings.Reading.drivers` is empty). The same formula drives it, with
``u(t)`` a hidden activity level (``nominal_uph`` 1) that follows the shifts: the lighting
draws ``R * (0.12 + 0.78 * shift_r(t) * (1 + 0.02 * w(t)))`` with 1.5 % noise, i.e. about
12 % of rated at night and on Sunday, 90 % on weekday shifts (06:00-22:00 UTC) and 59 % on
Saturday 06:00-14:00 UTC, and no weather term. ``shift_r`` is `shift_level` switched over a
ramp (``ramp_s``, 90 s: the hall's sections come on one after another): a linear ramp that
starts at each shift edge, so at a 30 s interval the readings at the edge and 30 s and 60 s
after it lie on the ramp. A ``drop`` or ``off_shift`` on it is placed clear of the ramps.

What a baseline should recover
------------------------------
Summed over an hour (``detectors.hourly``), the energy is the mean power times one hour and
``production_count`` is the mean throughput times one hour, so the hourly records follow::

    energy_kwh = R*base + (R*load / nominal_uph) * production_count
                 + R*heat_per_c * HDH(heat_balance_c) + R*cool_per_c * CDH(cool_balance_c)

with ``HDH(Th) = max(0, Th - T)`` and ``CDH(Tc) = max(0, T - Tc)`` degree-hours of the hour's
mean temperature (exact up to the noise and the small within-hour curvature of the max).
`hourly_coefficients` gives these numbers per machine.

Efficiency changes
------------------
``generate(..., efficiency_changes={machine_id: (when, factor)})`` multiplies that machine's
whole generating function by ``factor`` for readings at or after ``when`` (1.25: the machine
needs 25 % more energy for the same drivers). Nothing else changes (drivers, noise draws,
anomaly plan), so a run with and without the change differ only there; it is not a `Label`.

Anomalies
---------
Arrivals are a Poisson process over the whole plant (``anomaly_rate_per_day`` in total); the
kinds come in seeded shuffled blocks of five, so every kind is equally frequent; the machine is
drawn uniformly. A label covers the readings with ``start <= timestamp < end``; both ends lie on
the machine's reading grid. Two anomalies on one machine are at least 30 minutes apart.

``spike``
    power x 2.5-4 for 1-3 readings.
``drop``
    power x 0.05-0.15 for 3-10 minutes while production goes on (placed inside a shift; on a
    power-only meter: inside a shift, while the lights should be on).
``drift``
    power x a factor rising linearly from 1 to 1.25-1.40 over 1-3 hours, then back to normal.
``stuck``
    the meter repeats the last good power value exactly (and its energy) for 10-30 minutes.
``off_shift``
    for 30-90 minutes outside any shift the machine draws production-level power (the load
    term at nominal throughput) while reporting zero production (a power-only meter reports
    no production at all: its lights are left on at the shift level).

Every kind can land on every machine, power-only meters included: `_place` schedules
``drop`` and ``off_shift`` by `shift_level`, which does not depend on the machine (and, on a
profile that ramps, clear of its ramps). Adding a
machine to the catalogue changes the plan (the machine of every arrival is drawn from one
more), so the labels, and the readings inside them, of a given seed change; the clean
readings of the other machines do not (their noise and wobble streams are keyed by machine).
"""

from __future__ import annotations

import heapq
import math
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from operator import attrgetter

import msgspec
import numpy as np

from schemas.machines import MACHINES, Machine
from schemas.readings import Reading

__all__ = [
    "KINDS",
    "PROFILES",
    "Label",
    "Profile",
    "Simulation",
    "generate",
    "hourly_coefficients",
    "outdoor_temperature_c",
    "shift_level",
    "simulations",
]

#: The anomaly kinds, in the order of the module docstring.
KINDS: tuple[str, ...] = ("spike", "drop", "drift", "stuck", "off_shift")

_CHUNK = 2048  # readings generated at once per machine
_US = 1_000_000
_DAY_S = 86_400
_MIN_GAP_US = 30 * 60 * _US  # quiet time between two anomalies of one machine
_THROUGHPUT_WOBBLE = 0.06
_SATURDAY_LEVEL = 0.6
_HOUR_S = 3600.0  # every shift edge is on a whole UTC hour

# Tags that keep the random streams apart.
_TAG_WEATHER = 0x57EA
_TAG_WOBBLE = 0x30BB
_TAG_NOISE = 0x4015
_TAG_PLAN = 0x91A4


@dataclass(frozen=True, kw_only=True)
class Profile:
    """The load model of one machine type; kW terms are fractions of rated power ``R``.

    Mean power: ``R * (base + load * u / nominal_uph + heat_per_c * max(0, heat_balance_c - T)
    + cool_per_c * max(0, T - cool_balance_c))``, multiplied by ``1 + noise * N(0, 1)``.

    Parameters
    ----------
    base
        Base (idle) load, as a fraction of rated power.
    load
        Extra load at nominal throughput, as a fraction of rated power.
    nominal_uph
        Throughput at full production, in units per hour.
    heat_balance_c, heat_per_c
        Heating balance point (deg C) and the load per degree below it (fraction of ``R``).
    cool_balance_c, cool_per_c
        Cooling balance point (deg C) and the load per degree above it (fraction of ``R``).
    noise
        Relative standard deviation of the multiplicative Gaussian noise.
    wobble
        Relative amplitude of the smooth wobble of the throughput (or activity level).
    power_only
        The meter reports power and energy only (no throughput, production, temperatures or
        pressure); the throughput is then a hidden activity level.
    ramp_s
        Seconds over which the shift level ramps linearly after each shift edge (0: a step;
        less than an hour).

    Examples
    --------
    >>> boiler = PROFILES["boiler"]
    >>> boiler.mean_power_kw(200.0, throughput_uph=0.0, outdoor_temp_c=20.0)
    12.0
    >>> boiler.mean_power_kw(200.0, throughput_uph=0.0, outdoor_temp_c=5.0)
    102.0
    >>> PROFILES["motor"].coefficients(30.0)["kw_per_unit"]
    0.035
    >>> PROFILES["lighting"].mean_power_kw(40.0, throughput_uph=1.0, outdoor_temp_c=0.0)
    36.0
    """

    base: float
    load: float
    nominal_uph: float
    heat_balance_c: float = 15.0
    heat_per_c: float = 0.0
    cool_balance_c: float = 18.0
    cool_per_c: float = 0.0
    noise: float = 0.03
    wobble: float = _THROUGHPUT_WOBBLE
    power_only: bool = False
    ramp_s: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.ramp_s < _HOUR_S:
            msg = f"ramp_s must be in [0, 3600) s, got {self.ramp_s}"
            raise ValueError(msg)

    def mean_power_kw(
        self, rated_power_kw: float, *, throughput_uph: float, outdoor_temp_c: float
    ) -> float:
        """Return the expected power (kW) before noise and anomalies: the generating function."""
        frac = (
            self.base
            + self.load * throughput_uph / self.nominal_uph
            + self.heat_per_c * max(0.0, self.heat_balance_c - outdoor_temp_c)
            + self.cool_per_c * max(0.0, outdoor_temp_c - self.cool_balance_c)
        )
        return rated_power_kw * frac

    def coefficients(self, rated_power_kw: float) -> dict[str, float]:
        """Return the model in absolute units for a machine of this rated power.

        Keys: ``base_kw``, ``kw_per_unit`` (per unit/h of throughput), ``heat_balance_c``,
        ``heat_kw_per_c``, ``cool_balance_c``, ``cool_kw_per_c``, ``noise``.
        """
        r = rated_power_kw
        return {
            "base_kw": r * self.base,
            "kw_per_unit": r * self.load / self.nominal_uph,
            "heat_balance_c": self.heat_balance_c,
            "heat_kw_per_c": r * self.heat_per_c,
            "cool_balance_c": self.cool_balance_c,
            "cool_kw_per_c": r * self.cool_per_c,
            "noise": self.noise,
        }


#: Load model per machine type (`Machine.type`); unknown types use ``"other"``.
PROFILES: dict[str, Profile] = {
    "compressor": Profile(base=0.18, load=0.62, nominal_uph=420.0, noise=0.04),
    "hvac": Profile(base=0.10, load=0.20, nominal_uph=1000.0, heat_balance_c=12.0,
                    heat_per_c=0.025, cool_balance_c=18.0, cool_per_c=0.03, noise=0.03),
    "motor": Profile(base=0.12, load=0.70, nominal_uph=600.0, noise=0.03),
    "pump": Profile(base=0.25, load=0.55, nominal_uph=90.0, noise=0.03),
    "injection_molding": Profile(base=0.20, load=0.60, nominal_uph=240.0, noise=0.05),
    "conveyor": Profile(base=0.10, load=0.65, nominal_uph=1200.0, noise=0.04),
    "boiler": Profile(base=0.06, load=0.25, nominal_uph=2000.0, heat_balance_c=15.0,
                      heat_per_c=0.045, noise=0.03),
    # Power only: the hidden activity is the shift level (nominal 1), no weather term.
    "lighting": Profile(base=0.12, load=0.78, nominal_uph=1.0, noise=0.015, wobble=0.02,
                        power_only=True, ramp_s=90.0),
    "other": Profile(base=0.15, load=0.50, nominal_uph=100.0, noise=0.03),
}


def _profile(machine: Machine) -> Profile:
    return PROFILES.get(machine.type, PROFILES["other"])


def hourly_coefficients(machine: Machine, *, factor: float = 1.0) -> dict[str, float]:
    """Return the hourly energy model a baseline fitted on this machine's records should find.

    ``energy_kwh = intercept_kwh + kwh_per_unit * production_count
    + heat_kwh_per_degree_hour * max(0, heat_balance_c - T)
    + cool_kwh_per_degree_hour * max(0, T - cool_balance_c)`` per hour (see the module
    docstring). A slope of 0 means the machine has no such term (its balance point is then
    meaningless). `factor` is an efficiency change (`generate`'s ``efficiency_changes``): it
    scales every energy term.

    A power-only meter's records carry no production: its load term is a time-of-week term
    instead, ``shift_kwh * shift`` with ``shift`` 1 in a weekday shift hour, 0.6 in a Saturday
    shift hour and 0 otherwise (up to the ramp and the wobble), and its ``kwh_per_unit`` is 0.
    ``shift_kwh`` is 0 for every other machine (production carries their shift load).

    Examples
    --------
    >>> from schemas.machines import machine_by_id
    >>> boiler = machine_by_id("c0000000-0000-0000-0000-000000000007")
    >>> truth = hourly_coefficients(boiler)
    >>> truth["intercept_kwh"], truth["kwh_per_unit"], truth["heat_kwh_per_degree_hour"]
    (12.0, 0.025, 9.0)
    >>> truth["heat_balance_c"], truth["cool_kwh_per_degree_hour"]
    (15.0, 0.0)
    >>> hourly_coefficients(boiler, factor=1.25)["intercept_kwh"]
    15.0
    >>> lights = hourly_coefficients(machine_by_id("c0000000-0000-0000-0000-000000000009"))
    >>> lights["intercept_kwh"], lights["kwh_per_unit"], round(lights["shift_kwh"], 6)
    (4.8, 0.0, 31.2)
    """
    # Power held for an hour is the hour's energy: the hourly terms are the power terms.
    profile = _profile(machine)
    kw = profile.coefficients(machine.rated_power_kw * factor)
    shift_kwh = machine.rated_power_kw * factor * profile.load if profile.power_only else 0.0
    return {
        "intercept_kwh": kw["base_kw"],
        "kwh_per_unit": 0.0 if profile.power_only else kw["kw_per_unit"],
        "shift_kwh": shift_kwh,
        "heat_balance_c": kw["heat_balance_c"],
        "heat_kwh_per_degree_hour": kw["heat_kw_per_c"],
        "cool_balance_c": kw["cool_balance_c"],
        "cool_kwh_per_degree_hour": kw["cool_kw_per_c"],
    }


class Label(msgspec.Struct, frozen=True, kw_only=True):
    """One injected anomaly: the readings of `machine_id` with ``start <= timestamp < end``.

    Examples
    --------
    >>> lab = Label(machine_id="m", kind="spike",
    ...             start=datetime(2026, 1, 5, 8, tzinfo=UTC),
    ...             end=datetime(2026, 1, 5, 8, 0, 2, tzinfo=UTC))
    >>> lab.to_dict()["start"], lab.to_dict()["end"]
    ('2026-01-05T08:00:00Z', '2026-01-05T08:00:02Z')
    >>> lab.contains(datetime(2026, 1, 5, 8, 0, 1, tzinfo=UTC))
    True
    """

    machine_id: str
    kind: str
    start: datetime
    end: datetime

    def to_dict(self) -> dict[str, str]:
        """JSON-ready dict; times as RFC 3339 strings in UTC."""
        out: dict[str, str] = msgspec.to_builtins(self)
        return out

    def contains(self, ts: datetime) -> bool:
        """Whether a reading at `ts` lies inside this anomaly."""
        return self.start <= ts < self.end


@dataclass(frozen=True)
class Simulation:
    """What `generate` returns.

    Attributes
    ----------
    readings
        Lazy iterator over all machines' readings in timestamp order (single use).
    labels
        The injected anomalies, sorted by start then machine id.
    intervals
        Reading interval in seconds, per machine id.
    """

    readings: Iterator[Reading]
    labels: list[Label]
    intervals: dict[str, float]


# --------------------------------------------------------------------------- time functions


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng([seed & 0xFFFF_FFFF_FFFF_FFFF, *key])


def _machine_key(machine: Machine) -> int:
    """Return a stable (PYTHONHASHSEED-proof) integer for a machine."""
    return zlib.crc32(machine.id.encode())


def shift_level(epoch_s: np.ndarray) -> np.ndarray:
    """Production level (0, 0.6 or 1) at POSIX times (seconds, UTC).

    Examples
    --------
    >>> mon_8 = datetime(2026, 1, 5, 8, tzinfo=UTC).timestamp()
    >>> [float(x) for x in shift_level(np.array([mon_8, mon_8 + 15 * 3600,
    ...                                          mon_8 + 5 * 86400, mon_8 + 6 * 86400]))]
    [1.0, 0.0, 0.6, 0.0]
    """
    epoch_s = np.asarray(epoch_s, dtype=float)
    days = np.floor(epoch_s / _DAY_S)
    weekday = (days + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
    hour = (epoch_s - days * _DAY_S) / 3600.0
    weekday_shift = (weekday < 5) & (hour >= 6) & (hour < 22)
    saturday_shift = (weekday == 5) & (hour >= 6) & (hour < 14)
    return np.where(weekday_shift, 1.0, np.where(saturday_shift, _SATURDAY_LEVEL, 0.0))


def _ramped_level(epoch_s: np.ndarray, ramp_s: float) -> np.ndarray:
    """`shift_level` with each change spread linearly over the `ramp_s` seconds after it.

    The mean of `shift_level` over ``[t - ramp_s, t]``: every shift edge is on a whole hour
    and ``ramp_s`` is under an hour, so the window holds at most one edge, the hour ``t``
    lies in.

    Examples
    --------
    >>> six = datetime(2026, 1, 5, 6, tzinfo=UTC).timestamp()  # a Monday
    >>> [round(float(x), 3) for x in _ramped_level(six + np.array([-30.0, 0, 30, 60, 90]), 90)]
    [0.0, 0.0, 0.333, 0.667, 1.0]
    """
    level = shift_level(epoch_s)
    if ramp_s <= 0:
        return level
    t = np.asarray(epoch_s, dtype=float)
    before = shift_level(t - ramp_s)
    frac = np.clip((t - np.floor(t / _HOUR_S) * _HOUR_S) / ramp_s, 0.0, 1.0)
    out: np.ndarray = np.where(before == level, level, before + (level - before) * frac)
    return out


@dataclass(frozen=True)
class _Sines:
    """A sum of sines of absolute time: sum a_k sin(2 pi t / p_k + phi_k)."""

    amplitudes: np.ndarray
    periods_s: np.ndarray
    phases: np.ndarray

    def __call__(self, epoch_s: np.ndarray) -> np.ndarray:
        t = np.asarray(epoch_s, dtype=float)[..., None]
        waves = self.amplitudes * np.sin(2 * np.pi * t / self.periods_s + self.phases)
        out: np.ndarray = waves.sum(axis=-1)
        return out


def _weather(seed: int) -> _Sines:
    rng = _rng(seed, _TAG_WEATHER)
    periods_h = np.concatenate([rng.uniform(36, 216, 4), rng.uniform(3, 9, 2)])
    amplitudes = np.concatenate([rng.uniform(0.5, 1.2, 4), rng.uniform(0.15, 0.35, 2)])
    return _Sines(amplitudes, periods_h * 3600.0, rng.uniform(0, 2 * np.pi, 6))


def _wobble(seed: int, machine: Machine) -> _Sines:
    rng = _rng(seed, _TAG_WOBBLE, _machine_key(machine))
    periods_s = np.array([rng.uniform(25, 70) * 60, rng.uniform(3, 8) * 3600])
    return _Sines(np.array([0.6, 0.4]), periods_s, rng.uniform(0, 2 * np.pi, 2))


def outdoor_temperature_c(epoch_s: np.ndarray, *, seed: int = 42) -> np.ndarray:
    """Return the true outdoor temperature (deg C) at POSIX times, the same for all machines.

    Examples
    --------
    >>> jan = datetime(2026, 1, 20, 12, tzinfo=UTC).timestamp()
    >>> jul = datetime(2026, 7, 20, 12, tzinfo=UTC).timestamp()
    >>> t = outdoor_temperature_c(np.array([jan, jul]))
    >>> bool(t[0] < 16 < t[1])
    True
    """
    return _outdoor_temp(np.asarray(epoch_s, dtype=float), _weather(seed))


def _outdoor_temp(t: np.ndarray, weather: _Sines) -> np.ndarray:
    days = t / _DAY_S
    hour = (t % _DAY_S) / 3600.0
    seasonal = 17.5 - 9.5 * np.cos(2 * np.pi * (days - 20.0) / 365.2425)
    daily = 4.5 * np.cos(2 * np.pi * (hour - 12.0) / 24.0)
    out: np.ndarray = seasonal + daily + weather(t)
    return out


# --------------------------------------------------------------------------- anomaly plan


@dataclass(frozen=True)
class _Event:
    """An anomaly on one machine's reading grid: readings i0 <= i < i1."""

    kind: str
    i0: int
    i1: int
    magnitude: float


def _interval_us(machine: Machine, interval_scale: float) -> int:
    interval = machine.data_interval_seconds * interval_scale
    if interval_scale == 1:
        interval = min(max(interval, 1.0), 30.0)
    us = round(interval * _US)
    if us < 1:
        msg = f"reading interval of {machine.name} rounds to zero (interval_scale={interval_scale})"
        raise ValueError(msg)
    return us


def _plan(
    rng: np.random.Generator,
    machines: Sequence[Machine],
    interval_us: Sequence[int],
    n_total: Sequence[int],
    start_us: int,
    duration_us: int,
    rate_per_day: float,
) -> list[list[_Event]]:
    """Anomalies per machine (each list sorted by start), planned from `rng` alone.

    Every arrival uses the same number of draws, so the plan of a shorter run is a prefix of
    the plan of a longer one with the same seed.
    """
    plan: list[list[_Event]] = [[] for _ in machines]
    if rate_per_day <= 0 or not machines:
        return plan
    mean_gap_us = _DAY_S * _US / rate_per_day
    t_us = 0.0
    block: list[int] = []
    while True:
        t_us += rng.exponential(mean_gap_us)
        if not block:
            block = [int(k) for k in rng.permutation(len(KINDS))]
        kind = KINDS[block.pop()]
        m = int(rng.integers(len(machines)))
        u_len, u_mag = rng.random(2)
        if t_us >= duration_us:
            break
        step = interval_us[m]
        if kind == "spike":
            n = 1 + int(u_len * 3)
            magnitude = 2.5 + 1.5 * u_mag
        else:
            lo_s, hi_s = {"drop": (180, 600), "drift": (3600, 10800), "stuck": (600, 1800),
                          "off_shift": (1800, 5400)}[kind]
            n = max(1, round((lo_s + (hi_s - lo_s) * u_len) * _US / step))
            magnitude = {"drop": 0.05 + 0.10 * u_mag, "drift": 1.25 + 0.15 * u_mag}.get(kind, 1.0)
        i0 = _place(kind, max(1, math.ceil(t_us / step)), n, step, start_us, plan[m],
                    _profile(machines[m]).ramp_s)
        if i0 is not None and i0 + n <= n_total[m]:
            plan[m].append(_Event(kind, i0, i0 + n, float(magnitude)))
            plan[m].sort(key=attrgetter("i0"))
    return plan


def _place(
    kind: str, i0: int, n: int, step_us: int, start_us: int, taken: list[_Event],
    ramp_s: float = 0.0,
) -> int | None:
    """First grid index >= i0 where the anomaly fits its schedule and overlaps nothing.

    The schedule of ``drop`` (in a shift) and ``off_shift`` (outside every shift) must hold
    at both ends by `shift_level` and, on a profile that ramps, by the ramped level too: a
    drop does not begin before the lights start to come on, an off_shift not while they are
    still going off."""
    gap = math.ceil(_MIN_GAP_US / step_us)
    hop = max(1, math.ceil(15 * 60 * _US / step_us))  # schedule search step: 15 min
    limit = i0 + math.ceil(8 * _DAY_S * _US / step_us)
    while i0 < limit:
        clash = next((e for e in taken if i0 < e.i1 + gap and e.i0 < i0 + n + gap), None)
        if clash is not None:
            i0 = clash.i1 + gap
            continue
        if kind in ("drop", "off_shift"):
            ends = np.array([start_us + i0 * step_us, start_us + (i0 + n - 1) * step_us]) / _US
            levels = shift_level(ends)
            ramped = _ramped_level(ends, ramp_s) if ramp_s > 0 else levels
            ok = (bool(np.all(np.minimum(levels, ramped) > 0)) if kind == "drop"
                  else bool(np.all(np.maximum(levels, ramped) == 0)))
            if not ok:
                i0 += hop
                continue
        return i0
    return None


# --------------------------------------------------------------------------- generation


def generate(
    *,
    seed: int = 42,
    start: datetime,
    duration: timedelta,
    machines: Sequence[Machine] = MACHINES,
    anomalies: bool = True,
    anomaly_rate_per_day: float = 4.0,
    interval_scale: float = 1.0,
    efficiency_changes: Mapping[str, tuple[datetime, float]] | None = None,
) -> Simulation:
    """Simulate `machines` from `start` for `duration`; pure and deterministic for a seed.

    Parameters
    ----------
    seed
        The only source of randomness (noise, weather, throughput, anomaly plan).
    start
        Time of the first reading of every machine; must be tz-aware.
    duration
        Readings have ``start <= timestamp < start + duration``.
    machines
        The machines to simulate (the catalogue by default).
    anomalies
        Whether to inject anomalies; False gives clean data and no labels.
    anomaly_rate_per_day
        Mean number of anomalies per simulated day over all machines together.
    interval_scale
        Multiplies each machine's ``data_interval_seconds``. At 1 the interval is clamped to
        [1, 30] s; otherwise it is used as is (rounded to the microsecond).
    efficiency_changes
        ``{machine_id: (when, factor)}``: from `when` (tz-aware) on, that machine's power (the
        whole generating function) is multiplied by `factor` (> 0; 1.25 is 25 % less
        efficient). Every id must be among `machines`.

    Returns
    -------
    Simulation
        A lazy reading iterator and the labels, known up front.

    Examples
    --------
    >>> sim = generate(start=datetime(2026, 1, 5, 8, tzinfo=UTC), duration=timedelta(minutes=1))
    >>> readings = list(sim.readings)
    >>> len(readings), readings[0].timestamp.isoformat()
    (142, '2026-01-05T08:00:00+00:00')
    >>> sim.labels
    []
    >>> sim = generate(start=datetime(2026, 1, 5, tzinfo=UTC), duration=timedelta(days=14))
    >>> sorted({lab.kind for lab in sim.labels}) == sorted(KINDS)
    True

    A machine 25 % less efficient from 09:00 on:

    >>> motor = [m for m in MACHINES if m.type == "motor"]
    >>> t0 = datetime(2026, 1, 5, 8, tzinfo=UTC)
    >>> def power(changes):
    ...     sim = generate(start=t0, duration=timedelta(hours=2), machines=motor,
    ...                    anomalies=False, efficiency_changes=changes)
    ...     return [r.power_kw for r in sim.readings]
    >>> before, after = power(None), power({motor[0].id: (t0 + timedelta(hours=1), 1.25)})
    >>> before[:120] == after[:120], round(after[120] / before[120], 3)
    (True, 1.25)
    """
    return _generate(seed=seed, window=0, start=start, duration=duration, machines=machines,
                     anomalies=anomalies, rate_per_day=anomaly_rate_per_day,
                     interval_scale=interval_scale, efficiency_changes=efficiency_changes)


def _generate(
    *,
    seed: int,
    window: int,
    start: datetime,
    duration: timedelta,
    machines: Sequence[Machine],
    anomalies: bool,
    rate_per_day: float,
    interval_scale: float,
    efficiency_changes: Mapping[str, tuple[datetime, float]] | None = None,
) -> Simulation:
    if start.tzinfo is None or start.utcoffset() is None:
        msg = "start must be timezone-aware"
        raise ValueError(msg)
    efficiency = _efficiency(efficiency_changes, machines)
    if duration < timedelta(0):
        msg = "duration must not be negative"
        raise ValueError(msg)
    start = start.astimezone(UTC)
    start_us = _epoch_us(start)
    duration_us = duration // timedelta(microseconds=1)
    steps = [_interval_us(m, interval_scale) for m in machines]
    n_total = [-(-duration_us // s) for s in steps]  # ceil
    plans: list[list[_Event]] = [[] for _ in machines]
    if anomalies:
        plans = _plan(_rng(seed, window, _TAG_PLAN), machines, steps, n_total, start_us,
                      duration_us, rate_per_day)
    labels = sorted(
        (
            Label(machine_id=m.id, kind=e.kind,
                  start=start + timedelta(microseconds=e.i0 * step),
                  end=start + timedelta(microseconds=e.i1 * step))
            for m, step, events in zip(machines, steps, plans, strict=True)
            for e in events
        ),
        key=lambda lab: (lab.start, lab.machine_id),
    )
    weather = _weather(seed)
    streams = [
        _machine_stream(m, seed=seed, window=window, start=start, step_us=step, n_total=n,
                        events=events, weather=weather, efficiency=efficiency.get(m.id))
        for m, step, n, events in zip(machines, steps, n_total, plans, strict=True)
    ]
    readings = heapq.merge(*streams, key=attrgetter("timestamp"))
    intervals = {m.id: step / _US for m, step in zip(machines, steps, strict=True)}
    return Simulation(readings=readings, labels=labels, intervals=intervals)


def _efficiency(
    changes: Mapping[str, tuple[datetime, float]] | None, machines: Sequence[Machine]
) -> dict[str, tuple[float, float]]:
    """Validate `efficiency_changes`: machine id -> (POSIX seconds, factor)."""
    if not changes:
        return {}
    known = {m.id for m in machines}
    unknown = sorted(set(changes) - known)
    if unknown:
        msg = f"efficiency_changes name machines that are not simulated: {unknown}"
        raise ValueError(msg)
    out: dict[str, tuple[float, float]] = {}
    for mid, (when, factor) in changes.items():
        if when.tzinfo is None or when.utcoffset() is None:
            msg = f"efficiency change time of {mid} must be timezone-aware"
            raise ValueError(msg)
        if not (math.isfinite(factor) and factor > 0):
            msg = f"efficiency factor of {mid} must be a positive number, got {factor}"
            raise ValueError(msg)
        out[mid] = (_epoch_us(when.astimezone(UTC)) / _US, float(factor))
    return out


def _epoch_us(ts: datetime) -> int:
    return (ts - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


def _machine_stream(
    machine: Machine,
    *,
    seed: int,
    window: int,
    start: datetime,
    step_us: int,
    n_total: int,
    events: list[_Event],
    weather: _Sines,
    efficiency: tuple[float, float] | None = None,
) -> Iterator[Reading]:
    """One machine's readings, generated a chunk at a time (vectorised), yielded lazily."""
    profile = _profile(machine)
    rated = machine.rated_power_kw
    wobble = _wobble(seed, machine)
    rng = _rng(seed, window, _TAG_NOISE, _machine_key(machine))
    start_us = _epoch_us(start)
    dt_s = step_us / _US
    is_compressor = machine.type == "compressor"
    power_only = profile.power_only
    step = timedelta(microseconds=step_us)
    mid = machine.id
    last_power = 0.0
    ts = start
    for c0 in range(0, n_total, _CHUNK):
        n = min(_CHUNK, n_total - c0)
        idx = np.arange(c0, c0 + n)
        t = (start_us + idx * step_us) / _US
        noise = rng.standard_normal((n, 4)).T  # per reading: power, temps, pressure

        level = _ramped_level(t, profile.ramp_s)
        wob = 1.0 + profile.wobble * wobble(t)
        throughput = profile.nominal_uph * level * wob
        temp = _outdoor_temp(t, weather)
        load_uph = throughput.copy()  # the throughput the power follows

        mult = np.ones(n)
        if efficiency is not None:  # (from, factor): the whole generating function scales
            mult = np.where(t >= efficiency[0], efficiency[1], 1.0)
        stuck: list[tuple[int, int]] = []
        for e in events:
            lo, hi = max(e.i0, c0) - c0, min(e.i1, c0 + n) - c0
            if lo >= hi:
                continue
            if e.kind in ("spike", "drop"):
                mult[lo:hi] *= e.magnitude
            elif e.kind == "drift":
                frac = (idx[lo:hi] - e.i0) / (e.i1 - e.i0)
                mult[lo:hi] *= 1.0 + (e.magnitude - 1.0) * frac
            elif e.kind == "off_shift":
                load_uph[lo:hi] = profile.nominal_uph * wob[lo:hi]
            elif e.kind == "stuck":
                stuck.append((lo, hi))

        mean = rated * (
            profile.base
            + profile.load * load_uph / profile.nominal_uph
            + profile.heat_per_c * np.maximum(0.0, profile.heat_balance_c - temp)
            + profile.cool_per_c * np.maximum(0.0, temp - profile.cool_balance_c)
        )
        power = np.round(np.maximum(0.0, mean * (1.0 + profile.noise * noise[0]) * mult), 4)
        machine_temp = 20.0 + 0.25 * (temp - 20.0) + 50.0 * power / rated + 0.3 * noise[2]
        pressure = 7.2 - 0.5 * power / rated + 0.03 * noise[3]
        for lo, hi in stuck:  # in time order; the value before may be in the last chunk
            power[lo:hi] = power[lo - 1] if lo > 0 else last_power
        last_power = float(power[-1])
        energy = power * dt_s / 3600.0

        if power_only:  # the same draws as any machine, but only power and energy reported
            for p, en in zip(power.tolist(), energy.tolist(), strict=True):
                yield Reading(machine_id=mid, timestamp=ts, power_kw=p, energy_kwh=en)
                ts += step
            continue
        rows = zip(
            power.tolist(),
            energy.tolist(),
            np.round(throughput * dt_s / 3600.0, 4).tolist(),
            np.round(throughput, 2).tolist(),
            np.round(temp + 0.1 * noise[1], 2).tolist(),
            np.round(machine_temp, 2).tolist(),
            np.round(pressure, 3).tolist(),
            strict=True,
        )
        for p, en, count, uph, t_out, t_mach, bar in rows:
            yield Reading(
                machine_id=mid,
                timestamp=ts,
                power_kw=p,
                energy_kwh=en,
                production_count=count,
                throughput_units_per_hour=uph,
                outdoor_temp_c=t_out,
                machine_temp_c=t_mach,
                pressure_bar=bar if is_compressor else None,
            )
            ts += step



# --------------------------------------------------------------------------- windows

WINDOW = timedelta(days=1)  # unbounded runs are simulated one day at a time


def simulations(
    seed: int, start: datetime, duration: timedelta | None, anomalies: bool,
    rate_per_day: float = 4.0,
    efficiency_changes: Mapping[str, tuple[datetime, float]] | None = None,
) -> Iterator[Simulation]:
    """Yield the finite run as one simulation, or an unbounded run as one-day windows."""
    if duration is not None:
        yield _generate(seed=seed, window=0, start=start, duration=duration, machines=MACHINES,
                        anomalies=anomalies, rate_per_day=rate_per_day, interval_scale=1.0,
                        efficiency_changes=efficiency_changes)
        return
    window = 0
    while True:
        yield _generate(seed=seed, window=window, start=start + window * WINDOW,
                        duration=WINDOW, machines=MACHINES, anomalies=anomalies,
                        rate_per_day=rate_per_day, interval_scale=1.0,
                        efficiency_changes=efficiency_changes)
        window += 1


