"""The app at scale: a state dir of 2000 VMs on a real systemd manager (bench/systemd_host.py).

Usage: python bench/table_scale.py [--vms 2000] [--running 0.1] [--launches 3]

Printed:
- first table: whole-process time from exec to the first row on the terminal (the app on a
  pty of 160x48, `vm0000` written), and to the first unit state in it (`● active`), median
  of LAUNCHES launches with a warm parse cache (a second start of the app);
- keys, whole process on the pty (what the user pays): once every row is in (End reaches the
  last VM), the time from writing a key to the pty to the app's frame showing its effect:
  `down` (the next VM's name redrawn), median of 20; `s` (the next column's label with the
  sort arrow), median of the 10 sorts by the other columns; polls paused (`--interval 3600`)
  so that no poll's repaint is taken for the key's;
- in-process, with Pilot (headless, 160x48), once every VM's unit state is in: the UI thread's
  CPU for one cursor move and one sort, and the time one poll's ``MainScreen.show`` holds the
  UI thread (the table diffed against 2000 rows), median of 10.
Goals: first table under 2 s; cursor move and sort under 100 ms. CPU figures (the app's
process to the first row; the UI thread's for a key and a show) say what the app costs
whatever else the machine is doing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.monitor import COLS, ROWS, drain, spawn, stop  # noqa: E402
from bench.systemd_host import start_vms, stop_all, systemd_host  # noqa: E402
from tests.synthetic_host import make_host  # noqa: E402

FIRST_ROW = b"vm0000"
UNIT_STATE = "● active".encode()


KEY_DOWN, KEY_END, KEY_HOME = b"\x1b[B", b"\x1b[F", b"\x1b[H"


def _key(master: int, key: bytes, until: bytes, seconds: float = 30) -> float:
    """Write KEY to the app's terminal; seconds until UNTIL is in what it writes back."""
    drain(master, 0.3)  # what was on its way out before the key does not count
    t0 = time.monotonic()
    os.write(master, key)
    _, seen = drain(master, seconds, until)
    if seen is None:
        raise SystemExit(f"the app never showed {until!r} after the key {key!r}")
    return seen - t0


def keys_on_pty(config: Path, state: Path, env: dict[str, str], n_vms: int) -> dict[str, float]:
    """Key to frame, whole process on the pty, every row in the table."""
    from tui.widgets.vm_rows import COLUMNS

    proc, master = spawn(config, ["--state-dir", str(state), "--interval", "3600"], env)
    try:
        last = f"vm{n_vms - 1:04d}".encode()
        _, unit = drain(master, 120, UNIT_STATE)
        if unit is None:
            raise SystemExit("the app never showed a unit state")
        deadline = time.monotonic() + 120
        while True:  # End goes to the last row in the table: the last VM once all are in
            try:
                _key(master, KEY_END, last, 2)
                break
            except SystemExit:
                if time.monotonic() > deadline:
                    raise
        _key(master, KEY_HOME, FIRST_ROW)
        moves = [_key(master, KEY_DOWN, f"vm{i:04d}".encode()) * 1000 for i in range(1, 21)]
        sorts = []
        for column in COLUMNS[1:]:
            arrow = " ▼" if column.descending else " ▲"
            sorts.append(_key(master, b"s", (column.label + arrow).encode()) * 1000)
    finally:
        stop(proc, master)
    return {
        "cursor_ms": statistics.median(moves),
        "cursor_max_ms": max(moves),
        "sort_ms": statistics.median(sorts),
        "sort_max_ms": max(sorts),
    }


def _cpu(p: psutil.Process) -> float:
    times = p.cpu_times()
    return times.user + times.system


def first_table(config: Path, state: Path, env: dict[str, str]) -> tuple[float, float, float]:
    """Seconds from exec to the first row, and to the first unit state; the app's CPU
    seconds (all its threads) until the first row."""
    t0 = time.monotonic()
    proc, master = spawn(config, ["--state-dir", str(state)], env)
    try:
        p = psutil.Process(proc.pid)
        _, row = drain(master, 60, FIRST_ROW)
        cpu = _cpu(p)
        _, unit = drain(master, 60, UNIT_STATE)
    finally:
        stop(proc, master)
    if row is None or unit is None:
        raise SystemExit("the app never showed the table / a unit state")
    return row - t0, unit - t0, cpu


