"""``enms evaluate nab|skab``: score detectors on the public NAB and SKAB series.

The I/O shell around `detectors.nab` and `detectors.evaluation`: loads the files, runs the
configurations in `CONFIGS`, prints a table, writes a markdown report with PNG plots to
``--out`` and freezes the best configuration and its threshold in
``detectors/configs/<benchmark>.json``.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from detectors import nab
from detectors.base import AnomalyDetector
from detectors.evaluation import (
    PointwiseMetrics,
    best_f1_threshold,
    pointwise_metrics,
    run_detector,
    split_halves,
)
from detectors.univariate import AnomalyLikelihood, HotellingT2

log = logging.getLogger(__name__)

CONFIG_DIR = Path(__file__).resolve().parent.parent / "detectors" / "configs"


# ---------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class NabSeries:
    """One NAB file: timestamps, values and labels (windows as inclusive row ranges)."""

    name: str
    timestamps: list[datetime]
    values: np.ndarray
    labels: nab.FileLabels


def _parse_ts(text: str) -> datetime:
    return datetime.fromisoformat(text.strip())


def load_nab(root: Path) -> list[NabSeries]:
    """All files listed in ``combined_windows_dev.json`` under ``root/data``."""
    windows = json.loads((root / "combined_windows_dev.json").read_text())
    out = []
    for name in sorted(windows):
        with (root / "data" / name).open(newline="") as fh:
            rows = list(csv.DictReader(fh))
        ts = [_parse_ts(r["timestamp"]) for r in rows]
        index = {t: i for i, t in enumerate(ts)}
        wins = tuple(
            (index[_parse_ts(a)], index[_parse_ts(b)]) for a, b in windows[name]
        )
        values = np.array([float(r["value"]) for r in rows])
        out.append(NabSeries(name, ts, values, nab.FileLabels(len(rows), tuple(sorted(wins)))))
    return out


@dataclass(frozen=True)
class SkabSeries:
    """One SKAB file: channel matrix, per-row labels and the channel names."""

    name: str
    columns: list[str]
    x: np.ndarray
    anomaly: np.ndarray


SKAB_TRAIN_ROWS = 400


def load_skab(root: Path) -> list[SkabSeries]:
    """Every ``*.csv`` below ``root`` (``;``-separated), sorted by relative path."""
    out = []
    for path in sorted(root.rglob("*.csv")):
        with path.open(newline="") as fh:
            rows = list(csv.DictReader(fh, delimiter=";"))
        cols = [c for c in rows[0] if c not in ("datetime", "anomaly", "changepoint")]
        x = np.array([[float(r[c]) for c in cols] for r in rows])
        y = np.array([float(r.get("anomaly") or 0.0) > 0.5 for r in rows])
        out.append(SkabSeries(str(path.relative_to(root)), cols, x, y))
    return out
