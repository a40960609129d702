"""What a machine's scorer keeps between readings, as data: one `msgspec.Struct` per part.

Each part of `detectors.scoring.MachineScorer` keeps its state in (or converts it to) one of
the small structs below; `ScorerState` is the whole, with a ``version``. A worker writes it to
its changelog with `encode` and reads it back with `decode`, which upcasts a state of an
older version (`upcast`) or refuses it (`StateMismatch`: the caller starts that machine
afresh and says so). Nothing here executes code from the bytes it reads, unlike pickle.

JSON (msgspec) and not msgpack: a float64 round-trips exactly through msgspec's JSON, and a
datetime keeps its UTC offset (msgpack's timestamp turns every offset into UTC, so an
episode's times would come back written differently). A NaN or an infinity would come back
as null and fail to decode; the parts keep their state finite (`detectors.base.MAX_VALUE`).

Layout changes are additive where they can be (a new field with a default decodes an older
state as is); any other change bumps `VERSION`, keeps the old struct here and adds its
upcaster to `upcast`.
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from schemas.energy import BaselineModel
from schemas.events import AnomalyEpisode

__all__ = [
    "VERSION",
    "BaselineState",
    "BaselineStateV1",
    "CusumState",
    "DetectorState",
    "EpisodesState",
    "ExpectedPowerState",
    "ExplainedState",
    "HSTState",
    "HourState",
    "LikelihoodState",
    "Interval",
    "MetricsState",
    "MetricsStateV1",
    "OrderState",
    "PowerOnlyState",
    "ProfileState",
    "ResidualState",
    "RunState",
    "ScorerState",
    "ScorerStateV1",
    "StateMismatch",
    "StuckState",
    "SustainedState",
    "Tally",
    "WindowState",
    "ZScoreState",
    "decode",
    "encode",
    "upcast",
]

#: The layout `encode` writes. 2: the live baseline keeps its model's id, not a copy of the
#: model (the registry holds models; the worker sets the active one after a restore).
VERSION = 2


class StateMismatch(ValueError):
    """A stored state that does not fit: another version, detector or layout."""


# -- detectors ---------------------------------------------------------------------------


class ExpectedPowerState(msgspec.Struct, kw_only=True):
    """`detectors.online.ExpectedPower`: its sums and last solve, matrices row by row."""

    a: list[float]
    b: list[float]
    theta: list[float]
    inv: list[float]
    n: int = 0
    mad: float = 0.0
    t: float | None = None
    t_solved: float | None = None
    since: int = 0
    refused: int = 0
    lo: list[float] = []  # the range of each regressor over the readings learned
    hi: list[float] = []
    idle_seen: int = 0  # idle readings learned
    busy_seen: int = 0  # producing readings learned


class HSTState(msgspec.Struct, kw_only=True, tag="hst"):
    """`detectors.online.HalfSpaceTreesDetector`: its parameters and River's masses.

    River builds the trees from the seed in a fixed order of random draws, so the trees
    themselves are not stored: ``l_mass``/``r_mass`` are every node's masses in depth-first
    order over the trees, ``check`` a CRC of the split thresholds (another River that builds
    other trees from the same seed is caught, not silently fed the wrong masses), and
    ``features`` the inputs the trees were built on (empty before the first reading).
    """

    n_trees: int
    height: int
    window_size: int
    seed: int
    features: list[str] = []
    check: int = 0
    counter: int = 0
    first_window: bool = True
    l_mass: list[int] = []
    r_mass: list[int] = []


class ZScoreState(msgspec.Struct, kw_only=True, tag="zscore"):
    """`detectors.online.RobustZScore`: EW mean and mean absolute deviation."""

    n: float = 0.0
    mean: float = 0.0
    mad: float = 0.0


class ResidualState(msgspec.Struct, kw_only=True, tag="residual"):
    """`detectors.online.ResidualDetector`: its expected-power model is all it has."""

    model: ExpectedPowerState


class ExplainedState(msgspec.Struct, kw_only=True, tag="explained"):
    """`detectors.online.Explained`: a detector and the expected-power model beside it."""

    detector: HSTState | ZScoreState
    model: ExpectedPowerState


DetectorState = ResidualState | ExplainedState


class ProfileState(msgspec.Struct, kw_only=True):
    """`detectors.power_only.TimeOfWeekProfile`: per bin its open visit (day, seconds of
    data, mean, mean absolute deviation) and its earlier visits as ``[mean, deviation]``."""

    day: list[int]
    weight: list[float]
    mean: list[float]
    dev: list[float]
    past: list[list[list[float]]]


class LikelihoodState(msgspec.Struct, kw_only=True):
    """`detectors.univariate.AnomalyLikelihood`: the level and forecast, the recent and
    historic raw surprises, and the seasonal lag (``(t, value)`` pairs one period back)."""

    n: int = 0
    m_fast: float = 0.0
    m_slow: float = 0.0
    mad_slow: float = 0.0
    mad_err: float = 0.0
    recent_values: list[float] = []
    recent_surprise: list[float] = []
    history: list[float] = []
    history_sum: float = 0.0  # running sums, kept as they are (a replay must match exactly)
    history_sumsq: float = 0.0
    lag: list[tuple[float, float]] = []
    seasonal_recent: list[float] = []
    seasonal_mad: float = 0.0
    seasonal_n: int = 0


class PowerOnlyState(msgspec.Struct, kw_only=True):
    """`detectors.power_only.PowerOnlyDetector`: the profile and the likelihood."""

    profile: ProfileState
    likelihood: LikelihoodState
    tail: float = 0.0


# -- the scorer's other parts ------------------------------------------------------------


class OrderState(msgspec.Struct, kw_only=True):
    """`detectors.ordering.ReadingOrder`: timestamps (ms) in arrival order, the newest (s)
    and how many readings were admitted."""

    newest: float | None = None
    arrived: list[int] = []
    admitted: int = 0


class SustainedState(msgspec.Struct, kw_only=True):
    """`detectors.sustained.SustainedDeviation`: fast and slow EW means of z."""

    fast: float = 0.0
    slow: float = 0.0


class StuckState(msgspec.Struct, kw_only=True):
    """`detectors.stuck.StuckMeter`: the last power and how many times it repeated."""

    last: float | None = None
    same: int = 0
    rate: float = 0.0  # how often a value equals the one before
    n: int = 0
    called: bool = False  # this run was called stuck


class RunState(msgspec.Struct, kw_only=True):
    """`detectors.runs.RunTracker`: the current run of flagged readings."""

    start: datetime | None = None
    last: datetime | None = None
    kwh: float = 0.0
    followed: datetime | None = None  # start of the run whose level was last followed


class EpisodesState(msgspec.Struct, kw_only=True):
    """`detectors.episodes.EpisodeTracker`: the open episode (by the type that opened it)."""

    open: dict[str, AnomalyEpisode] = {}
    last: AnomalyEpisode | None = None  # the episode closed last (reopened within the hold)


class Interval(msgspec.Struct, kw_only=True):
    """The sums of one metric interval (`detectors.window.MetricWindow`)."""

    bucket: int  # the interval's start // its length
    readings: int = 0
    energy_kwh: float = 0.0
    power_sum: float = 0.0
    power_max: float = 0.0
    production: float = 0.0
    temp_sum: float = 0.0
    temp_n: int = 0


class Tally(msgspec.Struct, kw_only=True):
    """Readings of the open metric interval counted apart from its sums."""

    anomalies: int = 0
    duplicates: int = 0
    late: int = 0
    refused: int = 0  # not taken in at all (`detectors.hourly.too_large`)
    refused_before: int = 0  # the models' own refusals when the interval opened


class WindowState(msgspec.Struct, kw_only=True):
    """`detectors.window.MetricWindow`: the open interval (None before any reading)."""

    open: Interval | None = None
    tally: Tally = msgspec.field(default_factory=Tally)


class HourState(msgspec.Struct, kw_only=True):
    """`detectors.hourly.HourlyAggregator`: the open hour's sums."""

    hour: datetime | None = None
    n: int = 0
    energy: float = 0.0
    power_sum: float = 0.0
    power_max: float = 0.0
    production: float | None = None
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    refused: int = 0


