"""The scoring agent in Faust's test context: memory store, outbound topics mocked."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from unittest.mock import AsyncMock, MagicMock, patch

import orjson

from agents import score_readings as agent_module
from schemas.readings import Reading, encode_reading
from streams import topics
from tests.agents.fakes import acked

M = "c0000000-0000-0000-0000-000000000006"  # Conveyor-Main, 15 kW, 10 s


def reading(i: int, p: float) -> bytes:
    return encode_reading(Reading(
        machine_id=M, timestamp=datetime(2026, 2, 2, 9, tzinfo=UTC) + timedelta(seconds=10 * i),
        power_kw=p, energy_kwh=p * 10 / 3600, throughput_units_per_hour=100.0))


async def test_bad_records_are_dead_lettered_and_scoring_goes_on(app) -> None:
    dlq = acked()
    sends = {name: AsyncMock() for name in agent_module.output_topics}
    changelog = MagicMock()  # the table's changelog write (needs a started producer)
    hourly = AsyncMock()
    with patch.object(agent_module.dead_letters.topic, "send", dlq), \
            patch.object(agent_module.energy_hourly_topic, "send", hourly), \
            patch.object(agent_module.scorers, "on_key_set", changelog), \
            patch.dict(agent_module.output_topics,
                       {k: AsyncMock(send=v) for k, v in sends.items()}):
        async with agent_module.score_readings.test_context() as agent:
            # 800 readings: past the warm-up (300) and into a third hour, so that two hours
            # close and go to enms.energy.hourly.
            for i in range(800):
                await agent.put(reading(i, 10.0 + 0.1 * (i % 4)), key=M.encode())
            await agent.put(b'{"machine_id": "c0000', key=M.encode())
            await agent.put(b'{"machine_id": "%s", "timestamp": "2026-02-02T10:00:00Z",'
                            b' "power_kw": "x", "energy_kwh": 1}' % M.encode(), key=M.encode())
            await agent.put(reading(800, 40.0), key=M.encode())
    reasons = [orjson.loads(c.kwargs["value"]) for c in dlq.await_args_list]
    assert [r["field"] for r in reasons] == ["$", "power_kw"]
    assert all(r["source_topic"] == topics.READINGS for r in reasons)
    on_topic = [orjson.loads(c.kwargs["value"]) for c in sends[topics.ANOMALIES].await_args_list]
    anomalies = [e for e in on_topic if e["event_type"] == "anomaly_detected"]
    assert [a["value"] for a in anomalies] == [40.0]
    episodes = [e for e in on_topic if e["event_type"] == "anomaly_episode"]
    assert [(e["status"], e["episode_id"]) for e in episodes] == [
        ("opened", anomalies[0]["event_id"])]
    assert anomalies[0]["episode_id"] == anomalies[0]["event_id"]
    assert sends[topics.METRICS].await_count > 0
    # 800 readings 10 s apart span 2 h 13 min: two closed hours went to enms.energy.hourly,
    # each stamped with the end of its hour.
    hours = [orjson.loads(c.kwargs["value"]) for c in hourly.await_args_list]
    assert [h["readings"] for h in hours] == [360, 360]
    assert hourly.await_args_list[0].kwargs["timestamp"] == datetime(
        2026, 2, 2, 10, tzinfo=UTC).timestamp()
    # The new machine's scorer was written to the table (its changelog) when first seen.
    assert changelog.call_args_list[0].args[0] == M.encode()


async def test_a_machine_in_maintenance_is_not_judged(app) -> None:
    """The agent takes each machine's window from the maintenance view."""
    from schemas.events import MaintenanceWindow

    motor = "c0000000-0000-0000-0000-000000000003"  # 30 s readings
    t0 = datetime(2026, 2, 3, 9, tzinfo=UTC)

    def motor_reading(i: int, p: float) -> bytes:
        return encode_reading(Reading(machine_id=motor, timestamp=t0 + timedelta(seconds=30 * i),
                                      power_kw=p, energy_kwh=p * 30 / 3600,
                                      throughput_units_per_hour=100.0))

    window = MaintenanceWindow(event_id="w1", occurred_at=t0, machine_id=motor,
                               start=t0 + timedelta(seconds=30 * 400),
                               end=t0 + timedelta(seconds=30 * 410), reason="inspection")
    views = agent_module.maintenance_view.maintenance
    views.apply(window)
    sends = {name: AsyncMock() for name in agent_module.output_topics}
    try:
        with patch.object(agent_module.dead_letters.topic, "send", acked()), \
                patch.object(agent_module.energy_hourly_topic, "send", AsyncMock()), \
                patch.object(agent_module.scorers, "on_key_set", MagicMock()), \
                patch.dict(agent_module.output_topics,
                           {k: AsyncMock(send=v) for k, v in sends.items()}):
            async with agent_module.score_readings.test_context() as agent:
                for i in range(400):
                    await agent.put(motor_reading(i, 20.0 + 0.2 * (i % 4)), key=motor.encode())
                await agent.put(motor_reading(405, 60.0), key=motor.encode())  # in the window
                await agent.put(motor_reading(415, 60.0), key=motor.encode())  # after it
    finally:
        views.windows.pop(motor, None)
    on_topic = [orjson.loads(c.kwargs["value"]) for c in sends[topics.ANOMALIES].await_args_list]
    flagged = [datetime.fromisoformat(e["timestamp"]) for e in on_topic
               if e["event_type"] == "anomaly_detected"]
    assert flagged == [t0 + timedelta(seconds=30 * 415)]
