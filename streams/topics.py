"""The topic catalogue: names, partition counts and keys, in one place.

Every topic is keyed by ``machine_id`` so that one machine's readings and events stay in
order on one partition. Faust declares its own topics from these names (streams.app); the API
and the benchmarks use them with plain aiokafka.
"""

from __future__ import annotations

from dataclasses import dataclass

READINGS = "enms.readings"
READINGS_DLQ = "enms.readings.dlq"
ANOMALIES = "enms.anomalies"
TRAINING = "enms.training"
METRICS = "enms.metrics"
ALERTS = "enms.alerts"
ENERGY_HOURLY = "enms.energy.hourly"
MODELS = "enms.models"
COMMANDS = "enms.commands"
MAINTENANCE = "enms.maintenance"

#: Topics whose events the bridge forwards to Redis and WebSocket clients.
OUTPUT_TOPICS = (ANOMALIES, TRAINING, METRICS, ALERTS)

#: Redis channel of each event type: the old EnMS's six channels. There was no
#: training_failed event: a failure was training_completed with status "failed". It goes to the
#: same channel, so an old subscriber still hears of the failure, and a new one can tell the
#: two apart by event_type.
REDIS_CHANNELS = {
    "anomaly_detected": "anomaly.detected",
    "anomaly_resolved": "anomaly.resolved",  # new: the old system had no resolve event
    "anomaly_episode": "anomaly.episode",  # new: repeated anomalies as one episode
    "metric_updated": "metric.updated",
    "training_started": "training.started",
    "training_progress": "training.progress",
    "training_completed": "training.completed",
    "training_failed": "training.completed",
    "system_alert": "system.alert",
}


@dataclass(frozen=True)
class TopicSpec:
    """How a topic is created."""

    name: str
    partitions: int
    compacted: bool = False
    #: Kept forever (training reads history from it); otherwise the broker default (7 days).
    keep_forever: bool = False
    #: Records carry their event time as Kafka timestamp (replay seeks by time). The broker
    #: refuses timestamps over an hour ahead by default, and simulated or back-filled data
    #: can be, so that limit is lifted on these topics.
    event_time: bool = False
    #: Largest record batch the broker takes (None: its default, 1 MiB).
    max_message_bytes: int | None = None


#: Largest record on the readings topic. A reading is about 250 bytes; larger records are
#: taken so that they reach the worker, which dead-letters them with the reason (a record
#: the broker refused would only be an error at a producer no one watches).
READINGS_MAX_MESSAGE_BYTES = 8 * 1024 * 1024


def catalogue(readings_partitions: int) -> tuple[TopicSpec, ...]:
    """All topics the service needs, with their partition counts.

    Output topics have as many partitions as the readings topic so that the scoring agent's
    output for a machine lands on the matching partition.

    Examples
    --------
    >>> [t.name for t in catalogue(8)][:2]
    ['enms.readings', 'enms.readings.dlq']
    """
    n = readings_partitions
    return (
        TopicSpec(READINGS, n, event_time=True, max_message_bytes=READINGS_MAX_MESSAGE_BYTES),
        TopicSpec(READINGS_DLQ, 1),
        TopicSpec(ANOMALIES, n),
        TopicSpec(TRAINING, n),
        TopicSpec(METRICS, n),
        TopicSpec(ALERTS, 1),
        # Training data: replayable, so kept.
        TopicSpec(ENERGY_HOURLY, n, keep_forever=True, event_time=True),
        # The model registry: one record per (machine, model type, version) and one
        # activation pointer per (machine, model type); compaction keeps exactly those.
        TopicSpec(MODELS, 1, compacted=True),
        # Training commands: one partition, so jobs run one at a time, in order.
        TopicSpec(COMMANDS, 1),
        # Maintenance windows: the latest one per machine (keyed by machine), compacted.
        TopicSpec(MAINTENANCE, 1, compacted=True),
    )
