"""Events: immutable past-tense facts, one struct per `event_type`, version 1.

Every event carries ``event_id`` (a UUID derived from what caused it, so replaying the same
input yields the same ids and consumers can deduplicate), ``event_type`` (the JSON tag),
``occurred_at`` (event time, never the wall clock of the worker), ``machine_id`` where it
applies and ``schema_version``. The dashboard receives exactly these fields.

Field names a client of the old EnMS would read are kept: ``metric``, ``value``,
``anomaly_score``, ``severity``, ``timestamp`` on anomalies; ``job_id`` on training events (now
the same UUID the REST call returned, not an integer made of its first 8 hex digits).
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from datetime import datetime
from typing import Any, ClassVar, Literal

import msgspec

from schemas.energy import BaselineModel
from schemas.readings import decode_record
from schemas.types import TZDateTime

Severity = Literal["critical", "warning", "normal"]
#: Severities from the mildest: which of two is worse.
SEVERITY_RANK: dict[str, int] = {"normal": 0, "warning": 1, "critical": 2}

#: Namespace of all stable event ids (uuid5).
EVENT_NAMESPACE = uuid.UUID("6f1c3c1e-5a0e-4d59-9a57-0e6d2c8f7a10")


def stable_event_id(event_type: str, *parts: object) -> str:
    """A UUID that depends only on the event type and what caused the event.

    Examples
    --------
    >>> a = stable_event_id("anomaly_detected", "m1", "2026-01-01T00:00:00+00:00", "hst")
    >>> a == stable_event_id("anomaly_detected", "m1", "2026-01-01T00:00:00+00:00", "hst")
    True
    >>> a == stable_event_id("anomaly_detected", "m2", "2026-01-01T00:00:00+00:00", "hst")
    False
    """
    return str(uuid.uuid5(EVENT_NAMESPACE, "|".join([event_type, *map(str, parts)])))


class Event(msgspec.Struct, frozen=True, kw_only=True, tag_field="event_type"):
    """Fields every event carries; `event_type` is the JSON tag of the subclass."""

    event_id: str
    occurred_at: TZDateTime
    machine_id: str | None = None
    schema_version: int = 1

    TOPIC: ClassVar[str] = ""

    @property
    def event_type(self) -> str:
        """The tag, e.g. ``anomaly_detected``."""
        return str(self.__struct_config__.tag)


class AnomalyDetected(Event, frozen=True, kw_only=True, tag="anomaly_detected"):
    """A reading (or window) judged anomalous by a detector."""

    TOPIC: ClassVar[str] = "enms.anomalies"

    machine_name: str
    timestamp: TZDateTime  # the reading's time (old contract field)
    metric: str  # e.g. power_kw
    value: float
    expected_value: float | None
    deviation_percent: float | None
    score: float  # detector score in [0, 1], high = anomalous
    threshold: float
    anomaly_score: float  # deviation in robust standard deviations (old contract field)
    severity: Severity
    anomaly_type: str  # spike, drop, drift, stuck, off_shift, baseline_deviation, unknown
    detector: str
    explanation: str = ""
    episode_id: str | None = None  # set when the anomaly belongs to an episode
    #: Energy above (+) or below (-) expected over the anomaly's run so far, in kWh.
    energy_impact_kwh: float | None = None


class AnomalyEpisode(Event, frozen=True, kw_only=True, tag="anomaly_episode"):
    """Repeated anomalies of one machine and type, close in time: one fault, one episode."""

    TOPIC: ClassVar[str] = "enms.anomalies"

    episode_id: str  # the event_id of its first anomaly
    status: Literal["opened", "updated", "closed"]
    machine_name: str
    anomaly_type: str
    severity: Severity
    first_at: TZDateTime
    last_at: TZDateTime
    count: int
    peak_value: float
    expected_value: float | None = None
    explanation: str = ""


class AnomalyResolved(Event, frozen=True, kw_only=True, tag="anomaly_resolved"):
    """An operator resolved an anomaly (``PUT /anomaly/{id}/resolve``)."""

    TOPIC: ClassVar[str] = "enms.anomalies"

    anomaly_id: str
    resolution_notes: str = ""


class MetricUpdated(Event, frozen=True, kw_only=True, tag="metric_updated"):
    """Per-machine figures over one event-time interval."""

    TOPIC: ClassVar[str] = "enms.metrics"

    timestamp: TZDateTime  # end of the interval
    metric: str  # headline metric, old contract: "power_kw"
    value: float  # its mean over the interval
    window_start: TZDateTime
    window_end: TZDateTime
    readings: int
    anomalies: int
    energy_kwh: float
    mean_power_kw: float
    max_power_kw: float
    # Filled once a baseline is active (issue 3): expected energy, EnPI, CUSUM.
    expected_energy_kwh: float | None = None
    enpi: float | None = None
    cusum_kwh: float | None = None
    #: Readings of the interval skipped as already seen (same machine and timestamp).
    duplicates: int = 0
    #: Readings counted here although older than the machine's newest (within
    #: max_lateness_s); ``readings`` includes them.
    late: int = 0
    #: Readings (or a model's share of one) refused because they would have made a sum or
    #: a model NaN or infinite.
    refused: int = 0


class TrainingStarted(Event, frozen=True, kw_only=True, tag="training_started"):
    """A training job began."""

    TOPIC: ClassVar[str] = "enms.training"

    training_job_id: str
    job_id: str  # same as training_job_id (old field name)
    model_type: str
    trigger_type: str = "manual"
    reason: str = ""


class TrainingProgress(Event, frozen=True, kw_only=True, tag="training_progress"):
    """A training job reached a stage."""

    TOPIC: ClassVar[str] = "enms.training"

    training_job_id: str
    job_id: str
    model_type: str
    stage: str
    progress_pct: float
    status: str = "running"
    message: str = ""


class TrainingCompleted(Event, frozen=True, kw_only=True, tag="training_completed"):
    """A training job finished with a model (accepted or not)."""

    TOPIC: ClassVar[str] = "enms.training"

    training_job_id: str
    job_id: str
    model_type: str
    status: str = "completed"
    version: int
    accepted: bool
    reasons: list[str] = msgspec.field(default_factory=list)
    metrics: dict[str, Any] = msgspec.field(default_factory=dict)


class TrainingFailed(Event, frozen=True, kw_only=True, tag="training_failed"):
    """A training job ended without a model."""

    TOPIC: ClassVar[str] = "enms.training"

    training_job_id: str
    job_id: str
    model_type: str
    status: str = "failed"
    error: str
    error_message: str = ""  # old contract field, same text as error


class SystemAlert(Event, frozen=True, kw_only=True, tag="system_alert"):
    """Something an operator should know: drift, a dead worker, a dropped record."""

    TOPIC: ClassVar[str] = "enms.alerts"

    alert_type: str
    severity: Severity | Literal["info"]
    message: str
    details: dict[str, Any] = msgspec.field(default_factory=dict)


_encoder = msgspec.json.Encoder()


class MaintenanceWindow(Event, frozen=True, kw_only=True, tag="maintenance_window"):
    """A machine is in maintenance from ``start`` to ``end`` (event time of its readings):
    its readings are not judged and not learned from. The latest window per machine counts
    (the topic is compacted by machine); ending one early is a new window ending then."""

    TOPIC: ClassVar[str] = "enms.maintenance"

    start: TZDateTime
    end: TZDateTime
    reason: str = ""

    def covers(self, ts: datetime) -> bool:
        """Whether a reading at ``ts`` falls in the window."""
        return self.start <= ts < self.end


def encode(obj: msgspec.Struct) -> bytes:
    """JSON bytes of any record or event."""
    return _encoder.encode(obj)


class DeadLetter(msgspec.Struct, frozen=True, kw_only=True):
    """A record that could not be processed, with why and where it came from.

    ``value`` is the original payload as text, so an operator can read it, fix the producer
    and re-send; bytes that are not UTF-8 are kept exactly, base64-encoded
    (``value_encoding``). A value longer than the worker's ``dlq_value_max_bytes`` is cut
    (``value_truncated``); its full size and SHA-256 stay, to find the original on the
    source topic. ``value`` is None for a tombstone (a record with a null value).
    """

    NAMESPACE: ClassVar[str] = "enms.deadletter"

    source_topic: str
    source_partition: int
    source_offset: int
    key: str | None
    value: str | None
    reason: str
    field: str
    failed_at: TZDateTime
    value_encoding: Literal["utf-8", "base64"] = "utf-8"
    value_bytes: int | None = None
    value_sha256: str | None = None
    value_truncated: bool = False
    schema_version: int = 1

    @classmethod
    def of(cls, *, topic: str, partition: int, offset: int, key: bytes | None,
           value: bytes | None, reason: str, field: str, failed_at: datetime,
           max_bytes: int = 16_384) -> DeadLetter:
        """The dead letter of a record, its value cut to ``max_bytes`` and its key to 256.

        Examples
        --------
        >>> from datetime import datetime, timezone
        >>> now = datetime(2026, 1, 1, tzinfo=timezone.utc)
        >>> d = DeadLetter.of(topic="t", partition=0, offset=7, key=b"m", value=b"\\xff" * 100,
        ...                   reason="bad", field="$", failed_at=now, max_bytes=6)
        >>> d.value, d.value_encoding, d.value_bytes, d.value_truncated
        ('////////', 'base64', 100, True)
        >>> DeadLetter.of(topic="t", partition=0, offset=8, key=None, value="é".encode() * 4,
        ...               reason="bad", field="$", failed_at=now, max_bytes=5).value
        'éé'
        """
        text: str | None = None
        encoding: Literal["utf-8", "base64"] = "utf-8"
        if value is not None:
            value = bytes(value)
            cut = value[:max_bytes]
            try:
                text = cut.decode("utf-8")
            except UnicodeDecodeError as e:
                if len(cut) < len(value) and e.start >= len(cut) - 3:  # cut inside a character
                    try:
                        text = cut[:e.start].decode("utf-8")
                    except UnicodeDecodeError:
                        text = None
                if text is None:
                    text, encoding = base64.b64encode(cut).decode("ascii"), "base64"
        return cls(
            source_topic=topic, source_partition=partition, source_offset=offset,
            key=None if key is None else bytes(key[:256]).decode("utf-8", "replace"),
            value=text, reason=reason, field=field[:200], failed_at=failed_at,
            value_encoding=encoding, value_bytes=None if value is None else len(value),
            value_sha256=None if value is None else hashlib.sha256(value).hexdigest(),
            value_truncated=value is not None and len(value) > max_bytes)


# -- Model registry (topic enms.models) and training commands (enms.commands) ---------------


class ModelTrained(Event, frozen=True, kw_only=True, tag="model_trained"):
    """A model version was fitted (accepted or not); carries the whole model as plain data."""

    TOPIC: ClassVar[str] = "enms.models"

    model_type: str
    version: int
    model: BaselineModel


class ModelActivated(Event, frozen=True, kw_only=True, tag="model_activated"):
    """A version became the active one of its machine and model type."""

    TOPIC: ClassVar[str] = "enms.models"

    model_type: str
    version: int
    model_id: str
    previous_version: int | None = None
    reason: str = ""


class ModelRolledBack(Event, frozen=True, kw_only=True, tag="model_rolled_back"):
    """The active version went back to an earlier one."""

    TOPIC: ClassVar[str] = "enms.models"

    model_type: str
    version: int  # active after the rollback
    model_id: str
    from_version: int
    reason: str = ""


RegistryEvent = ModelTrained | ModelActivated | ModelRolledBack

#: Every event type, by its ``event_type`` tag: the one decoder below knows them all.
AnyEvent = (
    AnomalyDetected
    | AnomalyEpisode
    | AnomalyResolved
    | MetricUpdated
    | TrainingStarted
    | TrainingProgress
    | TrainingCompleted
    | TrainingFailed
    | SystemAlert
    | MaintenanceWindow
    | ModelTrained
    | ModelActivated
    | ModelRolledBack
)
_event_decoder = msgspec.json.Decoder(AnyEvent)


def decode_event(raw: bytes) -> Event:
    """Decode any event by its ``event_type`` tag (`msgspec.DecodeError`, or its subclass
    `msgspec.ValidationError`, when it is not one).

    Examples
    --------
    >>> from datetime import datetime, timezone
    >>> e = SystemAlert(event_id="x", occurred_at=datetime(2026, 1, 1, tzinfo=timezone.utc),
    ...                 alert_type="test", severity="info", message="hi")
    >>> decode_event(encode(e)) == e, e.event_type
    (True, 'system_alert')
    >>> decode_event(b'{"event_type": "nothing_we_know", "event_id": "x"}')
    Traceback (most recent call last):
    msgspec.ValidationError: Invalid value 'nothing_we_know' - at `$.event_type`
    """
    event: Event = _event_decoder.decode(raw)
    return event


def _misplaced(event: Event, topic: str) -> msgspec.ValidationError:
    return msgspec.ValidationError(f"a {event.event_type} event does not belong on {topic}")


def decode_registry_event(raw: bytes) -> RegistryEvent:
    """Decode a record of ``enms.models``: `decode_event`, and it must be a registry event."""
    event = decode_event(raw)
    if not isinstance(event, RegistryEvent):
        raise _misplaced(event, "enms.models")
    return event


def decode_maintenance(raw: bytes) -> MaintenanceWindow:
    """Decode a record of ``enms.maintenance``: `decode_event`, and it must be a window."""
    event = decode_event(raw)
    if not isinstance(event, MaintenanceWindow):
        raise _misplaced(event, "enms.maintenance")
    return event


def registry_key(machine_id: str, model_type: str, version: int | None = None) -> str:
    """Compaction key: one per version (``m|baseline|v3``), one pointer (``m|baseline|active``).

    Examples
    --------
    >>> registry_key("m1", "baseline", 3), registry_key("m1", "baseline")
    ('m1|baseline|v3', 'm1|baseline|active')
    """
    return f"{machine_id}|{model_type}|" + ("active" if version is None else f"v{version}")


class TrainCommand(msgspec.Struct, frozen=True, kw_only=True):
    """Run a training job (topic ``enms.commands``); ``training_job_id`` is the REST job id."""

    NAMESPACE: ClassVar[str] = "enms.command.train"

    training_job_id: str
    machine_id: str
    model_type: str = "baseline"
    trigger_type: str = "manual"  # manual, scheduled, drift
    reason: str = ""
    #: Training window by hour_start; None: the machine's last ``window_days`` of data.
    start: TZDateTime | None = None
    end: TZDateTime | None = None
    window_days: int = 28
    drivers: list[str] | None = None
    #: "auto": activate if it passes acceptance; "never": store only.
    activation: Literal["auto", "never"] = "auto"
    requested_at: TZDateTime
    schema_version: int = 1


_command_decoder = msgspec.json.Decoder(TrainCommand)


def decode_command(raw: bytes | None) -> TrainCommand:
    """Decode a record of ``enms.commands``; `schemas.readings.InvalidRecord` when it is not
    a training command."""
    command: TrainCommand = decode_record(_command_decoder, raw, "a training command")
    return command
