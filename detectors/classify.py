"""What a flagged reading is, how bad it is, and how much of a reading is learned."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

from schemas.events import SEVERITY_RANK, Severity

#: A run of point anomalies this long is a `baseline_deviation`, not a string of spikes.
LONG_RUN = timedelta(minutes=15)


def classify(*, stuck: bool, point: bool, drifting: bool, z: float, producing: bool,
             run: timedelta) -> str:
    """The anomaly type of a flagged reading.

    ``stuck`` (the meter repeats itself) comes first. A reading flagged on its own
    (``point``) that does not go the way a running drift does (``drifting``) is an
    ``off_shift`` (above expected while reporting no production), a ``spike`` or a
    ``drop``, or a ``baseline_deviation`` once its run has lasted `LONG_RUN`. Anything else
    flagged is a ``drift``.

    Examples
    --------
    >>> ok = {"stuck": False, "point": True, "drifting": False, "producing": True,
    ...       "run": timedelta(0)}
    >>> classify(**ok, z=8.0), classify(**ok, z=-8.0)
    ('spike', 'drop')
    >>> classify(**{**ok, "producing": False}, z=8.0)
    'off_shift'
    >>> classify(**{**ok, "run": timedelta(minutes=20)}, z=8.0)
    'baseline_deviation'
    >>> classify(**{**ok, "drifting": True}, z=8.0), classify(**{**ok, "stuck": True}, z=0.0)
    ('drift', 'stuck')
    """
    if stuck:
        return "stuck"
    if not point or drifting:
        return "drift"
    if z > 0 and not producing:
        return "off_shift"
    if run >= LONG_RUN:
        return "baseline_deviation"  # far off for a quarter of an hour: not a spike
    return "spike" if z > 0 else "drop"


def learning_weight(*, follow: bool, flagged: bool, leaning: bool, alone: bool) -> float:
    """How much of a reading the models learn, after it was scored.

    Fully from a normal reading, and from a lasting change being followed (``follow``); a
    tenth while the recent residuals lean one way (``leaning``: the start of a slow drift
    must not become the norm) and from a reading flagged only by the sustained test (so a
    model that learned a drift as normal, say in a new temperature range, heals instead of
    flagging for days); nothing from a reading flagged on its own (``alone``: a spike, a
    drop, off shift or a stuck meter).

    Examples
    --------
    >>> learning_weight(follow=False, flagged=False, leaning=False, alone=False)
    1.0
    >>> learning_weight(follow=False, flagged=True, leaning=False, alone=False)
    0.1
    >>> learning_weight(follow=False, flagged=True, leaning=True, alone=True)
    0.0
    """
    if follow or not (flagged or leaning):
        return 1.0
    return 0.0 if alone else 0.1


def producing(drivers: Mapping[str, float]) -> bool:
    """Whether the reading says the machine was producing (True when it does not say).

    Examples
    --------
    >>> producing({"throughput_units_per_hour": 0.0}), producing({"outdoor_temp_c": 3.0})
    (False, True)
    """
    for name in ("throughput_units_per_hour", "production_count"):
        if name in drivers:
            return drivers[name] > 0
    return True


def severity_of(z: float, impact_kwh: float | None = None,
                rated_kw: float | None = None) -> Severity:
    """How bad an anomaly is: how far it deviates, and how much energy it has cost so far.

    ``impact_kwh`` is the energy above (or below) expected over the anomaly's run so far;
    how long it lasts enters through it. Against the machine's rated power:

    * critical: at least 6 robust σ off and a *material* impact (ten seconds at rated
      power, e.g. 0.15 kWh for a 55 kW compressor), or a *large* impact whatever the σ (a
      minute at rated power: a long modest drift ends up here);
    * warning: at least 3 σ off, or a material impact;
    * normal: the rest.

    Without an impact (``impact_kwh`` or ``rated_kw`` None) σ alone decides: critical from 6.

    Examples
    --------
    >>> severity_of(7.0), severity_of(-4.5), severity_of(2.0)
    ('critical', 'warning', 'normal')
    >>> severity_of(40.0, impact_kwh=0.02, rated_kw=55.0)  # a one-second spike: little energy
    'warning'
    >>> severity_of(40.0, impact_kwh=0.3, rated_kw=55.0), severity_of(3.5, 1.2, 55.0)
    ('critical', 'critical')
    """
    a = abs(z)
    if impact_kwh is None or rated_kw is None:
        return "critical" if a >= 6 else "warning" if a >= 3 else "normal"
    material, large = rated_kw * 10 / 3600, rated_kw * 60 / 3600
    impact = abs(impact_kwh)
    if (a >= 6 and impact >= material) or impact >= large:
        return "critical"
    return "warning" if a >= 3 or impact >= material else "normal"


def flagged_severity(kind: str, z: float, impact_kwh: float, rated_kw: float) -> Severity:
    """The severity of a flagged reading: `severity_of`, but at least a warning ("normal"
    would say there is nothing to see); a stuck meter is a warning (its energy is unknown).

    Examples
    --------
    >>> flagged_severity("spike", 2.0, 0.0, 55.0), flagged_severity("stuck", 40.0, 5.0, 55.0)
    ('warning', 'warning')
    >>> flagged_severity("drift", 3.5, 1.2, 55.0)
    'critical'
    """
    if kind == "stuck":
        return "warning"
    severity = severity_of(z, impact_kwh, rated_kw)
    return severity if SEVERITY_RANK[severity] > SEVERITY_RANK["warning"] else "warning"
