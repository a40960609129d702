"""Real Kafka, Redis and enms processes for the integration tests.

Kafka and Redis are started once per test session on free ports (never the demo's) unless
``ENMS_TEST_KAFKA_BOOTSTRAP`` / ``ENMS_TEST_REDIS_URL`` point at running ones (handy while
developing). The worker and the API run as real subprocesses.

Readings are dated in the past, as a meter's are, each module in a period of its own
(test_lifecycle shares test_training's, on another machine), so that no two modules write the
same machine-hours to the shared topics; test_replay's period is the newest (see there).
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.settings import Settings
from streams.topics import OUTPUT_TOPICS, catalogue
from tests.integration.services import (
    EnmsProcess,
    free_port,
    http_json,
    kafka_broker,
    redis_server,
    wait_until,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("enms-run")


@pytest.fixture(scope="session")
def kafka_bootstrap(run_dir: Path) -> Iterator[str]:
    if existing := os.environ.get("ENMS_TEST_KAFKA_BOOTSTRAP"):
        yield existing
        return
    with kafka_broker(run_dir / "kafka") as bootstrap:
        yield bootstrap


@pytest.fixture(scope="session")
def redis_url(run_dir: Path) -> Iterator[str]:
    if existing := os.environ.get("ENMS_TEST_REDIS_URL"):
        yield existing
        return
    with redis_server(run_dir / "redis") as url:
        yield url


@pytest.fixture(scope="session")
def base_env(kafka_bootstrap: str, redis_url: str) -> dict[str, str]:
    """Environment of every enms process of this session (unique app and group ids)."""
    run = uuid.uuid4().hex[:8]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENMS_")}
    env.update({
        "ENMS_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "ENMS_REDIS_URL": redis_url,
        "ENMS_APP_ID": f"enms-test-{run}",
        "ENMS_BRIDGE_GROUP_ID": f"enms-bridge-test-{run}",
        "ENMS_CHECKPOINT_INTERVAL_S": "2",
        "ENMS_LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
    })
    return env


class Stack:
    """A running worker and API process."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = env
        self.logs = logs
        self.procs: list[EnmsProcess] = []
        self._started = 0

    def start(self, command: str, **extra: str) -> EnmsProcess:
        env = dict(self.env, **extra)
        name = f"{command}-{self._started}"
        self._started += 1
        p = EnmsProcess(command, env, self.logs / f"{name}.log")
        self.procs.append(p)
        return p

    def start_api(self) -> str:
        """Start an API process; return its base URL once its bridge owns partitions."""
        port = free_port()
        proc = self.start("api", ENMS_API_PORT=str(port))
        base = f"http://127.0.0.1:{port}"

        def healthy() -> bool:
            proc.check_alive()
            return bool(http_json(f"{base}/health", 2)["status"] == "healthy")
        wait_until(healthy, 90, f"API {base} healthy")
        return base

    async def api(self) -> str:
        """`start_api` for async tests: the wait for its health runs in a thread."""
        return await asyncio.to_thread(self.start_api)

    def stop(self) -> None:
        for p in reversed(self.procs):
            p.stop()


#: Output-topic partitions the bridge group owns in all (3 topics x 8 + alerts x 1).
ALL_OUTPUT_PARTITIONS = sum(t.partitions for t in catalogue(Settings().readings_partitions)
                            if t.name in OUTPUT_TOPICS)


def bridge_partitions(base: str) -> list[str]:
    """Partitions the API's bridge currently consumes."""
    body = http_json(f"{base}/health", 2)
    return list(body["bridge"]["assigned_partitions"])


@pytest.fixture(scope="module")
def stack(base_env: dict[str, str], run_dir: Path, request: pytest.FixtureRequest) -> Iterator[Stack]:
    module = request.module.__name__.rsplit(".", 1)[-1]
    logs = run_dir / module
    logs.mkdir(exist_ok=True)
    # Each module gets its own worker group, changelog and bridge group, starting at the
    # end of the shared topics: no state or backlog leaks from one module into the next.
    env = dict(base_env, ENMS_APP_ID=f"{base_env['ENMS_APP_ID']}-{module}",
               ENMS_BRIDGE_GROUP_ID=f"{base_env['ENMS_BRIDGE_GROUP_ID']}-{module}",
               ENMS_CONSUMER_OFFSET_RESET="latest")
    s = Stack(env, logs)
    try:
        yield s
    finally:
        s.stop()
