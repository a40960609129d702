"""Per-machine scoring state (`detectors.scoring.MachineScorer`), one entry per machine_id.

The value is pickled (River models are plain Python objects). Writing the whole detector on
every reading would put tens of kB per reading on the changelog, so the agent mutates the
object in place and writes it back every ``checkpoint_interval_s``: after a crash a machine's
detector resumes from its last checkpoint and relearns the rest.

``use_partitioner=True``: the changelog partition is chosen from the key by the producer's
partitioner (murmur2, as Kafka's Java client), the same that places a machine's readings, so
a machine's state and its readings share a partition number, and a checkpoint can be written
for any machine of a batch.
"""

from __future__ import annotations

import warnings

from streams.app import app, settings

scorers = app.Table(
    "machine-scorers",
    default=None,
    partitions=settings.readings_partitions,
    use_partitioner=True,
)
# Faust derives a table's codecs from its key/value *types* (json for anything that is not a
# faust.Record) and offers no codec argument, so set them before the changelog topic exists.
# Keys: the machine_id as raw UTF-8 bytes, exactly the key of its readings (a JSON-encoded
# key would hash to another partition). Values: pickle. Only this worker writes the changelog.
scorers.key_serializer = "raw"
scorers.value_serializer = "pickle"
warnings.filterwarnings("ignore", message="The pickle codec calls pickle.loads", module="faust")