class CusumState(msgspec.Struct, kw_only=True):
    """`detectors.drift.TabularCusum`."""

    s_hi: float = 0.0
    s_lo: float = 0.0
    n: int = 0
    direction: str | None = None


class BaselineState(msgspec.Struct, kw_only=True):
    """`detectors.enpi.LiveBaseline`: which model its sums are of (``model_id``), the
    interval CUSUM (kWh) and the hourly drift test."""

    model_id: str | None = None
    cusum_kwh: float = 0.0
    drift: CusumState = msgspec.field(default_factory=CusumState)
    alarmed: bool = False


class MetricsState(msgspec.Struct, kw_only=True):
    """`detectors.metrics.Metrics`: the metric interval, the open hour, the live baseline."""

    window: WindowState
    hourly: HourState
    baseline: BaselineState


# -- the whole -----------------------------------------------------------------------------


class ScorerState(msgspec.Struct, kw_only=True):
    """Everything `detectors.scoring.MachineScorer` keeps for one machine."""

    version: int = VERSION
    machine_id: str
    detector: DetectorState
    order: OrderState
    sustained: SustainedState
    stuck: StuckState
    run: RunState
    episodes: EpisodesState
    metrics: MetricsState
    #: The detector of readings without drivers (None until the first such reading; a
    #: version-2 state written before it existed decodes with None).
    power_only: PowerOnlyState | None = None
    #: The run of readings far off where the model barely knew the drivers (None in a
    #: state written before it was kept).
    bent: RunState | None = None


