"""The pure plant simulator: readings of the catalogue machines with labelled faults.

No clock, no I/O: `streams.simulator` is the Kafka shell around it.
"""

from __future__ import annotations

from simulation.generator import (
    KINDS,
    PROFILES,
    Label,
    Profile,
    Simulation,
    generate,
    hourly_coefficients,
    outdoor_temperature_c,
    shift_level,
    simulations,
)

__all__ = [
    "KINDS",
    "PROFILES",
    "Label",
    "Profile",
    "Simulation",
    "generate",
    "hourly_coefficients",
    "outdoor_temperature_c",
    "shift_level",
    "simulations",
]
