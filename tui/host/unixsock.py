"""AF_UNIX helpers: connect with a deadline (any path length; blocking or on an asyncio loop)
and list bound socket paths."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import socket
import time

# sun_path is 108 bytes including the terminating NUL.
_SUN_PATH_MAX = 107


class SocketError(Exception):
    """Connecting failed; the message is the reason to show."""


def remaining(deadline: float) -> float:
    return max(0.0, deadline - time.monotonic())


def _target(path: str) -> tuple[str, int | None]:
    """The name to connect to for PATH, and the directory handle it needs (close it after).

    Paths longer than sun_path are reached through /proc/self/fd/N/NAME of an O_PATH handle on
    the directory, so a deep state dir never makes a VM unreachable."""
    if not path:
        raise SocketError("no control socket configured")
    if len(os.fsencode(path)) <= _SUN_PATH_MAX:
        return path, None
    try:
        dir_fd = os.open(os.path.dirname(path) or ".", os.O_PATH | os.O_CLOEXEC)
    except FileNotFoundError as exc:
        raise SocketError("socket missing") from exc
    return f"/proc/self/fd/{dir_fd}/{os.path.basename(path)}", dir_fd


def _connect_error(exc: OSError, path: str) -> SocketError:
    """The reason to show for a failed connect(2)."""
    if isinstance(exc, FileNotFoundError):
        return SocketError("socket missing")
    if isinstance(exc, ConnectionRefusedError):
        return SocketError("connection refused (no process listens on the socket)")
    if isinstance(exc, PermissionError):
        return SocketError(f"permission denied on {path}")
    if exc.errno == errno.ENOTSOCK:
        return SocketError(f"{path} is not a socket")
    return SocketError(f"cannot connect to {path}: {exc.strerror or exc}")


def connect_unix(path: str, deadline: float) -> socket.socket:
    """A connected stream socket to PATH, or SocketError with a short reason (TimeoutError
    past DEADLINE, a time.monotonic() value). Any path length (see ``_target``)."""
    target, dir_fd = _target(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        left = remaining(deadline)
        if left <= 0:
            raise TimeoutError
        sock.settimeout(left)
        sock.connect(target)
    except TimeoutError:
        sock.close()
        raise
    except OSError as exc:
        sock.close()
        raise _connect_error(exc, path) from exc
    finally:
        if dir_fd is not None:
            os.close(dir_fd)
    return sock


async def connect_unix_async(path: str, timeout: float) -> socket.socket:
    """``connect_unix`` for an asyncio loop: a connected non-blocking stream socket to PATH
    within TIMEOUT seconds (else TimeoutError), or SocketError with a short reason."""
    target, dir_fd = _target(path)
    sock = socket.socket(
        socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK
    )
    try:
        if timeout <= 0:
            raise TimeoutError
        # A timer, not wait_for's task: a unix connect(2) is usually done at once (only a full
        # backlog makes it wait), and a task would cost a turn of the loop each time.
        async with asyncio.timeout(timeout):
            await asyncio.get_running_loop().sock_connect(sock, target)
    except BaseException as exc:
        sock.close()
        if isinstance(exc, OSError) and not isinstance(exc, TimeoutError):
            raise _connect_error(exc, path) from exc
        raise
    finally:
        if dir_fd is not None:
            os.close(dir_fd)
    return sock


def close_quietly(sock: socket.socket | None) -> None:
    if sock is None:
        return
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()


def bound_unix_paths(proc_net_unix: str = "/proc/net/unix") -> set[str]:
    """Paths of the unix sockets listed in PROC_NET_UNIX (one network namespace).

    A listening socket and every socket it accepted show the path it was bound to, so a path
    in this set means some process still listens on it or holds a connection made through it.
    Raises OSError when the file cannot be read.
    """
    paths: set[str] = set()
    with open(proc_net_unix, encoding="utf-8", errors="surrogateescape") as fh:
        next(fh, None)  # header
        for line in fh:
            parts = line.split(None, 7)
            if len(parts) == 8:
                path = parts[7].rstrip("\n")
                if path and not path.startswith("@"):  # "@..." are abstract sockets
                    paths.add(path)
    return paths
