"""The live monitor's own cost on a lab host: CPU, terminal bytes, time to the first table.

Usage: python bench/monitor.py [--lab DIR] [--extra-running 4] [--seconds 60] [--keep]

Without --lab a lab is brought up in a fresh dir under /var/tmp (with --extra-running more
running VMs) and brought down at the end; with --lab an existing one is used and left up.

Printed:
- the monitor's whole cost on the host as a RATIO to a bare Textual app (bench/bare_app.py: one
  DataTable, 16 cells changing a second) measured in the same run: the app with its children
  (user+system of the app, of its living children and of the reaped ones), plus the CPU of the
  lab's systemd manager and of its dbus-daemon above their idle (measured with no app over the
  same window, before and after), a running VM's Overview on screen, over SECONDS; for the
  systemd-over-D-Bus path (the default) and, for comparison, `systemd_bus = "systemctl"` (a
  `systemctl` process each poll). Goal: at most 2.0x;
- startup: whole-process time from exec to the first filled table (the first "● running"
  written to the terminal), and the app's CPU seconds until then (its threads and children),
  median of 5 launches;
- cpu: the app's CPU time (user+system, all its threads) over SECONDS at the default interval,
  as % of one core, measured after a 5 s warm-up; the app runs on a pty of 160x48;
- bytes: what the app wrote to its terminal per second over the same window (idle: nobody
  presses a key);
- the same with a running VM's Overview on screen, and with its History tab (two graphs that
  move every poll): the History's extra cost over the Overview, in points of one core;
- poll: per-VM cost of one poll in-process (LiveSource.poll: listing + sampling), wall and CPU.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import pty
import select
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
import timeit
from collections.abc import Sequence
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

COLS, ROWS = 160, 48
READY = "● running".encode()  # a running VM's row with QMP's run state (a sample)
# A running VM's row with systemd's state, before its first sample ("● active"), or with it.
STATES = ("● active".encode(), READY)


STATE_HOME = Path(tempfile.mkdtemp(prefix="mvtui-bench-state-"))


def app_command() -> list[str]:
    """The checkout's console script, or (a worktree without its own .venv) this Python
    running the checkout's package."""
    script = ROOT / ".venv/bin/microvm-tui"
    return [str(script)] if script.exists() else [sys.executable, "-m", "tui"]


