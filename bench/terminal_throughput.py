"""Throughput of the serial-console TerminalWidget under a flood of realistic console output.

Run: .venv/bin/python bench/terminal_throughput.py [megabytes]

Three streams, each about 2 MB:

* mixed: boot-log-like output (timestamps, systemd colours, 256/true colour, wrapped lines,
  progress bars with CR, UTF-8);
* short lines: what ``seq 1 260000`` prints (numbers, CR LF), where the cost per line feed
  dominates;
* non-ASCII lines: log lines in other scripts (accents, Cyrillic, CJK), which take the
  emulator's per-character path.

A reader thread feeds each through ``app.call_from_thread`` in 16 KiB chunks, as the console
socket reader will. Printed, per stream:

* emulator MB/s: the parser + screen alone, outside Textual;
* widget MB/s: bytes fed through ``TerminalWidget.feed`` inside a running app, per second of
  wall time from the first chunk to the last;
* time until the last line is on screen: from the last ``feed`` returning to the compositor
  rendering the line that holds the end marker;
* key latency during the flood: a Key event posted to the app every 50 ms until the widget's
  ``TerminalWidget.Input`` message for it is handled.

Not a test: figures depend on the machine (and on whatever else it is running: the "per CPU
second" figures divide by this process's CPU time, which is less sensitive to a busy machine).
"""

from __future__ import annotations

import asyncio
import random
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from textual import events
from textual.app import App, ComposeResult
from textual.strip import Strip

from tui.vt import TerminalEmulator
from tui.widgets.terminal import TerminalWidget

END_MARKER = "END-OF-FLOOD"
CHUNK = 16 * 1024


def console_output(size: int, seed: int = 7) -> bytes:
    """Deterministic, realistic serial-console output of about ``size`` bytes."""
    rng = random.Random(seed)
    units = ["systemd-journald", "sshd", "network-setup", "nix-daemon", "dhcpcd", "getty@tty1"]
    words = [
        "started",
        "stopped",
        "reached",
        "target",
        "mounted",
        "device",
        "link",
        "up",
        "carrier",
        "lost",
        "renewed",
    ]
    parts: list[str] = []
    total = 0
    t = 0.0
    while total < size:
        t += rng.random() / 10
        kind = rng.random()
        if kind < 0.35:
            msg = " ".join(rng.choice(words) for _ in range(rng.randint(4, 14)))
            line = f"[{t:12.6f}] {rng.choice(units)}[{rng.randint(1, 9999)}]: {msg}\r\n"
        elif kind < 0.6:
            unit = rng.choice(units)
            line = f"[\x1b[0;32m  OK  \x1b[0m] Started \x1b[0;1;39m{unit}.service\x1b[0m.\r\n"
        elif kind < 0.65:
            line = (
                f"[\x1b[0;1;31mFAILED\x1b[0m] Failed to start \x1b[0;1;39m{rng.choice(units)}"
                "\x1b[0m.\r\nSee 'systemctl status' for details.\r\n"
            )
        elif kind < 0.75:
            cells = [
                f"\x1b[38;5;{rng.randint(16, 231)}m{rng.choice(words)}\x1b[0m" for _ in range(8)
            ]
            line = "  ".join(cells) + "\r\n"
        elif kind < 0.8:
            r, g, b = (rng.randint(0, 255) for _ in range(3))
            line = f"\x1b[38;2;{r};{g};{b}mtruecolour ▸ état ✓ 中文\x1b[0m\r\n"
        elif kind < 0.9:
            # A long line that wraps on an 80-column screen.
            line = " ".join(rng.choice(words) for _ in range(40)) + "\r\n"
        else:
            # A progress bar redrawn in place with CR.
            line = "".join(
                f"\rcopying paths: [{'#' * p}{'.' * (20 - p)}] {p * 5:3d}%" for p in range(0, 21)
            )
            line += "\r\n"
        parts.append(line)
        total += len(line.encode())
    parts.append(f"\x1b[1m{END_MARKER}\x1b[0m\r\n")
    return "".join(parts).encode()


def short_lines(size: int) -> bytes:
    """``seq 1 N`` through a tty (CR LF), about ``size`` bytes (N = 260000 for 1.97 MB)."""
    parts: list[str] = []
    total = 0
    n = 0
    while total < size:
        n += 1
        line = f"{n}\r\n"
        parts.append(line)
        total += len(line)
    parts.append(f"\x1b[1m{END_MARKER}\x1b[0m\r\n")
    return "".join(parts).encode()


