"""Score detections against labelled anomaly windows (the simulator's ground truth).

Event level, as an operator sees it: a labelled window counts as found when at least one
detection of its machine falls inside it (or within ``grace`` after its end); a detection
outside every window of its machine is a false alarm. Recall is per kind; precision is
over all detections (a false alarm has no kind), and F1 per kind combines the two.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol


class LabelLike(Protocol):
    """What a label needs: the simulator's `Label` fits."""

    machine_id: str
    kind: str
    start: datetime
    end: datetime


@dataclass(frozen=True)
class Report:
    """Per-kind recall and F1, overall precision, and the counts behind them."""

    per_kind: dict[str, dict[str, float]]
    precision: float
    detections: int
    false_alarms: int
    labels: int
    found: int


def backtest(detections: Iterable[tuple[str, datetime]], labels: Sequence[LabelLike],
             grace: timedelta = timedelta(minutes=5)) -> Report:
    """Match ``(machine_id, time)`` detections to labels.

    Examples
    --------
    >>> from datetime import timezone
    >>> from types import SimpleNamespace as L
    >>> t = datetime(2026, 1, 1, tzinfo=timezone.utc)
    >>> labels = [L(machine_id="m", kind="spike", start=t, end=t + timedelta(minutes=1)),
    ...           L(machine_id="m", kind="drop", start=t + timedelta(hours=1),
    ...             end=t + timedelta(hours=2))]
    >>> r = backtest([("m", t), ("m", t + timedelta(hours=5))], labels)
    >>> r.per_kind["spike"]["recall"], r.per_kind["drop"]["recall"], r.precision
    (1.0, 0.0, 0.5)
    """
    by_machine: dict[str, list[tuple[int, LabelLike]]] = {}
    for i, lab in enumerate(labels):
        by_machine.setdefault(lab.machine_id, []).append((i, lab))
    found: set[int] = set()
    n = fa = 0
    for machine_id, t in detections:
        n += 1
        hit = [i for i, lab in by_machine.get(machine_id, ())
               if lab.start <= t <= lab.end + grace]
        if hit:
            found.update(hit)
        else:
            fa += 1
    precision = (n - fa) / n if n else 1.0
    total = Counter(lab.kind for lab in labels)
    got = Counter(labels[i].kind for i in found)
    per_kind = {}
    for kind, k_total in sorted(total.items()):
        recall = got[kind] / k_total
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_kind[kind] = {"labels": k_total, "found": got[kind], "recall": round(recall, 3),
                          "f1": round(f1, 3)}
    return Report(per_kind=per_kind, precision=round(precision, 3), detections=n,
                  false_alarms=fa, labels=len(labels), found=len(found))
