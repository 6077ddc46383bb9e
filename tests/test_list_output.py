"""`list`'s table and JSON: restarts, crash loops, failed helper units, the legend (issue 10
items 5 and 24)."""

from __future__ import annotations

from pathlib import Path

from tui.cli import LEGEND, format_table
from tui.host.jsonout import inventory_to_json
from tui.host.model import VM, Drift, Interface, Inventory, UnitState

NOW_USEC = 1_800_000_000 * 1_000_000


def inventory() -> Inventory:
    crashy = VM(
        name="crashy", path=Path("/v/crashy"), hypervisor="qemu", drift=Drift.CURRENT,
        unit=UnitState(
            name="microvm@crashy.service", active="activating", sub="auto-restart",
            restarts=57, active_enter_usec=NOW_USEC - 3_000_000,
        ),
    )  # fmt: skip
    once = VM(
        name="once", path=Path("/v/once"), hypervisor="qemu", drift=Drift.CURRENT,
        unit=UnitState(
            name="microvm@once.service", active="active", sub="running", restarts=1,
            active_enter_usec=NOW_USEC - 3_000_000,
        ),
    )  # fmt: skip
    idle = VM(
        name="idle", path=Path("/v/idle"), hypervisor="qemu", drift=Drift.NOT_BOOTED,
        unit=UnitState(name="microvm@idle.service", active="inactive", sub="dead", restarts=0),
        interfaces=[Interface(id="vm-idle", type="tap", exists=False)],
    )  # fmt: skip
    return Inventory(state_dir=Path("/v"), vms=[crashy, idle, once])


def rows(text: str) -> dict[str, list[str]]:
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["NAME", "UNIT", "RESTARTS"]
    return {line.split()[0]: line.split() for line in lines[1:] if line and line[0] != "N"}


def test_json_problems_name_a_crash_loop_and_only_that() -> None:
    data = inventory_to_json(inventory(), NOW_USEC)
    vms = {vm["name"]: vm for vm in data["vms"]}
    assert vms["crashy"]["problems"] == [
        "crash-looping: 57 automatic restarts of microvm@crashy.service, the last within 5 min"
    ]
    assert vms["once"]["problems"] == []  # one restart is not a loop
    assert vms["idle"]["problems"] == []


def test_table_has_restarts_and_marks_the_loop() -> None:
    text = format_table(inventory_to_json(inventory(), NOW_USEC), colour=False)
    table = rows(text)
    assert table["crashy"][1:4] == ["activating/auto-restart", "57", "⟳"]
    assert table["once"][1:3] == ["active/running", "1"]
    assert table["idle"][2] == "0"
    assert "crash-looping: 57 automatic restarts" in text
    assert LEGEND not in text  # not on a pipe


def test_legend_on_a_terminal_explains_the_mark() -> None:
    text = format_table(inventory_to_json(inventory(), NOW_USEC), colour=False, legend=True)
    assert "vm-idle!" in text
    assert text.splitlines()[-1] == LEGEND
    assert LEGEND.startswith("NIC!: declared by the runner, missing on the host")
    # No mark in the table, no legend.
    quiet = inventory()
    quiet.vms[1].interfaces[0].exists = True
    assert LEGEND not in format_table(inventory_to_json(quiet, NOW_USEC), False, legend=True)
