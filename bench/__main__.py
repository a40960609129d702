"""``python -m bench``: end-to-end latency, one worker's throughput, the scoring core.

Starts its own Kafka (deploy/kafka/kafka.sh) and redis-server on free ports in a temporary
run folder, deleted at the end, unless ``ENMS_BENCH_KAFKA_BOOTSTRAP`` /
``ENMS_BENCH_REDIS_URL`` name running ones. Other ``ENMS_*`` variables reach the worker and
API unchanged (e.g. ``ENMS_BATCH_WITHIN_S=0.005``) and are recorded with the results.

Results: a table on stdout (plain, then markdown for the README) and JSON in
``bench/results/latest.json`` and ``bench/results/<UTC timestamp>.json`` (``--quick`` writes
``latest-quick.json`` and ``<timestamp>-quick.json`` instead, so a smoke run never replaces
the real figures).

Examples::

    .venv/bin/python -m bench                    # about 2 minutes on 2 cores
    .venv/bin/python -m bench --quick            # about 40 s, smoke run
    .venv/bin/python -m bench --only core        # in-process scoring core only, no services
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from bench import baseline_fit, detect, e2e, throughput
from bench.common import RESULTS_DIR, log, machine_info, passthrough_env, services

PHASES = ("core", "baseline", "detect", "e2e", "worker")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="smoke run (~1 min): 10 s of e2e, 10k readings of throughput")
    p.add_argument("--e2e-seconds", type=float, default=None,
                   help="seconds of paced, measured e2e traffic (default 60; quick 10)")
    p.add_argument("--rate", type=float, default=200.0,
                   help="offered load of the e2e run, readings/s (default 200)")
    p.add_argument("--spike-every", type=int, default=20,
                   help="one reading in this many of the e2e stream is a spike (default 20)")
    p.add_argument("--ws-path", default="dashboard",
                   choices=("dashboard", "anomalies", "events"),
                   help="WebSocket path the e2e client listens on (default dashboard)")
    p.add_argument("--throughput-readings", type=int, default=None,
                   help="simulated readings for the throughput runs (default 100000; "
                        "quick 10000)")
    p.add_argument("--core-repeats", type=int, default=None,
                   help="in-process core runs, best taken (default 2; quick 1)")
    p.add_argument("--only", action="append", choices=PHASES,
                   help="run only this benchmark (repeatable); default: all")
    p.add_argument("--results-dir", type=Path, default=RESULTS_DIR,
                   help=f"where the JSON goes (default {RESULTS_DIR})")
    p.add_argument("--no-save", action="store_true", help="print only, write no JSON")
    p.add_argument("--keep-run-dir", action="store_true",
                   help="keep the temporary run folder (Kafka data, process logs)")
    return p


def _interrupt(signum: int, frame: object) -> None:
    msg = f"signal {signum}"
    raise KeyboardInterrupt(msg)


# --------------------------------------------------------------------------- tables


def _fmt(v: Any, unit: str = "", digits: int = 0) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float) and digits:
        return f"{v:,.{digits}f}{unit}"
    if isinstance(v, (int, float)):
        return f"{v:,.0f}{unit}" if abs(v) >= 100 or not digits else f"{v}{unit}"
    return f"{v}{unit}"


def _lat(s: dict[str, Any]) -> str:
    if not s or not s.get("count"):
        return "n/a"
    return " / ".join(f"{s[k]:.0f}" if s[k] >= 10 else f"{s[k]:.1f}"
                      for k in ("p50_ms", "p90_ms", "p99_ms", "max_ms")) + " ms"


def rows(results: dict[str, Any]) -> list[tuple[str, str]]:
    """(measure, figure) pairs of the summary table."""
    out: list[tuple[str, str]] = []
    e = results.get("e2e")
    if e:
        lat = e["latency"]
        out.append((f"End-to-end latency, reading -> WebSocket `{e['ws_path']}` "
                    f"p50 / p90 / p99 / max ({e['offered_rate_per_s']:.0f} readings/s, "
                    f"{e['seconds']:.0f} s, {lat['websocket']['count']} spikes)",
                    _lat(lat["websocket"])))
        out.append(("  of which: reading -> event visible on `enms.anomalies` "
                    "p50 / p90 / p99 / max", _lat(lat["kafka_anomalies_topic"])))
        out.append(("  of which: reading -> worker produced the event (CreateTime, 1 ms "
                    "resolution) p50 / p90 / p99 / max", _lat(lat["worker_emit_createtime"])))
        out.append(("Spikes without an event on the WebSocket (missed / sent); "
                    "anomalies on normal readings",
                    f"{e['missed_on_websocket']} / {e['spikes']}; "
                    f"{e['unexpected_anomalies']}"))
    w = results.get("worker_throughput")
    if w:
        steady = w.get("steady_readings_per_s")
        out.append((f"One worker, scoring throughput ({w['readings']:,} readings backlog, "
                    "Ready -> all offsets committed)",
                    f"{w['readings_per_s']:,} readings/s"
                    + (f" (steady, between commits: {steady:,}/s)" if steady else "")))
        out.append(("One worker, CPU per reading (utime+stime; share of one core while "
                    "busy)", f"{w['cpu_us_per_reading']:,.0f} µs ({w['cpu_utilisation']:.0%})"))
    others = [f"{name} {r['other_processes_cpu']['cores']:.2f}"
              for name, r in (("e2e", e), ("worker", w)) if r and "other_processes_cpu" in r]
    if others:
        out.append(("Other processes' CPU during the measurement (cores; ~0 = quiet machine)",
                    ", ".join(others)))
    c = results.get("core")
    if c:
        out.append((f"Online detector per core: scoring core `score_stream` in-process "
                    f"({c['readings']:,} simulated readings)", f"{c['score_readings_per_s']:,} readings/s "
                    f"({c['score_us_per_reading']:.1f} µs/reading)"))
        out.append(("`decode_reading` (msgspec, validated)",
                    f"{c['decode_us_per_reading']:.2f} µs/reading"))
    d = results.get("anomaly_detect")
    if d:
        out.append((f"`/anomaly/detect` batch detection, a week of 1-minute data "
                    f"({d['window_readings']:,} readings, reference week before it; "
                    "without the Kafka read)",
                    f"{d['seconds_median'] * 1000:.0f} ms; {d['anomalies_on_clean']} anomalies "
                    "on the clean week"))
    b = results.get("baseline_fit")
    if b:
        out.append((f"Baseline fit of one machine on a year of hourly data ({b['rows']:,} rows, "
                    f"all candidates; {b['machine']}, chose {b['kind']})",
                    f"{b['fit_seconds_median'] * 1000:.0f} ms (median); "
                    f"validated CV(RMSE) {b['cv_rmse_validation']:.2f} %"))
    return out


def machine_line(results: dict[str, Any]) -> str:
    m = results["machine"]
    return (f"{m['cores']} cores ({m['cpu_model']}), Python {m['python']}, "
            f"Kafka {m['kafka_version']}, commit {m['git_commit']}"
            f"{' (dirty)' if m['git_dirty'] else ''}, {results['started_at']}")


def plain_table(results: dict[str, Any]) -> str:
    r = rows(results)
    width = max((len(k) for k, _ in r), default=10)
    lines = [f"{k:<{width}}  {v}" for k, v in r]
    return "\n".join([machine_line(results), "-" * (width + 30), *lines])


def markdown_table(results: dict[str, Any]) -> str:
    lines = ["| Measure | Figure |", "|---|---|"]
    lines += [f"| {k.strip()} | {v} |" for k, v in rows(results)]
    lines.append("")
    lines.append(f"_{machine_line(results)}; `python -m bench`_")
    return "\n".join(lines)


# --------------------------------------------------------------------------- run


def _dump_logs(run_dir: Path) -> None:
    for path in sorted((run_dir / "logs").glob("*.log")):
        tail = path.read_text(errors="replace").splitlines()[-25:]
        print(f"--- last lines of {path.name} ---", file=sys.stderr)
        print("\n".join(tail), file=sys.stderr)


def _warn_if_shared(result: dict[str, Any], limit: float = 0.3) -> None:
    other = result.get("other_processes_cpu") or {}
    if other.get("cores", 0) > limit:
        log(f"WARNING: other processes used {other['cores']:.2f} cores meanwhile "
            f"(top: {other.get('top')}); the figures are skewed, run again on a quiet machine")


def run(args: argparse.Namespace) -> dict[str, Any]:
    phases = tuple(args.only) if args.only else PHASES
    e2e_seconds = args.e2e_seconds or (10.0 if args.quick else 60.0)
    n = args.throughput_readings or (10_000 if args.quick else 100_000)
    repeats = args.core_repeats or (1 if args.quick else 2)
    started = datetime.now(UTC)
    results: dict[str, Any] = {
        "started_at": started.isoformat(timespec="seconds"),
        "quick": args.quick,
        "machine": machine_info(),
        "parameters": {"phases": list(phases), "e2e_seconds": e2e_seconds, "rate": args.rate,
                       "spike_every": args.spike_every, "ws_path": args.ws_path,
                       "throughput_readings": n, "core_repeats": repeats},
        "env_overrides": passthrough_env(),
    }
    t0 = time.monotonic()
    readings = []
    if "core" in phases or "worker" in phases:
        log(f"simulating {n} readings ...")
        readings = throughput.simulated_readings(n)
    if "core" in phases:
        log("core: score_stream and decode_reading in-process ...")
        results["core"] = throughput.core(readings, repeats=repeats)
        log(f"core: {results['core']['score_readings_per_s']} readings/s")
    if "baseline" in phases:
        log("baseline: fitting one machine's baseline on a year of hourly data ...")
        results["baseline_fit"] = baseline_fit.measure(repeats=1 if args.quick else 5)
        log(f"baseline: {results['baseline_fit']['fit_seconds_median']:.3f} s per fit")
    if "detect" in phases:
        log("detect: /anomaly/detect's batch detection on a week of 1-minute data ...")
        results["anomaly_detect"] = detect.measure(repeats=1 if args.quick else 3)
        log(f"detect: {results['anomaly_detect']['seconds_median']:.3f} s")
    if "e2e" in phases or "worker" in phases:
        run_dir = Path(tempfile.mkdtemp(prefix="enms-bench-"))
        try:
            with services(run_dir) as svc:
                results["services"] = {"kafka": svc.kafka_bootstrap, "redis": svc.redis_url,
                                       "own_kafka": svc.own_kafka, "own_redis": svc.own_redis}
                if "e2e" in phases:
                    log(f"e2e: {e2e_seconds:.0f}s at {args.rate:.0f} readings/s ...")
                    results["e2e"] = e2e.run(svc, seconds=e2e_seconds, rate=args.rate,
                                             spike_every=args.spike_every,
                                             ws_path=args.ws_path)
                    log(f"e2e: {results['e2e']['latency']['websocket']}")
                    _warn_if_shared(results["e2e"])
                if "worker" in phases:
                    log(f"worker throughput: {n} readings ...")
                    results["worker_throughput"] = throughput.worker(svc, readings)
                    log(f"worker: {results['worker_throughput']['readings_per_s']} readings/s")
                    _warn_if_shared(results["worker_throughput"])
        except Exception:
            with contextlib.suppress(Exception):
                _dump_logs(run_dir)
            raise
        finally:
            if args.keep_run_dir:
                log(f"run folder kept: {run_dir}")
            else:
                shutil.rmtree(run_dir, ignore_errors=True)
    results["duration_s"] = round(time.monotonic() - t0, 1)
    results["machine"]["load_avg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    return results


def save(results: dict[str, Any], directory: Path, quick: bool) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    stamp = datetime.fromisoformat(results["started_at"]).strftime("%Y%m%dT%H%M%SZ")
    suffix = "-quick" if quick else ""
    data = orjson.dumps(results, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
    paths = [directory / f"{stamp}{suffix}.json", directory / f"latest{suffix}.json"]
    for path in paths:
        tmp = path.with_suffix(".json.tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    with contextlib.suppress(ValueError, OSError):
        signal.signal(signal.SIGHUP, _interrupt)
    try:
        results = run(args)
    except KeyboardInterrupt:
        log("interrupted; everything started was stopped")
        return 130
    print()
    print(plain_table(results))
    print()
    print(markdown_table(results))
    if not args.no_save:
        paths = save(results, args.results_dir, args.quick)
        log("results: " + ", ".join(str(p) for p in paths))
    log(f"done in {results['duration_s']:.0f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
