"""Snapshots of the Logs screen, on journal files with fixed times (written by
systemd-journal-remote, read by the real journalctl): the followed view, a priority filter, a VM
without a guest journal (the FAQ lines), and a journal the reader may not open."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from textual.app import App
from textual.pilot import Pilot

from tests.conftest import until_in_app
from tests.snapshot_support import snapshots_in_top_level_folder  # noqa: F401
from tests.test_logs import MID, write_journal
from tui.host.model import VM
from tui.host.settings import HostSettings
from tui.screens.logs import LogsScreen

SIZE = (110, 24)
T0 = 1_796_000_000_000_000  # 2026-11-30 (UTC), a fixed time for every snapshot


@pytest.fixture(autouse=True)
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def journal(tmp_path: Path) -> Path:
    units = [
        ("microvm-tap-interfaces@web.service", 6, "vm-web: tap up"),
        ("microvm-set-booted@web.service", 6, "booted -> /nix/store/...-microvm-qemu-web"),
        ("microvm@web.service", 6, "Linux version 6.1.0-57-cloud-amd64"),
        ("microvm@web.service", 4, "virtio_balloon: balloon size is 0"),
        ("microvm@web.service", 3, "EXT4-fs error (device vda): bad block bitmap"),
        ("microvm@web.service", 6, "microvm-lab guest web up"),
        ("microvm@web.service", 6, "\x1b[1mweb:/#\x1b[0m [/bold] markup stays text"),
    ]
    entries: list[dict[str, object]] = [
        {
            "__REALTIME_TIMESTAMP": T0 + i * 1_500_000,
            "_SYSTEMD_UNIT": unit,
            "PRIORITY": priority,
            "MESSAGE": text,
        }
        for i, (unit, priority, text) in enumerate(units)
    ]
    directory = tmp_path / "journal"
    write_journal(directory / MID, entries)
    return directory


class LogsApp(App[None]):
    def __init__(self, vm: VM, settings: HostSettings, keys: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.vm, self.settings, self.keys = vm, settings, keys

    def on_mount(self) -> None:
        self.push_screen(LogsScreen(self.vm, self.settings))


async def settle(pilot: Pilot[None]) -> None:
    app = pilot.app
    assert isinstance(app, LogsApp)
    await until_in_app(pilot, lambda: isinstance(app.screen, LogsScreen) and app.screen.settled, 20)
    for key in app.keys:
        await pilot.press(key)
        await until_in_app(pilot, lambda: app.screen.settled, 20)  # type: ignore[attr-defined]
    await pilot.pause()


def web(tmp_path: Path) -> VM:
    return VM(name="web", path=tmp_path / "web")


def test_followed(snap_compare, tmp_path: Path) -> None:
    app = LogsApp(web(tmp_path), HostSettings(journal_dir=journal(tmp_path)))
    assert snap_compare(app, terminal_size=SIZE, run_before=settle)


def test_errors_only(snap_compare, tmp_path: Path) -> None:
    app = LogsApp(web(tmp_path), HostSettings(journal_dir=journal(tmp_path)), ("p", "p", "p"))
    assert snap_compare(app, terminal_size=SIZE, run_before=settle)


def test_no_guest_journal(snap_compare, tmp_path: Path) -> None:
    app = LogsApp(web(tmp_path), HostSettings(journal_dir=journal(tmp_path)), ("g",))
    assert snap_compare(app, terminal_size=SIZE, run_before=settle)


def test_permission_denied(snap_compare, monkeypatch: pytest.MonkeyPatch) -> None:
    # A fixed place: journalctl's message names the directory, and the snapshot shows it.
    tmp_path = Path("/var/tmp/mvtui-logs-snapshot")
    shutil.rmtree(tmp_path, ignore_errors=True)
    tmp_path.mkdir()
    directory = journal(tmp_path)
    os.chmod(tmp_path, 0o755)
    os.chmod(directory, 0o755)
    original = HostSettings.journalctl_argv
    drop = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"]
    monkeypatch.setattr(
        HostSettings, "journalctl_argv", lambda self, *a: [*drop, *original(self, *a)]
    )
    app = LogsApp(web(tmp_path), HostSettings(journal_dir=directory))
    try:
        assert snap_compare(app, terminal_size=SIZE, run_before=settle)
    finally:
        shutil.rmtree(tmp_path, ignore_errors=True)


async def test_a_long_journal_opens_at_its_end(tmp_path: Path) -> None:
    """More lines than the screen holds: the view opens on the newest, as `journalctl -f`."""
    entries: list[dict[str, object]] = [
        {"__REALTIME_TIMESTAMP": T0 + i, "_SYSTEMD_UNIT": "microvm@web.service", "MESSAGE": f"n{i}"}
        for i in range(200)
    ]
    write_journal(tmp_path / "journal" / MID, entries)
    app = LogsApp(web(tmp_path), HostSettings(journal_dir=tmp_path / "journal"))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, LogsScreen)
        view = screen.view
        rows = [view.row_text(y) for y in range(view.size.height)]
        assert any(row.rstrip().endswith(" n199") for row in rows), rows[-3:]
