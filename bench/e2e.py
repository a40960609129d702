"""End-to-end latency: a reading produced to Kafka -> its anomaly on a WebSocket client.

One ``enms worker`` and one ``enms api`` run as subprocesses. The catalogue machines' detectors
are warmed first (unmeasured). Then readings are paced at ``rate`` per second across the
machines with steady values, and one reading in ``spike_every`` of the stream is a spike (3x
the machine's level). Every spike must come back as an ``anomaly_detected`` whose
``machine_id`` and ``timestamp`` are the spike's: latency = WebSocket receive time - the
moment ``producer.send`` was called (both ``time.perf_counter``, one process).

The same events are also read straight from ``enms.anomalies`` with a plain consumer, which
splits the latency into "worker" (the event record's CreateTime, stamped by the worker's
producer, minus the send wall time; ms resolution) and "visible on Kafka" (received by that
consumer), so a slow stage can be told from a slow bridge/Redis/WebSocket hop.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from bench.common import (
    ForeignLoad,
    GroupOffsets,
    Services,
    bridge_partitions,
    end_offsets,
    enms_env,
    log,
    new_run_id,
    start_api,
    start_enms,
    summary_ms,
    wait_for_ready,
)
from detectors.scoring import ScoringConfig, make_detector
from schemas.machines import MACHINES, Machine
from schemas.readings import Reading, encode_reading
from streams import topics
from tests.integration.services import wait_until

#: Level of each machine's steady power, as a fraction of its rated power. A 3x spike then
#: lands at 0.9 x rated, inside the detector's fixed range (0 .. 1.5 x rated).
LEVEL_FRACTION = 0.3
SPIKE_FACTOR = 3.0
NOISE = 0.025


def warm_count(machine: Machine, config: ScoringConfig | None = None) -> int:
    """Readings that make a machine's detector able to flag.

    HalfSpaceTrees scores 0 until its first reference window is full, and the window is
    ``window_seconds / data_interval`` readings: 240 for the 30 s machines but 7200 for the
    1 s compressors. So: the window, then a few hundred more (and at least ``warmup``).
    """
    cfg = config or ScoringConfig()
    det = make_detector(cfg, machine)
    window = int(getattr(det, "window_size", 0))
    return max(400, cfg.warmup + 100, window + 200)


@dataclass
class Plan:
    """What to send: warm-up readings, then the paced stream with its spikes marked."""

    start: datetime
    warm: list[Reading]
    paced: list[Reading]
    spike: list[bool]
    next_index: dict[str, int] = field(default_factory=dict)

    @property
    def spike_keys(self) -> set[tuple[str, datetime]]:
        return {(r.machine_id, r.timestamp) for r, s in zip(self.paced, self.spike, strict=True)
                if s}


def make_plan(*, paced_count: int, spike_every: int = 20, seed: int = 7,
              machines: tuple[Machine, ...] = MACHINES,
              start: datetime | None = None) -> Plan:
    """Build the readings.

    The paced stream is round-robin over the machines. Machine ``m``'s ``j``-th paced reading
    is a spike when ``(j + offset_m) % spike_every == 0``, with offsets spread over the
    machines: one stream reading in ``spike_every`` is a spike, spikes are spread evenly in
    time, and between two spikes of one machine lie ``spike_every - 1`` normal readings (the
    scorer stops flagging after many flags in a row; flagged readings are not learned).

    Timestamps are each machine's real interval apart, in a simulated period of its own
    (a random day in 2008-2017: in the past, as a real meter's readings are, and clear of
    the throughput run's and the integration tests' periods), so event ids never collide
    with an earlier run's.

    Examples
    --------
    >>> p = make_plan(paced_count=800, spike_every=20)
    >>> sum(p.spike), len(p.paced)
    (40, 800)
    >>> any(a and b for a, b in zip(p.spike, p.spike[8:]))  # never two in a row on a machine
    False
    """
    rnd = random.Random(seed)
    if start is None:
        start = datetime(2008, 1, 1, tzinfo=UTC) + timedelta(days=random.randrange(3650))
    n = len(machines)
    levels = {m.id: LEVEL_FRACTION * m.rated_power_kw for m in machines}
    index = dict.fromkeys(levels, 0)

    def reading(m: Machine, factor: float = 1.0) -> Reading:
        i = index[m.id]
        index[m.id] = i + 1
        ts = start + timedelta(seconds=m.data_interval_seconds * i)
        level = levels[m.id]
        p = level * factor if factor != 1.0 else max(0.0, rnd.gauss(level, NOISE * level))
        p = round(p, 4)
        return Reading(machine_id=m.id, timestamp=ts, power_kw=p,
                       energy_kwh=round(p * m.data_interval_seconds / 3600, 6))

    # Warm-up: interleaved so that every machine is warm at about the same time.
    counts = {m.id: warm_count(m) for m in machines}
    warm: list[Reading] = []
    remaining = dict(counts)
    while any(remaining.values()):
        for m in machines:
            if remaining[m.id]:
                warm.append(reading(m))
                remaining[m.id] -= 1
    offsets = [k * spike_every // n for k in range(n)]
    paced: list[Reading] = []
    spike: list[bool] = []
    for i in range(paced_count):
        k = i % n
        j = i // n
        is_spike = (j + offsets[k]) % spike_every == 0
        paced.append(reading(machines[k], SPIKE_FACTOR if is_spike else 1.0))
        spike.append(is_spike)
    return Plan(start=start, warm=warm, paced=paced, spike=spike, next_index=index)


# --------------------------------------------------------------------------- measurement


@dataclass
class Receipts:
    """Receive times of anomaly events, keyed by (machine_id, reading timestamp)."""

    ws: dict[tuple[str, datetime], float] = field(default_factory=dict)
    kafka: dict[tuple[str, datetime], float] = field(default_factory=dict)
    created_ms: dict[tuple[str, datetime], int] = field(default_factory=dict)
    ws_messages: int = 0
    ws_other: int = 0
    ws_anomalies: int = 0
    duplicates: int = 0


def _key(event: dict[str, Any]) -> tuple[str, datetime]:
    return event["machine_id"], datetime.fromisoformat(event["timestamp"])


async def _read_ws(ws: aiohttp.ClientWebSocketResponse, rec: Receipts,
                   connected: asyncio.Event) -> None:
    async for msg in ws:
        now = time.perf_counter()
        if msg.type != aiohttp.WSMsgType.TEXT:
            continue
        rec.ws_messages += 1
        m = orjson.loads(msg.data)
        if m.get("type") == "connection":
            connected.set()
        elif m.get("type") == "anomaly_detected":
            rec.ws_anomalies += 1
            k = _key(m["data"])
            if k in rec.ws:
                rec.duplicates += 1
            else:
                rec.ws[k] = now
        else:
            rec.ws_other += 1


async def _read_kafka(consumer: AIOKafkaConsumer, rec: Receipts) -> None:
    while True:
        batches = await consumer.getmany(timeout_ms=200)
        now = time.perf_counter()
        for records in batches.values():
            for r in records:
                e = orjson.loads(r.value)
                if e.get("event_type") != "anomaly_detected":
                    continue
                k = _key(e)
                rec.kafka.setdefault(k, now)
                rec.created_ms.setdefault(k, r.timestamp)


async def _send_fast(p: AIOKafkaProducer, readings: list[Reading]) -> None:
    futs = [await p.send(topics.READINGS, key=r.machine_id.encode(), value=encode_reading(r))
            for r in readings]
    await asyncio.gather(*futs)


async def _measure(svc: Services, base: str, group: GroupOffsets, plan: Plan, *, rate: float,
                   ws_path: str, drain_s: float) -> dict[str, Any]:
    rec = Receipts()
    connected = asyncio.Event()
    url = base.replace("http://", "ws://") + f"/api/v1/ws/{ws_path}"
    consumer = AIOKafkaConsumer(bootstrap_servers=svc.kafka_bootstrap, group_id=None,
                                enable_auto_commit=False, fetch_max_wait_ms=5)
    producer = AIOKafkaProducer(bootstrap_servers=svc.kafka_bootstrap, linger_ms=0)
    tasks: list[asyncio.Task[None]] = []
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        tasks.append(asyncio.create_task(_read_ws(ws, rec, connected)))
        await asyncio.wait_for(connected.wait(), 10)
        await consumer.start()
        await producer.start()
        try:
            parts = sorted(consumer.partitions_for_topic(topics.ANOMALIES) or ())
            if not parts:
                await consumer._client.force_metadata_update()  # noqa: SLF001
                parts = sorted(consumer.partitions_for_topic(topics.ANOMALIES) or ())
            tps = [TopicPartition(topics.ANOMALIES, p) for p in parts]
            consumer.assign(tps)
            await consumer.seek_to_end(*tps)
            tasks.append(asyncio.create_task(_read_kafka(consumer, rec)))

            # Warm-up, unmeasured: as fast as possible, then wait for the worker to commit it.
            t = time.monotonic()
            await _send_fast(producer, plan.warm)
            ends = await end_offsets(svc.kafka_bootstrap, topics.READINGS)
            await group.wait_caught_up(ends, timeout=180)
            log(f"warm-up: {len(plan.warm)} readings scored in {time.monotonic() - t:.1f}s; "
                f"{rec.ws_anomalies} anomalies on the WebSocket during warm-up")
            await asyncio.sleep(1.0)
            rec.ws.clear()
            rec.kafka.clear()
            rec.created_ms.clear()
            warm_anomalies, rec.ws_anomalies = rec.ws_anomalies, 0
            rec.ws_messages = rec.ws_other = rec.duplicates = 0

            # Paced, measured.
            sent_perf: dict[tuple[str, datetime], float] = {}
            sent_wall: dict[tuple[str, datetime], float] = {}
            lags: list[float] = []
            period = 1.0 / rate
            spikes = plan.spike_keys
            log(f"pacing {len(plan.paced)} readings at {rate:.0f}/s "
                f"({len(spikes)} spikes) ...")
            foreign = ForeignLoad(svc)
            t0 = time.perf_counter() + 0.05
            futs = []
            for i, r in enumerate(plan.paced):
                due = t0 + i * period
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                now = time.perf_counter()
                lags.append(now - due)
                k = (r.machine_id, r.timestamp)
                if plan.spike[i]:
                    sent_perf[k] = now
                    sent_wall[k] = time.time()
                futs.append(await producer.send(topics.READINGS, key=r.machine_id.encode(),
                                                value=encode_reading(r)))
                if len(futs) >= 1000:
                    await asyncio.gather(*futs)
                    futs.clear()
            await asyncio.gather(*futs)
            send_elapsed = time.perf_counter() - t0
            other_load = foreign.result()
            # Drain: until every spike came back, or drain_s after the last send.
            deadline = time.perf_counter() + drain_s
            while time.perf_counter() < deadline and not spikes <= rec.ws.keys():
                await asyncio.sleep(0.05)
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await producer.stop()
            await consumer.stop()

    ws_lat = [rec.ws[k] - sent_perf[k] for k in spikes if k in rec.ws]
    kafka_lat = [rec.kafka[k] - sent_perf[k] for k in spikes if k in rec.kafka]
    worker_lat = [max(0.0, rec.created_ms[k] / 1000.0 - sent_wall[k])
                  for k in spikes if k in rec.created_ms]
    unexpected = [k for k in rec.ws if k not in spikes]
    names = {m.id: m.name for m in MACHINES}

    def ms(x: float | None) -> float | None:
        return None if x is None else round(1000.0 * x, 2)

    per_spike = sorted(
        [round(sent_perf[k] - t0, 3), names.get(k[0], k[0]),
         ms(rec.ws[k] - sent_perf[k]) if k in rec.ws else None,
         ms(rec.kafka[k] - sent_perf[k]) if k in rec.kafka else None,
         ms(rec.created_ms[k] / 1000.0 - sent_wall[k]) if k in rec.created_ms else None]
        for k in spikes)
    lags.sort()
    return {
        "offered_rate_per_s": rate,
        "achieved_rate_per_s": round(len(plan.paced) / send_elapsed, 1),
        "paced_readings": len(plan.paced),
        "spikes": len(spikes),
        "missed_on_websocket": len(spikes - rec.ws.keys()),
        "missed_on_kafka": len(spikes - rec.kafka.keys()),
        "unexpected_anomalies": len(unexpected),
        "duplicate_anomalies_on_websocket": rec.duplicates,
        "other_processes_cpu": other_load,
        "warm_up_readings": len(plan.warm),
        "warm_up_anomalies": warm_anomalies,
        "websocket_messages": rec.ws_messages,  # while measuring, of all types
        "sender_lag_ms": {"p50": round(1000 * lags[len(lags) // 2], 2),
                          "p99": round(1000 * lags[int(len(lags) * 0.99)], 2),
                          "max": round(1000 * lags[-1], 2)},
        "per_spike_columns": ["sent_at_s", "machine", "websocket_ms", "kafka_ms",
                              "worker_createtime_ms"],
        "per_spike": per_spike,
        "slowest": sorted(per_spike, key=lambda row: -float(row[2] or 1e9))[:10],
        "latency": {
            "websocket": summary_ms(ws_lat),
            "kafka_anomalies_topic": summary_ms(kafka_lat),
            "worker_emit_createtime": summary_ms(worker_lat),
        },
    }


def run(svc: Services, *, seconds: float, rate: float = 200.0, spike_every: int = 20,
        ws_path: str = "dashboard", drain_s: float = 10.0) -> dict[str, Any]:
    """Start a worker and an API, warm, measure; stop both whatever happens."""
    run_id = new_run_id()
    env = enms_env(svc, run_id)
    logs = svc.run_dir / "logs"
    paced_count = int(seconds * rate)
    plan = make_plan(paced_count=paced_count, spike_every=spike_every)
    procs = []
    try:
        t = time.monotonic()
        worker = start_enms("worker", env, logs, f"e2e-worker-{run_id}")
        procs.append(worker)
        api, base = start_api(env, logs, f"e2e-api-{run_id}")
        procs.append(api)
        wait_for_ready(worker, 180)
        n_out = 3 * int(env.get("ENMS_READINGS_PARTITIONS", "8")) + 1
        wait_until(lambda: len(bridge_partitions(base)) == n_out, 90,
                   f"the bridge to own all {n_out} output partitions")
        log(f"worker ready and bridge owns {n_out} partitions "
            f"({time.monotonic() - t:.1f}s after start)")

        async def main() -> dict[str, Any]:
            group = GroupOffsets(svc.kafka_bootstrap, env["ENMS_APP_ID"], topics.READINGS)
            async with group:
                # An existing broker may hold older readings: let the fresh group catch up.
                ends = await end_offsets(svc.kafka_bootstrap, topics.READINGS)
                await group.wait_caught_up(ends, timeout=600)
                return await _measure(svc, base, group, plan, rate=rate, ws_path=ws_path,
                                      drain_s=drain_s)

        result = asyncio.run(main())
        result["ws_path"] = ws_path
        result["seconds"] = seconds
        result["spike_every"] = spike_every
        return result
    finally:
        for p in reversed(procs):
            p.stop()

