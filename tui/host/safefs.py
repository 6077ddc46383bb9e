"""Creating, writing and reading files in directories that someone else may write to.

The app runs as root, and the state dir (group ``kvm``), runner packages, cache and state dirs
are hostile input: a symlink or FIFO planted there must never steer a write, hang a read or
fill memory. Every file the app creates or writes goes through this module:

- a directory is opened once (``O_DIRECTORY|O_NOFOLLOW``) and everything is done relative to
  that fd, so a directory swapped for a symlink afterwards changes nothing;
- a new file gets a random temporary name made with ``O_CREAT|O_EXCL|O_NOFOLLOW`` (a planted
  name fails instead of being followed), and is renamed into place at the directory fd;
- a symlink is made under a temporary name and renamed over the old one: readers see the old
  link or the new one, never none; a failure leaves the old one as it was;
- reads (``read_regular``) open with ``O_NONBLOCK`` (and ``O_NOFOLLOW`` unless a link is
  expected), insist on a regular file, check its size before reading, and read at most LIMIT.

Errors are ``OSError``s whose ``strerror`` is a short sentence, so callers that already
report ``exc.strerror`` say what went wrong.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import os
import secrets
import stat
from collections.abc import Callable, Iterator

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_RENAME_NOREPLACE = 1
_TEMP_TRIES = 100

PathLike = str | os.PathLike[str]


class NotRegularFile(OSError):
    """The path names a FIFO, device, socket, directory (or a symlink where none belongs)."""


class TooLarge(OSError):
    """The file is larger than the reader's limit; nothing was read."""


def _kind(mode: int) -> str:
    for test, word in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISLNK, "a symlink"),
    ):
        if test(mode):
            return word
    return "not a regular file"


def _symlink_error(exc: OSError, path: PathLike) -> OSError:
    """O_NOFOLLOW on a symlink fails with ELOOP: say what it means."""
    if exc.errno == errno.ELOOP:
        return NotRegularFile(errno.ELOOP, "is a symlink; not followed", os.fspath(path))
    return exc


# --- directories -------------------------------------------------------------------------


def open_dir(path: PathLike, *, dir_fd: int | None = None) -> int:
    """An fd of directory PATH; its last component must not be a symlink (raises
    NotRegularFile then). The caller closes it (or uses ``opened_dir``)."""
    try:
        return os.open(path, _DIR_FLAGS, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            try:
                mode = os.stat(path, dir_fd=dir_fd, follow_symlinks=False).st_mode
            except OSError:
                raise exc from None
            if stat.S_ISLNK(mode):
                raise NotRegularFile(
                    errno.ELOOP, "is a symlink; not followed", os.fspath(path)
                ) from None
            raise NotRegularFile(
                errno.ENOTDIR, f"is {_kind(mode)}, not a directory", os.fspath(path)
            ) from None
        raise


@contextlib.contextmanager
def opened_dir(path: PathLike, *, dir_fd: int | None = None) -> Iterator[int]:
    fd = open_dir(path, dir_fd=dir_fd)
    try:
        yield fd
    finally:
        os.close(fd)


def make_dirs(path: PathLike, mode: int = 0o700) -> int:
    """Open directory PATH, creating missing components (MODE) one at a time at the fd of
    their parent, each opened without following a symlink. Components that already exist
    above the first missing one are followed as the system resolves them (they are the
    caller's configuration, e.g. $HOME). Returns the fd of PATH; the caller closes it."""
    path = os.path.abspath(os.fspath(path))
    missing: list[str] = []
    head = path
    while True:
        try:
            fd = open_dir(head)
            break
        except FileNotFoundError:
            parent, name = os.path.split(head)
            if not name or parent == head:
                raise
            missing.append(name)
            head = parent
    try:
        for name in reversed(missing):
            with contextlib.suppress(FileExistsError):
                os.mkdir(name, mode, dir_fd=fd)
            child = open_dir(name, dir_fd=fd)
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


def _random_name(stem: str) -> str:
    return f".{stem}-{secrets.token_hex(4)}"


def make_temp_dir(dir_fd: int, stem: str, mode: int = 0o700) -> str:
    """Make a new directory ``.STEM-XXXXXXXX`` at DIR_FD (never an existing one); its name."""
    for _ in range(_TEMP_TRIES):
        name = _random_name(stem)
        try:
            os.mkdir(name, mode, dir_fd=dir_fd)
        except FileExistsError:
            continue
        return name
    raise FileExistsError(errno.EEXIST, "no free temporary name", stem)


# --- files -------------------------------------------------------------------------------


def create_temp_file(dir_fd: int, stem: str, mode: int = 0o600) -> tuple[int, str]:
    """A new, empty file ``.STEM-XXXXXXXX`` at DIR_FD, made exclusively: (fd, name)."""
    for _ in range(_TEMP_TRIES):
        name = _random_name(stem)
        try:
            return os.open(name, _NEW_FILE_FLAGS, mode, dir_fd=dir_fd), name
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temporary name", stem)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def write_file_at(dir_fd: int, name: str, data: bytes, mode: int = 0o600) -> None:
    """Put DATA in NAME at DIR_FD as one step: a temporary file (exclusive, not followed)
    renamed over NAME. A symlink planted at NAME is replaced, never written through; on any
    failure NAME is as it was and the temporary file is gone."""
    fd, tmp = create_temp_file(dir_fd, name, mode)
    try:
        try:
            _write_all(fd, data)
            os.fchmod(fd, mode)  # the umask may have narrowed MODE
        finally:
            os.close(fd)
        os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp, dir_fd=dir_fd)
        raise


