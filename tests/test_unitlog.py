"""The last log line of a unit (tui.host.unitlog): the reason a failed helper shows."""

from __future__ import annotations

import os
from pathlib import Path

from tui.host.settings import HostSettings
from tui.host.unitlog import MAX_LINE, failed_helper_problem, last_log_line

UNIT = "microvm-tap-interfaces@web.service"


def settings(log_dir: Path) -> HostSettings:
    return HostSettings(console_log_dir=log_dir)


def test_the_last_non_empty_line_cleaned(tmp_path: Path) -> None:
    (tmp_path / f"{UNIT}.log").write_bytes(
        b"first\n" * 5000 + b"ioctl(TUNSETIFF): Device or \x1b[31mresource busy\r\n\n"
    )
    assert last_log_line(settings(tmp_path), UNIT) == (
        "ioctl(TUNSETIFF): Device or  [31mresource busy"
    )
    (tmp_path / f"{UNIT}.log").write_text("x" * 1000 + "\n")
    assert len(last_log_line(settings(tmp_path), UNIT) or "") == MAX_LINE


def test_a_link_a_fifo_or_nothing_gives_no_line(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("root's secret\n")
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / f"{UNIT}.log").symlink_to(secret)
    assert last_log_line(settings(logs), UNIT) is None
    os.unlink(logs / f"{UNIT}.log")
    os.mkfifo(logs / f"{UNIT}.log")  # must not block
    assert last_log_line(settings(logs), UNIT) is None
    assert last_log_line(settings(logs), "../secret") is None
    assert failed_helper_problem(settings(logs), "gone.service", "exit-code") == (
        "gone.service failed (start/restart resets it): result exit-code"
    )
