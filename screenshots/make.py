"""Screenshots of the monitor on a lab host: SVG (Textual's own) and PNG, for the README.

    .venv/bin/python screenshots/make.py [--lab DIR]

With --lab an existing lab is used (and left up); without, one is brought up in a fresh dir
under /var/tmp and brought down at the end. The app runs headless (``App.run_test``) at
160x48 on the live lab for ~25 polls; the `console` VM runs a busy loop on its serial console
for ten of them so its CPU history has a shape. Writes, next to this file:

- ``main.svg/png``: the main screen, `web` selected (its Overview tab);
- ``detail-history.svg/png``: `console`'s History tab (CPU and memory graphs);
- ``detail-storage.svg/png``: `web`'s Storage tab;
- ``logs.svg/png``: `db`'s Logs view (its guest's console lines of three priorities).

PNG conversion: ``rsvg-convert`` (Debian: ``apt-get install librsvg2-bin``), else cairosvg
(PyPI). rsvg collapses the SVG's leading no-break spaces, so they are turned into plain spaces
under ``xml:space="preserve"`` first.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from tui.app import MicroVMApp  # noqa: E402
from tui.config import load_settings  # noqa: E402
from tui.screens.logs import LogsScreen  # noqa: E402
from tui.widgets.vm_table import VMTable  # noqa: E402

SIZE = (160, 48)


def console_send(lab_root: Path, text: str) -> None:
    path = lab_root / "microvms" / "console" / "console-console.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        sock.connect(str(path))
        sock.sendall(text.encode())
        time.sleep(0.2)


def to_png(svg: Path) -> Path:
    png = svg.with_suffix(".png")
    text = svg.read_text()
    text = text.replace("&#160;", " ").replace("<svg ", '<svg xml:space="preserve" ', 1)
    if shutil.which("rsvg-convert"):
        with tempfile.NamedTemporaryFile("w", suffix=".svg") as tmp:
            tmp.write(text)
            tmp.flush()
            subprocess.run(["rsvg-convert", tmp.name, "-o", str(png)], check=True)
    else:
        import cairosvg  # type: ignore[import-not-found]

        cairosvg.svg2png(bytestring=text.encode(), write_to=str(png))
    return png


async def shoot(config: Path, lab_root: Path) -> list[Path]:
    settings = load_settings(config)
    app = MicroVMApp(settings, tty_watch=False)
    out: list[Path] = []

    def save(name: str) -> None:
        svg = HERE / f"{name}.svg"
        app.save_screenshot(filename=svg.name, path=str(HERE))
        # Textual stamps the SVG with a random id per export: keep the files stable-ish.
        svg.write_text(re.sub(r"terminal-\d+-", "terminal-", svg.read_text()))
        out.append(svg)

    async with app.run_test(size=SIZE) as pilot:

        async def polls(n: int) -> None:
            target = app.polls + n
            deadline = time.monotonic() + 10 * n + 30
            while app.polls < target:
                if time.monotonic() > deadline:
                    raise SystemExit("the app stopped polling")
                await pilot.pause(0.1)

        async def select(name: str) -> None:
            table = app.main_screen.query_one(VMTable)
            table.move_cursor(row=table.get_row_index(name))
            await pilot.pause()

        await polls(5)
        console_send(lab_root, "\nwhile :; do :; done &\n")
        try:
            await polls(10)
        finally:
            console_send(lab_root, "\nkill %1\n")
        await polls(10)
        # The journal summary runs once a minute: wait for one that has seen db's ticks.
        deadline = time.monotonic() + 120
        while not ((app.snapshot.log_counts or {}).get("db") if app.snapshot else None):
            if time.monotonic() > deadline:
                raise SystemExit("the journal summary never counted db's lines")
            await polls(1)
        await select("web")
        await polls(1)
        save("main")
        await pilot.press("3")
        await polls(1)
        save("detail-storage")
        await select("console")
        await pilot.press("6")
        await polls(1)
        save("detail-history")
        await pilot.press("1")
        await select("db")
        await pilot.press("l")
        deadline = time.monotonic() + 30
        while not (isinstance(app.screen, LogsScreen) and app.screen.settled):
            if time.monotonic() > deadline:
                raise SystemExit("the Logs view did not load")
            await pilot.pause(0.1)
        await pilot.pause(0.5)
        save("logs")
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lab", type=Path, help="an existing lab dir (left up)")
    args = parser.parse_args()
    from tui.lab import Lab

    own = args.lab is None
    root = Path(tempfile.mkdtemp(prefix="mvtui-shots-", dir="/var/tmp")) if own else args.lab
    lab = Lab(root)
    try:
        if own:
            lab.up()
        svgs = asyncio.run(shoot(lab.config_path, lab.root))
        for svg in svgs:
            print(f"wrote {svg} and {to_png(svg)}")
    finally:
        if own:
            lab.down()


if __name__ == "__main__":
    main()
