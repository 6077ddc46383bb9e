"""A job as the runner, the UI and the agent see it: its state and what it did so far."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from tui.host.actions.commands import CommandRecord
from tui.host.actions.nixlog import Progress
from tui.host.actions.operations import Outcome


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)


@dataclass
class Job:
    id: int
    action: str
    vm: str
    options: dict[str, Any] = field(default_factory=dict)
    state: JobState = JobState.QUEUED
    created: float = 0.0  # time.time()
    started: float | None = None
    ended: float | None = None
    log: list[str] = field(default_factory=list)
    log_dropped: int = 0  # oldest lines dropped to keep ``log`` at MAX_LOG_LINES
    progress: Progress | None = None  # of the nix build, if the action builds
    commands: list[CommandRecord] = field(default_factory=list)
    result: str | None = None  # the closing message: what was done, or why not
    outcome: Outcome | None = None  # set when the job succeeded
    cancel_requested: bool = False
    parent: int | None = None  # the bulk job this one is a child of
    unit: str | None = None  # its systemd unit (a job run as a unit), e.g. microvm-tui-job-...
    host: str | None = None  # the remote host it runs on (None: this one)
    adopted: bool = False  # started before this app (or agent session): shown, not announced
    version: int = 0  # counts changes; a later snapshot of a job has a higher version

    @property
    def duration(self) -> float | None:
        if self.started is None:
            return None
        return (self.ended if self.ended is not None else time.time()) - self.started

    @property
    def title(self) -> str:
        where = f" on {self.host}" if self.host else ""
        return f"{self.action} {self.vm}{where}"

    def snapshot(self) -> Job:
        return replace(
            self, options=dict(self.options), log=list(self.log), commands=list(self.commands)
        )


Listener = Callable[[Job], None]


def started_now(job: Job) -> None:
    job.state = JobState.RUNNING
    job.started = time.time()
