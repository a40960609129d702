"""Shared pieces of the benchmarks: services, subprocess environment, Kafka offsets, stats.

Kafka and Redis come from `tests.integration.services` (the same helpers the integration
tests use): a throw-away KRaft broker and redis-server on free ports in a temporary run
folder, or the ones named by ``ENMS_BENCH_KAFKA_BOOTSTRAP`` / ``ENMS_BENCH_REDIS_URL``.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import platform
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

if str(Path(__file__).resolve().parents[1]) not in sys.path:  # the repo root, for ``tests``
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.integration.services import (
    KAFKA_SH,
    ROOT,
    EnmsProcess,
    free_port,
    http_json,
    kafka_broker,
    redis_server,
    wait_until,
)

RESULTS_DIR = ROOT / "bench" / "results"
READY_LINE = "Worker]: Ready"

#: ENMS_* variables the benchmark sets itself for the processes it starts; any other ENMS_*
#: variable of the caller's environment is passed through (to measure tuning, e.g.
#: ``ENMS_BATCH_WITHIN_S=0.005 python -m bench``) and recorded in the results.
_OWN_VARS = frozenset({"ENMS_KAFKA_BOOTSTRAP", "ENMS_REDIS_URL", "ENMS_APP_ID",
                       "ENMS_BRIDGE_GROUP_ID", "ENMS_API_PORT", "ENMS_WORKER_WEB_PORT",
                       "ENMS_LOG_LEVEL"})
_BENCH_VARS = frozenset({"ENMS_BENCH_KAFKA_BOOTSTRAP", "ENMS_BENCH_REDIS_URL"})


def log(msg: str) -> None:
    """Progress line on stderr (the tables go to stdout)."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- statistics


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (``q`` in [0, 100]) of already sorted values.

    Examples
    --------
    >>> percentile([1.0, 2.0, 3.0, 4.0], 50)
    2.5
    >>> percentile([5.0], 99)
    5.0
    """
    if not sorted_values:
        return math.nan
    k = (len(sorted_values) - 1) * q / 100.0
    lo = math.floor(k)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


def summary_ms(latencies_s: Sequence[float]) -> dict[str, float | int | None]:
    """count, mean, p50/p90/p99/max and min of latencies given in seconds, in milliseconds.

    Examples
    --------
    >>> summary_ms([0.010, 0.020, 0.030])["p50_ms"]
    20.0
    >>> summary_ms([])["count"]
    0
    """
    v = sorted(latencies_s)
    if not v:
        return {"count": 0, "mean_ms": None, "min_ms": None, "p50_ms": None, "p90_ms": None,
                "p99_ms": None, "max_ms": None}

    def ms(x: float) -> float:
        return round(1000.0 * x, 2)

    return {"count": len(v), "mean_ms": ms(sum(v) / len(v)), "min_ms": ms(v[0]),
            "p50_ms": ms(percentile(v, 50)), "p90_ms": ms(percentile(v, 90)),
            "p99_ms": ms(percentile(v, 99)), "max_ms": ms(v[-1])}


# --------------------------------------------------------------------------- machine info


def _run(cmd: list[str]) -> str | None:
    try:
        out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=10,
                             check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def kafka_version() -> str | None:
    """``kafka.version`` of deploy/kafka/pom.xml (the broker the scripts run)."""
    try:
        text = (ROOT / "deploy" / "kafka" / "pom.xml").read_text()
    except OSError:
        return None
    m = re.search(r"<kafka\.version>\s*([^<\s]+)\s*</kafka\.version>", text)
    return m.group(1) if m else None


def _cpu_model() -> str | None:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or None


def _mem_total_mb() -> int | None:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    return None


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def machine_info() -> dict[str, object]:
    """Where the figures were measured: hardware, software versions, git commit."""
    status = _run(["git", "status", "--porcelain", "--untracked-files=no"])
    return {
        "cores": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "mem_total_mb": _mem_total_mb(),
        "load_avg_at_start": [round(x, 2) for x in os.getloadavg()],
        "os": platform.platform(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "kafka_version": kafka_version(),
        "git_commit": _run(["git", "rev-parse", "--short", "HEAD"]),
        "git_dirty": bool(status) if status is not None else None,
        "packages": {d: _version(d) for d in
                     ("faust-streaming", "aiokafka", "river", "msgspec", "aiohttp", "redis",
                      "numpy", "orjson")},
    }


# --------------------------------------------------------------------------- services


@dataclass
class Services:
    """Where Kafka and Redis are, and whether the benchmark owns them."""

    kafka_bootstrap: str
    redis_url: str
    own_kafka: bool
    own_redis: bool
    run_dir: Path


@contextlib.contextmanager
def _own_kafka(run_dir: Path) -> Iterator[str]:
    # kafka_broker starts it with KAFKA_RETENTION_HOURS=-1: the benchmarks' readings carry
    # event times in the past, and a retention measured on them would delete them mid-run.
    try:
        with kafka_broker(run_dir) as bootstrap:
            yield bootstrap
    finally:
        # Idempotent: also stops a broker whose start was interrupted (kafka.sh wrote its pid).
        env = dict(os.environ, KAFKA_RUN_DIR=str(run_dir))
        subprocess.run([str(KAFKA_SH), "stop"], env=env, check=False, timeout=60,
                       stdout=subprocess.DEVNULL)


@contextlib.contextmanager
def services(run_dir: Path) -> Iterator[Services]:
    """Own Kafka and Redis under ``run_dir``, or the ones named by ENMS_BENCH_* variables."""
    with contextlib.ExitStack() as stack:
        kafka = os.environ.get("ENMS_BENCH_KAFKA_BOOTSTRAP")
        if not kafka:
            log("starting Kafka (deploy/kafka/kafka.sh) ...")
            t = time.monotonic()
            kafka = stack.enter_context(_own_kafka(run_dir / "kafka"))
            log(f"Kafka ready on {kafka} in {time.monotonic() - t:.1f}s")
        redis = os.environ.get("ENMS_BENCH_REDIS_URL")
        if not redis:
            redis = stack.enter_context(redis_server(run_dir / "redis"))
            log(f"redis-server ready at {redis}")
        yield Services(kafka_bootstrap=kafka, redis_url=redis,
                       own_kafka="ENMS_BENCH_KAFKA_BOOTSTRAP" not in os.environ,
                       own_redis="ENMS_BENCH_REDIS_URL" not in os.environ, run_dir=run_dir)


def passthrough_env() -> dict[str, str]:
    """The caller's ENMS_* settings that reach the enms processes unchanged."""
    return {k: v for k, v in os.environ.items()
            if k.startswith("ENMS_") and k not in _OWN_VARS and k not in _BENCH_VARS}


