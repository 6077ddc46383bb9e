"""Shared by bench/console_throughput.py and bench/console_latency.py: a lab, a headless app
with the console screen, reading the pane."""

from __future__ import annotations

import argparse
import contextlib
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from textual.app import App  # noqa: E402
from textual.binding import Binding  # noqa: E402

from tui.host.console import ConsoleManager  # noqa: E402
from tui.host.inventory import list_vms  # noqa: E402
from tui.host.model import VM  # noqa: E402
from tui.host.settings import HostSettings  # noqa: E402
from tui.lab import Lab  # noqa: E402
from tui.screens.console import ConsoleScreen  # noqa: E402
from tui.vt import line_runs  # noqa: E402
from tui.widgets.terminal import TerminalWidget  # noqa: E402
from tui.widgets.terminal.render import run_cells  # noqa: E402


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument(
        "--lab",
        type=Path,
        default=None,
        help="a lab that is up (python -m tui.lab up DIR); default: bring one up and down",
    )
    return p


@contextlib.contextmanager
def lab_for(root: Path | None) -> Iterator[Lab]:
    if root is not None:
        yield Lab(root)
        return
    lab = Lab(Path(tempfile.mkdtemp(prefix="mvtui-lab-", dir="/var/tmp")))
    print(f"bringing a lab up in {lab.root} …", file=sys.stderr)
    try:
        lab.up()
        yield lab
    finally:
        lab.down()


def vm_named(lab: Lab, name: str) -> VM:
    return next(vm for vm in list_vms(lab.settings, links=False).vms if vm.name == name)


class BenchApp(App[None]):
    """The console screen as the app pushes it, plus a priority binding to time key handling."""

    BINDINGS = [Binding("f9", "ping", "ping", priority=True)]

    def __init__(self, vm: VM, settings: HostSettings, manager: ConsoleManager) -> None:
        super().__init__()
        self.vm, self.settings, self.manager = vm, settings, manager
        self.pings: list[float] = []
        self.screen_: ConsoleScreen | None = None

    def on_mount(self) -> None:
        self.screen_ = ConsoleScreen(self.vm, self.settings, self.manager)
        self.push_screen(self.screen_)

    def action_ping(self) -> None:
        self.pings.append(time.perf_counter())


def screen_lines(term: TerminalWidget, rows: range | None = None) -> list[str]:
    """The emulated screen's rows as text (ROWS of them: all by default)."""
    screen = term.emulator.screen
    ys = rows if rows is not None else range(screen.lines)
    return [
        "".join(run_cells(line_runs(cells, screen.columns))).rstrip()
        if (cells := _row(term, y)) is not None
        else ""
        for y in ys
    ]


def _row(term: TerminalWidget, y: int):  # type: ignore[no-untyped-def]
    from tui.vt import line_cells

    screen = term.emulator.screen
    row = screen.buffer.get(y)
    return line_cells(row, screen.columns) if row else None


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


def summary(values_s: list[float]) -> str:
    ms = [v * 1000 for v in values_s]
    if not ms:
        return "no samples"
    return (
        f"n={len(ms)} p50={statistics.median(ms):.1f} ms p95={pct(ms, 95):.1f} ms "
        f"max={max(ms):.1f} ms"
    )


@contextlib.contextmanager
def socat_client(path: str) -> Iterator[subprocess.Popen[bytes]]:
    """`socat - UNIX-CONNECT:PATH` with pipes, unbuffered: what an admin would attach with.
    Ended (by its pid: ours) when the block ends."""
    proc = subprocess.Popen(
        ["socat", "-", f"UNIX-CONNECT:{path}"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        bufsize=0,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        yield proc
    finally:
        proc.stdin.close()
        proc.terminate()  # ours, by its pid
        proc.wait(5)
