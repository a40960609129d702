"""The scorer's state as data: versions, upcasting, what is refused, the baseline by id."""

from __future__ import annotations

import pickle
import random
from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from detectors import state as st
from detectors.baseline import _example_model
from detectors.scoring import MachineScorer, ScoringConfig
from schemas.energy import BaselineModel
from schemas.readings import Reading

M = "c0000000-0000-0000-0000-000000000003"  # Motor-Line-A, 30 kW, 30 s
T0 = datetime(2026, 3, 2, 8, tzinfo=UTC)  # a Monday


def readings(n: int, *, start: int = 0, seed: int = 0) -> list[Reading]:
    rnd = random.Random(seed)
    out = []
    for i in range(start, start + n):
        busy = (i // 120) % 2 == 1
        p = rnd.gauss(22.0 if busy else 6.0, 0.3) * (2.0 if i % 211 == 100 else 1.0)
        out.append(Reading(machine_id=M, timestamp=T0 + timedelta(seconds=30 * i), power_kw=p,
                           energy_kwh=p * 30 / 3600, throughput_units_per_hour=80.0 * busy,
                           production_count=80.0 * busy * 30 / 3600,
                           outdoor_temp_c=8.0 + (i % 240) / 40))
    return out


def model() -> BaselineModel:
    """The hand-made example baseline, as Motor-Line-A's."""
    return msgspec.structs.replace(_example_model(), machine_id=M, model_id="b7", version=7)


def v1_literal() -> st.ScorerStateV1:
    """A version 1 state, written out by hand (what a worker of that version stored)."""
    d = 8  # expected-power terms
    identity = [1e6 if i % (d + 1) == 0 else 0.0 for i in range(d * d)]
    hour = datetime(2026, 3, 2, 8, tzinfo=UTC)
    return st.ScorerStateV1(
        version=1,
        machine_id=M,
        detector=st.ResidualState(model=st.ExpectedPowerState(
            a=[0.0] * (d * d), b=[0.0] * d, theta=[5.0, 0.2, 0, 0, 0, 0, 0, 0], inv=identity,
            n=120, mad=0.04, t=hour.timestamp() + 3570.0, t_solved=hour.timestamp() + 3540.0,
            since=1, refused=0)),
        order=st.OrderState(newest=hour.timestamp() + 3570.0,
                            arrived=[round((hour.timestamp() + 3570.0) * 1000)], admitted=120),
        sustained=st.SustainedState(fast=0.4, slow=0.25),
        stuck=st.StuckState(last=21.7, same=0),
        run=st.RunState(),
        episodes=st.EpisodesState(),
        metrics=st.MetricsStateV1(
            window=st.WindowState(open=st.Interval(bucket=int(hour.timestamp() + 3540) // 60,
                                                   readings=2, energy_kwh=0.36,
                                                   power_sum=43.4, power_max=21.8)),
            hourly=st.HourState(hour=hour, n=120, energy=21.6, power_sum=2604.0,
                                power_max=22.9),
            baseline=st.BaselineStateV1(model=model(), cusum_kwh=1.25,
                                        drift=st.CusumState(s_hi=0.5, n=3), alarmed=False)),
    )


def test_a_version_1_state_is_upcast_the_model_kept_by_its_id() -> None:
    raw = msgspec.json.encode(v1_literal())
    assert raw.startswith(b'{"version":1,')
    state = st.decode(raw)
    assert state.version == st.VERSION == 2
    assert state.metrics.baseline == st.BaselineState(
        model_id="b7", cusum_kwh=1.25, drift=st.CusumState(s_hi=0.5, n=3), alarmed=False)
    assert state.order == v1_literal().order and state.detector == v1_literal().detector
    s = MachineScorer.from_state(state, ScoringConfig())
    assert (s.seen, s.cusum_kwh, s.baseline) == (120, 1.25, None)
    s.set_baseline(model())  # the worker sets the registry's active model again
    assert s.cusum_kwh == 1.25  # the same model: its sums go on
    s.set_baseline(msgspec.structs.replace(model(), model_id="b8", version=8))
    assert s.cusum_kwh == 0.0  # another one: they restart


def test_upcast_is_pure_and_leaves_a_current_state_as_it_is() -> None:
    old = v1_literal()
    before = msgspec.json.encode(old)
    new = st.upcast(old)
    assert msgspec.json.encode(old) == before
    assert st.upcast(new) is new


@pytest.mark.parametrize(("raw", "why"), [
    (pickle.dumps({"a": 1}), "not a scorer state"),
    (b"", "not a scorer state"),
    (b'{"version": 3, "machine_id": "m"}', "state version 3"),
    (b'{"version": 2, "machine_id": "m"}', "not a scorer state"),  # fields missing
    (b'{"version": "2"}', "not a scorer state"),
])
def test_what_is_not_a_readable_state_is_refused(raw: bytes, why: str) -> None:
    with pytest.raises(st.StateMismatch, match=why):
        st.decode(raw)


def test_a_nan_in_a_state_does_not_decode() -> None:
    """JSON writes NaN as null: such a state is refused, not restored as something else."""
    s = MachineScorer(M, ScoringConfig())
    for r in readings(20):
        s.step(r)
    state = s.state()
    state.sustained.slow = float("nan")
    with pytest.raises(st.StateMismatch, match="Expected `float`, got `null`"):
        st.decode(st.encode(state))


def test_a_restored_scorer_with_a_baseline_goes_on_exactly_like_the_original() -> None:
    """EnPI and CUSUM in every metric, a drift alert maybe: the same after a restore, once
    the worker has set the active model again."""
    s = MachineScorer(M, ScoringConfig(warmup=100))
    s.set_baseline(model())
    first = [o for r in readings(400) for o in s.step(r)]
    assert any(getattr(o, "cusum_kwh", None) is not None for o in first)
    clone = MachineScorer.from_state(st.decode(st.encode(s.state())), s.config)
    clone.set_baseline(model())
    rest = readings(600, start=400, seed=3)
    after = [msgspec.json.encode(o) for r in rest for o in s.step(r)]
    assert after == [msgspec.json.encode(o) for r in rest for o in clone.step(r)]
    assert any(b'"cusum_kwh":' in o and b'"cusum_kwh":null' not in o for o in after)


def test_the_state_stays_finite_after_absurd_readings() -> None:
    """Values the gates would refuse, fed straight to the core: every number of the state
    stays finite, so it round-trips (JSON would write a NaN as null)."""
    s = MachineScorer(M, ScoringConfig(warmup=40))
    rs = readings(200)
    for i, r in enumerate(rs):
        if i % 37 == 5:
            r = Reading(machine_id=M, timestamp=r.timestamp, power_kw=1e149, energy_kwh=1e149,
                        throughput_units_per_hour=1e149, outdoor_temp_c=-1e149,
                        production_count=1e149)
        elif i % 37 == 6:
            r = Reading(machine_id=M, timestamp=r.timestamp, power_kw=1e300, energy_kwh=1e300)
        s.step(r)

    def floats(obj: object) -> list[float]:
        if isinstance(obj, float):
            return [obj]
        if isinstance(obj, dict):
            return [f for v in obj.values() for f in floats(v)]
        if isinstance(obj, list):
            return [f for v in obj for f in floats(v)]
        return []

    values = floats(msgspec.to_builtins(s.state()))
    assert len(values) > 150 and all(v == v and abs(v) != float("inf") for v in values)
    assert st.decode(st.encode(s.state())) == s.state()
