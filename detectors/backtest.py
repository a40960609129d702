"""Score detections against labelled anomaly windows (the simulator's ground truth).

Event level, as an operator sees it. A labelled window counts as found when at least one
detection of its machine falls inside it (or within ``grace`` after its end). A detection
outside every window of its machine is a false detection. Detections are grouped into
*alarms*: a machine's detections, true and false separately, no more than ``gap`` apart, one
alarm per started hour they span; an operator is alerted once per alarm, so precision is
counted over alarms (a per-second machine flagging a 90-minute fault raises two alarms, not
5,400, and flagging all week raises 168 false ones, not one). Reading-level precision is
reported beside it. Recall is per kind; precision is over all alarms (a false alarm has no
kind), and F1 per kind combines the two, so one false alarm lowers every kind's F1.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from detectors.scoring import Observer, ScoringConfig, score_stream
from schemas.events import AnomalyDetected
from schemas.readings import Reading


class LabelLike(Protocol):
    """What a label needs (read-only): the simulator's frozen `Label` fits."""

    @property
    def machine_id(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def start(self) -> datetime: ...
    @property
    def end(self) -> datetime: ...


@dataclass(frozen=True)
class Report:
    """Per-kind recall and F1, alarm precision, and the counts behind them."""

    per_kind: dict[str, dict[str, float]]
    precision: float
    alarms: int
    false_alarms: int
    detections: int
    false_detections: int
    reading_precision: float
    labels: int
    found: int


def _alarms(times: dict[str, list[datetime]], gap: timedelta, longest: timedelta) -> int:
    """Runs of detections no more than ``gap`` apart; a run counts once per ``longest`` it
    spans (flagging all week is not one alarm)."""
    n = 0
    for ts in times.values():
        first = last = None
        for t in [*sorted(ts), None]:
            if t is None or last is None or t - last > gap:
                if first is not None and last is not None:
                    n += 1 + int((last - first) / longest)
                first = t
            last = t
    return n


def backtest(detections: Iterable[tuple[str, datetime]], labels: Sequence[LabelLike],
             grace: timedelta = timedelta(minutes=5), gap: timedelta = timedelta(minutes=5),
             longest: timedelta = timedelta(hours=1)) -> Report:
    """Match ``(machine_id, time)`` detections to labels.

    Examples
    --------
    >>> from datetime import timezone
    >>> from types import SimpleNamespace as L
    >>> t = datetime(2026, 1, 1, tzinfo=timezone.utc)
    >>> labels = [L(machine_id="m", kind="spike", start=t, end=t + timedelta(minutes=1)),
    ...           L(machine_id="m", kind="drop", start=t + timedelta(hours=1),
    ...             end=t + timedelta(hours=2))]
    >>> m = timedelta(minutes=1)
    >>> r = backtest([("m", t), ("m", t + 5 * m), ("m", t + 7 * m), ("m", t + 9 * m)], labels)
    >>> r.per_kind["spike"]["recall"], r.per_kind["drop"]["recall"]
    (1.0, 0.0)
    >>> r.alarms, r.false_alarms, r.precision, r.reading_precision
    (2, 1, 0.5, 0.5)
    >>> every_minute = [("n", t + i * m) for i in range(24 * 60)]  # a day, all wrong
    >>> backtest(every_minute, labels).false_alarms
    24
    """
    by_machine: dict[str, list[tuple[int, LabelLike]]] = {}
    for i, lab in enumerate(labels):
        by_machine.setdefault(lab.machine_id, []).append((i, lab))
    found: set[int] = set()
    true_t: dict[str, list[datetime]] = {}
    false_t: dict[str, list[datetime]] = {}
    n = fd = 0
    for machine_id, t in detections:
        n += 1
        hit = [i for i, lab in by_machine.get(machine_id, ())
               if lab.start <= t <= lab.end + grace]
        if hit:
            found.update(hit)
            true_t.setdefault(machine_id, []).append(t)
        else:
            fd += 1
            false_t.setdefault(machine_id, []).append(t)
    true_alarms, false_alarms = _alarms(true_t, gap, longest), _alarms(false_t, gap, longest)
    alarms = true_alarms + false_alarms
    precision = true_alarms / alarms if alarms else 1.0
    total = Counter(lab.kind for lab in labels)
    got = Counter(labels[i].kind for i in found)
    per_kind = {}
    for kind, k_total in sorted(total.items()):
        recall = got[kind] / k_total
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_kind[kind] = {"labels": k_total, "found": got[kind], "recall": round(recall, 3),
                          "f1": round(f1, 3)}
    return Report(per_kind=per_kind, precision=round(precision, 3), alarms=alarms,
                  false_alarms=false_alarms, detections=n, false_detections=fd,
                  reading_precision=round((n - fd) / n, 3) if n else 1.0,
                  labels=len(labels), found=len(found))


def score_and_match(readings: Iterable[Reading], config: ScoringConfig,
                    labels: Sequence[LabelLike], judge_from: datetime | None = None,
                    observe: Observer | None = None,
                    judge_machine_from: Mapping[str, datetime] | None = None,
                    ) -> tuple[Report, dict[str, int], int]:
    """Score readings as the worker does (`score_stream`) and match the detections at or
    after ``judge_from`` (a machine's own time in ``judge_machine_from``, e.g. a longer
    warm-up) to ``labels``: the report, the severities judged, the readings scored. Shared
    by the in-process simulator backtest and the replay of the topic."""
    own = judge_machine_from or {}
    n = 0
    severities: dict[str, int] = {}
    detections = []

    def counted() -> Iterator[Reading]:
        nonlocal n
        for r in readings:
            n += 1
            yield r
    for e in score_stream(counted(), config, observe):
        since = own.get(e.machine_id or "", judge_from) if isinstance(
            e, AnomalyDetected) else None
        if isinstance(e, AnomalyDetected) and (since is None or e.timestamp >= since):
            detections.append((e.machine_id or "", e.timestamp))
            severities[e.severity] = severities.get(e.severity, 0) + 1
    return backtest(detections, labels), severities, n
