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

import contextlib
import os
import pickle
import stat
from pathlib import Path

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


def _own_dir(path: Path) -> bool:
    return _ours(os.stat(path))


def _trusted(st: os.stat_result) -> bool:
    return stat.S_ISREG(st.st_mode) and _ours(st) and st.st_size <= MAX_BYTES


def load(cache: RunnerCache, cache_dir: Path) -> bool:
    """Fill CACHE from CACHE_DIR's file; whether anything was loaded."""
    try:
        if not _own_dir(cache_dir):
            return False
        fd = os.open(cache_dir / CACHE_FILE, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return False
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

    Written to a temporary file renamed over the old one, so a reader sees a whole file."""
    entries = cache.used()
    if not cache.changed_since_load(entries):
        return False
    tmp: Path | None = None
    try:
        cache_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not _own_dir(cache_dir):  # e.g. root under sudo with a user's $HOME: leave it be
            return False
        # What tempfile.mkstemp does, without its ~10 ms import: a fresh name, made exclusively.
        name = cache_dir / f".runners-{os.getpid()}-{os.urandom(6).hex()}.tmp"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(name, flags, 0o600)
        tmp = name  # ours from here on: removed if anything below fails
        with os.fdopen(fd, "wb") as fh:
            pickle.dump(
                {"stamp": code_stamp(), "entries": entries}, fh, protocol=pickle.HIGHEST_PROTOCOL
            )
        os.replace(tmp, cache_dir / CACHE_FILE)
        tmp = None
    except Exception:  # read-only home, full disk: next time parses afresh
        return False
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    return True
