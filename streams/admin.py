"""Create the topic catalogue on the broker (idempotent)."""

from __future__ import annotations

import asyncio
import logging

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaConnectionError, TopicAlreadyExistsError

from streams.settings import Settings
from streams.topics import TopicSpec, catalogue

log = logging.getLogger(__name__)


def _configs(t: TopicSpec) -> dict[str, str]:
    out = {}
    if t.compacted:
        out["cleanup.policy"] = "compact"
    if t.keep_forever:
        out["retention.ms"] = "-1"
    if t.event_time:
        out["message.timestamp.after.max.ms"] = str(2**63 - 1)
    if t.max_message_bytes is not None:
        out["max.message.bytes"] = str(t.max_message_bytes)
    return out


async def ensure_topics(settings: Settings, *, attempts: int = 30) -> list[str]:
    """Create every missing topic of the catalogue; return the names created.

    Retries the connection for a while, since the broker may still be starting.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    for attempt in range(attempts):
        try:
            await admin.start()
            break
        except KafkaConnectionError:
            if attempt == attempts - 1:
                raise
            await asyncio.sleep(1.0)
    try:
        existing = set(await admin.list_topics())
        wanted = [
            NewTopic(
                name=t.name, num_partitions=t.partitions,
                replication_factor=settings.topic_replication,
                topic_configs=_configs(t),
            )
            for t in catalogue(settings.readings_partitions)
            if t.name not in existing
        ]
        if wanted:
            try:
                await admin.create_topics(wanted)
            except TopicAlreadyExistsError:
                pass  # another process created them first
            log.info("created topics: %s", ", ".join(t.name for t in wanted))
        # Topics made by an older version keep their configs: bring them up to date.
        older = [ConfigResource(ConfigResourceType.TOPIC, t.name, configs=_configs(t))
                 for t in catalogue(settings.readings_partitions)
                 if t.name in existing and _configs(t)]
        if older:
            await admin.alter_configs(older)
        return [t.name for t in wanted]
    finally:
        await admin.close()
