"""The app leaves when its terminal goes away (an SSH drop), instead of spinning.

Runs the app (on recorded data, no lab needed) in a tmux session, kills the session, and checks
the app's process is gone within a few seconds: once with its SIGHUP handler, once with SIGHUP
ignored (as under nohup), where only the periodic tty check can notice.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest


@pytest.mark.parametrize("ignore_hup", [False, True], ids=["sighup", "sighup-ignored"])
def test_the_app_exits_when_its_terminal_goes(tmp_path: Path, ignore_hup: bool) -> None:
    if shutil.which("tmux") is None:
        pytest.fail("tmux is needed for this test")
    root = str(Path(__file__).resolve().parent.parent)
    pidfile = tmp_path / "pid"
    script = tmp_path / "run.py"
    script.write_text(RUN_APP.format(root=root, pidfile=str(pidfile), ignore_hup=ignore_hup))
    session = f"mvtui-hup-{os.getpid()}-{int(ignore_hup)}"
    command = f"{sys.executable} {script}"
    subprocess.run(
        ["tmux", "new-session", "-d", "-s", session, "-x", "120", "-y", "40", command],
        check=True,
    )
    try:
        pid = int(_wait(lambda: pidfile.exists() and pidfile.read_text().strip(), 20))
        _wait(lambda: _has_tty(pid), 10)
        time.sleep(1.0)  # the app is up and drawing
        assert _alive(pid)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], check=False)
    t0 = time.monotonic()
    _wait(lambda: not _alive(pid), 8)
    assert time.monotonic() - t0 < 8


RUN_APP = """
import os, signal, sys
sys.path.insert(0, {root!r})
from tui.app import MicroVMApp
from tui.config import Settings
from tui.feed.recording import load_frames
from tui.feed import ReplaySource
if {ignore_hup}:
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    MicroVMApp._loop_signal = lambda self, signum: None  # only the tty watch can notice
open({pidfile!r}, "w").write(str(os.getpid()))
frames = load_frames({root!r} + "/tests/fixtures/monitor/lab.json")
MicroVMApp(Settings(), ReplaySource(frames)).run()
"""


def _wait(predicate: Any, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s")


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ")[1][0] != "Z"
    except OSError:
        return False


def _has_tty(pid: int) -> bool:
    try:
        return os.readlink(f"/proc/{pid}/fd/1").startswith("/dev/pts/")
    except OSError:
        return False
