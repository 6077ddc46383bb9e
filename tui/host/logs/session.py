"""One opening of a VM's logs for the Logs view: the last lines of a query, and a follower that
goes on after them. The view runs it here (the local host) or the agent runs it on a remote
host (``microvm-tui agent logs VM``, tui/agent/logs_server.py): the journal work is the same.

``open_vm_logs`` blocks (journalctl runs); it returns the lines, one status line (a note, or
why nothing shows) and a :class:`Following` to start once the lines are on screen and to
close when the view changes filters or goes. No Textual here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from tui.host.logs.boot import with_boot_start
from tui.host.logs.entry import LogLine
from tui.host.logs.guest import find_guest_journal, opened_journal_files
from tui.host.logs.query import LogQuery
from tui.host.logs.reader import LogFollower, read_journal
from tui.host.model import VM
from tui.host.settings import HostSettings

LinesCallback = Callable[[list[LogLine]], None]
EndCallback = Callable[[str | None], None]


class Following(Protocol):
    """New lines after the first ones: ``start`` when they are shown, ``close`` when done."""

    def start(self) -> None: ...

    def close(self) -> None: ...


@dataclass
class OpenedLogs:
    lines: list[LogLine] = field(default_factory=list)
    status: str = ""  # a note (journalctl's, a permission hint) or why nothing shows
    since_usec: int | None = None  # "this boot" resolved to this time
    following: Following | None = None  # None: nothing is followed (an error)


class _LocalFollowing:
    """A journalctl follower and the guest journal's files it reads (closed with it)."""

    def __init__(self, follower: LogFollower, files: contextlib.ExitStack) -> None:
        self.follower = follower
        self.files = files

    def start(self) -> None:
        self.follower.start()

    def close(self) -> None:
        self.follower.close()
        self.files.close()


def open_vm_logs(
    settings: HostSettings,
    vm: VM,
    query: LogQuery,
    guest: bool,
    on_lines: LinesCallback,
    on_end: EndCallback,
) -> OpenedLogs:
    """QUERY (checked by the caller) on VM's host journal, or on its own journal (GUEST)."""
    resolved, why = with_boot_start(settings, vm.name, query)
    if resolved is None:
        return OpenedLogs(status=f"this boot: {why}")
    query = resolved
    files: tuple[str, ...] = ()
    fds: tuple[int, ...] = ()
    stack = contextlib.ExitStack()
    if guest:
        journal, why = find_guest_journal(vm)
        if journal is None:
            return OpenedLogs(status=why, since_usec=query.since_usec)
        files, fds = stack.enter_context(opened_journal_files(journal))
        if not files:
            stack.close()
            message = f"no journal files in {journal.source}/{journal.machine_id}"
            return OpenedLogs(status=message, since_usec=query.since_usec)
    result = read_journal(settings, query, files=files, pass_fds=fds)
    if result.error:
        stack.close()
        return OpenedLogs(status=result.error, since_usec=query.since_usec)
    cursor = result.lines[-1].cursor if result.lines else ""
    follower = LogFollower(
        settings, query, on_lines, on_end, after_cursor=cursor, files=files, pass_fds=fds
    )
    return OpenedLogs(
        lines=result.lines,
        status=result.note or "",
        since_usec=query.since_usec,
        following=_LocalFollowing(follower, stack),
    )


class LocalLogs:
    """The Logs view's source for this host's VMs."""

    def __init__(self, settings: HostSettings) -> None:
        self.settings = settings

    def open(
        self, vm: VM, query: LogQuery, guest: bool, on_lines: LinesCallback, on_end: EndCallback
    ) -> OpenedLogs:
        return open_vm_logs(self.settings, vm, query, guest, on_lines, on_end)
