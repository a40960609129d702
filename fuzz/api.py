"""The API fuzzer: schemathesis against the running API, from its own OpenAPI description.

schemathesis (a property-based API fuzzer built on Hypothesis) reads
``/api/v1/openapi.json`` and sends generated requests, valid and invalid, to every operation.
Its ``not_a_server_error`` check fails on any 5xx; the conformance checks fail where an
answer differs from what the description promises (status code, content type, body schema).
How many requests reached the API and how many got a 5xx is read from the API itself (the
``requests`` counts of ``/health``), not from the fuzzer's report.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tests.integration.services import http_json

CHECKS = ("not_a_server_error", "status_code_conformance", "content_type_conformance",
          "response_schema_conformance")


@dataclass
class ApiFuzz:
    """What schemathesis did and what the API answered."""

    requests: int = 0
    server_errors: int = 0  # 5xx answers counted by the API
    by_status: dict[str, int] | None = None
    exit_code: int | None = None
    failures: list[str] | None = None  # the check failures schemathesis reported
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _counts(base: str) -> dict[str, Any]:
    body: Any = http_json(f"{base}/health", 10)
    return body["requests"]


def run(base: str, *, max_examples: int, max_time_s: float, seed: int, report_dir: Path,
        workers: int = 2) -> ApiFuzz:
    """Run schemathesis against ``base`` until it has sent ``max_examples`` cases per
    operation or ``max_time_s`` has passed; return the counts."""
    t0 = time.monotonic()
    before = _counts(base)
    cmd = [sys.executable, "-m", "schemathesis.cli", "run", f"{base}/api/v1/openapi.json",
           "--url", base, "--checks", ",".join(CHECKS), "--max-examples", str(max_examples),
           "--max-time", str(int(max_time_s)), "--seed", str(seed), "--workers", str(workers),
           "--phases", "examples,coverage,fuzzing", "--request-timeout", "30",
           "--no-color", "--continue-on-failure", "--suppress-health-check", "all",
           "--report", "junit", "--report-dir", str(report_dir)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=max_time_s + 120,
                          check=False)
    (report_dir / "schemathesis.log").write_text(done.stdout + done.stderr)
    after = _counts(base)
    by_status = {k: v - before["by_status"].get(k, 0) for k, v in after["by_status"].items()
                 if v - before["by_status"].get(k, 0)}
    # The two /health reads of this function are not the fuzzer's.
    by_status["200"] = by_status.get("200", 0) - 1
    return ApiFuzz(
        requests=sum(by_status.values()),
        server_errors=sum(v for k, v in by_status.items() if k.startswith("5")),
        by_status=dict(sorted(by_status.items())), exit_code=done.returncode,
        failures=_failures(done.stdout), seconds=round(time.monotonic() - t0, 1))


def _failures(output: str) -> list[str]:
    """The headings of the failures in schemathesis's output (one line each)."""
    return sorted(set(re.findall(r"^_+ (.+?) _+$", output, re.MULTILINE)))
