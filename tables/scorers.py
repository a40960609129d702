"""Per-machine scoring state (`detectors.scoring.MachineScorer`), one entry per machine_id.

The value is pickled (River models are plain Python objects). Writing the whole detector on
every reading would put about 230 kB (pickled, measured) per reading on the changelog, so
the agent mutates the object in place and writes it back every ``checkpoint_interval_s``:
after a crash a machine's detector resumes from its last checkpoint and relearns the rest.

``use_partitioner=True``: the changelog partition is chosen from the key by the producer's
partitioner (murmur2, as Kafka's Java client), the same that places a machine's readings, so
a machine's state and its readings share a partition number, and a checkpoint can be written
for any machine of a batch.
"""

from __future__ import annotations

import warnings
from typing import Any

import faust

from streams.app import app, settings


class PickledTable(faust.Table):  # type: ignore[misc]
    """A table whose values are pickled and whose bytes keys stay raw.

    Faust derives a table's codecs from its key and value *types* (json for anything but a
    faust.Record) and takes no codec argument; its changelog topic and its recovery use the
    same codecs, so they are chosen here, where the table is built. Only this worker writes
    the changelog, so unpickling it is safe.
    """

    def _serializer_from_type(self, typ: Any) -> str:
        return "raw" if typ is bytes else "pickle"


#: Keys: the machine_id as raw UTF-8 bytes, exactly the key of its readings (a JSON-encoded
#: key would hash to another partition).
scorers: faust.Table = app.tables.add(PickledTable(
    app,
    name="machine-scorers",
    default=None,
    key_type=bytes,
    partitions=settings.readings_partitions,
    use_partitioner=True,
    beacon=app.tables.beacon,
))
warnings.filterwarnings("ignore", message="The pickle codec calls pickle.loads", module="faust")
