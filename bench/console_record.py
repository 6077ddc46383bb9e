"""Record console byte streams from a running lab, for tests/fixtures/console_streams/.

    python -m tui.lab up /var/tmp/mylab
    .venv/bin/python bench/console_record.py /var/tmp/mylab [OUT_DIR]

Records, through the app's own ConsoleConnection (so the bytes are exactly what the pane gets):

* ``console_session.bin``: the `console` VM's socket, a short shell session (colours, UTF-8);
* ``console_restart.bin``: the same socket while `console` is restarted (power-down, our
  reconnect notes, the new boot up to its prompt);
* ``web_history.bin``: `web`'s read-only history, its log file's tail (stdio serial).

The lab's root directory in our own notes is replaced by ``/var/lib/microvms`` so the fixtures do
not depend on where the lab was. The guest's bytes are kept as they came.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tui.host.console import ConsoleConnection  # noqa: E402
from tui.host.inventory import list_vms  # noqa: E402
from tui.lab import Lab  # noqa: E402

SESSION = [
    "echo $((6*7))",
    "printf '\\033[1;32mgreen bold\\033[0m \\033[4;34munderlined blue\\033[0m "
    "\\033[7mreverse\\033[0m\\n'",
    "printf 'UTF-8: caf\\303\\251 \\342\\224\\200\\342\\224\\200 "
    "\\346\\274\\242\\345\\255\\227\\n'",
    "ls /",
    "cat /proc/cmdline",
]


class Tap:
    def __init__(self) -> None:
        self.data = bytearray()
        self.lock = threading.Lock()

    def __call__(self, data: bytes) -> None:
        with self.lock:
            self.data += data

    def wait(self, needle: bytes, start: int = 0, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if needle in self.data[start:]:
                    return
            time.sleep(0.02)
        raise TimeoutError(f"no {needle!r} within {timeout:.0f}s")

    def __len__(self) -> int:
        with self.lock:
            return len(self.data)


def wait_until(predicate, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        time.sleep(0.05)


def clean(data: bytes, lab: Lab) -> bytes:
    return data.replace(str(lab.state_dir).encode(), b"/var/lib/microvms")


def main() -> int:
    lab = Lab(Path(sys.argv[1]))
    out = Path(sys.argv[2]) if len(sys.argv) > 2 else ROOT / "tests/fixtures/console_streams"
    vms = {vm.name: vm for vm in list_vms(lab.settings, links=False).vms}

    tap = Tap()
    conn = ConsoleConnection(vms["console"], lab.settings)
    conn.attach(tap)
    conn.start()
    try:
        wait_until(lambda: conn.status.interactive)
        for line in SESSION:
            start = len(tap)
            conn.write(line.encode() + b"\r")
            tap.wait(b"console:/# ", start)
        (out / "console_session.bin").write_bytes(clean(bytes(tap.data), lab))

        start = len(tap)
        s = lab.settings
        subprocess.run(
            s.systemctl_argv("restart", "microvm@console.service"),
            env=s.command_env(),
            check=True,
            timeout=60,
        )
        tap.wait(b"microvm-lab guest console up", start, 120)
        tap.wait(b"console:/# ", start, 60)
        (out / "console_restart.bin").write_bytes(clean(bytes(tap.data[start:]), lab))
    finally:
        conn.close()

    tap = Tap()
    conn = ConsoleConnection(vms["web"], lab.settings)
    conn.attach(tap)
    conn.start()
    try:
        wait_until(lambda: conn.status.state == "read-only")
        tap.wait(b"microvm-lab guest web up")  # the journal's history up to the boot marker
        (out / "web_history.bin").write_bytes(clean(bytes(tap.data), lab))
    finally:
        conn.close()
    for name in ("console_session.bin", "console_restart.bin", "web_history.bin"):
        print(f"{out / name}: {(out / name).stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
