"""Console throughput end to end: ~2 MB from the guest as fast as it can print, through the pane
against `socat` on the same socket in the same run (that ratio is printed first).

    .venv/bin/python bench/console_throughput.py [--lab DIR] [--count 260000]

1. `socat - UNIX-CONNECT:SOCK` (what an admin would attach with): the `console` VM runs
   `seq 1 N; echo SOCAT-$((40+2))` (~2 MB with CR LF); time from Enter to the end marker;
2. the pane, right after: the same flood; time from Enter until the pane's emulated screen shows
   the FLOOD-42 line (the repaint follows within one frame), while a priority key (F9) and a
   terminal key (shift+PgUp) are pressed every 100 ms: how long each took to be handled;
3. a raw socket attach (Python), to the same socket: what the serial line gives a bare reader;
4. the emulator only: 2 MB of `seq` output and of a boot log fed to a TerminalWidget in a
   headless app, 64 KiB at a time: MB/s through the emulator, repaints included (not the
   user's figure: the guest under TCG sets the pace end to end).
"""

from __future__ import annotations

import asyncio
import os
import select
import socket
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from console_common import (
    BenchApp,
    lab_for,
    parser,
    screen_lines,
    socat_client,
    summary,
    vm_named,
)
from textual import events
from textual.app import App, ComposeResult

from tui.host.console import ConsoleManager
from tui.lab import Lab
from tui.widgets.terminal import TerminalWidget

MARKER = "FLOOD-42"


def seq_bytes(count: int) -> bytes:
    return b"".join(b"%d\r\n" % i for i in range(1, count + 1))


# --- 1. the emulator alone ------------------------------------------------------------------


class FeedApp(App[None]):
    def compose(self) -> ComposeResult:
        yield TerminalWidget(id="t")


BOOT_LOG = Path(__file__).resolve().parent.parent / "tests/fixtures/console_streams/web_history.bin"


