"""Scoring throughput: the pure core in-process, and one real Faust worker.

Both use the same readings: `simulation.generate` over the nine machines (with its
injected anomalies), cut to ``n`` readings.

Worker: the readings are produced to ``enms.readings`` *before* a worker with a fresh app id
(consumer group) starts; the clock runs from "Worker]: Ready" in its log until the group's
committed offsets on ``enms.readings`` reach the end offsets. Faust commits every
``broker_commit_interval`` (2.8 s) or ``broker_commit_every`` (10 000) acked messages, so the
last commit lands up to that long after the last reading was scored: the result is a lower
bound. The steady rate between the first and the last intermediate commit is reported too
(no start-up, no final commit wait).
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import math
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from aiokafka import AIOKafkaProducer

import simulation
from bench.common import (
    ForeignLoad,
    GroupOffsets,
    Services,
    beginning_offsets,
    cpu_seconds,
    delete_all_records,
    end_offsets,
    enms_env,
    log,
    new_run_id,
    start_enms,
    wait_for_ready,
)
from detectors.scoring import ScoringConfig, score_stream
from schemas.machines import MACHINES
from schemas.readings import Reading, decode_reading, encode_reading
from streams import topics
from streams.admin import ensure_topics
from streams.settings import Settings

SIM_START = datetime(2002, 6, 3, tzinfo=UTC)  # a Monday, in the past like real readings


def simulated_readings(n: int, seed: int = 42) -> list[Reading]:
    """The first ``n`` readings of the nine simulated machines (anomalies included)."""
    per_second = sum(1.0 / max(1, min(30, m.data_interval_seconds)) for m in MACHINES)
    duration = timedelta(seconds=math.ceil(n / per_second) + 60)
    sim = simulation.generate(seed=seed, start=SIM_START, duration=duration)
    out = list(itertools.islice(sim.readings, n))
    if len(out) < n:
        msg = f"the simulator gave {len(out)} readings, wanted {n}"
        raise RuntimeError(msg)
    return out


def core(readings: list[Reading], repeats: int = 1) -> dict[str, Any]:
    """`score_stream` and `decode_reading` in this process (best of ``repeats``)."""
    encoded = [encode_reading(r) for r in readings]
    n = len(readings)
    score_s = decode_s = math.inf
    events = anomalies = 0
    for _ in range(repeats):
        gc.collect()
        t = time.perf_counter()
        out = list(score_stream(readings, ScoringConfig()))
        score_s = min(score_s, time.perf_counter() - t)
        events = len(out)
        anomalies = sum(1 for e in out if getattr(e, "event_type", None) == "anomaly_detected")
        del out
        gc.collect()
        t = time.perf_counter()
        for raw in encoded:
            decode_reading(raw)
        decode_s = min(decode_s, time.perf_counter() - t)
    return {
        "readings": n,
        "score_seconds": round(score_s, 3),
        "score_readings_per_s": round(n / score_s),
        "score_us_per_reading": round(1e6 * score_s / n, 2),
        "events": events,
        "anomalies": anomalies,
        "decode_seconds": round(decode_s, 3),
        "decode_us_per_reading": round(1e6 * decode_s / n, 3),
        "mean_encoded_bytes": round(sum(map(len, encoded)) / n, 1),
    }


async def produce_all(bootstrap: str, readings: list[Reading]) -> float:
    """Produce the readings as fast as possible (acks awaited); return the seconds it took."""
    p = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=256 * 1024)
    await p.start()
    try:
        t = time.perf_counter()
        futs = []
        for r in readings:
            futs.append(await p.send(topics.READINGS, key=r.machine_id.encode(),
                                     value=encode_reading(r)))
            if len(futs) >= 5000:
                await asyncio.gather(*futs)
                futs.clear()
        await asyncio.gather(*futs)
        return time.perf_counter() - t
    finally:
        await p.stop()


def _steady_rate(samples: list[tuple[float, int]], start_total: int,
                 end_total: int) -> float | None:
    """Readings/s between the first and the last commit strictly between start and end."""
    mids = [(t, c) for t, c in samples if start_total < c < end_total]
    if len(mids) < 2 or mids[-1][0] <= mids[0][0]:
        return None
    return (mids[-1][1] - mids[0][1]) / (mids[-1][0] - mids[0][0])


def _busy_end(samples: list[tuple[float, float]], t_done: float,
              idle_cores: float = 0.15) -> float | None:
    """End of the last 0.1 s interval (before ``t_done``) in which the worker used more
    than ``idle_cores`` of a core: when it ran out of readings, give or take one interval.
    """
    end = None
    for (t0, c0), (t1, c1) in itertools.pairwise(samples):
        if t1 > t_done + 0.2:
            break
        if t1 > t0 and (c1 - c0) / (t1 - t0) > idle_cores:
            end = t1
    return end


def worker(svc: Services, readings: list[Reading], timeout: float = 900) -> dict[str, Any]:
    """Pre-produce the readings, start a fresh worker, time it through them."""
    run_id = new_run_id()
    env = enms_env(svc, run_id)
    logs = svc.run_dir / "logs"

    async def prepare() -> tuple[dict[int, int], dict[int, int], float, int]:
        await ensure_topics(Settings.from_env(env))  # as the worker would, before producing
        deleted = 0
        if svc.own_kafka:  # our own broker: drop the e2e run's readings
            deleted = await delete_all_records(svc.kafka_bootstrap, topics.READINGS)
        secs = await produce_all(svc.kafka_bootstrap, readings)
        starts = await beginning_offsets(svc.kafka_bootstrap, topics.READINGS)
        ends = await end_offsets(svc.kafka_bootstrap, topics.READINGS)
        return starts, ends, secs, deleted

    starts, ends, produce_s, deleted = asyncio.run(prepare())
    backlog = sum(ends.values()) - sum(starts.values())
    log(f"produced {len(readings)} readings in {produce_s:.1f}s "
        f"({len(readings) / produce_s:.0f}/s); backlog on {topics.READINGS}: {backlog}"
        + (f" (deleted {deleted} older records first)" if deleted else ""))

    proc = start_enms("worker", env, logs, f"throughput-worker-{run_id}")
    try:
        t_ready = wait_for_ready(proc, 180)
        cpu_ready = cpu_seconds(proc.proc.pid)
        foreign = ForeignLoad(svc)
        log(f"worker ready; scoring a backlog of {backlog} readings ...")

        cpu_samples: list[tuple[float, float]] = [(t_ready, cpu_ready)]

        async def sample_cpu() -> None:
            while True:
                await asyncio.sleep(0.1)
                cpu_samples.append((time.monotonic(), cpu_seconds(proc.proc.pid)))

        async def measure() -> list[tuple[float, int]]:
            sampler = asyncio.create_task(sample_cpu())
            try:
                async with GroupOffsets(svc.kafka_bootstrap, env["ENMS_APP_ID"],
                                        topics.READINGS) as group:
                    return await group.wait_caught_up(ends, timeout=timeout, starts=starts)
            finally:
                sampler.cancel()

        samples = asyncio.run(measure())
        t_done = samples[-1][0]
        cpu_done = cpu_seconds(proc.proc.pid)
        other_load = foreign.result()
    finally:
        proc.stop()
    busy_end = _busy_end(cpu_samples, t_done)
    elapsed = t_done - t_ready
    start_total = sum(starts.values())
    end_total = sum(ends.values())
    steady = _steady_rate(samples, start_total, end_total)
    cpu = cpu_done - cpu_ready
    commits = [(round(t - t_ready, 2), c - start_total) for t, c in samples]
    busy = busy_end - t_ready if busy_end else None
    return {
        "readings": backlog,
        "produce_seconds": round(produce_s, 2),
        "ready_to_all_committed_s": round(elapsed, 2),
        "readings_per_s": round(backlog / elapsed),
        "steady_readings_per_s": round(steady) if steady else None,
        "ready_to_cpu_idle_s": round(busy, 2) if busy else None,
        "readings_per_s_until_cpu_idle": round(backlog / busy) if busy else None,
        "cpu_seconds": round(cpu, 2),
        "cpu_us_per_reading": round(1e6 * cpu / backlog, 1),
        "cpu_utilisation": round(cpu / elapsed, 2),
        "other_processes_cpu": other_load,
        "commit_samples": commits,
    }
