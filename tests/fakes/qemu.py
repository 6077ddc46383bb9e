"""Start and stop real, paused qemu processes (TCG, no kernel) for QMP tests."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass

QEMU = shutil.which("qemu-system-x86_64")


@dataclass
class Qemu:
    proc: subprocess.Popen[bytes]
    socket_path: str

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        """End the qemu this helper started, by its pid."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)


def start_qemu(socket_path: str, *, balloon: bool = True, timeout: float = 10.0) -> Qemu:
    """A paused (-S) q35 with 64 MiB, QMP on SOCKET_PATH; returns once the socket accepts."""
    if QEMU is None:
        raise RuntimeError("qemu-system-x86_64 is not installed")
    argv = [
        QEMU,
        "-accel", "tcg",
        "-M", "q35",
        "-m", "64",
        "-nodefaults",
        "-display", "none",
        "-S",
        "-qmp", f"unix:{socket_path},server=on,wait=off",
    ]  # fmt: skip
    if balloon:
        argv += ["-device", "virtio-balloon-pci,id=balloon0"]
    proc = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    qemu = Qemu(proc, socket_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            raise RuntimeError(f"qemu exited with {proc.returncode}: {err}")
        if os.path.exists(socket_path):
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                probe.connect(socket_path)
                return qemu  # closing at once leaves the monitor free again
            except OSError:
                pass
            finally:
                probe.close()
        time.sleep(0.02)
    qemu.stop()
    raise RuntimeError(f"qemu's QMP socket {socket_path} did not appear in {timeout} s")


def read_greeting(socket_path: str, timeout: float = 1.0) -> dict | None:
    """Connect as a plain client and return the QMP greeting, or None if none came in time."""
    import json

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    deadline = time.monotonic() + timeout
    try:
        sock.connect(socket_path)
        buf = b""
        while b"\n" not in buf:
            sock.settimeout(max(0.001, deadline - time.monotonic()))
            chunk = sock.recv(4096)
            if not chunk:
                return None
            buf += chunk
        return json.loads(buf.split(b"\n", 1)[0])
    except (TimeoutError, OSError):
        return None
    finally:
        sock.close()
