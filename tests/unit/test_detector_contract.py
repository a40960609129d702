"""The contract every online detector keeps (River's `checks/` idea), parametrized."""

from __future__ import annotations

import copy
import pickle
import random
from typing import Any, Protocol, runtime_checkable

import msgspec
import pytest

from detectors.base import AnomalyDetector
from detectors.online import HalfSpaceTreesDetector, ResidualDetector, RobustZScore
from detectors.univariate import AnomalyLikelihood, HotellingT2

DETECTORS = {
    "hst": lambda: HalfSpaceTreesDetector(limits={"power_kw": (0.0, 100.0)}, window_size=100,
                                          seed=7),
    "zscore": lambda: RobustZScore("power_kw", half_life=50),
    "residual": lambda: ResidualDetector("power_kw"),
    "likelihood": lambda: AnomalyLikelihood("power_kw", average=20, short=20, period=86400.0),
    "t2": lambda: HotellingT2(("power_kw",), fit_rows=300),
}


#: The detectors a machine's scorer runs (`detectors.scoring.make_detector`): their state is
#: written to the scorers' changelog, as data.
SCORER_DETECTORS = ("hst", "zscore", "residual")


@runtime_checkable
class Stateful(Protocol):
    """A detector whose state is data: the scorer's detectors."""

    def state(self) -> Any: ...
    def load(self, state: Any) -> None: ...


def stream(n: int, seed: int = 0) -> list[dict[str, float]]:
    rnd = random.Random(seed)
    return [{"power_kw": rnd.gauss(40.0, 1.0)} for _ in range(n)]


@pytest.fixture(params=sorted(DETECTORS))
def make(request: pytest.FixtureRequest):
    return DETECTORS[request.param]


def trained(make, n: int = 400) -> AnomalyDetector:
    det = make()
    for x in stream(n):
        det.learn_one(x)
    return det


def test_learn_one_leaves_input_unchanged(make) -> None:
    det = make()
    for x in stream(300):
        before = copy.deepcopy(x)
        det.learn_one(x)
        det.score_one(x)
        assert x == before


def test_scores_are_in_unit_interval(make) -> None:
    det = trained(make)
    probes = [{"power_kw": v} for v in (-50.0, 0.0, 39.0, 40.0, 41.0, 100.0, 1e6)]
    for x in stream(200, seed=1) + probes:
        s = det.score_one(x)
        assert 0.0 <= s <= 1.0, (x, s)


def test_same_seed_same_scores(make) -> None:
    a, b = trained(make), trained(make)
    xs = stream(100, seed=2)
    assert [a.score_one(x) for x in xs] == [b.score_one(x) for x in xs]


@pytest.mark.parametrize("name", SCORER_DETECTORS)
def test_state_survives_an_encode_decode_round_trip_as_data(name: str) -> None:
    """JSON (msgspec) out and in, never pickle: the clone scores and learns exactly as the
    original, now and after both learn the same rows."""
    det, clone = trained(DETECTORS[name]), DETECTORS[name]()
    assert isinstance(det, Stateful) and isinstance(clone, Stateful)
    state = det.state()
    raw = msgspec.json.encode(state)
    clone.load(msgspec.json.decode(raw, type=type(state)))
    xs = stream(50, seed=3)
    assert [det.score_one(x) for x in xs] == [clone.score_one(x) for x in xs]
    for x in stream(300, seed=4):
        det.learn_one(x)
        clone.learn_one(x)
    assert [det.score_one(x) for x in xs] == [clone.score_one(x) for x in xs]
    assert msgspec.json.encode(clone.state()) == msgspec.json.encode(det.state())


@pytest.mark.parametrize("name", sorted(set(DETECTORS) - set(SCORER_DETECTORS)))
def test_pickle_round_trip_keeps_state(name: str) -> None:
    """The NAB/SKAB detectors (`detectors.univariate`) run offline and keep no changelog;
    they still copy whole, as River's detectors do."""
    det = trained(DETECTORS[name])
    clone = pickle.loads(pickle.dumps(det))  # noqa: S301 - our own object, in process
    xs = stream(50, seed=3)
    assert [det.score_one(x) for x in xs] == [clone.score_one(x) for x in xs]


def test_planted_outlier_scores_above_inliers(make) -> None:
    det = trained(make)
    inliers = [det.score_one(x) for x in stream(100, seed=4)]
    assert det.score_one({"power_kw": 95.0}) > max(inliers)


def test_score_one_does_not_learn(make) -> None:
    det = trained(make)
    x = {"power_kw": 95.0}
    first = det.score_one(x)
    for _ in range(50):
        det.score_one(x)
    assert det.score_one(x) == first
