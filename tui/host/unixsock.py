"""AF_UNIX helpers: connect with a deadline (any path length) and list bound socket paths."""

from __future__ import annotations

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


def connect_unix(path: str, deadline: float) -> socket.socket:
    """A connected stream socket to PATH, or SocketError with a short reason.

    Paths longer than sun_path are reached through /proc/self/fd/N/NAME of an O_PATH handle on
    the directory, so a deep state dir never makes a VM unreachable.
    """
    if not path:
        raise SocketError("no control socket configured")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    dir_fd: int | None = None
    try:
        target = path
        if len(os.fsencode(path)) > _SUN_PATH_MAX:
            try:
                dir_fd = os.open(os.path.dirname(path) or ".", os.O_PATH | os.O_CLOEXEC)
            except FileNotFoundError as exc:
                raise SocketError("socket missing") from exc
            target = f"/proc/self/fd/{dir_fd}/{os.path.basename(path)}"
        left = remaining(deadline)
        if left <= 0:
            raise TimeoutError
        sock.settimeout(left)
        sock.connect(target)
    except FileNotFoundError as exc:
        sock.close()
        raise SocketError("socket missing") from exc
    except ConnectionRefusedError as exc:
        sock.close()
        raise SocketError("connection refused (no process listens on the socket)") from exc
    except PermissionError as exc:
        sock.close()
        raise SocketError(f"permission denied on {path}") from exc
    except TimeoutError:
        sock.close()
        raise
    except OSError as exc:
        sock.close()
        if exc.errno == errno.ENOTSOCK:
            raise SocketError(f"{path} is not a socket") from exc
        raise SocketError(f"cannot connect to {path}: {exc.strerror or exc}") from exc
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
