"""Opening a console endpoint's byte source, going on where the last one of the same place
stopped: a log file from its remembered inode and offset, the journal after its last cursor
(or since a takeover began), a takeover's transcript replayed once before its live socket.
No Textual here."""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable

from tui.host import tools
from tui.host.console.endpoints import ConsoleEndpoint, EndpointKind
from tui.host.console.marker import read_marker
from tui.host.console.sources import (
    HISTORY_BYTES,
    FileSource,
    JournalSource,
    PtySource,
    SocketSource,
    Source,
    tail_start,
)
from tui.host.console.status import note
from tui.host.console.trust import UntrustedEndpoint, socket_address
from tui.host.model import VM
from tui.host.settings import HostSettings
from tui.host.unixsock import SocketError, connect_unix


class SourceOpener:
    """Opens and closes one VM's console sources, remembering where each place was left.

    ``deliver`` takes the history it replays (a takeover's transcript) into the stream.
    """

    def __init__(self, settings: HostSettings, deliver: Callable[[bytes], None]) -> None:
        self.settings = settings
        self._deliver = deliver
        self._replayed: set[str] = set()
        self._file_positions: dict[str, tuple[int, int]] = {}  # path -> (inode, offset)
        self._journal_cursor: str | None = None
        self._journal_since: float | None = None

    def replayed(self, transcript: str) -> None:
        """This transcript's history is in the stream already (the takeover wrote it)."""
        self._replayed.add(transcript)

    def open(self, vm: VM, target: ConsoleEndpoint) -> tuple[Source | None, str]:
        """The source of ``target``, or None and why not (one line)."""
        try:
            match target.kind:
                case EndpointKind.UNIX:
                    assert target.path
                    if target.transcript and target.transcript not in self._replayed:
                        self._replayed.add(target.transcript)
                        self._replay(target.transcript)
                    # Inside the VM's state dir or the runner's socket (QMP named it).
                    with socket_address(vm, target.path) as address:
                        sock = connect_unix(address, time.monotonic() + 2.0)
                    if target.source == "takeover":
                        self._resume_from_takeover(vm)
                    return SocketSource(sock, tools.find("cat")), ""
                case EndpointKind.PTY:
                    assert target.path
                    return PtySource(target.path, target.main_pid), ""
                case EndpointKind.LOGFILE:
                    assert target.path
                    return FileSource(target.path, resume=self._file_positions.get(target.path)), ""
                case EndpointKind.JOURNAL:
                    argv = list(target.argv)
                    if self._journal_cursor:
                        # Reopened: go on after what we showed instead of repeating history.
                        argv = [a for a in argv if not a.startswith("--lines")]
                        argv.append(f"--after-cursor={self._journal_cursor}")
                    elif self._journal_since is not None:
                        # Back from a takeover: what the journal got since then (the new boot).
                        argv = [a for a in argv if not a.startswith("--lines")]
                        argv.append(f"--since=@{int(self._journal_since)}")
                    return JournalSource(argv, self.settings.command_env()), ""
        except (SocketError, UntrustedEndpoint) as exc:
            return None, str(exc)
        except TimeoutError:
            return None, "timed out"
        except FileNotFoundError as exc:
            return None, f"{exc.filename or exc} not found"
        except OSError as exc:
            return None, exc.strerror or str(exc)
        return None, f"cannot open a {target.kind} endpoint"

    def _resume_from_takeover(self, vm: VM) -> None:
        """On a takeover socket: the history to go back to after a restart starts where the
        takeover began (the marker says where)."""
        marker = read_marker(vm)
        if marker is None:
            return
        if marker.history_path and marker.history_inode is not None:
            offset = marker.history_offset or 0
            self._file_positions.setdefault(marker.history_path, (marker.history_inode, offset))
        if marker.taken_at and self._journal_cursor is None:
            self._journal_since = marker.taken_at

    def close(self, source: Source) -> None:
        """Close, remembering where a file or the journal was, so reopening goes on from there
        instead of repeating history."""
        if isinstance(source, FileSource) and source.ino is not None:
            self._file_positions[source.path] = (source.ino, source.pos)
        if isinstance(source, JournalSource) and source.decoder.last_cursor:
            self._journal_cursor = source.decoder.last_cursor
        source.close()

    def _replay(self, path: str) -> None:
        """The transcript's tail, as history, before the live socket."""
        try:
            # The path comes from the marker in the state dir: never a link, FIFO or device.
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOFOLLOW)
        except OSError:
            return
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                return
            size = st.st_size
            os.lseek(fd, tail_start(fd, size, HISTORY_BYTES), os.SEEK_SET)
            data = os.read(fd, HISTORY_BYTES + 1)
        except OSError:
            data = b""
        finally:
            os.close(fd)
        if data:
            self._deliver(note(f"transcript {path}"))
            self._deliver(data)
            self._deliver(note("live"))