def boot_log_bytes(size: int) -> bytes:
    """A real boot log (the lab's web guest), repeated to SIZE bytes."""
    log = BOOT_LOG.read_bytes().replace(b"\x1bc", b"")  # no full resets: keep it scrolling
    return (log * (size // len(log) + 1))[:size]


def tail_lines(term: TerminalWidget, n: int = 3) -> list[str]:
    """The rows up to the cursor (cheap enough to poll during a flood: only those rows)."""
    y = term.emulator.screen.cursor.y
    return screen_lines(term, range(max(0, y - n), y + 1))


async def emulator_only(data: bytes) -> tuple[int, float, float]:
    data = data + b"\r\nEND-OF-FLOOD\r\n"
    app = FeedApp()
    async with app.run_test(size=(120, 40)) as pilot:
        term = app.query_one(TerminalWidget)
        await pilot.pause()
        feed_time = 0.0
        t0 = time.perf_counter()
        for start in range(0, len(data), 64 * 1024):
            f0 = time.perf_counter()
            term.feed(data[start : start + 64 * 1024])
            feed_time += time.perf_counter() - f0
            await asyncio.sleep(0)  # let the loop breathe between chunks, like the screen
        while "END-OF-FLOOD" not in tail_lines(term):
            await pilot.pause(0.01)
        await pilot.pause(0.05)  # one more frame: the repaint
        wall = time.perf_counter() - t0
    return len(data), feed_time, wall


# --- 2. through the pane ---------------------------------------------------------------------


async def until(pilot, predicate, timeout: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        await pilot.pause(0.02)
    return value


async def pane_flood(lab: Lab, count: int, key_every: float = 0.1) -> dict[str, object]:
    vm = vm_named(lab, "console")
    manager = ConsoleManager(lab.settings)
    app = BenchApp(vm, lab.settings, manager)
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await until(
                pilot,
                lambda: (
                    app.screen_
                    and app.screen_.console_status
                    and app.screen_.console_status.interactive
                ),
                30,
                "attach",
            )
            screen = app.screen_
            assert screen is not None
            term = screen.terminal
            conn = manager.get("console")
            assert conn is not None
            conn.write(b"\r")
            await until(pilot, lambda: "console:/#" in "\n".join(screen_lines(term)), 20, "prompt")
            scrolls: list[float] = []
            original = term.scroll_history

            def timed_scroll(lines: int) -> None:
                scrolls.append(time.perf_counter())
                original(lines)

            term.scroll_history = timed_scroll  # type: ignore[method-assign]
            fed0 = screen.bytes_fed
            cpu0 = time.process_time()
            conn.write(f"seq 1 {count}; echo FLOOD-$((40+2))\r".encode())
            t0 = time.perf_counter()
            ping_sent: list[float] = []
            scroll_sent: list[float] = []
            next_key = t0 + key_every
            while MARKER not in tail_lines(term):
                now = time.perf_counter()
                if now - t0 > 300:
                    raise TimeoutError("flood did not finish")
                if now >= next_key:
                    # As the driver does for a real key press: an event posted to the app.
                    ping_sent.append(time.perf_counter())
                    app.post_message(events.Key("f9", None))
                    scroll_sent.append(time.perf_counter())
                    app.post_message(events.Key("shift+pageup", None))
                    app.post_message(events.Key("shift+pagedown", None))
                    next_key = now + key_every
                await asyncio.sleep(0.02)
            wall = time.perf_counter() - t0
            cpu = time.process_time() - cpu0
            nbytes = screen.bytes_fed - fed0
            await asyncio.sleep(0.3)  # the last keys' handling
            ping_lat = [h - t for t, h in zip(ping_sent, app.pings, strict=False)]
            scroll_lat = [h - t for t, h in zip(scroll_sent, scrolls[::2], strict=False)]
    finally:
        manager.close_all()
    return {
        "bytes": nbytes,
        "wall": wall,
        "cpu": cpu,
        "ping": ping_lat,
        "scroll": scroll_lat,
    }


# --- 3. raw attaches -------------------------------------------------------------------------


def raw_flood(path: str, count: int) -> tuple[int, float]:
    end = b"\nRAW-42\r\n"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(path)
        s.sendall(b"\r")
        _read_until(s.recv, b"console:/# ", 20)
        s.sendall(f"seq 1 {count}; echo RAW-$((40+2))\r".encode())
        t0 = time.perf_counter()
        total = _read_until(s.recv, end, 300)
        return total, time.perf_counter() - t0


def socat_flood(path: str, count: int) -> tuple[int, float]:
    end = b"\nSOCAT-42\r\n"
    with socat_client(path) as proc:
        assert proc.stdin is not None and proc.stdout is not None
        fd = proc.stdout.fileno()

        def recv(n: int) -> bytes:
            ready, _, _ = select.select([fd], [], [], 1.0)
            if not ready:
                raise TimeoutError
            return os.read(fd, n)

        proc.stdin.write(b"\r")
        _read_until(recv, b"console:/# ", 20)
        proc.stdin.write(f"seq 1 {count}; echo SOCAT-$((40+2))\r".encode())
        t0 = time.perf_counter()
        total = _read_until(recv, end, 300)
        return total, time.perf_counter() - t0


def _read_until(recv, needle: bytes, timeout: float) -> int:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    tail = b""
    total = 0
    while time.monotonic() < deadline:
        try:
            chunk = recv(65536)
        except TimeoutError:
            continue
        if not chunk:
            raise ConnectionError("closed")
        total += len(chunk)
        tail = (tail + chunk)[-4096:]
        if needle in tail:
            return total
    raise TimeoutError(needle)


def mbps(nbytes: int, seconds: float) -> str:
    return f"{nbytes / 1e6:.2f} MB in {seconds:.2f} s = {nbytes / 1e6 / seconds:.2f} MB/s"


def main() -> int:
    p = parser(__doc__ or "")
    p.add_argument("--count", type=int, default=260_000, help="seq 1 COUNT (~2 MB)")
    args = p.parse_args()

    load = os.getloadavg()[0]
    seq = seq_bytes(args.count)
    with lab_for(args.lab) as lab:
        path = str(lab.settings.state_dir / "console" / "console-console.sock")
        # socat, the pane, then the raw attach: the guest's pace drifts with the host's load,
        # so the two compared first are measured one right after the other.
        socat_bytes, socat_s = socat_flood(path, args.count)
        pane = asyncio.run(pane_flood(lab, args.count))
        raw_bytes, raw_s = raw_flood(path, args.count)
    wall = pane["wall"]
    print(
        f"end to end, the guest's ~{len(seq) / 1e6:.1f} MB through the pane: {wall:.1f} s "  # type: ignore[str-format]
        f"against {socat_s:.1f} s through socat = {wall / socat_s:.2f}x (goal <= 1.2x)"  # type: ignore[operator]
    )
    print(f"load average before: {load:.2f} (2 cores shared; qemu runs TCG)")
    print(
        f"pane          : {mbps(pane['bytes'], pane['wall'])}"  # type: ignore[arg-type]
        f" (app process CPU {pane['cpu']:.1f} s)"
    )
    print(f"  F9 (priority binding) during the flood: {summary(pane['ping'])}")  # type: ignore[arg-type]
    print(f"  shift+PgUp (terminal scrollback) during the flood: {summary(pane['scroll'])}")  # type: ignore[arg-type]
    print(f"socat         : {mbps(socat_bytes, socat_s)}")
    print(f"raw socket    : {mbps(raw_bytes, raw_s)}")
    for label, data in (("seq output", seq), ("a boot log", boot_log_bytes(len(seq)))):
        size, feed, wall = asyncio.run(emulator_only(data))
        print(
            f"emulator only, {label:10}: {mbps(size, wall)} "
            f"(feed() alone: {size / 1e6 / feed:.2f} MB/s)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
