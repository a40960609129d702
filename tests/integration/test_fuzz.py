"""A short `make fuzz` on the real stack: the same two fuzzers, fewer records and requests."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from fuzz import api as api_fuzz
from fuzz import kafka as kafka_fuzz
from fuzz.__main__ import FUZZ_MACHINES, crashes, unhandled
from streams.settings import Settings
from tests.integration.conftest import ALL_OUTPUT_PARTITIONS, Stack, bridge_partitions
from tests.integration.services import EnmsProcess, wait_until

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def api(stack: Stack) -> tuple[str, EnmsProcess, EnmsProcess, Settings]:
    worker = stack.start("worker")
    base = stack.start_api()
    worker.wait_for_log("Worker]: Ready", 120)
    wait_until(lambda: len(bridge_partitions(base)) == ALL_OUTPUT_PARTITIONS, 60,
               "the bridge to own every output partition")
    return base, worker, stack.procs[-1], Settings.from_env(stack.env)


async def test_kafka_fuzz_every_bad_record_dead_lettered_every_good_reading_scored(
        api: tuple[str, EnmsProcess, EnmsProcess, Settings]) -> None:
    _, worker, _, settings = api
    r = await kafka_fuzz.run(settings, seed=3, bad=600, good=600, machines=FUZZ_MACHINES,
                             start=datetime(2012, 5, 7, tzinfo=UTC))
    assert r.bad_sent == 600 and set(r.bad_by_kind) == {"bytes", "json", "mutated"}
    assert r.dead_lettered == r.bad_sent
    assert r.good_scored == r.good_sent == 600
    assert crashes(worker.log_text()) == 0


def test_api_fuzz_no_server_error(api: tuple[str, EnmsProcess, EnmsProcess, Settings],
                                  tmp_path: Path) -> None:
    base, _, api_proc, _ = api
    r = api_fuzz.run(base, max_examples=5, max_time_s=45, seed=3, report_dir=tmp_path)
    assert r.requests > 100, r
    assert r.server_errors == 0, (r.by_status, r.failures)
    assert unhandled(api_proc.log_text()) == 0
    assert r.exit_code == 0, r.failures
