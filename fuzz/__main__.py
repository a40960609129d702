"""``python -m fuzz`` (``make fuzz``): both fuzzers against a whole stack of its own.

Starts Kafka and Redis (as the benchmarks do: free ports, a temporary folder), one worker and
one API; then

1. the Kafka fuzzer (`fuzz.kafka`): at least 10,000 generated bad records (random bytes,
   random JSON, mutated good readings) on ``enms.readings`` with good readings interleaved;
   every bad one must be dead-lettered, every good one scored;
2. the API fuzzer (`fuzz.api`): schemathesis from ``/api/v1/openapi.json``, at least 10,000
   requests; no answer may be a 5xx.

Prints the figures, saves them to ``bench/results/fuzz-latest.json`` (and a dated copy) and
exits non-zero when a figure is off. Bounded: everything stops within ``--max-minutes``
(default 10), also on failure; every process it started is stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from bench.common import (
    RESULTS_DIR,
    bridge_partitions,
    enms_env,
    log,
    machine_info,
    new_run_id,
    services,
    start_api,
    start_enms,
    wait_for_ready,
)
from fuzz import api as api_fuzz
from fuzz import kafka as kafka_fuzz
from fuzz.records import KINDS
from schemas.machines import MACHINES
from streams.settings import Settings
from tests.integration.services import wait_until

#: Machines whose good readings the Kafka fuzzer sends (30 s, 30 s and 10 s intervals).
FUZZ_MACHINES = [MACHINES[2], MACHINES[3], MACHINES[5]]
#: Where the good readings start: a period of their own, in the past.
START = datetime(2011, 3, 7, tzinfo=UTC)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m fuzz", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bad", type=int, default=10_000, help="bad records (default 10,000)")
    p.add_argument("--good", type=int, default=10_000, help="good readings (default 10,000)")
    p.add_argument("--max-examples", type=int, default=300,
                   help="schemathesis cases per operation and phase (default 300)")
    p.add_argument("--api-minutes", type=float, default=6.0,
                   help="time budget of the API fuzzer (default 6)")
    p.add_argument("--max-minutes", type=float, default=10.0,
                   help="the whole run stops after this (default 10)")
    p.add_argument("--seed", type=int, default=8)
    p.add_argument("--no-save", action="store_true", help="print only, write no JSON")
    p.add_argument("--keep-run-dir", action="store_true",
                   help="keep the temporary run folder (logs, schemathesis report)")
    return p


def crashes(log_text: str) -> int:
    """Agents Faust reports as crashed in a worker log."""
    return log_text.count("Crashed reason=")


def unhandled(log_text: str) -> int:
    """Requests aiohttp had to answer with a 500 of its own (an exception left a view).
    Malformed HTTP, which aiohttp answers 400 before any view, is logged as "bad HTTP
    request" instead (`api.app`)."""
    return log_text.count("Error handling request")


def bad_http(log_text: str) -> int:
    """Malformed HTTP requests aiohttp answered 400 before routing (not in /health)."""
    return log_text.count("bad HTTP request answered")


def verdicts(r: dict[str, Any], *, bad: int, good: int, requests: int) -> list[str]:
    """What is wrong with a run's figures (empty: all good)."""
    k, a = r["kafka"], r["api"]
    out = []
    if k["bad_sent"] < bad or k["dead_lettered"] != k["bad_sent"]:
        out.append(f"dead-lettered {k['dead_lettered']} of {k['bad_sent']} bad records")
    if k["good_scored"] != k["good_sent"] or k["good_sent"] < good:
        out.append(f"scored {k['good_scored']} of {k['good_sent']} good readings")
    if r["worker_crashes"]:
        out.append(f"{r['worker_crashes']} agent crashes")
    if a["server_errors"] or r["api_unhandled"]:
        out.append(f"{a['server_errors']} 5xx answers ({r['api_unhandled']} unhandled)")
    if a["requests"] < requests:
        out.append(f"only {a['requests']} requests (at least {requests} wanted)")
    return out


