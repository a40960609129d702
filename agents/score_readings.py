"""Score every reading online per machine; emit anomalies and metrics; dead-letter bad input."""

from __future__ import annotations

import logging
import time
import zlib
from collections.abc import Sequence
from datetime import UTC, datetime

import faust

from detectors.scoring import MachineScorer, Output, ScoringConfig
from schemas.energy import EnergyHourly
from schemas.events import DeadLetter, SystemAlert, TrainCommand, encode, stable_event_id
from schemas.readings import InvalidRecord, decode_reading
from streams.app import (
    app,
    commands_topic,
    dlq_topic,
    energy_hourly_topic,
    maintenance_view,
    output_topics,
    readings_topic,
    registry_view,
    settings,
)
from tables.scorers import scorers

log = logging.getLogger(__name__)

CONFIG = ScoringConfig(
    detector=settings.detector, threshold=settings.threshold, warmup=settings.warmup,
    window_seconds=settings.window_seconds,
    metrics_interval_s=settings.metrics_interval_s, seed=settings.seed,
)
_last_checkpoint: dict[str, float] = {}


def dead_letter(event: faust.types.EventT, reason: str, field: str) -> DeadLetter:
    """The dead-letter record of a message that could not be processed."""
    msg = event.message
    raw = msg.value if isinstance(msg.value, bytes) else bytes(msg.value or b"")
    return DeadLetter(
        source_topic=msg.topic, source_partition=msg.partition, source_offset=msg.offset,
        key=msg.key.decode("utf-8", "replace") if isinstance(msg.key, bytes) else None,
        value=raw.decode("utf-8", "replace"), reason=reason, field=field,
        failed_at=datetime.now(UTC),
    )


def process(event: faust.types.EventT) -> tuple[str, list[Output]] | DeadLetter:
    """Decode and score one message: (machine_id, events), or a `DeadLetter`, never raise."""
    try:
        reading = decode_reading(event.message.value)
    except InvalidRecord as e:
        return dead_letter(event, e.reason, e.field)
    key = reading.machine_id.encode()
    scorer = scorers.get(key)
    if scorer is None or not scorer.usable_with(CONFIG):
        if scorer is not None:  # restored from an older version or another detector
            log.warning("%s: detector state from another version; starting it afresh",
                        reading.machine_id)
        scorer = scorers[key] = MachineScorer(reading.machine_id, CONFIG)
        # Stagger the machines' checkpoints over the interval (pickling one takes ~5 ms):
        # all falling due in one batch would stall it.
        offset = (zlib.crc32(key) % 1000) / 1000 * settings.checkpoint_interval_s
        _last_checkpoint[reading.machine_id] = time.monotonic() - offset
    scorer.config = CONFIG  # a restored scorer takes today's thresholds
    scorer.set_baseline(registry_view.registry.active_model(reading.machine_id))
    scorer.maintenance = maintenance_view.maintenance.window(reading.machine_id)
    try:
        return reading.machine_id, scorer.step(reading)
    except Exception as e:  # a bug must not stop the other machines; keep the record
        log.exception("scoring failed at %s[%s]@%s", event.message.topic,
                      event.message.partition, event.message.offset)
        return dead_letter(event, f"processing error: {e!r}", "$")


def checkpoint(machine_ids: set[str]) -> None:
    """Write changed detectors to the changelog, at most once per interval each."""
    now = time.monotonic()
    for mid in machine_ids:
        if now - _last_checkpoint.get(mid, 0.0) >= settings.checkpoint_interval_s:
            key = mid.encode()
            scorers[key] = scorers[key]  # reassign: the changelog records it
            _last_checkpoint[mid] = now


@app.agent(readings_topic)
async def score_readings(stream: faust.StreamT[bytes]) -> None:
    """Batches of readings in, anomaly/metric events and dead letters out."""
    async for batch in stream.take_events(settings.batch_max, within=settings.batch_within_s):
        touched = await emit_batch(batch)
        checkpoint(touched)


async def emit_batch(batch: Sequence[faust.types.EventT]) -> set[str]:
    """Process a batch and send what it produced; return the machines it touched."""
    touched: set[str] = set()
    for event in batch:
        out = process(event)
        if isinstance(out, DeadLetter):
            log.warning("dead letter %s[%s]@%s: %s (%s)", out.source_topic,
                        out.source_partition, out.source_offset, out.reason, out.field)
            await dlq_topic.send(key=event.message.key, value=encode(out))
            continue
        machine_id, outputs = out
        touched.add(machine_id)
        for o in outputs:
            await send_output(machine_id, o)
    return touched


async def send_output(machine_id: str, o: Output) -> None:
    """Route one output: hourly energy, an event, and for a drift alert maybe a retrain."""
    key = machine_id.encode()
    if isinstance(o, EnergyHourly):
        end = o.hour_start.timestamp() + 3600  # record time = hour end: seek by time works
        await energy_hourly_topic.send(key=key, value=encode(o), timestamp=end)
        return
    await output_topics[type(o).TOPIC].send(key=key, value=encode(o))
    if isinstance(o, SystemAlert) and o.details.get("retrain") and settings.drift_policy == "auto":
        cmd = TrainCommand(
            training_job_id=stable_event_id("train_command", o.event_id), machine_id=machine_id,
            trigger_type="drift", reason=o.message, window_days=settings.retrain_window_days,
            requested_at=o.occurred_at)
        await commands_topic.send(key=key, value=encode(cmd))
