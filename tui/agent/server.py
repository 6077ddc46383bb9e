"""``microvm-tui agent``: the host side of the protocol (``tui.agent.protocol``), on stdin/stdout.

It says hello (protocol and app version, host facts, why it is read-only when it is: a
non-root login gets a read-only agent), waits for the app's ``start``, then polls the host
with the same ``LiveSource`` the app uses locally and sends a snapshot every interval: the
first whole, then only what changed since the previous one. It ends when stdin closes (the app
or the ssh connection went) or when the app's protocol version is not its own.

Our stdout carries only protocol lines: fd 1 is kept for them and pointed at stderr for
everything else, so a stray print from a library cannot break the stream.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import socket
import sys
import threading
import time
from typing import IO, Any

from tui.agent import codec, protocol
from tui.config import INTERVAL_RANGE, Settings
from tui.host.text import sanitise

EXIT_MISMATCH = 2


def read_only_reason(settings: Settings) -> str | None:
    if os.geteuid() != 0:
        try:
            user = pwd.getpwuid(os.geteuid()).pw_name
        except KeyError:
            user = "?"
        return f"the agent runs as {user} (uid {os.geteuid()}), not root"
    if settings.read_only:
        return "the host's config sets read_only"
    return None


def host_facts(settings: Settings) -> dict[str, Any]:
    uname = os.uname()
    mem_total = None
    try:
        with open("/proc/meminfo", "rb") as fh:
            for line in fh.read(8192).splitlines():
                if line.startswith(b"MemTotal:"):
                    mem_total = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        user = pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        user = str(os.geteuid())
    return {
        "hostname": socket.gethostname(),
        "kernel": uname.release,
        "machine": uname.machine,
        "ncpu": os.cpu_count(),
        "mem_total_bytes": mem_total,
        "user": user,
        "uid": os.geteuid(),
        "state_dir": str(settings.host.state_dir),
    }


class Agent:
    """One session: OUT receives protocol lines (written whole, under a lock)."""

    def __init__(self, settings: Settings, inp: IO[bytes], out: IO[bytes]) -> None:
        self.settings = settings
        self.inp = inp
        self.out = out
        self.interval = settings.interval
        self.focus: str | None = None
        self._lock = threading.Lock()
        self._wake = threading.Event()  # a poll asked for now, or the end
        self._stop = threading.Event()
        self.jobs: Any = None  # AgentJobs, once the app has started the session
        self._vms: list[Any] = []  # the last poll's VMs (the facts of a plan)

    def send(self, message: dict[str, Any]) -> None:
        data = protocol.encode(message)
        with self._lock:
            self.out.write(data)
            self.out.flush()

    def _read(self) -> dict[str, Any] | None:
        """The app's next message; None at the end of stdin."""
        line = self.inp.readline(protocol.MAX_APP_LINE + 1)
        if not line:
            return None
        if not line.endswith(b"\n") and len(line) > protocol.MAX_APP_LINE:
            raise protocol.ProtocolError(f"a line over {protocol.MAX_APP_LINE} bytes")
        return protocol.decode(line, protocol.APP_TYPES, protocol.MAX_APP_LINE)

    def run(self) -> int:
        self.send(
            {
                "type": "hello",
                "protocol": protocol.PROTOCOL,
                "app": protocol.app_version(),
                "host": host_facts(self.settings),
                "read_only": read_only_reason(self.settings),
                "interval": self.interval,
            }
        )
        try:
            start = self._read()
        except protocol.ProtocolError as exc:
            self.send({"type": "error", "message": f"the app sent {exc}"})
            return EXIT_MISMATCH
        if start is None:
            return 0
        problem = (
            "the app's first message was not start"
            if start.get("type") != "start"
            else protocol.version_mismatch(
                protocol.PROTOCOL, protocol.app_version(), start.get("protocol"), start.get("app")
            )
        )
        if problem:
            self.send({"type": "error", "message": problem})
            print(f"microvm-tui agent: {problem}", file=sys.stderr)
            return EXIT_MISMATCH
        self._apply(start)
        self._start_jobs()
        threading.Thread(target=self._reader, name="agent-stdin", daemon=True).start()
        try:
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self._poll_loop()
        finally:
            self.jobs.close()  # unit jobs go on: the next agent adopts them
        return 0

    def _start_jobs(self) -> None:
        from tui.agent.agent_jobs import AgentJobs

        self.jobs = AgentJobs(
            self.settings, self.send, read_only_reason(self.settings), lambda: self._vms
        )
        self.jobs.start()

    def _apply(self, message: dict[str, Any]) -> None:
        interval = message.get("interval")
        low, high = INTERVAL_RANGE
        number = isinstance(interval, int | float) and not isinstance(interval, bool)
        if number and low <= interval <= high:  # type: ignore[operator]
            self.interval = float(interval)  # type: ignore[arg-type]
        if "focus" in message or "vm" in message:
            vm = message.get("focus", message.get("vm"))
            self.focus = vm if isinstance(vm, str) and len(vm) <= 256 else None

    def _reader(self) -> None:
        try:
            while (message := self._read()) is not None:
                if message["type"] in ("submit", "cancel", "plan"):
                    self.jobs.handle(message)
                    continue
                if message["type"] == "focus":
                    self._apply(message)
                self._wake.set()  # focus and poll: a poll now, with the new focus
        except (protocol.ProtocolError, OSError, ValueError) as exc:
            print(f"microvm-tui agent: {sanitise(str(exc), 200)}", file=sys.stderr)
        self._stop.set()
        self._wake.set()

    def _poll_loop(self) -> None:
        from tui.feed import LiveSource

        try:
            source = LiveSource(self.settings.host)
        except Exception as exc:  # e.g. an unreadable cache: said in one line, the session ends
            self.send({"type": "error", "message": f"cannot start: {sanitise(exc, 400)}"})
            return
        last: dict[str, Any] | None = None
        seq = 0
        # As the app does locally: the state dirs first (a ``partial`` snapshot, before
        # systemd answers), then at once the poll that finishes that listing.
        first = getattr(source, "first_look", None)
        try:
            while not self._stop.is_set():
                started = time.monotonic()
                self._wake.clear()
                snap = None
                try:
                    snap = first() if first is not None else source.poll(self.focus)
                    self._vms = list(snap.inventory.vms)
                    wire = codec.snapshot_to_wire(snap)
                except Exception as exc:  # said to the app; the next poll tries again
                    self.send({"type": "error", "message": f"poll failed: {sanitise(exc, 400)}"})
                else:
                    seq += 1
                    if last is None:
                        self.send({"type": "snapshot", "seq": seq, "full": wire})
                    else:
                        patch = codec.diff(last, wire)
                        self.send({"type": "snapshot", "seq": seq, "patch": patch})
                    last = wire
                was_first, first = first is not None, None
                if was_first or (snap is not None and snap.partial):
                    continue  # the full poll at once (a big host's rest of the first look too)
                took = time.monotonic() - started
                self._wake.wait(max(self.interval / 4, self.interval - took))
        finally:
            source.close()


def run_agent(settings: Settings) -> int:
    """The agent on this process's stdin/stdout."""
    out_fd = os.dup(1)
    os.dup2(2, 1)  # stray writes to stdout go to stderr from now on
    sys.stdout = sys.stderr
    out = os.fdopen(out_fd, "wb", buffering=0)
    inp = os.fdopen(os.dup(0), "rb")
    try:
        return Agent(settings, inp, out).run()
    except (BrokenPipeError, ConnectionResetError):
        return 0
    except KeyboardInterrupt:
        return 130
