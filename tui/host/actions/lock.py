"""One job per VM at a time, across threads and across TUI instances.

The lock is an ``flock`` on ``STATE/.NAME.lock`` (a dot name: state dir listings skip it),
held for the whole job, opened at the state dir's fd, never through a symlink and never as a
FIFO or device (``safefs.open_lock_file``). The holder writes its pid into the file so a
refused job can say who holds it. The file is removed on release; since another process may
have opened the old file just before, a taker checks after locking that the path still names
the file it locked and starts over if not.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from tui.host.actions.errors import ActionError, Busy
from tui.host.safefs import describe, open_dir, open_lock_file


def lock_path(state_dir: Path, name: str) -> Path:
    return state_dir / f".{name}.lock"


def _holder(fd: int) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        data = os.pread(fd, 32, 0)
        return int(data.decode("ascii").strip()) if data.strip() else None
    return None


@contextlib.contextmanager
def vm_lock(state_dir: Path, name: str) -> Iterator[Path]:
    """Hold the lock of VM NAME; raise Busy at once when another job holds it."""
    path = lock_path(state_dir, name)
    try:
        dir_fd = open_dir(state_dir)
    except OSError as exc:
        raise ActionError(f"cannot open the state directory {state_dir}: {describe(exc)}") from exc
    try:
        with _locked(dir_fd, path, name) as fd:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
            try:
                yield path
            finally:
                # Remove while still holding the lock, then release: see the module docstring.
                with contextlib.suppress(OSError):
                    os.unlink(path.name, dir_fd=dir_fd)
    finally:
        os.close(dir_fd)


@contextlib.contextmanager
def _locked(dir_fd: int, path: Path, name: str) -> Iterator[int]:
    """The fd of the lock file at DIR_FD, flock'ed, still named by PATH when we hold it."""
    for _ in range(10):
        try:
            fd = open_lock_file(dir_fd, path.name)
        except OSError as exc:
            raise ActionError(f"cannot create the lock file {path}: {describe(exc)}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = _holder(fd)
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise Busy(name, holder) from None
            raise ActionError(f"cannot lock {path}: {exc.strerror or exc}") from exc
        try:
            st = os.stat(path.name, dir_fd=dir_fd, follow_symlinks=False)
            same = (st.st_dev, st.st_ino) == (os.fstat(fd).st_dev, os.fstat(fd).st_ino)
        except FileNotFoundError:
            same = False
        if not same:  # the previous holder removed it after we opened it: take the new one
            os.close(fd)
            continue
        try:
            yield fd
        finally:
            os.close(fd)
        return
    raise ActionError(f"cannot lock {path}: it keeps being replaced")
