"""The online detector on simulated plant data, through the same path as the worker.

Behaviour, not figures: every injected anomaly of every kind is found, nothing outside them
is flagged, and days without anomalies (a weekend included) raise no critical anomaly. The
figures over a longer run are in reports/simulator (`enms evaluate simulator`).
"""

from __future__ import annotations

from datetime import UTC, datetime

from detectors.scoring import ScoringConfig
from evaluation.simulated import simulated
from simulation import KINDS

MONDAY = datetime(2026, 1, 5, tzinfo=UTC)
FRIDAY = datetime(2026, 1, 9, tzinfo=UTC)


def test_every_kind_is_found_without_false_alarms() -> None:
    result = simulated(ScoringConfig(), days=2.5, seed=3, start=MONDAY, rate_per_day=16)
    r = result["report"]
    assert set(r["per_kind"]) == set(KINDS), r["per_kind"]
    assert r["found"] == r["labels"] > 10, r
    assert r["false_alarms"] == 0, r


def test_a_clean_weekend_raises_no_critical_anomaly() -> None:
    # Friday is warm-up; Saturday's short shift, Sunday without production and Monday's
    # first shift are judged.
    clean = simulated(ScoringConfig(), days=4, seed=5, start=FRIDAY, anomalies=False)
    assert "critical" not in clean["severities"], clean["severities"]
    assert clean["report"]["detections"] <= 2, clean["report"]
