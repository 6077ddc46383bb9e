"""The reference for the monitor's CPU: a bare Textual app with one DataTable of 16 rows whose
16 cells (one a row) change every second, on the same kind of pty as bench/monitor.py.

Run alone it prints its own CPU; bench/monitor.py runs it in the same run as the monitor and
prints the monitor's cost as a ratio to it (the machine's speed cancels out).

    python bench/bare_app.py [--seconds 30]        # measure
    python bench/bare_app.py --serve               # the app itself (what the bench spawns)
"""

from __future__ import annotations

import argparse
import fcntl
import os
import pty
import select
import struct
import subprocess
import sys
import termios
import time

import psutil

COLS, ROWS = 160, 48
ROWS_CHANGED = 16
READY = b"row 15"


def serve() -> None:
    from textual.app import App, ComposeResult
    from textual.widgets import DataTable

    class Bare(App[None]):
        def compose(self) -> ComposeResult:
            yield DataTable()

        def on_mount(self) -> None:
            table = self.query_one(DataTable)
            self.columns = table.add_columns("name", "cpu", "memory", "net", "note")
            for i in range(ROWS_CHANGED):
                table.add_row(f"row {i}", "0.0%", "128 MiB", "0 B/s", "steady", key=str(i))
            self.tick = 0
            self.set_interval(1.0, self.change)

        def change(self) -> None:
            self.tick += 1
            table = self.query_one(DataTable)
            for i in range(ROWS_CHANGED):
                table.update_cell(str(i), self.columns[1], f"{(self.tick * 7 + i) % 100:.1f}%")

    Bare().run()


def measure(seconds: float, warmup: float = 5.0) -> float:
    """CPU of the bare app (and any children) over SECONDS, % of one core."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLS, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "--serve"],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env={**os.environ, "TERM": "xterm-256color"},
        start_new_session=True,
    )
    os.close(slave)

    def drain(until: float, needle: bytes | None = None) -> bool:
        tail = b""
        while time.monotonic() < until:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:
                    return False
                tail = (tail + data)[-4096:]
                if needle is not None and needle in tail:
                    return True
        return False

    try:
        if not drain(time.monotonic() + 20, READY):
            raise SystemExit("the bare app did not draw its table")
        drain(time.monotonic() + warmup)
        p = psutil.Process(proc.pid)

        def cpu() -> float:
            total = sum(p.cpu_times()[:2])
            for child in p.children(recursive=True):
                try:
                    total += sum(child.cpu_times()[:2])
                except psutil.NoSuchProcess:
                    continue
            return total

        c0, t0 = cpu(), time.monotonic()
        drain(t0 + seconds)
        c1, t1 = cpu(), time.monotonic()
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(10)
        os.close(master)
    return 100 * (c1 - c0) / (t1 - t0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    if args.serve:
        serve()
        return 0
    print(f"bare Textual app, one DataTable, 16 cells a second: {measure(args.seconds):.2f}% "
          f"of a core over {args.seconds:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
