"""Field types shared by every record and event."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec

#: A timezone-aware datetime: msgspec refuses a naive one while it decodes.
TZDateTime = Annotated[datetime, msgspec.Meta(tz=True)]
