"""The ``enms`` command: worker, api, simulate, topics, evaluate, replay.

The one composition root: the only package that imports both the worker side (`agents`,
`tables`) and the API (`api`), each only inside the command that runs it.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from detectors.base import DETECTORS
from streams.settings import Settings

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> timedelta:
    """``90s``, ``10m``, ``6h``, ``2d`` (or plain seconds) as a timedelta.

    Examples
    --------
    >>> parse_duration("6h"), parse_duration("45")
    (datetime.timedelta(seconds=21600), datetime.timedelta(seconds=45))
    """
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text)
    if not m:
        msg = f"not a duration: {text!r} (use e.g. 90s, 10m, 6h, 2d)"
        raise argparse.ArgumentTypeError(msg)
    return timedelta(seconds=float(m.group(1)) * _UNITS[m.group(2) or "s"])


def _parse_time(text: str) -> datetime:
    dt = datetime.fromisoformat(text)
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def parse_start(text: str) -> datetime:
    """An ISO 8601 time (UTC if it has no zone), or a duration with its unit before now
    (``7d``: seven days ago, in whole seconds).

    Examples
    --------
    >>> parse_start("2026-11-20T06:00:00+01:00").isoformat()
    '2026-11-20T06:00:00+01:00'
    >>> ago = datetime.now(UTC) - parse_start("7d")
    >>> timedelta(days=7) <= ago < timedelta(days=7, seconds=2)
    True
    """
    if re.fullmatch(r"\s*\d+(?:\.\d+)?\s*[smhd]\s*", text):
        return datetime.now(UTC).replace(microsecond=0) - parse_duration(text)
    try:
        return _parse_time(text)
    except ValueError as e:
        msg = f"not a time or a duration before now: {text!r} (use e.g. 2026-11-20T06:00Z or 7d)"
        raise argparse.ArgumentTypeError(msg) from e


def _logging(settings: Settings) -> None:
    logging.basicConfig(level=settings.log_level,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def cmd_topics(settings: Settings, args: argparse.Namespace) -> int:
    """Create the topic catalogue."""
    from streams.admin import ensure_topics

    created = asyncio.run(ensure_topics(settings))
    print("created: " + (", ".join(created) if created else "nothing (all topics exist)"))
    return 0


def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    """Run one Faust worker (topics are created first)."""
    from streams.admin import ensure_topics

    asyncio.run(ensure_topics(settings))
    Path(settings.data_dir).mkdir(parents=True, exist_ok=True)  # Faust makes one level only
    asyncio.set_event_loop(asyncio.new_event_loop())
    import agents.score_readings  # registers the scoring agent with the app
    import agents.train_models  # noqa: F401 - registers the training agents with the app
    from streams.app import app

    web = (["--with-web", "--web-port", str(settings.worker_web_port)]
           if settings.worker_web_enabled else ["--without-web"])
    sys.argv = ["enms", "worker", "--loglevel", settings.log_level.lower(), *web]
    app.main()
    return 0


def cmd_api(settings: Settings, args: argparse.Namespace) -> int:
    """Run the API, the bridge and the dashboard."""
    from api.app import run

    _logging(settings)
    run(settings)
    return 0


def cmd_simulate(settings: Settings, args: argparse.Namespace) -> int:
    """Produce simulated readings to Kafka."""
    from streams import simulator

    _logging(settings)
    try:
        sent = asyncio.run(simulator.run(
            settings, seed=args.seed, speed=args.speed, start=args.start, duration=args.duration,
            labels_path=args.labels, anomalies=not args.no_anomalies,
            backfill=args.backfill, anomaly_rate_per_day=args.anomaly_rate))
    except KeyboardInterrupt:
        return 130
    print(f"sent {sent} readings")
    return 0


def cmd_seed_history(settings: Settings, args: argparse.Namespace) -> int:
    """Put simulated hourly history of every machine on enms.energy.hourly."""
    from streams import simulator

    _logging(settings)
    end = (args.end or datetime.now(UTC) - args.before).replace(minute=0, second=0,
                                                                microsecond=0)
    sent = asyncio.run(simulator.seed_hourly_history(
        settings, seed=args.seed, start=end - args.days, end=end))
    print(f"sent {sent} hourly records ({args.days.days} days up to {end.isoformat()})")
    return 0


def cmd_evaluate(settings: Settings, args: argparse.Namespace) -> int:
    """Evaluate detectors: on NAB or SKAB files, or on simulated labelled anomalies."""
    if args.bench in {"nab", "skab"}:
        from evaluation import benchmarks

        if args.data is None:
            print(f"enms evaluate {args.bench}: --data must name the {args.bench.upper()} data "
                  "folder (see the README's Detection section)", file=sys.stderr)
            return 2
        argv = [args.bench, "--data", args.data]
        if args.out:
            argv += ["--out", args.out]
        return benchmarks.main(argv)
    from detectors.scoring import ScoringConfig
    from evaluation import simulated

    config = ScoringConfig(detector=args.detector, threshold=args.threshold)
    runs: list[simulated.Run] = []
    windows: list[simulated._Window] = []  # (the first seed's plots)
    for seed in args.seed:
        result, clean, plotted = simulated.evaluate(config, days=args.days, seed=seed,
                                                     clean_days=args.clean_days)
        windows = windows or plotted
        _print_report(f"simulator, seed {seed}, labelled anomalies", result)
        print(f"clean run ({args.clean_days:g} days, no anomalies injected): severities "
              f"{clean['severities']}")
        meters = simulated.power_only_run(config, seed)
        _print_report(f"simulator, seed {seed}, the power-only meter alone", meters)
        runs.append(simulated.Run(seed, result, clean, meters))
    demo = []
    for start in simulated.DEMO_STARTS:
        d = simulated.demo_like(config, start)
        print(f"demo-like 24 h from {start.isoformat()}: {d.episodes} episodes, precision "
              f"{d.precision:.3f}, {d.critical_outside} critical outside every label")
        demo.append((start, d))
    out = Path(args.out or "reports/simulator")
    simulated.write_report(out, config, runs, windows, days=args.days,
                           clean_days=args.clean_days, demo=demo)
    print(f"report: {out / 'README.md'}")
    return 0


def cmd_replay(settings: Settings, args: argparse.Namespace) -> int:
    """Backtest a detector against the readings topic itself, at full speed."""
    from detectors.scoring import ScoringConfig
    from streams.replay import replay

    config = ScoringConfig(detector=args.detector, threshold=args.threshold)
    result = asyncio.run(replay(settings, args.start, args.end, config, args.labels))
    _print_report(f"replay {args.start.isoformat()} .. {args.end.isoformat()}", result)
    return 0


def _print_report(title: str, result: dict) -> None:
    r = result["report"]
    print(f"{title}: {result['readings']} readings in {result['seconds']} s; "
          f"{r['alarms']} alarms ({r['false_alarms']} false, precision {r['precision']}); "
          f"{r['detections']} flagged readings ({r['false_detections']} false, precision "
          f"{r['reading_precision']}); {r['found']}/{r['labels']} labelled anomalies found")
    print(f"{'kind':<12}{'labels':>8}{'found':>8}{'recall':>8}{'F1':>8}")
    for kind, k in r["per_kind"].items():
        print(f"{kind:<12}{k['labels']:>8}{k['found']:>8}{k['recall']:>8.3f}{k['f1']:>8.3f}")
    print(f"severities: {result['severities']}")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (``enms --help``)."""
    p = argparse.ArgumentParser(prog="enms", description=(__doc__ or "").splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("worker", help="run a Faust worker").set_defaults(fn=cmd_worker)
    sub.add_parser("api", help="run the API, bridge and dashboard").set_defaults(fn=cmd_api)
    sub.add_parser("topics", help="create the Kafka topics").set_defaults(fn=cmd_topics)
    s = sub.add_parser("simulate", help="produce simulated readings of the nine catalogue machines")
    s.add_argument("--speed", type=float, default=60.0,
                   help="simulated seconds per real second (0 = as fast as possible) until "
                        "the simulation reaches now, then real time: no reading is sent "
                        "before its own timestamp")
    s.add_argument("--seed", type=int, default=42)
    s.add_argument("--start", type=parse_start, default=None,
                   help="simulated start time: ISO 8601, or a duration before now such as "
                        "7d (default: now minus --backfill)")
    s.add_argument("--duration", type=parse_duration, default=None,
                   help="simulated time to produce (default: until Ctrl-C)")
    s.add_argument("--backfill", type=parse_duration, default=timedelta(0),
                   help="produce this much history at full speed first (warms detectors)")
    s.add_argument("--labels", default=None, help="write injected anomalies (JSON lines) here")
    s.add_argument("--no-anomalies", action="store_true", help="inject no anomalies")
    s.add_argument("--anomaly-rate", type=float, default=4.0,
                   help="injected anomalies per simulated day, plant-wide (default 4)")
    s.set_defaults(fn=cmd_simulate)
    h = sub.add_parser("seed-history", help="put simulated hourly energy history on "
                       "enms.energy.hourly (so baselines can be trained at once)")
    h.add_argument("--days", type=parse_duration, default=timedelta(days=28))
    h.add_argument("--before", type=parse_duration, default=timedelta(0),
                   help="history ends this long before now, on the hour (match simulate "
                        "--start, or --backfill when simulate has no --start)")
    h.add_argument("--end", type=_parse_time, default=None,
                   help="history ends here instead, on the hour (e.g. simulate's --start)")
    h.add_argument("--seed", type=int, default=42)
    h.set_defaults(fn=cmd_seed_history)
    ev = sub.add_parser("evaluate", help="score detectors on NAB, SKAB or simulated anomalies")
    ev.add_argument("bench", choices=("nab", "skab", "simulator"))
    ev.add_argument("--data", default=None, help="data folder (nab, skab; required for them)")
    ev.add_argument("--out", default=None, help="report folder (default reports/<bench>)")
    ev.add_argument("--days", type=float, default=15.0, help="simulated days (simulator)")
    ev.add_argument("--clean-days", type=float, default=8.0,
                    help="days of the clean run, without anomalies (simulator)")
    ev.add_argument("--seed", type=int, nargs="+", default=[11, 12],
                    help="simulator seeds (default: 11 12, not used for tuning)")
    ev.add_argument("--detector", default=DETECTORS[0], choices=DETECTORS)
    ev.add_argument("--threshold", type=float, default=0.9)
    ev.set_defaults(fn=cmd_evaluate)
    rp = sub.add_parser("replay", help="backtest a detector on the readings topic by time")
    rp.add_argument("--from", dest="start", type=_parse_time, required=True)
    rp.add_argument("--to", dest="end", type=_parse_time, required=True)
    rp.add_argument("--detector", default=DETECTORS[0], choices=DETECTORS)
    rp.add_argument("--threshold", type=float, default=0.9)
    rp.add_argument("--labels", default=None, help="labels file of enms simulate --labels")
    rp.set_defaults(fn=cmd_replay)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``enms`` console script."""
    args = build_parser().parse_args(argv)
    settings = Settings.from_env()
    return int(args.fn(settings, args))


if __name__ == "__main__":
    raise SystemExit(main())
