"""Helpers for the monitor's tests: recorded sources, settings, waiting on app state."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual.pilot import Pilot

from tests.conftest import until_in_app
from tui.app import MicroVMApp
from tui.config import Settings
from tui.feed import ReplaySource, Snapshot
from tui.feed.recording import load_frames
from tui.host.model import Inventory

FIXTURES = Path(__file__).parent / "fixtures" / "monitor"
SIZE = (160, 48)


def frames(name: str = "lab.json") -> list[Snapshot]:
    return load_frames(FIXTURES / name)


def replay(name: str = "lab.json", *, start_at_last: bool = True) -> ReplaySource:
    return ReplaySource(frames(name), start_at_last=start_at_last)


def empty_source(state_dir: str = "/var/lib/microvms", error: str | None = None) -> ReplaySource:
    """No VMs (or an unreadable state dir) on the recorded lab host."""
    last = frames()[-1]
    inventory = Inventory(state_dir=Path(state_dir), error=error)
    return ReplaySource([Snapshot(inventory=inventory, host=last.host, hostname=last.hostname)])


def settings(**changes: Any) -> Settings:
    # Not read-only unless asked: the header must not depend on who runs the tests.
    base = Settings(interval=3600.0)
    return dataclasses.replace(base, **changes)


def make_app(source: Any, **changes: Any) -> MicroVMApp:
    app = MicroVMApp(settings(**changes), source, tty_watch=False)
    if not changes.get("read_only"):
        app.read_only_reason = None
    return app


async def until(pilot: Pilot, predicate: Callable[[], object], timeout: float = 5.0) -> Any:
    """Let the app run until PREDICATE is truthy (no fixed sleeps); fail after TIMEOUT."""
    return await until_in_app(pilot, predicate, timeout, step=0.02)