def table(r: dict[str, Any]) -> str:
    k, a = r["kafka"], r["api"]
    rows = [
        ("API requests (schemathesis, counted by the API)", f"{a['requests']:,}"),
        ("API 5xx answers", f"{a['server_errors']}"),
        ("API answers by status", ", ".join(f"{s}: {n:,}" for s, n in a["by_status"].items())),
        ("malformed HTTP answered 400 by aiohttp before routing", f"{r['api_bad_http']}"),
        ("schemathesis check failures (conformance)", f"{len(a['failures'] or [])}"),
        ("Kafka bad records sent (bytes / json / mutated)",
         f"{k['bad_sent']:,} ({' / '.join(str(k['bad_by_kind'].get(x, 0)) for x in KINDS)})"),
        ("dead-lettered", f"{k['dead_lettered']:,}"),
        ("good readings sent / scored", f"{k['good_sent']:,} / {k['good_scored']:,}"),
        ("agent crashes (worker log)", f"{r['worker_crashes']}"),
        ("run time", f"{r['seconds']:.0f} s (Kafka fuzz {k['seconds']:.0f} s, API fuzz "
                     f"{a['seconds']:.0f} s)"),
    ]
    width = max(len(x) for x, _ in rows)
    return "\n".join(f"{x.ljust(width)}  {y}" for x, y in rows)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[fuzz %(asctime)s] %(message)s",
                        datefmt="%H:%M:%S")
    t0 = time.monotonic()
    run_dir = Path(tempfile.mkdtemp(prefix="enms-fuzz-"))
    result: dict[str, Any] = {"started_at": datetime.now(UTC).isoformat(),
                              "machine": machine_info(), "args": vars(args)}
    try:
        with services(run_dir) as svc:
            run_id = new_run_id()
            env = enms_env(svc, run_id)
            logs = run_dir / "logs"
            worker = start_enms("worker", env, logs, "fuzz-worker")
            api_proc = None
            try:
                wait_for_ready(worker, 120)
                api_proc, base = start_api(env, logs, "fuzz-api")
                wait_until(lambda: len(bridge_partitions(base)) > 0, 60, "the bridge")
                settings = Settings.from_env(env)
                log(f"Kafka fuzzer: {args.bad:,} bad records, {args.good:,} good readings")
                k = asyncio.run(kafka_fuzz.run(settings, seed=args.seed, bad=args.bad,
                                               good=args.good, machines=FUZZ_MACHINES,
                                               start=START))
                log(f"Kafka fuzzer done: {k.dead_lettered:,} dead-lettered, "
                    f"{k.good_scored:,} scored")
                left = args.max_minutes * 60 - (time.monotonic() - t0) - 60
                budget = max(30.0, min(args.api_minutes * 60, left))
                log(f"API fuzzer: schemathesis for at most {budget:.0f} s")
                a = api_fuzz.run(base, max_examples=args.max_examples, max_time_s=budget,
                                 seed=args.seed, report_dir=run_dir / "schemathesis")
                log(f"API fuzzer done: {a.requests:,} requests, {a.server_errors} 5xx")
                result.update(kafka=k.as_dict(), api=a.as_dict(),
                              worker_crashes=crashes(worker.log_text()),
                              api_unhandled=unhandled(api_proc.log_text()),
                              api_bad_http=bad_http(api_proc.log_text()))
            finally:
                if api_proc is not None:
                    api_proc.stop()
                worker.stop()
        result["seconds"] = round(time.monotonic() - t0, 1)
        print(table(result))
        problems = verdicts(result, bad=args.bad, good=args.good, requests=10_000
                            if args.bad >= 10_000 else 0)
        result["problems"] = problems
        if not args.no_save:
            RESULTS_DIR.mkdir(parents=True, exist_ok=True)
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
            for name in ("fuzz-latest.json", f"fuzz-{stamp}.json"):
                (RESULTS_DIR / name).write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
            log(f"saved {RESULTS_DIR / 'fuzz-latest.json'}")
        for p in problems:
            print(f"FAILED: {p}", file=sys.stderr)
        if a.failures:
            print("schemathesis reported (see its log in the run folder):\n  " +
                  "\n  ".join(a.failures), file=sys.stderr)
        return 1 if problems else 0
    finally:
        if args.keep_run_dir:
            log(f"run folder kept: {run_dir}")
        else:
            shutil.rmtree(run_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
