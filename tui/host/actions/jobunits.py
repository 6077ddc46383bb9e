"""Jobs as transient systemd units: they outlive the app and the SSH connection it came over.

``JobUnits.start(spec)`` writes the job file (``jobfile``) and runs
``systemd-run --unit=microvm-tui-job-NAME --collect ... PYTHON -m tui job-exec ...`` on the
manager the actions use (``systemctl --user`` and ``[host.systemd_env]`` in the lab); the unit
appends its records to the file; ``stop`` is `systemctl stop --no-block` (SIGTERM to the
job-exec only, ``KillMode=mixed``: it cancels its own command politely); ``active`` asks
systemd whether the unit still runs (a unit that ended without an end record was killed).

``job_units(settings)`` is None, with the reason, when no systemd manager is reachable (a
container without systemd): the runner then runs jobs in threads, as before.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import tui
from tui.host import tools
from tui.host.actions import jobfile
from tui.host.actions.commands import CommandLog, run
from tui.host.actions.errors import CommandFailed
from tui.host.settings import HostSettings

STOP_TIMEOUT_S = 60  # TimeoutStopSec: a cancelled build's cleanup


def new_name() -> str:
    """A job name no other app instance picks: the time, then random."""
    return f"{int(time.time()):010d}-{secrets.token_hex(4)}"


def _manager_reachable(settings: HostSettings) -> str | None:
    """Why no systemd manager can run units for us (None: one can)."""
    if tools.find("systemd-run") is None:
        return "systemd-run is not installed"
    if settings.systemd_scope == "user":
        runtime = settings.systemd_env.get("XDG_RUNTIME_DIR") or os.environ.get("XDG_RUNTIME_DIR")
        if not runtime:
            return "no XDG_RUNTIME_DIR for the user manager"
        try:
            mode = os.stat(Path(runtime) / "systemd" / "private").st_mode
        except OSError:
            return f"no systemd user manager at {runtime}"
        return None if stat.S_ISSOCK(mode) else f"no systemd user manager at {runtime}"
    if not os.path.isdir("/run/systemd/system"):
        return "systemd is not running here (/run/systemd/system is missing)"
    return None


class JobUnits:
    def __init__(self, settings: HostSettings) -> None:
        self.settings = settings
        self.jobs_dir = settings.jobs_dir

    def open_dir(self) -> int:
        return jobfile.open_job_dir(self.jobs_dir)

    def _systemctl(self, *args: str, timeout: float | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            self.settings.systemctl_argv(*args),
            env=self.settings.command_env(),
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout or max(self.settings.timeout, 10.0),
            check=False,
            stdin=subprocess.DEVNULL,
        )

    def argv(self, name: str) -> list[str]:
        """The systemd-run command line of job NAME (no shell: a list)."""
        argv = [tools.path("systemd-run")]
        if self.settings.systemd_scope == "user":
            argv.append("--user")
        env = self.settings.command_env()
        # Where this copy of the app lives, so the unit runs the same code.
        env["PYTHONPATH"] = str(Path(tui.__file__).resolve().parent.parent)
        argv += [
            f"--unit={jobfile.unit_of(name)}",
            "--collect",
            "--quiet",
            "--service-type=exec",
            "--property=KillMode=mixed",
            f"--property=TimeoutStopSec={STOP_TIMEOUT_S}",
            f"--description=microvm-tui job {name}",
        ]
        argv += [f"--setenv={k}={v}" for k, v in sorted(env.items())]
        argv += [
            "--",
            os.path.abspath(sys.executable),
            "-m",
            "tui",
            "job-exec",
            f"--jobs-dir={self.jobs_dir}",
            f"--job={name}",
        ]
        return argv

    def start(self, spec: dict[str, Any], log: CommandLog | None = None) -> str:
        """Write a job file with SPEC and start its unit (the command recorded in LOG); its
        name. Raises JobFileError with one line when either fails (the file is then removed)."""
        name = new_name()
        dir_fd = self.open_dir()
        try:
            jobfile.create(dir_fd, name, {**spec, "unit": jobfile.unit_of(name)})
            try:
                done = run(
                    self.argv(name),
                    env=self.settings.command_env(),
                    log=log,
                    timeout=max(self.settings.timeout, 10.0),
                )
            except CommandFailed as exc:
                jobfile.remove(dir_fd, name)
                raise jobfile.JobFileError(f"systemd-run failed: {exc}") from None
            if done.returncode != 0:
                jobfile.remove(dir_fd, name)
                raise jobfile.JobFileError(f"systemd-run failed: {done.error_text(1)[:300]}")
        finally:
            os.close(dir_fd)
        return name

    def stop(self, name: str, log: CommandLog | None = None) -> None:
        """Ask the unit to stop (SIGTERM to job-exec: it cancels and writes its end)."""
        with contextlib.suppress(CommandFailed):
            run(
                self.settings.systemctl_argv("stop", "--no-block", jobfile.unit_of(name)),
                env=self.settings.command_env(),
                log=log,
                timeout=max(self.settings.timeout, 10.0),
            )

    def active(self, name: str) -> bool | None:
        """Whether job NAME's unit still runs (None: systemd did not answer)."""
        try:
            done = self._systemctl("is-active", jobfile.unit_of(name))
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() in ("active", "activating", "deactivating", "reloading")


def job_units(settings: HostSettings) -> tuple[JobUnits | None, str | None]:
    """Jobs as units on this host's manager, or None and why they run in threads instead."""
    reason = _manager_reachable(settings)
    if reason is not None:
        return None, f"jobs run inside the app (they end when it quits): {reason}"
    return JobUnits(settings), None