def write_file(
    path: PathLike, data: bytes, mode: int = 0o600, *, make_parents: bool = False
) -> None:
    """``write_file_at`` for a path: its directory is opened without following a final
    symlink (and created first with MAKE_PARENTS, mode 0700)."""
    directory, name = os.path.split(os.path.abspath(os.fspath(path)))
    fd = make_dirs(directory) if make_parents else open_dir(directory)
    try:
        write_file_at(fd, name, data, mode)
    finally:
        os.close(fd)


def open_lock_file(dir_fd: int, name: str, mode: int = 0o600) -> int:
    """Open (or create) NAME at DIR_FD for a lock: read-write, never through a symlink,
    never a FIFO or device (raises NotRegularFile)."""
    try:
        fd = os.open(
            name,
            os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
            mode,
            dir_fd=dir_fd,
        )
    except OSError as exc:
        raise _symlink_error(exc, name) from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise NotRegularFile(errno.EINVAL, f"is {_kind(st.st_mode)}", name)
    return fd


# --- reading -----------------------------------------------------------------------------


def read_regular(
    path: PathLike, limit: int, *, dir_fd: int | None = None, follow: bool = False
) -> bytes:
    """The bytes of regular file PATH, at most LIMIT of them.

    Opened with O_NONBLOCK (a FIFO or device never blocks the open) and O_NOFOLLOW unless
    FOLLOW (where a link is expected, e.g. inside a runner package). Raises NotRegularFile
    for anything but a regular file and TooLarge when the file (by fstat, or by what a read
    returned) is larger than LIMIT; other OSErrors as the system gave them."""
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | (0 if follow else os.O_NOFOLLOW)
    try:
        fd = os.open(path, flags, dir_fd=dir_fd)
    except OSError as exc:
        if follow:  # ELOOP is then a real loop
            raise
        raise _symlink_error(exc, path) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotRegularFile(
                errno.EINVAL, f"is {_kind(st.st_mode)}, not a regular file", os.fspath(path)
            )
        if st.st_size > limit:
            raise TooLarge(errno.EFBIG, f"is larger than {limit} bytes", os.fspath(path))
        chunks: list[bytes] = []
        left = limit + 1  # one byte more tells a file that grew past LIMIT
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 16))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        data = b"".join(chunks)
        if len(data) > limit:
            raise TooLarge(errno.EFBIG, f"is larger than {limit} bytes", os.fspath(path))
        return data
    finally:
        os.close(fd)


def read_text(
    path: PathLike, limit: int, *, dir_fd: int | None = None, follow: bool = False
) -> str:
    """``read_regular`` decoded as strict UTF-8 (UnicodeDecodeError otherwise)."""
    return read_regular(path, limit, dir_fd=dir_fd, follow=follow).decode("utf-8")


def describe(exc: OSError) -> str:
    """One line for a failed read or write: ``PATH: what went wrong``."""
    what = exc.strerror or type(exc).__name__
    if exc.errno in (errno.EACCES, errno.EPERM) and not isinstance(exc, NotRegularFile):
        what = "permission denied"
    return f"{exc.filename}: {what}" if exc.filename else what


# --- symlinks and renames ----------------------------------------------------------------


def temp_symlink(dir_fd: int, stem: str, target: str) -> str:
    """A new symlink ``.STEM-XXXXXXXX`` -> TARGET at DIR_FD (never over an existing name)."""
    for _ in range(_TEMP_TRIES):
        name = _random_name(stem)
        try:
            os.symlink(target, name, dir_fd=dir_fd)
        except FileExistsError:
            continue
        return name
    raise FileExistsError(errno.EEXIST, "no free temporary name", stem)


