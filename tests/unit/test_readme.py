"""README stays true: the two commands first, and every setting documented."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from streams.settings import Settings

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_the_two_commands_come_first() -> None:
    first_block = README.split("```")[1]
    assert [line.split("#")[0].strip() for line in first_block.strip().splitlines()] == [
        "make demo", "make test"]


def test_every_setting_is_documented() -> None:
    missing = [f.name for f in dataclasses.fields(Settings) if f"`{f.name}`" not in README]
    assert not missing, f"settings missing from README: {missing}"