def enms_env(svc: Services, run_id: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment of an enms process: unique app and bridge group ids, own data folder."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENMS_")}
    env.update(passthrough_env())
    env.update({
        "ENMS_KAFKA_BOOTSTRAP": svc.kafka_bootstrap,
        "ENMS_REDIS_URL": svc.redis_url,
        "ENMS_APP_ID": f"enms-bench-{run_id}",
        "ENMS_BRIDGE_GROUP_ID": f"enms-bench-bridge-{run_id}",
        "ENMS_WORKER_WEB_PORT": str(free_port()),
        "ENMS_LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
        # Faust's table data folder: in the run folder, not "<app id>-data" in the repo.
        "APP_DATADIR": str(svc.run_dir / f"faust-{run_id}"),
    })
    env.update(extra or {})
    return env


def new_run_id() -> str:
    """A short unique id for app ids and consumer groups."""
    return uuid.uuid4().hex[:8]


def start_enms(command: str, env: dict[str, str], logs: Path, name: str) -> EnmsProcess:
    """Start ``enms <command>`` with its log in ``logs``."""
    logs.mkdir(parents=True, exist_ok=True)
    return EnmsProcess(command, env, logs / f"{name}.log")


def wait_for_ready(proc: EnmsProcess, timeout: float, interval: float = 0.05) -> float:
    """Poll the worker log for "Worker]: Ready"; return the monotonic time it was seen."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.proc.poll() is not None:
            msg = (f"enms {proc.command} exited ({proc.proc.returncode}):\n"
                   f"{proc.log_text()[-3000:]}")
            raise RuntimeError(msg)
        if READY_LINE in proc.log_text():
            return time.monotonic()
        time.sleep(interval)
    msg = f"no {READY_LINE!r} in the log of enms {proc.command} after {timeout:.0f}s"
    raise TimeoutError(msg)


def bridge_partitions(base: str) -> list[str]:
    """Output partitions the API's bridge consumes right now."""
    body: Any = http_json(f"{base}/health", 2)
    return list(body["bridge"]["assigned_partitions"])


