"""Which console paths the app may open: a QMP answer must not steer a file open.

``query-chardev`` names the serial console's pty or socket, and it is an untrusted answer (the
QMP socket lives in a state dir the ``kvm`` group can write; the hypervisor runs a guest). The
app runs as root: opening a named path read-write and ``setraw``-ing it would reach another
user's tty, a root-only file, or ``/dev/watchdog`` (opening it arms a reboot). So:

* a **pty** is accepted only when it is ``/dev/pts/N``, a character device with a Unix98 pty
  slave major (136-143), that the VM's own hypervisor process (the unit's MainPID) holds open:
  one of ``/proc/PID/fd/*`` is that inode, or is the pty's master (``/dev/ptmx`` whose
  ``/proc/PID/fdinfo`` says ``tty-index: N``, with ``/proc/PID/root/dev/pts/N`` the same inode
  as ours: QEMU keeps only the master open). Checked before the open (the open itself may
  have effects), opened with ``O_NOFOLLOW|O_NOCTTY``, and the open descriptor checked again;
* a **unix socket** is accepted inside the VM's state dir, every directory walked from the
  state dir's fd with ``O_NOFOLLOW`` and the socket taken with ``O_PATH|O_NOFOLLOW`` (no
  symlink leads out), or at exactly the path the runner declares for its serial console. The
  connect goes to ``/proc/self/fd/N`` of that ``O_PATH`` handle, so what was checked is what
  is connected to.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
from collections.abc import Iterator
from pathlib import PurePosixPath

from tui.host.model import VM

PTS_MAJORS = range(136, 144)  # Linux: UNIX98_PTY_SLAVE_MAJOR .. + UNIX98_PTY_MAJOR_COUNT - 1
_PTS_PATH = re.compile(r"/dev/pts/(?:0|[1-9][0-9]{0,6})")
PTMX = os.makedev(5, 2)  # /dev/ptmx and /dev/pts/ptmx: a pty master
MAX_FDS_SCANNED = 1 << 16  # a hypervisor with more descriptors than this is not believed


class UntrustedEndpoint(Exception):
    """The path is not one the app may open for this VM; ``str(exc)`` says why (one line)."""


# --- ptys -----------------------------------------------------------------------------------


def _pty_identity(path: str) -> tuple[int, int]:
    if not _PTS_PATH.fullmatch(path):
        raise UntrustedEndpoint(f"{path!r} is not a /dev/pts/N pty")
    try:
        st = os.lstat(path)
    except OSError as exc:
        raise UntrustedEndpoint(f"{path} cannot be looked at ({exc.strerror})") from exc
    if not stat.S_ISCHR(st.st_mode) or os.major(st.st_rdev) not in PTS_MAJORS:
        raise UntrustedEndpoint(f"{path} is not a pty device")
    return st.st_dev, st.st_ino


def _tty_index(pid: int, fd: str) -> int | None:
    """The pty number of PID's ptmx descriptor FD (``tty-index`` in its fdinfo), or None."""
    try:
        with open(f"/proc/{pid}/fdinfo/{fd}", "rb") as f:
            info = f.read(4096)
    except OSError:
        return None
    match = re.search(rb"^tty-index:\s*([0-9]{1,9})$", info, re.MULTILINE)
    return int(match.group(1)) if match else None


def _held_by(pid: int, number: int, identity: tuple[int, int]) -> bool:
    """True when process PID has the pty /dev/pts/NUMBER (inode IDENTITY) open, its slave or
    its master."""
    fd_dir = f"/proc/{pid}/fd"
    try:
        with os.scandir(fd_dir) as entries:
            for n, entry in enumerate(entries):
                if n >= MAX_FDS_SCANNED:
                    return False
                try:
                    st = os.stat(entry.path)  # follows the magic link to the open file
                except OSError:
                    continue
                if (st.st_dev, st.st_ino) == identity:
                    return True
                if st.st_rdev == PTMX and _tty_index(pid, entry.name) == number:
                    # The same number in the same devpts instance as the one we would open.
                    try:
                        theirs = os.stat(f"/proc/{pid}/root/dev/pts/{number}")
                    except OSError:
                        continue
                    if (theirs.st_dev, theirs.st_ino) == identity:
                        return True
    except OSError:
        return False
    return False


