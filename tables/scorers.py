"""Per-machine scoring state (`detectors.scoring.MachineScorer`), one entry per machine_id.

In memory a value is the live `MachineScorer`; on the changelog it is the scorer's state as
data: a versioned `detectors.state.ScorerState`, JSON-encoded by msgspec (`ScorerStateCodec`).
Nothing read from the changelog is executed (a pickled value would run whatever code its
writer chose): anyone who can write the changelog topic can set a machine's scorer state,
but not run code in the worker. Writing the whole state on every reading would put 3-35 kB per reading on the
changelog (measured: 3 kB for a 30 s machine's residual detector, 15 kB for a 1 s machine's,
23-35 kB with HalfSpaceTrees), so the agent mutates the scorer in place and writes it back every
``checkpoint_interval_s``: after a crash a machine's scorer resumes from its last checkpoint
and relearns the rest.

After a recovery a value is the decoded `ScorerState` (upcast to the current version), or
None when the stored bytes could not be read (logged here); the agent rebuilds a scorer from
it with today's configuration (`agents.score_readings`).

``use_partitioner=True``: the changelog partition is chosen from the key by the producer's
partitioner (murmur2, as Kafka's Java client), the same that places a machine's readings, so
a machine's state and its readings share a partition number, and a checkpoint can be written
for any machine of a batch.
"""

from __future__ import annotations

import logging
from typing import Any

import faust

from detectors.scoring import MachineScorer
from detectors.state import ScorerState, StateMismatch, decode, encode
from streams.app import app, settings

log = logging.getLogger(__name__)


class ScorerStateCodec(faust.Codec):
    """A table value: a `MachineScorer` (or its `ScorerState`) out, a `ScorerState` in.

    Reading never raises: Faust applies the changelog while it recovers, and one value it
    cannot read must not stop the worker. It logs and gives None (that machine starts afresh).
    """

    def _dumps(self, obj: Any) -> bytes:
        state = obj.state() if isinstance(obj, MachineScorer) else obj
        return encode(state)

    def _loads(self, s: bytes) -> ScorerState | None:
        try:
            return decode(s)
        except StateMismatch as e:
            log.warning("machine-scorers: a stored scorer state is not readable (%s); that "
                        "machine's scorer starts afresh", e)
            return None


class ScorerTable(faust.Table):
    """A table whose values go through `ScorerStateCodec` and whose bytes keys stay raw.

    Faust derives a table's codecs from its key and value *types* and takes no codec
    argument; its changelog topic and its recovery use the same codecs, so they are chosen
    here, where the table is built. A codec instance rather than a name registered with
    ``faust.serializers.codecs.register``: nothing global changes, and no other topic or
    table can pick this codec up by name.
    """

    _value_codec = ScorerStateCodec()

    def _serializer_from_type(self, typ: Any) -> Any:
        return "raw" if typ is bytes else self._value_codec


#: Keys: the machine_id as raw UTF-8 bytes, exactly the key of its readings (a JSON-encoded
#: key would hash to another partition). Values: `MachineScorer`, or after a recovery the
#: `ScorerState` it is rebuilt from (None: not readable).
scorers = ScorerTable(
    app,
    name="machine-scorers",
    default=None,
    key_type=bytes,
    partitions=settings.readings_partitions,
    use_partitioner=True,
    beacon=app.tables.beacon,
)
app.tables.add(scorers)