# -- older versions ----------------------------------------------------------------------


class BaselineStateV1(msgspec.Struct, kw_only=True):
    """Version 1 of `BaselineState`: a copy of the whole active model."""

    model: BaselineModel | None = None
    cusum_kwh: float = 0.0
    drift: CusumState = msgspec.field(default_factory=CusumState)
    alarmed: bool = False


class MetricsStateV1(msgspec.Struct, kw_only=True):
    """Version 1 of `MetricsState`."""

    window: WindowState
    hourly: HourState
    baseline: BaselineStateV1


class ScorerStateV1(msgspec.Struct, kw_only=True):
    """Version 1 of `ScorerState` (the first written without pickle)."""

    version: int = 1
    machine_id: str
    detector: DetectorState
    order: OrderState
    sustained: SustainedState
    stuck: StuckState
    run: RunState
    episodes: EpisodesState
    metrics: MetricsStateV1


# -- reading and writing -----------------------------------------------------------------


class _Version(msgspec.Struct):
    version: int


_encoder = msgspec.json.Encoder()
_version_decoder = msgspec.json.Decoder(_Version)
_decoders: dict[int, msgspec.json.Decoder[ScorerState] | msgspec.json.Decoder[ScorerStateV1]] = {
    1: msgspec.json.Decoder(ScorerStateV1),
    VERSION: msgspec.json.Decoder(ScorerState),
}


def encode(state: ScorerState) -> bytes:
    """The state as JSON bytes (a changelog value).

    Examples
    --------
    >>> from detectors.scoring import MachineScorer, ScoringConfig
    >>> s = MachineScorer("c0000000-0000-0000-0000-000000000003", ScoringConfig())
    >>> raw = encode(s.state())
    >>> raw[:12], decode(raw) == s.state()
    (b'{"version":2', True)
    """
    return _encoder.encode(state)


def decode(raw: bytes) -> ScorerState:
    """A stored state, upcast to `VERSION`; `StateMismatch` when it cannot be read (not
    JSON, not a scorer's state, a version this code does not know).

    Examples
    --------
    >>> decode(b"\\x80\\x04\\x95")  # a pickle, as an older worker wrote them
    Traceback (most recent call last):
    ...
    detectors.state.StateMismatch: not a scorer state: ...
    >>> decode(b'{"version": 9}')
    Traceback (most recent call last):
    ...
    detectors.state.StateMismatch: state version 9 (this worker reads 1, 2)
    """
    try:
        version = _version_decoder.decode(raw).version
        decoder = _decoders.get(version)
        if decoder is None:
            msg = f"state version {version} (this worker reads {', '.join(map(str, _decoders))})"
            raise StateMismatch(msg)
        return upcast(decoder.decode(raw))
    except msgspec.DecodeError as e:  # ValidationError included
        msg = f"not a scorer state: {e}"
        raise StateMismatch(msg) from e


def upcast(state: ScorerState | ScorerStateV1) -> ScorerState:
    """A state of any known version as one of `VERSION` (pure).

    Version 1 to 2: the live baseline keeps the id of the model its sums are of; the model
    itself comes from the registry again (`detectors.scoring.MachineScorer.set_baseline`).
    """
    if isinstance(state, ScorerState):
        return state
    b = state.metrics.baseline
    baseline = BaselineState(model_id=None if b.model is None else b.model.model_id,
                             cusum_kwh=b.cusum_kwh, drift=b.drift, alarmed=b.alarmed)
    return ScorerState(
        machine_id=state.machine_id, detector=state.detector, order=state.order,
        sustained=state.sustained, stuck=state.stuck, run=state.run, episodes=state.episodes,
        metrics=MetricsState(window=state.metrics.window, hourly=state.metrics.hourly,
                             baseline=baseline))