def check_pty(path: str, pid: int | None) -> tuple[int, int]:
    """The (st_dev, st_ino) of PATH when it may be opened as PID's serial pty, else raises."""
    identity = _pty_identity(path)
    if pid is None or pid <= 0:
        raise UntrustedEndpoint(f"{path}: the hypervisor's process is not known")
    if not _held_by(pid, int(path.rsplit("/", 1)[1]), identity):
        raise UntrustedEndpoint(f"{path} is not held open by the hypervisor (pid {pid})")
    return identity


def pty_problem(path: str, pid: int | None) -> str | None:
    """Why PATH may not be opened as PID's serial pty, or None."""
    try:
        check_pty(path, pid)
    except UntrustedEndpoint as exc:
        return str(exc)
    return None


def open_pty(path: str, pid: int | None) -> int:
    """A non-blocking read-write descriptor on PATH, checked before and after the open."""
    identity = check_pty(path, pid)
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOFOLLOW)
    try:
        st = os.fstat(fd)
        if (
            not stat.S_ISCHR(st.st_mode)
            or os.major(st.st_rdev) not in PTS_MAJORS
            or (st.st_dev, st.st_ino) != identity
        ):
            raise UntrustedEndpoint(f"{path} changed while it was opened")
    except BaseException:
        os.close(fd)
        raise
    return fd


# --- unix sockets ---------------------------------------------------------------------------


def _declared_socket(vm: VM) -> str | None:
    spec = vm.serial
    if spec is not None and spec.kind == "unix" and spec.path:
        return os.path.normpath(spec.path)
    return None


def _inside(vm: VM, path: str) -> list[str] | None:
    """PATH's components below the VM's state dir, or None when it is not below it."""
    base = PurePosixPath(os.path.normpath(vm.path))
    target = PurePosixPath(os.path.normpath(path))
    try:
        rel = target.relative_to(base)
    except ValueError:
        return None
    parts = list(rel.parts)
    return parts if parts and ".." not in parts else None


@contextlib.contextmanager
def socket_address(vm: VM, path: str) -> Iterator[str]:
    """An address to connect to for PATH (``/proc/self/fd/N`` of an ``O_PATH`` handle on the
    checked socket), valid inside the ``with``; raises UntrustedEndpoint when PATH is neither
    inside VM's state dir (without a symlink on the way) nor the runner's declared socket,
    FileNotFoundError when it is not there."""
    fds: list[int] = []
    flags = os.O_PATH | os.O_CLOEXEC | os.O_NOFOLLOW
    try:
        parts = _inside(vm, path)
        if parts is not None:
            fds.append(os.open(vm.path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC))
            for part in parts[:-1]:
                try:
                    fds.append(os.open(part, flags | os.O_DIRECTORY, dir_fd=fds[-1]))
                except NotADirectoryError as exc:  # O_NOFOLLOW on a symlink to a directory
                    raise UntrustedEndpoint(
                        f"{path} leads through a symlink out of {vm.path}"
                    ) from exc
            fds.append(os.open(parts[-1], flags, dir_fd=fds[-1]))
        elif os.path.normpath(path) == _declared_socket(vm):
            fds.append(os.open(path, flags))
        else:
            raise UntrustedEndpoint(
                f"{path} is outside {vm.name}'s state dir and not the socket its runner declares"
            )
        mode = os.fstat(fds[-1]).st_mode
        if stat.S_ISLNK(mode):
            raise UntrustedEndpoint(f"{path} is a symlink")
        if not stat.S_ISSOCK(mode):
            raise UntrustedEndpoint(f"{path} is not a unix socket")
        yield f"/proc/self/fd/{fds[-1]}"
    finally:
        for fd in reversed(fds):
            os.close(fd)


def socket_problem(vm: VM, path: str) -> str | None:
    """Why PATH may not be connected to as VM's console socket, or None (a missing socket is
    not a problem here: it may appear)."""
    try:
        with socket_address(vm, path):
            return None
    except UntrustedEndpoint as exc:
        return str(exc)
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"{path} cannot be looked at ({exc.strerror})"
