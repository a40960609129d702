"""Meters with power only: the time-of-week profile, the power-only detector, and the
frozen NAB configuration being the worker's default."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec

from detectors import state as scorer_state
from detectors.power_only import PowerOnlyDetector, TimeOfWeekProfile
from detectors.scoring import POWER_ONLY_LIKELIHOOD, MachineScorer, ScoringConfig
from schemas.events import AnomalyDetected, AnomalyEpisode
from schemas.machines import Machine
from schemas.readings import Reading

MONDAY = datetime(2026, 1, 5, tzinfo=UTC)
METER = Machine(id="m-lights", name="Lights", type="lighting", rated_power_kw=40.0,
                data_interval_seconds=60)


def lights(t: datetime) -> float:
    """Weekdays 06-22 on, Saturday 06-14 at 60 %, else a base load."""
    day, hour = t.weekday(), t.hour
    if day < 5 and 6 <= hour < 22:
        return 36.0
    if day == 5 and 6 <= hour < 14:
        return 22.0
    return 5.0


def week_readings(days: int, start: datetime = MONDAY, fault=None) -> list[Reading]:
    out = []
    for i in range(days * 24 * 60):
        t = start + timedelta(minutes=i)
        p = lights(t) * (1.0 + 0.01 * ((i * 7919) % 11 - 5) / 5)
        if fault is not None:
            p = fault(t, p)
        out.append(Reading(machine_id=METER.id, timestamp=t, power_kw=p, energy_kwh=p / 60))
    return out


def run(s: MachineScorer, rs: list[Reading]) -> list:
    return [e for r in rs for e in s.step(r)]


def test_the_profile_judges_by_earlier_visits_never_by_todays() -> None:
    p = TimeOfWeekProfile(floor=0.1)
    t = MONDAY.timestamp() + 7 * 3600
    for k in range(60):  # Monday 07:00-08:00 at 30 kW: the first visit of these bins
        p.learn(t + 60 * k, 30.0, 60.0)
    assert p.judge(t + 1800, 5.0) is None  # today's visit does not judge today
    tuesday = t + 86_400
    [(level, _)] = p.levels(tuesday)
    assert level == 30.0  # Tuesday 07:00 is judged by Monday 07:00 (the weekday bin)
    assert p.z(tuesday, 5.0) < -20


def test_a_shift_pattern_alone_is_not_an_anomaly() -> None:
    """Two clean weeks of a lighting meter (shifts, Saturday mornings, Sundays off):
    nothing flagged, every hour judged by its own level."""
    s = MachineScorer(METER, ScoringConfig())
    out = run(s, week_readings(14))
    assert not [e for e in out if isinstance(e, AnomalyDetected)]
    sunday_noon = (MONDAY + timedelta(days=13, hours=12)).timestamp()
    expected = s.power_only.profile.expected(sunday_noon)
    assert expected is not None and abs(expected - 5.0) < 0.5


def test_a_meter_first_seen_late_at_night_does_not_flag_its_first_morning() -> None:
    """Started at 22:00: its first "day" is two hours of night. The next morning's shift
    is not judged by them (the overall level needs two earlier days)."""
    s = MachineScorer(METER, ScoringConfig())
    out = run(s, week_readings(2, start=MONDAY + timedelta(hours=22)))
    assert not [e for e in out if isinstance(e, AnomalyDetected)]


def test_lights_left_on_at_night_are_found_once_and_the_return_to_normal_is_not() -> None:
    """Week 3, Wednesday night 23:00-02:00: lights on. One episode, flagged inside the
    fault only; Thursday and Friday nights are normal again and raise nothing."""
    start, end = MONDAY + timedelta(days=16, hours=23), MONDAY + timedelta(days=17, hours=2)

    def on_at_night(t: datetime, p: float) -> float:
        return 36.0 if start <= t < end else p

    s = MachineScorer(METER, ScoringConfig())
    out = run(s, week_readings(19, fault=on_at_night))
    flagged = [e for e in out if isinstance(e, AnomalyDetected)]
    opened = [e for e in out if isinstance(e, AnomalyEpisode) and e.status == "opened"]
    assert flagged and all(start <= a.timestamp < end for a in flagged)
    assert len(opened) == 1 and opened[0].anomaly_type == "off_shift"


def test_a_lasting_level_change_is_followed_and_announced_once() -> None:
    """From week 3 the meter draws 30 % more at every hour: flagged for follow_after_s,
    in one episode, then the new level is followed."""
    change = MONDAY + timedelta(days=14, hours=9)

    def more(t: datetime, p: float) -> float:
        return 1.3 * p if t >= change else p

    s = MachineScorer(METER, ScoringConfig(follow_after_s=2 * 3600.0))
    out = run(s, week_readings(21, fault=more))
    flagged = [e for e in out if isinstance(e, AnomalyDetected)]
    opened = [e for e in out if isinstance(e, AnomalyEpisode) and e.status == "opened"]
    assert flagged and flagged[0].timestamp >= change
    assert len(opened) <= 2
    last_days = [a for a in flagged if a.timestamp > change + timedelta(days=3)]
    assert not last_days


def test_the_power_only_state_round_trips_exactly() -> None:
    s = MachineScorer(METER, ScoringConfig())
    run(s, week_readings(8))
    state = scorer_state.decode(scorer_state.encode(s.state()))
    assert state.power_only is not None
    clone = MachineScorer.from_state(state, s.config, METER)
    rest = week_readings(1, start=MONDAY + timedelta(days=8))
    assert ([msgspec.json.encode(e) for e in run(s, rest)]
            == [msgspec.json.encode(e) for e in run(clone, rest)])


def test_the_detector_keeps_the_likelihoods_parameters() -> None:
    det = PowerOnlyDetector(floor=0.1, likelihood=POWER_ONLY_LIKELIHOOD)
    assert det.surprise.period == 86_400.0 and det.surprise.combine == "mean"


def test_the_frozen_nab_configuration_is_the_workers_default() -> None:
    frozen = json.loads((Path(__file__).parents[2] / "evaluation" / "configs"
                         / "nab.json").read_text())
    cfg = ScoringConfig()
    for name, value in frozen["scoring_config"].items():
        assert getattr(cfg, name) == value, name
    assert frozen["scores"]["optimised"]["standard"] >= 65
    assert frozen["scores"]["frozen"]["standard"] >= 60
