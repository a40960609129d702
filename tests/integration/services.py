"""Start and stop the real services the integration tests use: Kafka, Redis, enms processes.

Every process started here is stopped by the fixture that started it, also on failure
(terminate, then kill after a grace period, by process group).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import orjson

ROOT = Path(__file__).resolve().parents[2]
KAFKA_SH = ROOT / "deploy" / "kafka" / "kafka.sh"


def free_port() -> int:
    """A TCP port that is free right now on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ProcessExited(AssertionError):
    """A process a test waits on has died: no point waiting for the deadline."""


T = TypeVar("T")


def wait_until(predicate: Callable[[], T], timeout: float, what: str, interval: float = 0.2) -> T:
    """Poll ``predicate`` until it returns a truthy value; fail with ``what`` at the deadline."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
            if last:
                return last
        except ProcessExited:
            raise
        except Exception as e:  # noqa: BLE001 - not up yet; keep polling
            last = e
        time.sleep(interval)
    msg = f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})"
    raise TimeoutError(msg)


async def eventually(predicate: Callable[[], T], timeout: float, what: str,
                     interval: float = 0.2) -> T:
    """`wait_until` for async tests: the polling (blocking HTTP GETs, log reads, sleeps) runs
    in a thread, so the test's event loop keeps serving its WebSocket clients meanwhile."""
    return await asyncio.to_thread(wait_until, predicate, timeout, what, interval)


async def get_json(url: str, timeout: float = 5.0) -> Any:
    """`http_json` for async tests, in a thread."""
    return await asyncio.to_thread(http_json, url, timeout)


@contextlib.contextmanager
def kafka_broker(run_dir: Path) -> Iterator[str]:
    """A fresh single-node KRaft broker on free ports; yields its bootstrap address.

    No time-based retention: retention is measured on the record timestamp, which is the
    reading's event time, and the tests' and benchmarks' readings lie years in the past (the
    broker would delete them at its next 5-minute retention check while a test reads them).
    """
    env = dict(os.environ, KAFKA_PORT=str(free_port()), KAFKA_CONTROLLER_PORT=str(free_port()),
               KAFKA_RUN_DIR=str(run_dir), KAFKA_HEAP=os.environ.get("KAFKA_HEAP", "384m"),
               KAFKA_RETENTION_HOURS="-1")
    subprocess.run([str(KAFKA_SH), "start"], env=env, check=True, timeout=180)
    try:
        yield f"127.0.0.1:{env['KAFKA_PORT']}"
    finally:
        subprocess.run([str(KAFKA_SH), "stop"], env=env, check=False, timeout=60)


@contextlib.contextmanager
def redis_server(run_dir: Path) -> Iterator[str]:
    """A throw-away redis-server on a free port; yields its URL."""
    port = free_port()
    run_dir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(run_dir)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        def accepts() -> bool:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return True

        wait_until(accepts, 20, "redis-server")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        stop_process(proc)


def stop_process(proc: subprocess.Popen[bytes], grace: float = 15.0) -> None:
    """SIGTERM the process group, SIGKILL after ``grace`` seconds."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


class EnmsProcess:
    """An ``enms <command>`` subprocess with its own environment and log file."""

    def __init__(self, command: str, env: dict[str, str], log_path: Path) -> None:
        self.command = command
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "enms", command], cwd=ROOT, env=env,
            stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)

    def log_text(self) -> str:
        """What the process printed so far."""
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        """Stop it (idempotent)."""
        stop_process(self.proc)
        self._log.close()

    def kill(self) -> None:
        """SIGKILL: a crash, no clean shutdown."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        self._log.close()

    def wait_for_log(self, text: str, timeout: float) -> None:
        """Wait until the log contains ``text``; fail early if the process died."""
        def seen() -> bool:
            self.check_alive()
            return text in self.log_text()
        wait_until(seen, timeout, f"{text!r} in the log of enms {self.command}")

    async def log_shows(self, text: str, timeout: float) -> None:
        """`wait_for_log` for async tests, in a thread."""
        await asyncio.to_thread(self.wait_for_log, text, timeout)

    def check_alive(self) -> None:
        """Raise `ProcessExited` (with the log's tail) if the process has died."""
        if self.proc.poll() is not None:
            msg = f"enms {self.command} exited ({self.proc.returncode}):\n{self.log_text()[-3000:]}"
            raise ProcessExited(msg)


def http_json(url: str, timeout: float = 5.0) -> Any:
    """GET a URL and decode its JSON body (any status)."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:  # noqa: S310 - loopback only
            return orjson.loads(r.read())
    except urllib.error.HTTPError as e:
        return orjson.loads(e.read())
