"""Runner parses kept on disk between runs of ``list``, so a host's VMs are parsed once.

A runner package is a Nix store path and never changes, so a parse keyed by that path stays
true until the parser itself changes: the file is stamped with the code that made it (the
package version and the size and mtime of every parser module) and ignored when the stamp
differs. Only what ``RunnerCache`` accepts is kept (runners under the immutable roots whose
parse read nothing elsewhere); everything live is read every time.

The file is a pickle read with an unpickler that builds only the parse dataclasses, and only
from a file owned by us that nobody else can write. Any failure to read or write it is
silent: the cache only saves time, the listing is the same without it.
"""

from __future__ import annotations

import os
import pickle
import stat
from pathlib import Path

from tui.host.safefs import make_dirs, open_dir, write_file_at
from tui.host.statedir import RunnerCache

CACHE_FILE = "runners.pickle"
MAX_BYTES = 64 << 20  # a parse pickles to ~2 KiB; far more is not our file
_FORMAT = 1

# The modules whose code decides what a parse holds: a change to any of them voids the file.
_HOST_DIR = Path(__file__).resolve().parent
_PARSER_FILES = ("model.py", "statedir.py", "parsecache.py")

# What the file may build: the parse dataclasses and paths, nothing else.
_ALLOWED_MODULES = frozenset({"tui.host.model", "tui.host.runners.sharefiles", "tui.host.statedir"})
_ALLOWED_GLOBALS = frozenset({("pathlib", "PosixPath"), ("pathlib", "Path")})


def code_stamp() -> tuple[object, ...]:
    from tui import __version__

    parts: list[object] = [_FORMAT, __version__]
    files = [_HOST_DIR / name for name in _PARSER_FILES]
    runners = _HOST_DIR / "runners"
    files += sorted(runners / n for n in os.listdir(runners) if n.endswith(".py"))
    for path in files:
        st = os.stat(path)
        parts.append((path.name, st.st_size, st.st_mtime_ns))
    return tuple(parts)


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> object:
        if module in _ALLOWED_MODULES or (module, name) in _ALLOWED_GLOBALS:
            cls = super().find_class(module, name)
            if isinstance(cls, type):
                return cls
        raise pickle.UnpicklingError(f"{module}.{name} is not allowed in the runner cache")


def _ours(st: os.stat_result) -> bool:
    """Owned by us and writable by nobody else."""
    return st.st_uid == os.geteuid() and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def _trusted(st: os.stat_result) -> bool:
    return stat.S_ISREG(st.st_mode) and _ours(st) and st.st_size <= MAX_BYTES


def load(cache: RunnerCache, cache_dir: Path) -> bool:
    """Fill CACHE from CACHE_DIR's file; whether anything was loaded.

    The dir is opened without following a final symlink and checked by its fd; the file is
    opened at that fd (no link, no FIFO: O_NOFOLLOW|O_NONBLOCK) and checked by its fd."""
    try:
        dir_fd = open_dir(cache_dir)
    except OSError:
        return False
    try:
        if not _ours(os.fstat(dir_fd)):
            return False
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
        fd = os.open(CACHE_FILE, flags, dir_fd=dir_fd)
    except OSError:
        return False
    finally:
        os.close(dir_fd)
    try:
        with os.fdopen(fd, "rb") as fh:
            if not _trusted(os.fstat(fh.fileno())):
                return False
            data = _Unpickler(fh).load()
        if not isinstance(data, dict) or data.get("stamp") != code_stamp():
            return False
        entries = data["entries"]
        if not isinstance(entries, dict):
            return False
        cache.preload(entries)
    except Exception:  # a torn, foreign or older file: parse afresh
        return False
    return True


def save(cache: RunnerCache, cache_dir: Path) -> bool:
    """Write the parses used since the load, if that changes the file; whether it was written.

    The dir is made (0700) and opened component by component without following links
    (``safefs.make_dirs``), checked by its fd, and the file written through ``safefs``: a
    random exclusive temporary file renamed over the old one, so a reader sees a whole file
    and nothing planted in the dir is written through."""
    entries = cache.used()
    if not cache.changed_since_load(entries):
        return False
    try:
        data = pickle.dumps(
            {"stamp": code_stamp(), "entries": entries}, protocol=pickle.HIGHEST_PROTOCOL
        )
        dir_fd = make_dirs(cache_dir, 0o700)
    except Exception:  # read-only home, a link planted where the dir should be
        return False
    try:
        if not _ours(os.fstat(dir_fd)):  # e.g. root under sudo with a user's $HOME: leave it
            return False
        write_file_at(dir_fd, CACHE_FILE, data, 0o600)
    except OSError:  # full disk: next time parses afresh
        return False
    finally:
        os.close(dir_fd)
    return True