def spawn(
    config: Path, args: Sequence[str] = (), env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], int]:
    """The app on a new pty of COLS x ROWS with --config CONFIG and ARGS; ENV: instead of ours."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLS, 0, 0))
    env = {
        **(os.environ if env is None else env),
        "TERM": "xterm-256color",
        "COLORTERM": os.environ.get("BENCH_COLORTERM", ""),
        "PYTHONPATH": str(ROOT),
        # Every launch starts from the same remembered state (none): a tab or sort kept by an
        # earlier run would change what is measured.
        "XDG_STATE_HOME": str(STATE_HOME),
    }
    proc = subprocess.Popen(
        [*app_command(), "--config", str(config), *args],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        start_new_session=True,
        close_fds=True,
    )
    os.close(slave)
    return proc, master


def drain(
    master: int, seconds: float, until: bytes | tuple[bytes, ...] | None = None
) -> tuple[int, float | None]:
    """Read the pty for SECONDS; bytes read, and when UNTIL (or any of them) was first seen
    (monotonic)."""
    markers = (until,) if isinstance(until, bytes) else (until or ())
    longest = max((len(m) for m in markers), default=0)
    end = time.monotonic() + seconds
    total = 0
    tail = b""
    while (left := end - time.monotonic()) > 0:
        ready, _, _ = select.select([master], [], [], min(left, 0.2))
        if not ready:
            continue
        try:
            data = os.read(master, 65536)
        except OSError:
            break
        total += len(data)
        if markers:
            # The whole chunk is searched (a frame is often bigger than any tail kept), with
            # the end of the previous one in front for a marker split between reads.
            window = tail + data
            if any(m in window for m in markers):
                return total, time.monotonic()
            tail = window[-longest:]
    return total, None


def stop(proc: subprocess.Popen[bytes], master: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    os.close(master)


def startup(config: Path) -> tuple[float, float, float]:
    """Seconds from exec to the first filled table (a running VM's row with its state from
    systemd: "● active", or "● running" when its first sample came as soon), the app's CPU
    seconds until then (all its threads and its children: what survives a loaded machine),
    and seconds to the first "● running" (a row with QMP's run state: the first sample)."""
    t0 = time.monotonic()
    proc, master = spawn(config)
    try:
        _, filled = drain(master, 20, STATES)
        cpu = app_cpu(psutil.Process(proc.pid))
        _, running = drain(master, 20, READY)
    finally:
        stop(proc, master)
    if filled is None or running is None:
        raise SystemExit("the app never showed a running VM")
    return filled - t0, cpu, running - t0


def own_cpu(pid: int | None) -> float:
    """User+system seconds of PID's own threads (not its reaped children: the manager reaps
    every VM process that ends); 0 when it is gone."""
    if pid is None:
        return 0.0
    try:
        t = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return 0.0
    return t.user + t.system


def app_cpu(p: psutil.Process) -> float:
    """User+system seconds of the app, its reaped children and its living ones."""
    t = p.cpu_times()
    total = t.user + t.system + t.children_user + t.children_system
    for child in p.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            c = child.cpu_times()
            total += c.user + c.system
    return total


def host_idle(pids: dict[str, int | None], seconds: float) -> dict[str, float]:
    """CPU of PIDS (% of one core) over SECONDS with no app running."""
    c0 = {k: own_cpu(p) for k, p in pids.items()}
    t0 = time.monotonic()
    time.sleep(seconds)
    elapsed = time.monotonic() - t0
    return {k: (own_cpu(p) - c0[k]) / elapsed * 100 for k, p in pids.items()}


def steady(
    config: Path, seconds: float, keys: bytes = b"", others: dict[str, int | None] | None = None
) -> tuple[float, float, dict[str, float]]:
    """The app's CPU (% of one core, with its children) and terminal bytes a second over
    SECONDS after KEYS, and the CPU of the OTHERS pids over the same window."""
    others = others or {}
    proc, master = spawn(config)
    try:
        drain(master, 20, READY)
        if keys:
            os.write(master, keys)
        drain(master, 5)  # warm-up: the first polls, the history filling
        p = psutil.Process(proc.pid)
        c0 = app_cpu(p)
        o0 = {k: own_cpu(pid) for k, pid in others.items()}
        t0 = time.monotonic()
        nbytes, _ = drain(master, seconds)
        c1 = app_cpu(p)
        o1 = {k: own_cpu(pid) for k, pid in others.items()}
        elapsed = time.monotonic() - t0
    finally:
        stop(proc, master)
    cpu = (c1 - c0) / elapsed * 100
    return cpu, nbytes / elapsed, {k: (o1[k] - o0[k]) / elapsed * 100 for k in others}


def systemctl_config(config: Path) -> Path:
    """CONFIG with ``systemd_bus = "systemctl"``: the monitor asks systemctl every poll."""
    text = config.read_text()
    assert "systemd_bus = " in text, "the lab's config names its bus"
    lines = [
        'systemd_bus = "systemctl"' if line.startswith("systemd_bus = ") else line
        for line in text.splitlines()
    ]
    path = config.with_name("microvm-tui-systemctl.toml")
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o644)
    return path


def whole_cost(
    label: str,
    config: Path,
    seconds: float,
    pids: dict[str, int | None],
    idle: dict[str, float],
    bare: float,
) -> tuple[float, float]:
    """Print and return the monitor's whole cost (% of a core) and its ratio to BARE."""
    cpu, bps, others = steady(config, seconds, keys=b"\x1b[F", others=pids)
    extra = {k: v - idle[k] for k, v in others.items()}
    total = cpu + sum(extra.values())
    parts = ", ".join(f"{k} {v:+.2f} over its idle {idle[k]:.2f}" for k, v in extra.items())
    print(
        f"{label}: whole cost {total:.2f}% of a core = {total / bare:.2f}x the bare app "
        f"(app + children {cpu:.2f}; {parts}); {bps / 1024:.2f} KiB/s to the terminal"
    )
    return total, total / bare


