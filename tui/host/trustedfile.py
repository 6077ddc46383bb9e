"""Read a file that decides what root does (a config file) only if nobody else can have written it.

The rule, as OpenSSH applies it to its configs and ``~/.ssh``: the file must be a regular file
owned by root or by us (the effective uid) that group and others cannot write, and every
directory on the way to it, from ``/``, must be owned by root or by us and not writable by group
or others, unless it is sticky (``/tmp``, ``/nix/store``: others may add entries there but not
rename or replace ours, and every entry we pass through is checked in turn). Symbolic links are
followed by hand (NixOS's ``/etc`` is links into the store), each link checked like a file
owner, its target walked with the same checks.

Walked with directory fds (``O_PATH``), each checked with ``fstat`` on what was opened; the file
is opened ``O_NOFOLLOW|O_NONBLOCK`` (a FIFO cannot hang us), must be a regular file, and is read
up to a bound. A directory (or link) that fails the rules only matters when the file exists:
root run with a user's ``HOME`` (``sudo -E``) and no config there is not refused for it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat

MAX_LINKS = 40  # as the kernel's own limit


class UntrustedFile(Exception):
    """The file exists but may not be read (its owner, its mode, a directory on the way, its
    kind or size). The message is one line naming the file and why."""


def _who(uid: int) -> str:
    try:
        import pwd

        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except (KeyError, ImportError):
        return f"uid {uid}"


def _check(
    st: os.stat_result, shown: str, target: str, *, directory: bool, link: bool = False
) -> None:
    me = os.geteuid()
    what = f"the directory {shown}" if directory else f"the link {shown}" if link else "it"
    if st.st_uid not in (0, me):
        owners = "root" if me == 0 else f"root or {_who(me)}"
        raise UntrustedFile(
            f"{target}: refusing to read it: {what} is owned by {_who(st.st_uid)}, not {owners}"
        )
    writable = st.st_mode & 0o022 and not link  # a link's own mode means nothing
    if writable and not (directory and st.st_mode & stat.S_ISVTX):
        mode = stat.S_IMODE(st.st_mode)
        raise UntrustedFile(
            f"{target}: refusing to read it: {what} is writable by group or others "
            f"(mode {mode:04o}; chmod go-w {shown})"
        )


def _dir_problem(st: os.stat_result, shown: str, target: str) -> UntrustedFile | None:
    """Why the directory SHOWN may not lead to a file we read, or None."""
    try:
        _check(st, shown, target, directory=True)
    except UntrustedFile as exc:
        return exc
    return None


def read_trusted(path: str | os.PathLike[str], limit: int) -> bytes | None:
    """PATH's bytes (at most LIMIT), or None when it (or a directory on the way) does not exist.

    Raises UntrustedFile when the rules above refuse it and OSError when it cannot be read.
    """
    target = os.path.abspath(os.fspath(path))
    if "\0" in target:
        raise UntrustedFile(f"{target!r}: refusing to read it: a NUL byte in the path")
    parts = [c for c in target.split("/") if c not in ("", ".")]
    dir_flags = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open("/", dir_flags)
    try:
        # The first directory on the way that fails the rules: raised once the file is found.
        problem = _dir_problem(os.fstat(fd), "/", target)
        current = "/"
        links = 0
        while parts:
            name = parts.pop(0)
            if name == "..":
                parent = os.open("..", dir_flags, dir_fd=fd)
                os.close(fd)
                fd, current = parent, os.path.dirname(current.rstrip("/")) or "/"
                problem = problem or _dir_problem(os.fstat(fd), current, target)
                continue
            shown = os.path.join(current, name)
            try:
                st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            except FileNotFoundError:
                return None
            if stat.S_ISLNK(st.st_mode):
                links += 1
                if links > MAX_LINKS:
                    raise UntrustedFile(f"{target}: refusing to read it: too many symbolic links")
                try:
                    _check(st, shown, target, directory=False, link=True)
                except UntrustedFile as exc:
                    problem = problem or exc
                link = os.readlink(name, dir_fd=fd)
                if link.startswith("/"):
                    root = os.open("/", dir_flags)
                    os.close(fd)
                    fd, current = root, "/"
                parts = [c for c in link.split("/") if c not in ("", ".")] + parts
                continue
            if parts:  # a directory on the way
                if not stat.S_ISDIR(st.st_mode):
                    return None  # as ENOTDIR: no such file
                sub = os.open(name, dir_flags, dir_fd=fd)
                os.close(fd)
                fd, current = sub, shown
                problem = problem or _dir_problem(os.fstat(fd), shown, target)
                continue
            if problem is not None:
                raise problem
            if not stat.S_ISREG(st.st_mode):  # never open a device or a FIFO at all
                raise UntrustedFile(f"{target}: refusing to read it: not a regular file")
            return _read_file(fd, name, target, limit)
        raise UntrustedFile(f"{target}: refusing to read it: not a regular file")
    finally:
        os.close(fd)


def _read_file(dir_fd: int, name: str, target: str, limit: int) -> bytes:
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
    try:
        fd = os.open(name, flags, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno == errno.ELOOP:  #: replaced by a link since we looked (by root or us)
            raise UntrustedFile(f"{target}: refusing to read it: it changed while read") from exc
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UntrustedFile(f"{target}: refusing to read it: not a regular file")
        _check(st, target, target, directory=False)
        if st.st_size > limit:
            raise UntrustedFile(
                f"{target}: refusing to read it: {st.st_size} bytes, more than {limit}"
            )
        chunks: list[bytes] = []
        left = limit + 1
        while left > 0:
            chunk = os.read(fd, min(left, 65536))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        data = b"".join(chunks)
        if len(data) > limit:
            raise UntrustedFile(f"{target}: refusing to read it: more than {limit} bytes")
        return data
    finally:
        with contextlib.suppress(OSError):
            os.close(fd)
