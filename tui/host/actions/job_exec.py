"""`microvm-tui job-exec --jobs-dir DIR --job NAME`: the main of a job's systemd unit.

Runs the one action the job file's spec names, with the operations code the thread runner
uses, and appends what it does to the job file (``jobfile``): a running record, log lines,
progress (at most every ``PROGRESS_INTERVAL``, and the last one), commands, then the end
with its state, message and outcome. SIGTERM (``systemctl stop`` of the unit) cancels the
job's ``CancelToken``: the action interrupts its command and cleans up as on the panel's x.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from tui.host.actions import jobfile
from tui.host.actions.cancel import CancelToken
from tui.host.actions.commands import CommandRecord
from tui.host.actions.errors import ActionError, Cancelled
from tui.host.actions.nixlog import Progress
from tui.host.actions.operations import Outcome, Reporter
from tui.host.safefs import describe

PROGRESS_INTERVAL = 0.25
MAX_LOG_RECORDS = 20000  # log lines a job writes; more are counted, not written


class _Recorder:
    """The Reporter's callbacks, as records in the job file (from any thread)."""

    def __init__(self, writer: jobfile.JobWriter) -> None:
        self._writer = writer
        self._lock = threading.Lock()
        self._lines = 0
        self._last_progress = 0.0
        self._pending: Progress | None = None

    def write(self, record: dict[str, Any]) -> None:
        with self._lock:
            self._writer.write(record)

    def log(self, line: str) -> None:
        with self._lock:
            self._lines += 1
            if self._lines > MAX_LOG_RECORDS:
                return
            self._writer.write({"kind": "log", "line": jobfile._cut(line)})

    def progress(self, progress: Progress) -> None:
        now = time.monotonic()
        with self._lock:
            if now - self._last_progress < PROGRESS_INTERVAL:
                self._pending = progress
                return
            self._last_progress, self._pending = now, None
            self._writer.write({"kind": "progress", "progress": jobfile.plain(progress)})

    def command(self, record: CommandRecord) -> None:
        self.write({"kind": "command", "command": jobfile.plain(record)})

    def flush(self) -> None:
        with self._lock:
            if self._pending is not None:
                self._writer.write({"kind": "progress", "progress": jobfile.plain(self._pending)})
                self._pending = None
            if self._lines > MAX_LOG_RECORDS:
                dropped = self._lines - MAX_LOG_RECORDS
                self._writer.write({"kind": "log", "line": f"({dropped} more lines not kept)"})


def _run_action(spec: dict[str, Any], recorder: _Recorder, token: CancelToken) -> dict[str, Any]:
    """The end record of running SPEC's action."""
    from tui.host.actions.jobs import default_actions

    # The tools get what the app's own environment passes on, not the manager's (a Nix
    # package's environment.d may set NIX_REMOTE=daemon for every unit).
    jobfile.restore_environ(spec.get("environ"))
    settings = jobfile.settings_from_json(spec.get("settings"))
    options = jobfile.options_from_json(spec.get("options", {}))
    action_name, vm = spec.get("action"), spec.get("vm")
    actions = default_actions()
    if not isinstance(action_name, str) or action_name not in actions or not isinstance(vm, str):
        return {"kind": "end", "state": "failed", "result": "the job file names no known action"}
    reporter = Reporter(log=recorder.log, progress=recorder.progress, command=recorder.command)
    outcome: Outcome | None = None
    try:
        outcome = actions[action_name](settings, vm, reporter, token, **options)
    except Cancelled as exc:
        state, result = "cancelled", str(exc)
    except ActionError as exc:
        state, result = "failed", str(exc)
    except OSError as exc:
        state, result = "failed", f"{action_name} failed: {describe(exc)}"
    except Exception as exc:
        for line in traceback.format_exc().splitlines():
            recorder.log(line)
        state, result = "failed", f"internal error: {exc!r}"
    else:
        state, result = "succeeded", outcome.message
    return {
        "kind": "end",
        "state": state,
        "result": jobfile._cut(result),
        "outcome": jobfile.plain(outcome) if outcome is not None else None,
    }


def job_exec(jobs_dir: Path, name: str) -> int:
    try:
        dir_fd = jobfile.open_job_dir(jobs_dir)
        reader = jobfile.JobReader(dir_fd, name)
        try:
            reader.read()
        finally:
            reader.close()
        spec = reader.spec
        if spec is None:
            raise jobfile.JobFileError(f"job file {name} has no spec")
        writer = jobfile.JobWriter(dir_fd, name)
    except jobfile.JobFileError as exc:
        print(f"microvm-tui job-exec: {exc}", file=sys.stderr)
        return 2
    token = CancelToken()
    # SIGTERM from `systemctl stop`: cancel (the handler runs on this, the main thread).
    signal.signal(signal.SIGTERM, lambda _sig, _frame: token.cancel())
    signal.signal(signal.SIGINT, lambda _sig, _frame: token.cancel())
    recorder = _Recorder(writer)
    recorder.write({"kind": "state", "state": "running", "at": time.time(), "pid": os.getpid()})
    ended: dict[str, Any] = {}

    def work() -> None:
        try:
            ended.update(_run_action(spec, recorder, token))
        except jobfile.JobFileError as exc:
            ended.update({"kind": "end", "state": "failed", "result": str(exc)})

    worker = threading.Thread(target=work, name="job", daemon=True)
    worker.start()
    while worker.is_alive():  # the main thread stays free for the signal handler
        worker.join(0.2)
    recorder.flush()
    recorder.write({**ended, "at": time.time()})
    writer.close()
    os.close(dir_fd)
    return 0