def start_api(env: dict[str, str], logs: Path, name: str,
              timeout: float = 90) -> tuple[EnmsProcess, str]:
    """Start ``enms api`` on a free port; return it and its base URL once healthy."""
    port = free_port()
    proc = start_enms("api", dict(env, ENMS_API_PORT=str(port)), logs, name)
    base = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        if proc.proc.poll() is not None:
            msg = f"enms api exited ({proc.proc.returncode}):\n{proc.log_text()[-3000:]}"
            raise RuntimeError(msg)
        body: Any = http_json(f"{base}/health", 2)
        return bool(body["status"] == "healthy")

    try:
        wait_until(healthy, timeout, f"API {base} healthy")
    except BaseException:
        proc.stop()
        raise
    return proc, base


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), from /proc/<pid>/stat."""
    raw = Path(f"/proc/{pid}/stat").read_text()
    fields = raw[raw.rindex(")") + 2:].split()  # after "pid (comm) "
    ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return ticks / os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------------------- Kafka offsets


async def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    """Log-end offset of every partition of ``topic``."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    c = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    await c.start()
    try:
        parts = c.partitions_for_topic(topic)
        if not parts:
            await c._client.force_metadata_update()  # noqa: SLF001 - fresh client, no metadata
            parts = c.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        ends = await c.end_offsets(tps) if tps else {}
        return {tp.partition: off for tp, off in ends.items()}
    finally:
        await c.stop()


async def beginning_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    """Log-start offset of every partition of ``topic``."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    c = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    await c.start()
    try:
        await c._client.force_metadata_update()  # noqa: SLF001
        tps = [TopicPartition(topic, p) for p in sorted(c.partitions_for_topic(topic) or ())]
        starts = await c.beginning_offsets(tps) if tps else {}
        return {tp.partition: off for tp, off in starts.items()}
    finally:
        await c.stop()


async def delete_all_records(bootstrap: str, topic: str) -> int:
    """Delete every record of ``topic`` (only ever on the benchmark's own broker)."""
    from aiokafka import TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient, RecordsToDelete

    ends = await end_offsets(bootstrap, topic)
    starts = await beginning_offsets(bootstrap, topic)
    todo = {TopicPartition(topic, p): RecordsToDelete(off) for p, off in ends.items() if off}
    if not todo:
        return 0
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.delete_records(todo, timeout_ms=30_000)
    finally:
        await admin.close()
    return sum(ends.values()) - sum(starts.values())


class GroupOffsets:
    """Committed offsets of a consumer group on one topic, through one admin client."""

    def __init__(self, bootstrap: str, group_id: str, topic: str) -> None:
        from aiokafka.admin import AIOKafkaAdminClient

        self.group_id = group_id
        self.topic = topic
        self._admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)

    async def __aenter__(self) -> GroupOffsets:
        await self._admin.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._admin.close()

    async def committed(self) -> dict[int, int]:
        """Partition -> committed offset (partitions without a commit are left out)."""
        from aiokafka.errors import (
            CoordinatorLoadInProgressError,
            CoordinatorNotAvailableError,
            NotCoordinatorError,
        )

        try:
            offs = await self._admin.list_consumer_group_offsets(self.group_id)
        except (CoordinatorNotAvailableError, CoordinatorLoadInProgressError,
                NotCoordinatorError):
            return {}  # a group (or broker) that is just starting: nothing committed yet
        return {tp.partition: om.offset for tp, om in offs.items()
                if tp.topic == self.topic and om.offset >= 0}

    async def wait_caught_up(self, ends: dict[int, int], timeout: float,
                             starts: dict[int, int] | None = None,
                             interval: float = 0.1) -> list[tuple[float, int]]:
        """Poll until every partition's commit reached ``ends``; return (monotonic, total)
        at each poll where the committed total changed (the first and last polls included).

        A partition without a commit counts as its ``starts`` offset (0 if not given).
        """
        samples: list[tuple[float, int]] = []
        deadline = time.monotonic() + timeout
        last = -1
        base = starts or {}
        while True:
            now = time.monotonic()
            com = await self.committed()
            total = sum(com.get(p, base.get(p, 0)) for p in ends)
            if total != last:
                samples.append((now, total))
                last = total
            if all(com.get(p, 0) >= off for p, off in ends.items()):
                if samples[-1][0] != now:
                    samples.append((now, total))
                return samples
            if now > deadline:
                behind = {p: off - com.get(p, 0) for p, off in ends.items()
                          if com.get(p, 0) < off}
                msg = (f"group {self.group_id} not caught up on {self.topic} after "
                       f"{timeout:.0f}s; records behind per partition: {behind}")
                raise TimeoutError(msg)
            await asyncio.sleep(interval)