def replace_symlink_at(dir_fd: int, name: str, target: str) -> None:
    """Point NAME at TARGET in one step: a new link under a temporary name, renamed over
    NAME. Readers see the old target or the new one, never none; on failure NAME is as it
    was."""
    tmp = temp_symlink(dir_fd, f"{name}.new", target)
    try:
        os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp, dir_fd=dir_fd)
        raise


def replace_symlink(link: PathLike, target: str) -> None:
    """``replace_symlink_at`` for a path (its directory opened without following it)."""
    directory, name = os.path.split(os.path.abspath(os.fspath(link)))
    with opened_dir(directory) as fd:
        replace_symlink_at(fd, name, target)


def read_link_at(dir_fd: int, name: str) -> str | None:
    """The target of symlink NAME at DIR_FD as written; None when there is no symlink."""
    try:
        return os.readlink(name, dir_fd=dir_fd)
    except OSError:
        return None


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


def rename_noreplace_at(src_dir_fd: int, src: str, dst_dir_fd: int, dst: str) -> None:
    """Move SRC to DST; raise FileExistsError if DST exists, whatever it is (an empty
    directory included, which a plain rename would silently replace).

    renameat2(RENAME_NOREPLACE) where the kernel and file system have it; otherwise a
    hard-link-free fallback: a check, then rename (racy, so the check is done twice by the
    callers that can)."""
    func = _renameat2()
    if func is not None:
        rc = func(src_dir_fd, os.fsencode(src), dst_dir_fd, os.fsencode(dst), _RENAME_NOREPLACE)
        if rc == 0:
            return
        err = ctypes.get_errno()
        if err == errno.EEXIST:
            raise FileExistsError(err, os.strerror(err), dst)
        if err not in (errno.ENOSYS, errno.EINVAL):
            raise OSError(err, os.strerror(err), src)
    try:
        os.stat(dst, dir_fd=dst_dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        pass
    else:
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), dst)
    try:
        os.rename(src, dst, src_dir_fd=src_dir_fd, dst_dir_fd=dst_dir_fd)
    except OSError as exc:
        if exc.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), dst) from exc
        raise


def rename_noreplace(src: PathLike, dst: PathLike) -> None:
    """``rename_noreplace_at`` for two paths (their directories opened without following)."""
    sdir, sname = os.path.split(os.path.abspath(os.fspath(src)))
    ddir, dname = os.path.split(os.path.abspath(os.fspath(dst)))
    with opened_dir(sdir) as sfd, opened_dir(ddir) as dfd:
        rename_noreplace_at(sfd, sname, dfd, dname)


def replace_symlinks_at(dir_fd: int, changes: list[tuple[str, str]]) -> None:
    """Point each NAME of CHANGES at its TARGET: all of them, or (on failure) none.

    Two phases, so a full disk or a lack of inodes cannot leave some links changed and
    others not: first every new link is made under a temporary name, together with a copy
    of every link it replaces (made now, when a failure still changes nothing); then only
    renames follow, which need no new inode. If a rename fails, the names already switched
    get their copies renamed back (or are removed where there was no link) before the
    error is raised. Temporary names never outlive the call."""
    temps: list[str] = []
    new: dict[str, str] = {}
    undo: dict[str, str | None] = {}
    try:
        for name, target in changes:
            new[name] = temp_symlink(dir_fd, f"{name}.new", target)
            temps.append(new[name])
            previous = read_link_at(dir_fd, name)
            if previous is None:
                try:
                    os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
                except FileNotFoundError:
                    undo[name] = None
                else:  # a file or directory where a link belongs: never replaced
                    raise NotRegularFile(errno.EEXIST, "exists and is not a symlink", name)
            else:
                undo[name] = temp_symlink(dir_fd, f"{name}.new", previous)
                temps.append(undo[name])  # type: ignore[arg-type]
        switched: list[str] = []
        try:
            for name, _target in changes:
                os.replace(new[name], name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
                temps.remove(new[name])
                switched.append(name)
        except BaseException:
            for name in reversed(switched):
                saved = undo[name]
                with contextlib.suppress(OSError):
                    if saved is None:
                        os.unlink(name, dir_fd=dir_fd)
                    else:
                        os.replace(saved, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
                        temps.remove(saved)
            raise
    finally:
        for tmp in temps:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=dir_fd)
