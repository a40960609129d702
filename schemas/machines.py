"""The machine catalogue: the eight machines the old EnMS seeded, with their ids kept, and a
ninth, a power-only lighting meter (issue 10: power and energy, no production, no temperature).

Plain data, shared by the API (validation, names), the scoring agent (unknown machines go to
the dead-letter topic) and the simulator (rated power, interval).
"""

from __future__ import annotations

import msgspec


class Machine(msgspec.Struct, frozen=True, kw_only=True):
    """A metered machine.

    Examples
    --------
    >>> machine_by_id("c0000000-0000-0000-0000-000000000001").name
    'Compressor-1'
    >>> machine_by_id("nope") is None
    True
    """

    id: str
    name: str
    type: str  # compressor, hvac, motor, pump, injection_molding, conveyor, boiler, lighting,
    # other (free text: the simulator falls back to its "other" profile for a type it lacks)
    rated_power_kw: float
    data_interval_seconds: int
    factory_id: str = "f0000000-0000-0000-0000-000000000001"
    factory_name: str = "Demo Plant"
    factory_location: str = "Izmir, TR"
    is_active: bool = True


def _mid(n: int) -> str:
    return f"c0000000-0000-0000-0000-{n:012d}"


MACHINES: tuple[Machine, ...] = (
    Machine(id=_mid(1), name="Compressor-1", type="compressor", rated_power_kw=55.0,
            data_interval_seconds=1),
    Machine(id=_mid(2), name="HVAC-Main", type="hvac", rated_power_kw=80.0,
            data_interval_seconds=10),
    Machine(id=_mid(3), name="Motor-Line-A", type="motor", rated_power_kw=30.0,
            data_interval_seconds=30),
    Machine(id=_mid(4), name="Pump-Cooling", type="pump", rated_power_kw=22.0,
            data_interval_seconds=30),
    Machine(id=_mid(5), name="Injection-Molding-1", type="injection_molding",
            rated_power_kw=120.0, data_interval_seconds=30),
    Machine(id=_mid(6), name="Conveyor-Main", type="conveyor", rated_power_kw=15.0,
            data_interval_seconds=10),
    Machine(id=_mid(7), name="Boiler-1", type="boiler", rated_power_kw=200.0,
            data_interval_seconds=30),
    Machine(id=_mid(8), name="Compressor-EU-1", type="compressor", rated_power_kw=45.0,
            data_interval_seconds=1),
    # A sub-meter with power and energy only: the hall's lighting follows the shifts.
    Machine(id=_mid(9), name="Lighting-Hall-1", type="lighting", rated_power_kw=40.0,
            data_interval_seconds=30),
)

_BY_ID = {m.id: m for m in MACHINES}


def machine_by_id(machine_id: str) -> Machine | None:
    """Return the machine with this id, or None."""
    return _BY_ID.get(machine_id)
