"""The console takeover, once the admin said yes: QMP ``chardev-change`` of the VM's ``stdio``
chardev to a unix socket server in its state dir with a logfile transcript, then the marker
(``tui.host.console.marker``). One-way until the VM restarts."""

from __future__ import annotations

import contextlib
import os
import socket
import stat
import time
from dataclasses import replace
from pathlib import Path

from tui.host.console.discovery import fresh_unit
from tui.host.console.endpoints import ConsoleEndpoint, EndpointKind
from tui.host.console.marker import (
    STDIO_CHARDEV,
    TAKEOVER_LOG,
    TakeoverMarker,
    marker_path,
    write_marker,
)
from tui.host.model import VM
from tui.host.qmp import QMPCommandError, QMPError, qmp_execute
from tui.host.settings import HostSettings

_SUN_PATH_MAX = 107


class TakeoverError(Exception):
    """The takeover did not happen; ``str(exc)`` says why. Nothing was changed unless said."""


def _clear_stale_socket(path: str) -> None:
    """A socket file left by an earlier takeover (qemu was killed): remove it if no one
    listens, so qemu can bind it. Anything else at that path is an error."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise TakeoverError(f"{path} exists and is not a socket; not touching it")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.settimeout(0.5)
        probe.connect(path)
    except (ConnectionRefusedError, FileNotFoundError):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        return
    except OSError as exc:
        raise TakeoverError(f"cannot check the old socket {path}: {exc}") from exc
    finally:
        probe.close()
    raise TakeoverError(f"something already listens on {path}")


def take_over(
    vm: VM, settings: HostSettings, endpoint: ConsoleEndpoint, *, timeout: float | None = None
) -> ConsoleEndpoint:
    """Do the takeover ENDPOINT proposes (after the admin confirmed it). Returns the socket
    endpoint; raises TakeoverError with the reason otherwise."""
    if endpoint.kind is not EndpointKind.TAKEOVER or not endpoint.path:
        raise TakeoverError("nothing to take over")
    if not vm.socket:
        raise TakeoverError(f"{vm.name} has no QMP socket")
    qmp_timeout = timeout if timeout is not None else min(3.0, settings.timeout)
    unit = fresh_unit(vm, settings)
    pid = unit.main_pid if unit is not None else None
    if endpoint.main_pid is not None and pid != endpoint.main_pid:
        raise TakeoverError(f"{vm.name} restarted in the meantime; look again")
    sock = endpoint.path
    log = endpoint.transcript or str(vm.path / TAKEOVER_LOG)
    # qemu binds the socket with its own working directory, the state dir: a relative path is
    # fine when the absolute one is longer than sun_path allows.
    bind = sock
    if len(os.fsencode(sock)) > _SUN_PATH_MAX and Path(sock).parent == vm.path:
        bind = Path(sock).name
    _clear_stale_socket(sock)
    history_path = history_inode = history_offset = None
    if settings.console_log_dir is not None:
        history = Path(settings.console_log_dir) / f"{vm.name}.log"
        with contextlib.suppress(OSError):
            st = history.stat()
            history_path, history_inode, history_offset = str(history), st.st_ino, st.st_size
    taken_at = time.time()
    backend = {
        "type": "socket",
        "data": {
            "addr": {"type": "unix", "data": {"path": bind}},
            "server": True,
            "wait": False,
            "logfile": log,
            "logappend": True,
        },
    }
    chardev = endpoint.chardev or STDIO_CHARDEV
    try:
        qmp_execute(
            vm.socket, "chardev-change", {"id": chardev, "backend": backend}, timeout=qmp_timeout
        )
    except QMPCommandError as exc:
        raise TakeoverError(f"QMP chardev-change refused: {exc.desc or exc.error_class}") from exc
    except QMPError as exc:
        raise TakeoverError(f"QMP chardev-change failed: {exc}") from exc
    marker = TakeoverMarker(
        sock, log, pid, chardev, taken_at, history_path, history_inode, history_offset
    )
    try:
        write_marker(vm, marker)
    except OSError as exc:
        # The takeover happened; only the memory of it failed. Say so, keep going.
        note = f" (could not write {marker_path(vm)}: {exc.strerror or exc})"
    else:
        note = ""
    return replace(
        endpoint,
        kind=EndpointKind.UNIX,
        interactive=True,
        needs_confirmation=False,
        source="takeover",
        main_pid=pid,
        fallback=None,
        explanation=(
            f"Taken over (QMP chardev-change of '{chardev}'): the serial console stays on this "
            f"socket until {vm.name} restarts; its transcript is {log}.{note}"
        ),
    )