def non_ascii_lines(size: int, seed: int = 11) -> bytes:
    """Log lines in other scripts (accents, Cyrillic, CJK wide characters, symbols), about
    ``size`` bytes: the emulator's per-character path instead of its ASCII fast path."""
    rng = random.Random(seed)
    words = ["état", "démarré", "запущен", "устройство", "网络", "已启动", "✓", "▸", "→", "München"]
    parts: list[str] = []
    total = 0
    t = 0.0
    while total < size:
        t += rng.random() / 10
        line = f"[{t:12.6f}] " + " ".join(rng.choice(words) for _ in range(rng.randint(4, 12)))
        line += "\r\n"
        parts.append(line)
        total += len(line.encode())
    parts.append(f"\x1b[1m{END_MARKER}\x1b[0m\r\n")
    return "".join(parts).encode()


def bench_emulator(data: bytes) -> tuple[float, float]:
    """(wall MB/s, CPU MB/s) of the emulator alone."""
    emulator = TerminalEmulator(120, 39)
    wall, cpu = time.perf_counter(), time.process_time()
    for offset in range(0, len(data), CHUNK):
        emulator.feed(data[offset : offset + CHUNK])
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return len(data) / wall / 1e6, len(data) / cpu / 1e6


class MarkedTerminal(TerminalWidget):
    """Records when the compositor renders the end marker."""

    end_rendered_at: float | None = None

    def render_line(self, y: int) -> Strip:
        strip = super().render_line(y)
        if self.end_rendered_at is None and END_MARKER in strip.text:
            self.end_rendered_at = time.perf_counter()
        return strip


class BenchApp(App[None]):
    def __init__(self) -> None:
        super().__init__()
        self.key_sent: dict[int, float] = {}
        self.key_latency: list[float] = []

    def compose(self) -> ComposeResult:
        yield MarkedTerminal()

    def on_mount(self) -> None:
        self.query_one(MarkedTerminal).focus()

    def on_terminal_widget_input(self, message: TerminalWidget.Input) -> None:
        sent = self.key_sent.pop(message.data[0], None)
        if sent is not None:
            self.key_latency.append(time.perf_counter() - sent)


async def bench_widget(data: bytes) -> dict[str, float]:
    app = BenchApp()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        terminal = app.query_one(MarkedTerminal)
        times: dict[str, float] = {}
        done = threading.Event()

        def reader() -> None:
            times["start"] = time.perf_counter()
            times["cpu_start"] = time.process_time()
            for offset in range(0, len(data), CHUNK):
                app.call_from_thread(terminal.feed, data[offset : offset + CHUNK])
            times["fed"] = time.perf_counter()
            times["cpu_fed"] = time.process_time()
            done.set()

        thread = threading.Thread(target=reader, daemon=True)
        thread.start()
        letter = 0
        while not done.is_set():
            await asyncio.sleep(0.05)
            key = ord("a") + letter % 26
            letter += 1
            app.key_sent[key] = time.perf_counter()
            app.post_message(events.Key(chr(key), chr(key)))
        deadline = time.perf_counter() + 10
        while terminal.end_rendered_at is None and time.perf_counter() < deadline:
            await asyncio.sleep(0.001)
        await pilot.pause()
        feed_seconds = times["fed"] - times["start"]
        rendered_at = terminal.end_rendered_at or float("nan")
        latency = app.key_latency or [float("nan")]
        return {
            "widget_mb_s": len(data) / feed_seconds / 1e6,
            "widget_cpu_mb_s": len(data) / (times["cpu_fed"] - times["cpu_start"]) / 1e6,
            "feed_seconds": feed_seconds,
            "last_line_after_feed_ms": (rendered_at - times["fed"]) * 1000,
            "last_line_total_s": rendered_at - times["start"],
            "keys": len(app.key_latency),
            "key_median_ms": statistics.median(latency) * 1000,
            "key_max_ms": max(latency) * 1000,
        }


def run(name: str, data: bytes) -> None:
    lines = data.count(b"\n")
    print(f"{name}: {len(data) / 1e6:.2f} MB, {lines} lines")
    wall, cpu = bench_emulator(data)
    print(f"  emulator alone:          {wall:6.2f} MB/s wall, {cpu:6.2f} MB/s per CPU second")
    result = asyncio.run(bench_widget(data))
    print(
        f"  widget in a running app: {result['widget_mb_s']:6.2f} MB/s wall, "
        f"{result['widget_cpu_mb_s']:6.2f} MB/s per CPU second "
        f"({result['feed_seconds']:.2f} s for the whole flood, 16 KiB chunks)"
    )
    print(
        f"  last line on screen:     {result['last_line_after_feed_ms']:6.1f} ms after the last "
        f"feed ({result['last_line_total_s']:.2f} s after the first)"
    )
    print(
        f"  key press during flood:  median {result['key_median_ms']:.1f} ms, "
        f"max {result['key_max_ms']:.1f} ms over {result['keys']:.0f} keys"
    )


def main() -> None:
    megabytes = float(sys.argv[1]) if len(sys.argv) > 1 else 2.0
    size = int(megabytes * 1_000_000)
    run("mixed console output", console_output(size))
    run("short lines (seq)", short_lines(size))
    run("non-ASCII lines", non_ascii_lines(size))


if __name__ == "__main__":
    main()