# --------------------------------------------------------------------------- other load


def _all_cpu() -> dict[tuple[int, str], tuple[int, float, str]]:
    """(pid, start time) -> (ppid, cpu seconds, cmdline) of every process readable now."""
    tck = os.sysconf("SC_CLK_TCK")
    out: dict[tuple[int, str], tuple[int, float, str]] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            raw = (d / "stat").read_text()
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        f = raw[raw.rindex(")") + 2:].split()
        out[(int(d.name), f[19])] = (int(f[1]), (int(f[11]) + int(f[12])) / tck, cmd)
    return out


class ForeignLoad:
    """CPU used by processes that are not this benchmark's, over a stretch of time.

    Ours: this process, its children (enms, redis-server) and anything whose command line
    names the run folder (the Kafka broker); with an external broker or Redis, any. Other
    work on the same two cores skews the figures; this says by how much the machine was shared.
    """

    def __init__(self, svc: Services) -> None:
        self.run_dir = str(svc.run_dir)
        # A broker or Redis named by ENMS_BENCH_* cannot be told from another session's:
        # then every Kafka broker (or redis-server) counts as ours.
        self.also_ours = tuple(name for name, own in (("kafka.Kafka", svc.own_kafka),
                                                      ("redis-server", svc.own_redis))
                               if not own)
        self._t0 = time.monotonic()
        self._start = _all_cpu()

    def _ours(self, pid: int, ppid: int, cmd: str) -> bool:
        me = os.getpid()
        return (pid == me or ppid == me or self.run_dir in cmd
                or any(name in cmd for name in self.also_ours))

    def result(self) -> dict[str, object]:
        """Foreign CPU seconds and cores (average) since creation, and the top consumers."""
        wall = time.monotonic() - self._t0
        end = _all_cpu()
        used: list[tuple[float, str]] = []
        for key, (ppid, cpu, cmd) in end.items():
            if self._ours(key[0], ppid, cmd):
                continue
            before = self._start.get(key)
            delta = cpu - before[1] if before else cpu
            if delta > 0:
                used.append((delta, cmd[:80] or f"pid {key[0]}"))
        used.sort(reverse=True)
        total = sum(d for d, _ in used)
        return {"cpu_seconds": round(total, 2), "cores": round(total / wall, 2) if wall else 0,
                "top": [[round(d, 2), c] for d, c in used[:3] if d >= 0.5]}
