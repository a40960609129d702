"""``python -m enms``: the same as the ``enms`` command."""

from __future__ import annotations

import sys

from enms.cli import main

sys.exit(main())
