"""One frozen `Settings`, read from the environment in two places only.

`streams.app` (Faust needs a module-level app) and the API entry point call
`Settings.from_env()`; everything else takes a `Settings` (or plain values) as an argument.
Every variable is ``ENMS_`` + the field name in upper case; the defaults below are the
documented defaults (README, "Settings").
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from schemas.plausibility import Limits


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Service settings with their defaults.

    Examples
    --------
    >>> s = Settings.from_env({"ENMS_KAFKA_BOOTSTRAP": "127.0.0.1:19092",
    ...                        "ENMS_READINGS_PARTITIONS": "4"})
    >>> s.kafka_bootstrap, s.readings_partitions, s.api_port
    ('127.0.0.1:19092', 4, 8080)
    >>> Settings.from_env({"ENMS_API_PORT": "eighty"})
    Traceback (most recent call last):
    ...
    ValueError: ENMS_API_PORT: expected int, got 'eighty'
    """

    # Connections
    kafka_bootstrap: str = "127.0.0.1:9092"
    redis_url: str = "redis://127.0.0.1:6379/0"

    # Topics
    readings_partitions: int = 8
    topic_replication: int = 1

    # Faust worker
    app_id: str = "enms-stream"
    #: How long the broker may hold a fetch waiting for data. Faust hard-codes 1500 ms, which
    #: alone delays events by up to 1.5 s; streams.app lowers it to this.
    fetch_max_wait_ms: int = 20
    session_timeout_s: float = 10.0
    heartbeat_interval_s: float = 1.0
    #: Where a new worker group starts reading: "earliest" processes the history.
    consumer_offset_reset: str = "earliest"
    #: Readings taken from the stream per batch, and the longest a partial batch waits.
    batch_max: int = 500
    batch_within_s: float = 0.002
    #: How often (wall clock) a changed detector is written to its table's changelog.
    checkpoint_interval_s: float = 30.0
    #: Faust's own web server (/stats, /router); off, so several workers share a host.
    worker_web_enabled: bool = False
    worker_web_port: int = 6066
    #: Faust's data folder (table stores, worker state); one subfolder per app id.
    data_dir: str = ".run/faust"

    # Online detection
    detector: str = "residual"
    #: Score at or above which a reading is anomalous (detector scores are in [0, 1]).
    threshold: float = 0.9
    #: Readings per machine before any anomaly is reported.
    warmup: int = 300
    #: Span of HalfSpaceTrees' reference window per machine (it scores 0 until it is full).
    window_seconds: float = 7200.0
    #: Event-time interval of metric_updated per machine, in seconds.
    metrics_interval_s: int = 60
    seed: int = 42

    # Bad input: refused with a reason (HTTP 4xx at the API, a dead letter in the worker)
    #: How far a reading's timestamp may be ahead of the wall clock at ingest.
    max_future_s: float = 300.0
    #: Largest power, as a multiple of the machine's rated power.
    max_power_factor: float = 5.0
    #: energy_kwh at most (power_kw x (1 + tol) + rated x tol) x the machine's interval.
    energy_tolerance: float = 0.5
    max_throughput_units_per_hour: float = 1e6
    #: Largest production_count of one reading.
    max_production_count: float = 1e6
    #: A reading older than its machine's latest by more than this is dead-lettered (it
    #: cannot be told from a re-sent one); a later one is scored and counted once.
    max_lateness_s: float = 900.0
    #: Largest record on enms.readings the worker decodes (a reading is about 250 bytes).
    max_record_bytes: int = 65_536
    #: Largest original value a dead letter carries (cut beyond; size and sha256 are kept).
    dlq_value_max_bytes: int = 16_384
    #: Largest request body the API reads (413 beyond, before reading it when announced).
    max_body_bytes: int = 4 * 1024 * 1024
    #: How long POST /api/v1/readings waits for Kafka's acknowledgement before a 503.
    ingest_timeout_s: float = 4.0

    # Baselines and training
    #: Days of hourly data a retrain (manual, scheduled, drift) uses, ending at the newest.
    retrain_window_days: int = 28
    #: What a drift alert does: "auto" (retrain now) or "propose" (alert only).
    drift_policy: str = "auto"
    #: Scheduled retrain of every machine's baseline, in seconds (default weekly; 0 = off).
    retrain_schedule_s: float = 604800.0
    #: A job with no event for this long is failed (its worker died and nothing resumed it).
    job_stale_after_s: float = 300.0
    #: How long POST /baseline/train waits for its job.
    training_timeout_s: float = 120.0

    # API / bridge
    api_host: str = "127.0.0.1"
    api_port: int = 8080
    bridge_group_id: str = "enms-bridge"
    #: Where the bridge starts on first run: "latest" (live only) or "earliest".
    bridge_offset_reset: str = "latest"
    ws_ping_interval_s: float = 30.0

    log_level: str = "INFO"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build from ``ENMS_*`` variables (``os.environ`` by default)."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):
            key = f"ENMS_{f.name.upper()}"
            if key not in env:
                continue
            raw = env[key]
            kind: type[Any] = type(f.default)
            try:
                values[f.name] = kind(raw) if kind is not bool else raw.lower() in {
                    "1", "true", "yes", "on"}
            except ValueError as e:
                msg = f"{key}: expected {kind.__name__}, got {raw!r}"
                raise ValueError(msg) from e
        return cls(**values)

    def limits(self) -> Limits:
        """The plausibility limits of a reading (`schemas.plausibility`)."""
        return Limits(max_future_s=self.max_future_s, max_power_factor=self.max_power_factor,
                      energy_tolerance=self.energy_tolerance,
                      max_throughput_units_per_hour=self.max_throughput_units_per_hour,
                      max_production_count=self.max_production_count)
