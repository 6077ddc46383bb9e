"""Console key latency: during a flood as fast as the app can take it, and echo at idle.

    .venv/bin/python bench/console_latency.py [--lab DIR] [--keys 100] [--flood-mb 4.7] [--no-lab]

First, a flood (no lab needed): a FakeFloodConsole (tests/fakes/flood_console.py) pumps
--flood-mb of a real boot log (the lab's web guest, with colours) into the console screen as fast
as the app reads it, while a letter key is posted to the app every 100 ms: the time from posting
the key to the fake receiving it. Also printed: how long the pane took to show the flood's end
marker, and that every byte was fed to the emulator (none skipped).

Then, echo at idle, on the lab's `console` VM (skipped with --no-lab):

The `console` VM's shell echoes what is typed. For each of N keys (letters; the line is cleared
with ctrl+U every 40 keys, not timed):

* pane: a key event is posted to the app, as the terminal driver does; timed until the echo is
  in the emulator ("fed") and until the widget repainted that row ("painted": the widget repaints
  at up to 30 fps);
* raw socket: a Python client on the same socket (like socat): send the byte, read the echo;
* socat: `socat - UNIX-CONNECT:SOCK` with pipes: write to its stdin, read the echo from stdout.

All three run in the same process one after the other (the socket serves one client at a time).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import socket
import string
import sys
import tempfile
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

from tests.fakes.flood_console import FakeFloodConsole
from tui.host.console import ConsoleConnection, ConsoleEndpoint, ConsoleManager, EndpointKind
from tui.host.model import VM
from tui.host.settings import HostSettings
from tui.lab import Lab

LETTERS = string.ascii_lowercase
FLOOD_KEYS = "kqwvjzxy"  # letters no terminal reply holds
CLEAR_EVERY = 40


def key_char(i: int) -> str:
    return LETTERS[i % len(LETTERS)]


BOOT_LOG = Path(__file__).resolve().parent.parent / "tests/fixtures/console_streams/web_history.bin"


def boot_log() -> bytes:
    return BOOT_LOG.read_bytes().replace(b"\x1bc", b"")  # no full resets: keep it scrolling


async def pane_flood(total: int) -> dict[str, object]:
    """Keys posted every 100 ms while a fake console floods the pane; latency to the fake."""
    folder = Path(tempfile.mkdtemp(prefix="mvtui-flood-"))
    path = str(folder / "flood.sock")
    fake = FakeFloodConsole(path, boot_log(), total, hold=True)
    vm = VM(name="flood", path=folder)
    settings = HostSettings()
    endpoint = ConsoleEndpoint(vm="flood", kind=EndpointKind.UNIX, path=path, interactive=True)
    manager = ConsoleManager(
        settings, factory=lambda v, s: ConsoleConnection(v, s, discover=lambda *_: endpoint)
    )
    app = BenchApp(vm, settings, manager)
    sent: list[tuple[float, str]] = []
    try:
        async with app.run_test(size=(120, 40)):
            deadline = time.monotonic() + 30
            while not (
                app.screen_
                and app.screen_.console_status
                and app.screen_.console_status.interactive
            ):
                if time.monotonic() > deadline:
                    raise TimeoutError("attach")
                await asyncio.sleep(0.01)
            screen = app.screen_
            term = screen.terminal
            fake.go.set()
            fake.started.wait(10)
            t0 = time.perf_counter()
            cpu0 = time.process_time()
            i = 0
            next_key = t0 + 0.1
            total = fake.total + len(fake.done_marker)
            # Cheap to poll (reading the whole pane every 10 ms would cost the app's CPU).
            while screen.bytes_fed < total or "FLOOD-DONE" not in "\n".join(screen_lines(term)):
                now = time.perf_counter()
                if now - t0 > 300:
                    raise TimeoutError("flood did not finish")
                if now >= next_key:
                    ch = FLOOD_KEYS[i % len(FLOOD_KEYS)]
                    i += 1
                    sent.append((time.perf_counter(), ch))
                    app.post_message(events.Key(ch, ch))
                    next_key = now + 0.1
                await asyncio.sleep(0.01)
            wall = time.perf_counter() - t0
            cpu = time.process_time() - cpu0
            fed = screen.bytes_fed
    finally:
        manager.close_all()
        fake.stop()
        with contextlib.suppress(OSError):
            os.unlink(path)
            os.rmdir(folder)
    # The app also answers the log's terminal queries (digits, ;, R, c): the keys are letters
    # no reply holds, each matched to its first arrival after it was posted.
    lat = []
    for posted, ch in sent:
        got = fake.wait_for(ch.encode(), 0, after=posted)
        if got is not None:
            lat.append(got - posted)
    return {
        "wall": wall,
        "cpu": cpu,
        "fed": fed,
        "sent": fake.sent + len(fake.done_marker),
        "keys": len(sent),
        "arrived": len(lat),
        "lat": lat,
    }


async def pane_echo(lab: Lab, keys: int) -> tuple[list[float], list[float]]:
    vm = vm_named(lab, "console")
    manager = ConsoleManager(lab.settings)
    app = BenchApp(vm, lab.settings, manager)
    fed_lat: list[float] = []
    paint_lat: list[float] = []
    try:
        async with app.run_test(size=(120, 40)):
            deadline = time.monotonic() + 30
            while not (
                app.screen_
                and app.screen_.console_status
                and app.screen_.console_status.interactive
            ):
                if time.monotonic() > deadline:
                    raise TimeoutError("attach")
                await asyncio.sleep(0.02)
            screen = app.screen_
            term = screen.terminal
            conn = manager.get("console")
            assert conn is not None
            feeds: list[tuple[float, bytes]] = []
            paints: list[tuple[float, int]] = []
            feed = screen._feed
            render_line = term.render_line

            def timed_feed(data: bytes) -> None:
                feed(data)
                feeds.append((time.perf_counter(), data))

            def timed_render(y: int):  # type: ignore[no-untyped-def]
                paints.append((time.perf_counter(), y))
                return render_line(y)

            screen._feed = timed_feed  # type: ignore[method-assign]
            term.render_line = timed_render  # type: ignore[method-assign]

            async def wait_prompt() -> None:
                end = time.monotonic() + 20
                while not screen_lines(term)[term.emulator.screen.cursor.y].endswith("#"):
                    if time.monotonic() > end:
                        raise TimeoutError("prompt")
                    await asyncio.sleep(0.02)

            conn.write(b"\x15\r")
            await wait_prompt()
            for i in range(keys):
                if i and i % CLEAR_EVERY == 0:
                    conn.write(b"\x15")  # ctrl+U: clear the line (not timed)
                    await wait_prompt()
                ch = key_char(i)
                n_feeds = len(feeds)
                t0 = time.perf_counter()
                app.post_message(events.Key(ch, ch))
                t_fed = None
                end = time.monotonic() + 10
                while t_fed is None:
                    for t, data in feeds[n_feeds:]:
                        if ch.encode() in data:
                            t_fed = t
                            break
                    if time.monotonic() > end:
                        raise TimeoutError(f"echo of {ch!r}")
                    await asyncio.sleep(0.0005)
                row = term.emulator.screen.cursor.y
                t_paint = None
                end = time.monotonic() + 2
                while t_paint is None and time.monotonic() < end:
                    t_paint = next((t for t, y in paints if t >= t_fed and y == row), None)
                    await asyncio.sleep(0.001)
                fed_lat.append(t_fed - t0)
                if t_paint is not None:
                    paint_lat.append(t_paint - t0)
                paints.clear()
                await asyncio.sleep(0.02)  # idle between keys
            conn.write(b"\x15\r")  # leave the shell's line clean for the next client
            await wait_prompt()
    finally:
        manager.close_all()
    return fed_lat, paint_lat


class Channel:
    """Bytes from a socket or a pipe, with a timeout per read."""

    def __init__(self, fd: int, send) -> None:  # type: ignore[no-untyped-def]
        self.fd = fd
        self.send = send

    def recv(self, timeout: float) -> bytes:
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            raise TimeoutError
        data = os.read(self.fd, 4096)
        if not data:
            raise ConnectionError("closed")
        return data

    def until(self, needle: bytes, timeout: float = 10) -> None:
        buf = b""
        while needle not in buf:
            buf += self.recv(timeout)

    def drain(self, needle: bytes, quiet: float = 0.2) -> None:
        """Until NEEDLE was seen and then nothing came for QUIET seconds."""
        self.until(needle)
        while True:
            try:
                self.recv(quiet)
            except TimeoutError:
                return


def echo_loop(channel: Channel, keys: int) -> list[float]:
    lat = []
    channel.send(b"\x15\r")
    channel.drain(b"# ")
    for i in range(keys):
        if i and i % CLEAR_EVERY == 0:
            channel.send(b"\x15")  # ctrl+U: clear the line (not timed)
            channel.drain(b"# ", quiet=0.1)
        ch = key_char(i).encode()
        t0 = time.perf_counter()
        channel.send(ch)
        channel.until(ch)
        lat.append(time.perf_counter() - t0)
        time.sleep(0.02)  # idle between keys
    channel.send(b"\x15\r")  # leave the shell's line clean for the next client
    channel.drain(b"# ")
    return lat


def raw_echo(path: str, keys: int) -> list[float]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(path)
        return echo_loop(Channel(s.fileno(), s.sendall), keys)


def socat_echo(path: str, keys: int) -> list[float]:
    with socat_client(path) as proc:
        assert proc.stdin is not None and proc.stdout is not None
        return echo_loop(Channel(proc.stdout.fileno(), proc.stdin.write), keys)


def main() -> int:
    p = parser(__doc__ or "")
    p.add_argument("--keys", type=int, default=100)
    p.add_argument("--flood-mb", type=float, default=4.7)
    p.add_argument("--no-lab", action="store_true", help="only the flood (no lab)")
    args = p.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.2f} (2 cores shared; qemu runs TCG)")
    flood = asyncio.run(pane_flood(int(args.flood_mb * 1e6)))
    lat: list[float] = flood["lat"]  # type: ignore[assignment]
    print(
        f"keys during a {flood['sent'] / 1e6:.1f} MB fake flood, post to the fake: "  # type: ignore[operator]
        f"{summary(lat)} ({flood['arrived']}/{flood['keys']} arrived)"
    )
    print(
        f"  the flood through the pane: {flood['wall']:.2f} s "
        f"(app CPU {flood['cpu']:.1f} s); bytes fed to the emulator: {flood['fed']} of "
        f"{flood['sent']} sent"
    )
    if args.no_lab:
        return 0
    with lab_for(args.lab) as lab:
        path = str(lab.settings.state_dir / "console" / "console-console.sock")
        fed, painted = asyncio.run(pane_echo(lab, args.keys))
        print(f"pane, echo in the emulator : {summary(fed)}")
        print(f"pane, echo painted         : {summary(painted)}")
        print(f"raw socket                 : {summary(raw_echo(path, args.keys))}")
        print(f"socat                      : {summary(socat_echo(path, args.keys))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
