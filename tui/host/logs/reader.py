"""Run journalctl for a query: the last lines at once, or a follower that keeps reading.

Both are bounded: a read stops after MAX_BYTES of output or its deadline and says so; a follower
drops a runaway line past MAX_LINE_BYTES. journalctl is ended by its own pid. Failures come back
as one line (journalctl missing, permission, a corrupted file), never as an exception.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from tui.host.logs.entry import LogLine, parse_line
from tui.host.logs.query import LogQuery, journal_argv
from tui.host.settings import HostSettings
from tui.host.text import sanitise

MAX_BYTES = 32 << 20  # output of one read
MAX_LINE_BYTES = 1 << 20  # one JSON line (journalctl --all prints long fields whole)
MAX_STDERR = 16 << 10


@dataclass
class LogResult:
    lines: list[LogLine] = field(default_factory=list)
    error: str | None = None  # nothing could be read, and why (one line)
    note: str | None = None  # read, but journalctl had something to say (one line)


def _first_line(stderr: bytes) -> str | None:
    for raw in stderr.decode("utf-8", "replace").splitlines():
        line = raw.strip()
        if line and not line.startswith("-- "):
            return sanitise(line, limit=300)
    return None


def permission_hint() -> str | None:
    """Why a non-root user sees only part of the journal (None as root or in a journal group)."""
    if os.geteuid() == 0:
        return None
    import grp

    allowed = set()
    for name in ("systemd-journal", "adm", "wheel"):
        with contextlib.suppress(KeyError):
            allowed.add(grp.getgrnam(name).gr_gid)
    if allowed & set(os.getgroups()):
        return None
    return "not root and not in the systemd-journal or adm group: only your own entries are shown"


def _spawn(
    settings: HostSettings, argv: list[str], pass_fds: tuple[int, ...]
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=settings.command_env(),
        pass_fds=pass_fds,
        start_new_session=True,
    )


def _end(proc: subprocess.Popen[bytes]) -> None:
    """End journalctl by its pid (it is ours) and reap it."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


def _not_started(exc: OSError) -> LogResult:
    if isinstance(exc, FileNotFoundError):
        return LogResult(error="journalctl is not installed")
    return LogResult(error=f"cannot run journalctl: {exc.strerror or exc}")


def read_journal(
    settings: HostSettings,
    query: LogQuery,
    *,
    files: tuple[str, ...] = (),
    pass_fds: tuple[int, ...] = (),
    timeout: float | None = None,
) -> LogResult:
    """The last ``query.lines`` entries that match, oldest first."""
    argv = journal_argv(settings, query, files=files)
    try:
        proc = _spawn(settings, argv, pass_fds)
    except OSError as exc:
        return _not_started(exc)
    out, err = bytearray(), bytearray()
    deadline = time.monotonic() + (timeout if timeout is not None else settings.timeout)
    cut = None
    assert proc.stdout is not None and proc.stderr is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ, out)
        sel.register(proc.stderr, selectors.EVENT_READ, err)
        open_streams = 2
        while open_streams:
            left = deadline - time.monotonic()
            if left <= 0:
                cut = f"journalctl did not finish within {timeout or settings.timeout:g} s"
                break
            for key, _ in sel.select(left):
                chunk = os.read(key.fd, 1 << 16)
                if not chunk:
                    sel.unregister(key.fileobj)
                    open_streams -= 1
                    continue
                buf: bytearray = key.data
                if buf is err:
                    if len(err) < MAX_STDERR:
                        err += chunk
                else:
                    out += chunk
                    if len(out) > MAX_BYTES:
                        cut = f"more than {MAX_BYTES >> 20} MiB of output: cut"
                        open_streams = 0
                        break
    _end(proc)
    lines = [
        entry
        for raw in bytes(out).split(b"\n")
        if len(raw) <= MAX_LINE_BYTES and (entry := parse_line(raw)) is not None
    ]
    # journalctl prints --lines with --grep newest first (systemd 252): oldest first always.
    lines.sort(key=lambda entry: entry.usec)
    said = _first_line(bytes(err))
    if proc.returncode not in (0, None, -signal.SIGTERM) and not lines and cut is None:
        return LogResult(error=said or f"journalctl failed (exit status {proc.returncode})")
    return LogResult(lines=lines, note=cut or said or permission_hint())


class LogFollower:
    """``journalctl --follow`` for a query, after a cursor, in a thread of its own.

    ON_LINES gets each batch of new entries (from that thread); ON_END gets one line when
    journalctl ends by itself (None when we closed it). Close ends journalctl by its pid.
    """

    def __init__(
        self,
        settings: HostSettings,
        query: LogQuery,
        on_lines: Callable[[list[LogLine]], None],
        on_end: Callable[[str | None], None],
        *,
        after_cursor: str = "",
        files: tuple[str, ...] = (),
        pass_fds: tuple[int, ...] = (),
    ) -> None:
        self._argv = journal_argv(
            settings, query, files=files, follow=True, after_cursor=after_cursor
        )
        self._settings = settings
        self._pass_fds = pass_fds
        self._on_lines = on_lines
        self._on_end = on_end
        self._closed = threading.Event()
        self._proc: subprocess.Popen[bytes] | None = None
        self._thread = threading.Thread(target=self._run, name="journal-follow", daemon=True)

    def start(self) -> None:
        try:
            self._proc = _spawn(self._settings, self._argv, self._pass_fds)
        except OSError as exc:
            self._on_end(_not_started(exc).error)
            return
        self._thread.start()

    def _run(self) -> None:
        proc = self._proc
        assert proc is not None and proc.stdout is not None
        partial = b""
        while not self._closed.is_set():
            try:
                chunk = os.read(proc.stdout.fileno(), 1 << 16)
            except OSError:
                break
            if not chunk:
                break
            *complete, partial = (partial + chunk).split(b"\n")
            if len(partial) > MAX_LINE_BYTES:
                partial = b""
            batch = [e for raw in complete if (e := parse_line(raw)) is not None]
            if batch and not self._closed.is_set():
                self._on_lines(batch)
        if self._closed.is_set():
            return
        proc.wait()
        said = _first_line(proc.stderr.read(MAX_STDERR) if proc.stderr else b"")
        self._on_end(said or f"journalctl ended (exit status {proc.returncode})")

    def close(self) -> None:
        self._closed.set()
        if self._proc is not None:
            _end(self._proc)
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=2)
