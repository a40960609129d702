"""The simulator's Kafka shell: pace `simulation.generate`'s readings and produce them.

`run` paces the readings against the wall clock (``speed`` simulated seconds per real
second), produces them to ``enms.readings`` keyed by machine id, and writes the labels as JSON
lines. It never sends a reading before the wall clock has reached the reading's timestamp (a
meter cannot report the future): a run that starts in the past is sped up until it catches up
with now and then goes on in real time. `seed_hourly_history` puts simulated hourly history on
``enms.energy.hourly``. The data and labels themselves come from the pure `simulation`
package.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
from aiokafka import AIOKafkaProducer

from schemas.machines import MACHINES
from schemas.readings import encode_reading
from simulation import Label, generate, simulations
from streams.settings import Settings
from streams.topics import READINGS

log = logging.getLogger(__name__)

_LOG_EVERY_S = 60.0


def write_labels(labels: Sequence[Label], path: str | Path, *, append: bool = False) -> None:
    """Write labels as JSON lines (one `Label.to_dict` per line).

    Examples
    --------
    >>> import tempfile, os
    >>> lab = Label(machine_id="m", kind="drop", start=datetime(2026, 1, 5, tzinfo=UTC),
    ...             end=datetime(2026, 1, 5, 0, 5, tzinfo=UTC))
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = os.path.join(d, "labels.jsonl")
    ...     write_labels([lab], p)
    ...     read_labels(p) == [lab]
    True
    """
    with Path(path).open("ab" if append else "wb") as f:
        for lab in labels:
            f.write(msgspec.json.encode(lab) + b"\n")


def read_labels(path: str | Path) -> list[Label]:
    """Read labels written by `write_labels` (blank lines are skipped)."""
    decoder = msgspec.json.Decoder(Label)
    with Path(path).open("rb") as f:
        return [decoder.decode(line) for line in f if line.strip()]



async def _pause(delay: float, stop: asyncio.Event | None) -> None:
    if stop is None:
        await asyncio.sleep(delay)
        return
    try:
        await asyncio.wait_for(stop.wait(), timeout=delay)
    except TimeoutError:
        pass


async def run(
    settings: Settings,
    *,
    seed: int = 42,
    speed: float = 60.0,
    start: datetime | None = None,
    duration: timedelta | None = None,
    labels_path: str | None = None,
    anomalies: bool = True,
    stop: asyncio.Event | None = None,
    backfill: timedelta = timedelta(0),
    anomaly_rate_per_day: float = 4.0,
    efficiency_changes: Mapping[str, tuple[datetime, float]] | None = None,
) -> int:
    """Produce simulated readings to ``enms.readings``, paced at `speed`; return how many.

    The pacing rule: a reading is sent at the later of its paced time (below) and the moment
    the wall clock (``time.time``) reaches its timestamp; never before that moment. So a run
    that starts in the past goes `speed` times faster than real time until the simulated
    clock catches up with now (logged once), and in real time from then on; a run that
    starts in the future waits for its first reading.

    Parameters
    ----------
    settings
        Only ``kafka_bootstrap`` is used.
    seed
        Seed of `generate`.
    speed
        Simulated seconds per real second (60: a simulated minute per second), up to now.
        ``<= 0`` sends as fast as possible, also only up to now: the readings not yet due are
        each held back until the wall clock reaches its timestamp, as with any speed.
    start
        Simulated time of the first reading; defaults to now minus `backfill` (UTC, whole
        seconds), so that the backfill covers the past. E.g. a week ago at speed 60 with
        6 h of backfill: the simulated clock reaches now after (7 d - 6 h) / 59 = 2.7 hours.
    duration
        Simulated duration; None runs until `stop` is set or the task is cancelled, simulating
        one day at a time (each day's labels are appended before its first reading).
    labels_path
        Where to write the labels (JSON lines), before the readings they describe.
    anomalies
        Whether to inject anomalies.
    stop
        Set it to end the run early; the producer is flushed and stopped either way.
    backfill
        The first ``backfill`` of simulated time is sent as fast as possible (as far as it
        lies in the past: the pacing rule holds), then pacing starts: detectors are warm and
        the dashboard is busy from the first minute.
    anomaly_rate_per_day
        Injected anomalies per simulated day, plant-wide.
    efficiency_changes
        Passed to `generate`: ``{machine_id: (when, factor)}`` scales a machine's power from
        `when` on.
    """
    if start is None:
        start = datetime.now(UTC).replace(microsecond=0) - backfill
    elif start.tzinfo is None:
        msg = "start must be timezone-aware"
        raise ValueError(msg)
    loop = asyncio.get_running_loop()
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, linger_ms=5)
    sent = 0
    try:
        await producer.start()
        t0 = last_log = loop.time()
        logged = 0
        pacing = caught_up = False
        sims = simulations(seed, start, duration, anomalies, anomaly_rate_per_day,
                           efficiency_changes)
        for window, sim in enumerate(sims):
            if labels_path is not None:
                write_labels(sim.labels, labels_path, append=window > 0)
            for r in sim.readings:
                if stop is not None and stop.is_set():
                    return sent
                now = loop.time()
                delay = 0.0
                paced = (r.timestamp - start - backfill).total_seconds()
                if speed > 0 and paced > 0:
                    if not pacing:  # backfill done: the paced clock starts now
                        t0, pacing = now, True
                    delay = t0 + paced / speed - now
                    if delay <= 0.001:
                        delay = 0.0
                due = r.timestamp.timestamp()
                ahead = due - time.time()  # > 0: the reading would come from the future
                if ahead > 0 and not caught_up:
                    caught_up = True
                    log.info("simulator: caught up with the wall clock at %s; real time from "
                             "here on", r.timestamp.isoformat())
                delay = max(delay, ahead)
                if delay > 0:
                    while delay > 0:  # a pause may end a hair early: check the clock again
                        await _pause(delay, stop)
                        if stop is not None and stop.is_set():
                            return sent
                        delay = due - time.time()
                elif sent % 1000 == 0:
                    await asyncio.sleep(0)  # let stop/cancel in when sending flat out
                # Record time = reading time: a replay can seek the topic by event time.
                await producer.send(READINGS, key=r.machine_id.encode(), value=encode_reading(r),
                                    timestamp_ms=int(due * 1000))
                sent += 1
                if now - last_log >= _LOG_EVERY_S:
                    log.info("simulator: %d readings sent in the last %.0f s (%d in all); "
                             "simulated time %s", sent - logged, now - last_log, sent,
                             r.timestamp.isoformat())
                    last_log, logged = now, sent
        return sent
    finally:
        await producer.stop()
        log.info("simulator: stopped after %d readings", sent)


async def seed_hourly_history(settings: Settings, *, seed: int, start: datetime,
                              end: datetime) -> int:
    """Simulate every machine at one reading a minute over [start, end) and produce the
    hourly records to ``enms.energy.hourly`` (record time = hour end); return how many.

    History as an older system would hand it over (hourly aggregates), so baselines can be
    trained without waiting for weeks of live readings. A power-only meter's records carry
    energy and power only (production and temperatures None): its baseline can only be a
    time-of-week one.
    """
    from detectors.hourly import hourly_records
    from schemas.events import encode
    from streams.topics import ENERGY_HOURLY

    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, linger_ms=20)
    sent = 0
    try:
        await producer.start()
        for m in MACHINES:
            sim = generate(seed=seed, start=start, duration=end - start, machines=[m],
                           anomalies=False, interval_scale=60.0 / m.data_interval_seconds)
            for row in hourly_records(sim.readings, intervals={m.id: 60.0}):
                ts = int((row.hour_start.timestamp() + 3600) * 1000)
                await producer.send(ENERGY_HOURLY, key=m.id.encode(), value=encode(row),
                                    timestamp_ms=ts)
                sent += 1
        return sent
    finally:
        await producer.stop()
