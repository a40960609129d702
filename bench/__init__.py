"""Benchmarks of the EnMS stream: ``python -m bench`` (see `bench.__main__`).

The benchmarks reuse the integration tests' service helpers (``tests.integration``), which
live in the repository, not in the installed package: make sure its root is importable.
"""

from __future__ import annotations

import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)
