"""The dead-letter topic's shell: records that cannot be processed, set aside with why.

Both agents dead-letter through one `DeadLetterSink`: it builds the record (the value cut to
``dlq_value_max_bytes``: a 200 KB binary value once made a 1.2 MB dead letter, over the
producer's request limit, which crashed the agent), sends it without attaching it to the
source event (so that the broker's ack can be awaited before the batch is committed),
retries failed sends, and logs at most `LOG_EACH` dead letters one by one per minute.
It never raises: a failing dead-letter send is logged and counted, never fatal.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import faust

from schemas.events import DeadLetter, encode

log = logging.getLogger(__name__)

#: Dead letters logged one by one per `LOG_WINDOW_S`; the rest are summed up.
LOG_EACH = 20
LOG_WINDOW_S = 60.0
#: Waits before each retry of dead letters whose send failed.
RETRIES_S = (0.2, 1.0, 5.0)


class DeadLetterSink:
    """Builds, sends and counts dead letters on one topic.

    Parameters
    ----------
    topic
        The dead-letter topic.
    max_value_bytes
        Longest original value a dead letter carries.
    """

    def __init__(self, topic: faust.types.TopicT, max_value_bytes: int) -> None:
        self.topic = topic
        self.max_value_bytes = max_value_bytes
        self.sent = 0
        self.failed = 0
        self._logged = 0
        self._window = 0.0

    def of(self, event: faust.types.EventT[Any], reason: str, field: str) -> DeadLetter:
        """The dead letter of the message of ``event``."""
        msg = event.message
        return DeadLetter.of(
            topic=msg.topic, partition=msg.partition, offset=msg.offset,
            key=_as_bytes(msg.key), value=_as_bytes(msg.value),
            reason=reason, field=field, failed_at=datetime.now(UTC),
            max_bytes=self.max_value_bytes)

    async def send(self, letters: Sequence[DeadLetter]) -> None:
        """Send and await the acks; retry what failed, then log and count it."""
        if not letters:
            return
        self._log(letters)
        pending = [(d.key.encode() if d.key is not None else None, encode(d)) for d in letters]
        error: Exception | None = None
        for wait in (0.0, *RETRIES_S):
            if wait:
                await asyncio.sleep(wait)
            sent, failed = [], []
            for key, value in pending:
                try:
                    sent.append(((key, value),
                                 await self.topic.send(key=key, value=value, force=True)))
                except Exception as e:  # noqa: BLE001 - any failure: kept, retried below
                    failed.append((key, value))
                    error = e
            for item, fut in sent:
                try:
                    await fut
                except Exception as e:  # noqa: BLE001 - any failure: kept, retried below
                    failed.append(item)
                    error = e
            self.sent += len(pending) - len(failed)
            if not failed:
                return
            pending = failed
        self.failed += len(pending)
        log.error("%d dead letters could not be sent to %s after %d tries (%r); %d lost so far",
                  len(pending), self.topic.get_topic_name(), 1 + len(RETRIES_S), error,
                  self.failed)

    def _log(self, letters: Sequence[DeadLetter]) -> None:
        now = time.monotonic()
        if now - self._window >= LOG_WINDOW_S:
            if self._logged > LOG_EACH:
                log.warning("... and %d more dead letters in the last %.0f s",
                            self._logged - LOG_EACH, now - self._window)
            self._window, self._logged = now, 0
        for d in letters:
            self._logged += 1
            if self._logged <= LOG_EACH:
                log.warning("dead letter %s[%s]@%s: %s (%s)", d.source_topic,
                            d.source_partition, d.source_offset, d.reason, d.field)


def _as_bytes(x: object) -> bytes | None:
    """A message's key or value as bytes. Faust types them as bytes, and the raw topics hand
    over exactly that (or None); anything else (a buffer, a test's str) is converted."""
    if x is None or isinstance(x, bytes):
        return x
    if isinstance(x, bytearray | memoryview):
        return bytes(x)
    return str(x).encode()
