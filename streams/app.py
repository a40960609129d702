"""The Faust app, its settings and its topics.

Faust needs a module-level ``app``; this module is one of the two places that read
`Settings.from_env()`. Importing it connects to nothing.
"""

from __future__ import annotations

from typing import Any

import aiokafka
import faust
import mode
from faust.transport.drivers import aiokafka as faust_aiokafka

from streams import topics as t
from streams.deadletters import DeadLetterSink
from streams.settings import Settings
from streams.views import JobsView, MaintenanceView, RegistryView

settings = Settings.from_env()


class _LowLatencyConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """Faust hard-codes ``fetch_max_wait_ms=1500`` for its consumer: with little traffic the
    broker then holds every fetch up to 1.5 s and events lag by seconds. Lower it."""

    def _create_worker_consumer(self, transport: Any) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        # aiokafka reads it in consumer.start(); Faust passes no setting through for it.
        consumer._fetch_max_wait_ms = settings.fetch_max_wait_ms  # noqa: SLF001
        return consumer


class _LowLatencyConsumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return _LowLatencyConsumerThread(self, loop=self.loop, beacon=self.beacon)


class _LowLatencyTransport(faust_aiokafka.Transport):
    Consumer = _LowLatencyConsumer


class EnmsApp(faust.App):
    """faust.App whose Kafka consumer does not hold fetches for 1.5 s."""

    def _new_transport(self) -> Any:
        return _LowLatencyTransport(self.conf.broker_consumer, self)


app = EnmsApp(
    settings.app_id,
    broker=f"kafka://{settings.kafka_bootstrap}",
    store="memory://",
    topic_partitions=settings.readings_partitions,
    topic_replication_factor=settings.topic_replication,
    broker_session_timeout=settings.session_timeout_s,
    broker_heartbeat_interval=settings.heartbeat_interval_s,
    broker_request_timeout=max(40.0, settings.session_timeout_s + 5),
    consumer_auto_offset_reset=settings.consumer_offset_reset,
    # Per partition: a record as large as the readings topic takes must still be fetched
    # (and dead-lettered), never stall its partition.
    consumer_max_fetch_size=t.READINGS_MAX_MESSAGE_BYTES + 64 * 1024,
    producer_linger=0.002,
    web_enabled=settings.worker_web_enabled,
    web_port=settings.worker_web_port,
    table_cleanup_interval=60.0,
    datadir=f"{settings.data_dir}/{{conf.id}}-data",
)

# Every topic carries bytes: records are encoded and decoded by `schemas` (msgspec), so a
# record that does not decode reaches our code and goes to the dead-letter topic instead of
# failing inside Faust's codec layer.
_raw: dict[str, Any] = {"key_type": bytes, "value_type": bytes, "key_serializer": "raw",
        "value_serializer": "raw"}
readings_topic = app.topic(t.READINGS, partitions=settings.readings_partitions, **_raw)
dlq_topic = app.topic(t.READINGS_DLQ, partitions=1, **_raw)
dead_letters = DeadLetterSink(dlq_topic, settings.dlq_value_max_bytes)
output_topics = {
    name: app.topic(name, partitions=settings.readings_partitions, **_raw)
    for name in (t.ANOMALIES, t.TRAINING, t.METRICS)
}
output_topics[t.ALERTS] = app.topic(t.ALERTS, partitions=1, **_raw)
energy_hourly_topic = app.topic(t.ENERGY_HOURLY, partitions=settings.readings_partitions, **_raw)
models_topic = app.topic(t.MODELS, partitions=1, **_raw)
commands_topic = app.topic(t.COMMANDS, partitions=1, **_raw)

# Views of whole topics, in every worker: the model registry, the training jobs and the
# maintenance windows.
registry_view = RegistryView(settings)
jobs_view = JobsView(settings)
maintenance_view = MaintenanceView(settings)


@app.service
class Views(mode.Service):
    """Starts and stops the views with the worker."""

    async def on_start(self) -> None:
        await registry_view.start()
        await jobs_view.start()
        await maintenance_view.start()

    async def on_stop(self) -> None:
        await registry_view.stop()
        await jobs_view.stop()
        await maintenance_view.stop()
