"""Plausibility of a decoded reading: could a real meter have sent it?

The decoder (`schemas.readings`) checks the shape: a known machine, finite numbers, a time
zone. This checks the physics and the clock: a reading from the far future, a power no motor
of that rating can draw, an energy its power cannot explain, a temperature no plant meets.
Each of those, accepted, would poison a model for good (a reading dated 9000-01-01 freezes a
machine's hourly energy; throughput 1e200 turns the expected-power model into NaN). The
check is pure: the caller passes the wall clock (`now`) and the `Limits` from its settings,
so the REST ingest (HTTP 422) and the worker (dead letter) refuse exactly the same readings.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from schemas.machines import machine_by_id
from schemas.readings import InvalidRecord, Reading

#: Readings before this are refused: no meter of this plant system is that old, and a zero
#: or epoch timestamp is the classic sign of an unset clock.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, kw_only=True)
class Limits:
    """What a plausible reading looks like (the defaults are the documented settings).

    Parameters
    ----------
    max_future_s
        How far a timestamp may be ahead of the wall clock at ingest (clock skew of the
        meter or gateway).
    max_power_factor
        Largest power, as a multiple of the machine's rated power. Above it the meter, not
        the machine, is at fault (the simulator's spikes reach 3.5x).
    energy_tolerance
        ``energy_kwh`` (the energy since the machine's previous reading) may be at most
        ``(power_kw × (1 + tol) + rated × tol) × interval``. The interval is the time since
        that reading, at least the machine's nominal reading interval and at most
        ``max_energy_interval_s``; where the previous reading is not known (a machine's first
        reading, the first of a machine in a REST batch, a late one) it is
        ``max_energy_interval_s``: looser, but 1e308 kWh is still refused. No lower bound: a
        meter's energy register ticks in steps (0.01 kWh), so one interval may read 0 kWh.
    max_energy_interval_s
        The longest interval one reading's energy may cover (an hour: the energy of a longer
        gap would land in one hourly record anyway).
    outdoor_temp_c, machine_temp_c
        Inclusive ranges in °C.
    max_pressure_bar, max_throughput_units_per_hour, max_production_count
        Upper bounds (all three are also at least 0).
    """

    max_future_s: float = 300.0
    max_power_factor: float = 5.0
    energy_tolerance: float = 0.5
    max_energy_interval_s: float = 3600.0
    outdoor_temp_c: tuple[float, float] = (-60.0, 60.0)
    machine_temp_c: tuple[float, float] = (-60.0, 800.0)
    max_pressure_bar: float = 1000.0
    max_throughput_units_per_hour: float = 1e6
    max_production_count: float = 1e6


def check_plausible(r: Reading, now: datetime | None, limits: Limits,
                    since: datetime | None = None) -> None:
    """Raise `InvalidRecord` naming the field when ``r`` is not plausible at ``now``.

    ``now`` None skips the clock check (reading history back: what was in the future at
    ingest need not be now). ``since`` is the time of the machine's previous reading, if
    known: the interval its energy covers (see `Limits`).

    Examples
    --------
    >>> from datetime import datetime, timedelta, timezone
    >>> now = datetime(2026, 1, 5, 8, 0, tzinfo=timezone.utc)
    >>> def reading(**kw):
    ...     base = dict(machine_id="c0000000-0000-0000-0000-000000000003",  # 30 kW, 30 s
    ...                 timestamp=now, power_kw=20.0, energy_kwh=20.0 * 30 / 3600)
    ...     return Reading(**{**base, **kw})
    >>> check_plausible(reading(), now, Limits())  # nothing to say
    >>> check_plausible(reading(energy_kwh=20.0 / 60), now, Limits())  # an unknown interval
    >>> for bad in (dict(timestamp=datetime(9000, 1, 1, tzinfo=timezone.utc)),
    ...             dict(power_kw=1e308), dict(energy_kwh=1e308),
    ...             dict(throughput_units_per_hour=1e200), dict(outdoor_temp_c=-80.0)):
    ...     try:
    ...         check_plausible(reading(**bad), now, Limits(), since=now - timedelta(seconds=30))
    ...     except InvalidRecord as e:
    ...         print(e.field, "|", e.reason)
    timestamp | 9000-01-01T00:00:00+00:00 is 220,077,792,000 s ahead of the clock (at most 300 s)
    power_kw | 1e+308 kW is more than 5 x the rated 30 kW of Motor-Line-A
    energy_kwh | 1e+308 kWh in 30 s: at most 0.375 kWh at 20 kW (tolerance 0.5)
    throughput_units_per_hour | 1e+200 is more than 1e+06
    outdoor_temp_c | -80 °C is outside -60..60 °C
    """
    ts = r.timestamp
    if ts < EARLIEST:
        msg = f"{ts.isoformat()} is before {EARLIEST.date().isoformat()}: is the meter's clock set?"
        raise InvalidRecord(msg, "timestamp")
    ahead = 0.0 if now is None else (ts - now).total_seconds()
    if ahead > limits.max_future_s:
        msg = (f"{ts.isoformat()} is {ahead:,.0f} s ahead of the clock "
               f"(at most {limits.max_future_s:.0f} s)")
        raise InvalidRecord(msg, "timestamp")
    machine = machine_by_id(r.machine_id)
    if machine is None:  # the decoder refuses these; here for a Reading built by hand
        msg = f"unknown machine_id {r.machine_id[:80]!r}"
        raise InvalidRecord(msg, "machine_id")
    rated = machine.rated_power_kw
    if r.power_kw > limits.max_power_factor * rated:
        msg = (f"{r.power_kw:.4g} kW is more than {limits.max_power_factor:g} x the rated "
               f"{rated:g} kW of {machine.name}")
        raise InvalidRecord(msg, "power_kw")
    interval = limits.max_energy_interval_s
    if since is not None and since < ts:
        gap = (ts - since).total_seconds()
        interval = min(max(float(machine.data_interval_seconds), gap), interval)
    tol = limits.energy_tolerance
    most = (r.power_kw * (1.0 + tol) + rated * tol) * interval / 3600.0
    if r.energy_kwh > most:
        msg = (f"{r.energy_kwh:.4g} kWh in {interval:g} s: at most {most:.4g} kWh "
               f"at {r.power_kw:.4g} kW (tolerance {tol:g})")
        raise InvalidRecord(msg, "energy_kwh")
    for name, (lo, hi) in (("outdoor_temp_c", limits.outdoor_temp_c),
                           ("machine_temp_c", limits.machine_temp_c)):
        v = getattr(r, name)
        if v is not None and not lo <= v <= hi:
            msg = f"{v:.4g} °C is outside {lo:g}..{hi:g} °C"
            raise InvalidRecord(msg, name)
    for name, most in (("throughput_units_per_hour", limits.max_throughput_units_per_hour),
                       ("production_count", limits.max_production_count),
                       ("pressure_bar", limits.max_pressure_bar)):
        v = getattr(r, name)
        if v is not None and v > most:
            msg = f"{v:.4g} is more than {most:.4g}"
            raise InvalidRecord(msg, name)
