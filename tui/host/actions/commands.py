"""Run one external command (argv list, never a shell), record it, cancel it politely.

Cancelling sends SIGINT to the process we started (and only to it: through a pidfd, so a
recycled pid can never be hit), waits ``grace`` seconds, then SIGTERM, then SIGKILL. Nix
answers SIGINT by stopping its builders and exiting. The process gets its own session so a
Ctrl-C typed in the TUI's terminal never reaches it directly.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import threading
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from tui.host import tools
from tui.host.actions.cancel import CancelToken
from tui.host.actions.errors import CommandFailed

PIPE_GRACE = 5.0  # seconds to wait for the output pipes to close after the process exited


@dataclass(frozen=True)
class CommandRecord:
    """One external command the actions ran, for the UI's command log."""

    argv: tuple[str, ...]
    started: float  # time.time() at start
    duration: float  # seconds
    returncode: int | None  # None when it never ran
    pid: int | None
    outcome: str  # "exit 0", "exit 1", "cancelled (SIGINT)", "timed out", "cannot run: ..."

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def shown(self) -> str:
        return f"$ {shlex.join(self.argv)}  -> {self.outcome} ({self.duration:.2f} s)"


CommandLog = Callable[[CommandRecord], None]


@dataclass
class CommandResult:
    record: CommandRecord
    stdout: str
    stderr: str  # its last ``keep_stderr_lines`` lines
    cancelled: bool = False
    timed_out: bool = False

    @property
    def returncode(self) -> int | None:
        return self.record.returncode

    def error_text(self, lines: int = 5) -> str:
        text = [line for line in self.stderr.splitlines() if line.strip()]
        return "\n".join(text[-lines:]) if text else self.record.outcome


class _Signaller:
    """Signals exactly the process we started, even after it has been reaped."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self._proc = proc
        self._pidfd: int | None = None
        with contextlib.suppress(OSError, AttributeError):
            self._pidfd = os.pidfd_open(proc.pid)

    def send(self, sig: int) -> None:
        if self._pidfd is not None:
            with contextlib.suppress(ProcessLookupError, OSError):
                signal.pidfd_send_signal(self._pidfd, sig)
            return
        with contextlib.suppress(ProcessLookupError, OSError):
            self._proc.send_signal(sig)

    def close(self) -> None:
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None


def run(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | str | None = None,
    log: CommandLog | None = None,
    cancel: CancelToken | None = None,
    timeout: float | None = None,
    on_stderr_line: Callable[[str], None] | None = None,
    grace: float = 5.0,
    keep_stderr_lines: int = 200,
) -> CommandResult:
    """Run ARGV to the end (or until cancelled / timed out) and record it in LOG.

    Raises CommandFailed only when the command cannot be started at all; a non-zero exit,
    a cancel or a timeout come back in the result for the caller to judge.
    ``on_stderr_line`` is called from a reader thread with each stderr line (no newline).
    ARGV[0] should be absolute (``tools.path``); without ENV the child gets ``tools.child_env()``.
    """
    argv = tuple(argv)
    started = time.time()
    t0 = time.monotonic()
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            # Never our environment wholesale: ENV (built by the caller) or a clean one.
            env=dict(env) if env is not None else tools.child_env(),
            cwd=cwd,
            start_new_session=True,
        )
    except OSError as exc:
        reason = exc.strerror or str(exc)
        if isinstance(exc, FileNotFoundError):
            reason = f"{argv[0]} is not installed"
        record = CommandRecord(argv, started, 0.0, None, None, f"cannot run: {reason}")
        if log:
            log(record)
        raise CommandFailed(f"cannot run {argv[0]}", reason) from exc

    signaller = _Signaller(proc)
    stdout_chunks: list[bytes] = []
    stderr_lines: list[str] = []
    callback_failed: list[str] = []

    def read_stdout() -> None:
        assert proc.stdout is not None
        for chunk in iter(lambda: proc.stdout.read(65536), b""):  # type: ignore[union-attr]
            stdout_chunks.append(chunk)

    def read_stderr() -> None:
        assert proc.stderr is not None
        for raw in proc.stderr:
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            stderr_lines.append(line)
            if len(stderr_lines) > keep_stderr_lines * 2:
                del stderr_lines[:-keep_stderr_lines]
            if on_stderr_line is not None and not callback_failed:
                try:
                    on_stderr_line(line)
                except Exception:  # keep draining the pipe, or the command blocks
                    callback_failed.append(traceback.format_exc())

    exited = threading.Event()

    def wait_exit() -> None:
        proc.wait()
        exited.set()

    threads = [
        threading.Thread(target=read_stdout, name=f"{argv[0]}-stdout", daemon=True),
        threading.Thread(target=read_stderr, name=f"{argv[0]}-stderr", daemon=True),
        threading.Thread(target=wait_exit, name=f"{argv[0]}-wait", daemon=True),
    ]
    for thread in threads:
        thread.start()
    unregister = cancel.on_cancel(exited.set) if cancel is not None else (lambda: None)

    cancelled = timed_out = False
    outcome = ""
    try:
        exited.wait(timeout)
        if proc.returncode is None:
            # Woken by a cancel, or the timeout passed.
            cancelled = cancel is not None and cancel.cancelled
            timed_out = not cancelled
            outcome = _stop(proc, signaller, threads[2], grace)
    finally:
        unregister()
        if proc.returncode is None:  # an exception above: never leave it running
            signaller.send(signal.SIGKILL)
        threads[2].join()
        # The pipes end with the process, unless something it started still holds them:
        # then give up on the rest of the output rather than hang.
        threads[0].join(PIPE_GRACE)
        threads[1].join(PIPE_GRACE)
        signaller.close()
        with contextlib.suppress(OSError):
            proc.stdout.close()  # type: ignore[union-attr]
            proc.stderr.close()  # type: ignore[union-attr]

    duration = time.monotonic() - t0
    if cancelled:
        outcome = f"cancelled ({outcome})"
    elif timed_out:
        outcome = f"timed out after {timeout:g} s ({outcome})"
    elif proc.returncode is not None and proc.returncode < 0:
        outcome = f"killed by {signal.Signals(-proc.returncode).name}"
    else:
        outcome = f"exit {proc.returncode}"
    record = CommandRecord(argv, started, duration, proc.returncode, proc.pid, outcome)
    if log:
        log(record)
    if callback_failed:
        raise RuntimeError(f"the stderr callback failed:\n{callback_failed[0]}")
    return CommandResult(
        record=record,
        stdout=b"".join(list(stdout_chunks)).decode("utf-8", errors="replace"),
        stderr="\n".join(list(stderr_lines)[-keep_stderr_lines:]),
        cancelled=cancelled,
        timed_out=timed_out,
    )


def _stop(
    proc: subprocess.Popen, signaller: _Signaller, waiter: threading.Thread, grace: float
) -> str:
    """SIGINT, then SIGTERM, then SIGKILL, each after GRACE seconds. Says which one worked."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signaller.send(sig)
        waiter.join(grace)
        if not waiter.is_alive():
            return sig.name
    signaller.send(signal.SIGKILL)
    waiter.join()
    return "SIGKILL"