async def interactive(config: Path, state: Path) -> dict[str, float]:
    from tests.conftest import until_in_app
    from tui.app import MicroVMApp
    from tui.config import load_settings
    from tui.host.model import PENDING
    from tui.widgets.vm_table import VMTable

    settings = load_settings(config, state_dir=state, interval=3600)
    app = MicroVMApp(settings, tty_watch=False)
    async with app.run_test(size=(COLS, ROWS)) as pilot:
        await until_in_app(
            pilot,
            lambda: (
                app.snapshot is not None
                and not app.snapshot.partial
                and all(vm.unit and vm.unit.active != PENDING for vm in app.snapshot.inventory.vms)
            ),
            120,
            what="the first full poll",
        )
        table = app.main_screen.query_one(VMTable)
        await until_in_app(pilot, lambda: not table.filling, 120, what="every row in the table")
        table.focus()
        await pilot.pause()

        cpu_times: list[float] = []

        async def timed(key: str, changed) -> float:  # type: ignore[no-untyped-def]
            t0, c0 = time.perf_counter(), time.thread_time()
            await pilot.press(key)
            await until_in_app(pilot, changed, 10, what=f"{key} to take effect", step=0)
            await pilot.pause()
            cpu_times.append((time.thread_time() - c0) * 1000)
            return (time.perf_counter() - t0) * 1000

        moves = []
        for _ in range(20):
            row = table.cursor_row
            moves.append(await timed("down", lambda row=row: table.cursor_row == row + 1))
        move_cpu, cpu_times[:] = list(cpu_times), []
        sorts = []
        for _ in range(10):
            column = table.sort_column
            sorts.append(await timed("s", lambda c=column: table.sort_column != c))
        sort_cpu = list(cpu_times)
        shows, show_cpu = [], []
        snapshot = app.snapshot
        assert snapshot is not None
        for _ in range(10):
            t0, c0 = time.perf_counter(), time.thread_time()
            app.main_screen.show(snapshot)
            await pilot.pause()
            shows.append((time.perf_counter() - t0) * 1000)
            show_cpu.append((time.thread_time() - c0) * 1000)
        rows = table.row_count
    return {
        "rows": rows,
        "cursor_ms": statistics.median(moves),
        "cursor_max_ms": max(moves),
        "sort_ms": statistics.median(sorts),
        "sort_max_ms": max(sorts),
        "show_ms": statistics.median(shows),
        "cursor_cpu_ms": statistics.median(move_cpu),
        "sort_cpu_ms": statistics.median(sort_cpu),
        "show_cpu_ms": statistics.median(show_cpu),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--vms", type=int, default=2000)
    parser.add_argument("--running", type=float, default=0.1, help="share of VMs running")
    parser.add_argument("--launches", type=int, default=3)
    args = parser.parse_args()
    # As installed by pip: byte-compiled (this environment sets PYTHONDONTWRITEBYTECODE).
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(ROOT / "tui")],
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": ""},
        check=False,
        stdout=subprocess.DEVNULL,
    )
    with (
        tempfile.TemporaryDirectory(prefix="mvtui-bench-", dir="/var/tmp") as tmp,
        systemd_host(Path(tmp) / "systemd") as (manager, config),
    ):
        state = make_host(Path(tmp) / "host", args.vms, nix_store=True)
        names = sorted(p.name for p in state.iterdir())
        running = names[:: max(1, round(1 / args.running))] if args.running else []
        start_vms(manager, running)
        print(
            f"systemd: the lab's user manager; {args.vms} VMs, {len(running)} running; "
            f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}"
        )
        env = {**os.environ, "XDG_CACHE_HOME": str(Path(tmp) / "cache")}
        first_table(config, state, env)  # fills the parse cache
        launches = [first_table(config, state, env) for _ in range(args.launches)]
        rows = statistics.median(r for r, _, _ in launches)
        units = statistics.median(u for _, u, _ in launches)
        cpu = statistics.median(c for _, _, c in launches)
        print(
            f"first table: median {rows:.2f} s to the first row ({cpu:.2f} s of the app's CPU), "
            f"{units:.2f} s to unit state (runs: "
            f"{', '.join(f'{r:.2f}/{u:.2f}' for r, u, _ in launches)}; goal < 2 s)"
        )
        k = keys_on_pty(config, state, env, args.vms)
        print(
            f"keys at {args.vms} rows, key to frame on the pty: cursor move "
            f"{k['cursor_ms']:.0f} ms (max {k['cursor_max_ms']:.0f}), sort {k['sort_ms']:.0f} ms "
            f"(max {k['sort_max_ms']:.0f}) (goal < 100 ms)"
        )
        os.environ["XDG_CACHE_HOME"] = env["XDG_CACHE_HOME"]
        figures = asyncio.run(interactive(config, state))
        f = figures
        print(
            f"in-process at {f['rows']:.0f} rows: UI thread CPU for a cursor move "
            f"{f['cursor_cpu_ms']:.0f} ms, for a sort {f['sort_cpu_ms']:.0f} ms (Pilot, key to "
            f"idle: {f['cursor_ms']:.0f} / {f['sort_ms']:.0f} ms); one poll's show() holds the "
            f"UI thread {f['show_ms']:.0f} ms (CPU {f['show_cpu_ms']:.0f} ms)"
        )
        stop_all(manager)


if __name__ == "__main__":
    main()
