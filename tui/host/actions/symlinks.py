"""Atomic symlink swaps and no-replace directory moves, as the state dir needs them."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import os
import secrets
from collections.abc import Callable
from pathlib import Path

_RENAME_NOREPLACE = 1
_AT_FDCWD = -100


def temp_name(directory: Path, stem: str) -> Path:
    """A hidden, unused name in DIRECTORY: ``.STEM-XXXXXXXX``."""
    while True:
        path = directory / f".{stem}-{secrets.token_hex(4)}"
        if not os.path.lexists(path):
            return path


def read_link(path: Path) -> str | None:
    """The target of symlink PATH as written, None when there is no symlink there."""
    try:
        return os.readlink(path)
    except (FileNotFoundError, OSError):
        return None


def resolved(link: Path) -> str | None:
    """Where symlink LINK finally leads (relative targets are relative to its folder)."""
    target = read_link(link)
    if target is None:
        return None
    return os.path.realpath(os.path.join(link.parent, target))


def replace_symlink(link: Path, target: str) -> None:
    """Point LINK at TARGET in one step: a new symlink under a temporary name, then
    ``os.replace`` over LINK. Readers see the old target or the new one, never none."""
    tmp = temp_name(link.parent, f"{link.name}.new")
    os.symlink(target, tmp)
    try:
        os.replace(tmp, link)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@functools.cache
def _renameat2() -> Callable[..., int] | None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        func = libc.renameat2
    except (OSError, AttributeError):
        return None
    func.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    func.restype = ctypes.c_int
    return func


def rename_noreplace(src: Path, dst: Path) -> None:
    """Move SRC to DST; raise FileExistsError if DST exists, whatever it is.

    Uses renameat2(RENAME_NOREPLACE) where the kernel and file system have it. Otherwise
    plain rename, which fails for an existing file, symlink or non-empty directory but
    silently replaces an empty directory: callers check for DST beforehand too.
    """
    func = _renameat2()
    if func is not None:
        rc = func(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), _RENAME_NOREPLACE)
        if rc == 0:
            return
        err = ctypes.get_errno()
        if err == errno.EEXIST:
            raise FileExistsError(err, os.strerror(err), str(dst))
        if err not in (errno.ENOSYS, errno.EINVAL):
            raise OSError(err, os.strerror(err), str(src))
    if os.path.lexists(dst):
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(dst))
    try:
        os.rename(src, dst)
    except OSError as exc:
        if exc.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(dst)) from exc
        raise