def poll_cost(settings: object, polls: int = 20) -> dict[str, float]:
    """In-process cost of the app's poll, split: the listing (state dirs, one systemctl,
    links) and the sampler (cgroups, /proc, QMP; the listing's links). CPU counts every
    thread."""
    from tui.feed import LiveSource

    source = LiveSource(settings)  # type: ignore[arg-type]
    try:
        source.poll()
        walls, list_cpu, sample_cpu, running = [], [], [], 0
        for _ in range(polls):
            t0 = time.perf_counter()
            c0 = time.process_time()
            inv, links = source.listing()
            c1 = time.process_time()
            samples = source.sample(inv, links, "web")
            c2 = time.process_time()
            walls.append(time.perf_counter() - t0)
            list_cpu.append(c1 - c0)
            sample_cpu.append(c2 - c1)
            running = len(samples)
            time.sleep(0.5)
    finally:
        source.close()
    ms = 1000
    return {
        "running": running,
        "wall_ms": statistics.median(walls) * ms,
        "list_cpu_ms": statistics.median(list_cpu) * ms,
        "sample_cpu_ms": statistics.median(sample_cpu) * ms,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lab", type=Path)
    parser.add_argument("--extra-running", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--keep", action="store_true", help="leave an own lab up")
    args = parser.parse_args()
    from tui.lab import Lab

    own = args.lab is None
    root = Path(tempfile.mkdtemp(prefix="mvtui-bench-", dir="/var/tmp")) if own else args.lab
    lab = Lab(root, extra_running=args.extra_running if own else 0)
    try:
        if own:
            lab.up()
        config = lab.config_path
        cost = poll_cost(lab.settings)
        running = int(cost["running"])
        load = os.getloadavg()[0]
        print(
            f"lab: {lab.root}, {running} running VMs; host: {os.cpu_count()} CPUs, load {load:.2f}"
        )
        # These shared machines change speed by tens of percent over hours: a fixed pure-Python
        # loop, timed here, tells runs of different hours apart.
        ref = min(timeit.repeat("sum(i * i for i in range(1_000_000))", number=1, repeat=5))
        print(
            f"machine speed reference: {ref * 1000:.0f} ms for a fixed Python loop (lower = faster)"
        )
        # As installed by pip: byte-compiled (this environment sets PYTHONDONTWRITEBYTECODE).
        subprocess.run(
            [sys.executable, "-m", "compileall", "-q", str(ROOT / "tui")],
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": ""},
            check=False,
            stdout=subprocess.DEVNULL,
        )
        launches = [startup(config) for _ in range(5)]
        starts = [s for s, _, _ in launches]
        cpus = [c for _, c, _ in launches]
        runs = [r for _, _, r in launches]
        print(
            f"startup to the first filled table: median {statistics.median(starts):.2f} s, "
            f"{statistics.median(cpus):.2f} s of the app's CPU "
            f"(runs: {', '.join(f'{s:.2f}/{c:.2f}' for s, c, _ in launches)}; goal < 1.0 s)"
        )
        print(
            f'  ... to the first row with its first sample ("● running"): median '
            f"{statistics.median(runs):.2f} s (runs: {', '.join(f'{r:.2f}' for r in runs)})"
        )
        from bench.bare_app import measure as bare_cpu

        pids = {"manager": lab.manager.pid(), "dbus-daemon": lab.manager.bus_daemon_pid()}
        idle0 = host_idle(pids, args.seconds)
        bare = bare_cpu(args.seconds)
        print(
            f"bare Textual app (one DataTable, 16 cells a second): {bare:.2f}% of a core over "
            f"{args.seconds:.0f} s"
        )
        # The manager's and the bus's idle: no app, same window, before and after the runs.
        ctl_config = systemctl_config(config)
        try:
            idle1 = host_idle(pids, args.seconds)
            idle = {k: (idle0[k] + idle1[k]) / 2 for k in pids}
            whole_cost("D-Bus (default), Overview open", config, args.seconds, pids, idle, bare)
            whole_cost(
                "systemctl each poll, Overview open", ctl_config, args.seconds, pids, idle, bare
            )
        finally:
            ctl_config.unlink(missing_ok=True)
        print("goal: whole cost at most 2.0x the bare app")
        cpu, bps, _ = steady(config, args.seconds)
        print(
            f"app CPU over {args.seconds:.0f} s at the default interval: {cpu:.2f}% of one core "
            "(with its children), the first VM selected"
        )
        print(
            f"bytes to the terminal while idle: {bps / 1024:.2f} KiB/s (goal < 3 KB/s; "
            "first VM selected, TERM=xterm-256color)"
        )
        # End: the cursor to the last row (a running VM): its Overview tab changes every poll.
        cpu2, bps2, _ = steady(config, min(args.seconds, 30), keys=b"\x1b[F")
        print(
            f"  ... with a running VM's Overview on screen: {bps2 / 1024:.2f} KiB/s, "
            f"CPU {cpu2:.2f}%"
        )
        # 6: its History tab, two graphs that shift by one bar every poll.
        cpu3, bps3, _ = steady(config, min(args.seconds, 30), keys=b"\x1b[F6")
        print(
            f"  ... with its History tab on screen: {bps3 / 1024:.2f} KiB/s, CPU {cpu3:.2f}% "
            f"= {cpu3 - cpu2:+.2f} points over the Overview (goal: at most +0.5)"
        )
        cpu_ms = cost["list_cpu_ms"] + cost["sample_cpu_ms"]
        print(
            f"one poll in-process: {cost['wall_ms']:.0f} ms wall, {cpu_ms:.1f} ms CPU = listing "
            f"{cost['list_cpu_ms']:.1f} + sampling {cost['sample_cpu_ms']:.1f}; per running VM "
            f"{cpu_ms / max(running, 1):.2f} ms CPU (at 1 s: {cpu_ms / 10:.1f}% of one core)"
        )
    finally:
        shutil.rmtree(STATE_HOME, ignore_errors=True)
        if own and not args.keep:
            lab.down()


if __name__ == "__main__":
    main()
