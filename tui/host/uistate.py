"""The app's remembered choices (theme, sort, detail tab, the last flake typed to create a VM),
kept in a small JSON file: ``$XDG_STATE_HOME/microvm-tui/state.json`` (default
``~/.local/state/microvm-tui/``), never in the config file.

The app runs as root and a state dir can be planted: the dir is made 0700 a component at a
time at dir fds and used only when it is ours (owned by the running user, writable by nobody
else); the file is written as a random exclusive temp file renamed at the dir fd (a symlink
planted at the name is replaced, never written through) and read bounded, regular files only.
A missing, unreadable or broken file means "nothing remembered"; why is kept in ``problem``
(one line, no traceback).
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

from tui.host import safefs

FILE_NAME = "state.json"
READ_LIMIT = 64 * 1024  # a few hundred bytes in practice
TEXT_LIMIT = 4096  # longest remembered string (a flake reference)


@dataclass(frozen=True)
class UIState:
    theme: str | None = None
    sort_column: str | None = None
    sort_reverse: bool | None = None
    detail_tab: str | None = None
    last_flake: str | None = None


def default_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state")
    return Path(base) / "microvm-tui"


def _from_json(data: object) -> UIState:
    """Only the known keys, only with the right type; anything else is dropped."""
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    out: dict[str, object] = {}
    for f in fields(UIState):
        value = data.get(f.name)
        if f.name == "sort_reverse":
            if isinstance(value, bool):
                out[f.name] = value
        elif isinstance(value, str) and 0 < len(value) <= TEXT_LIMIT and value.isprintable():
            out[f.name] = value
    return UIState(**out)  # type: ignore[arg-type]


def _check_own_dir(fd: int, path: Path) -> str | None:
    st = os.fstat(fd)
    if st.st_uid != os.geteuid():
        return f"{path} belongs to uid {st.st_uid}, not to us: not used"
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"{path} is writable by others ({stat.filemode(st.st_mode)}): not used"
    return None


class UIStateStore:
    """Loads once, saves on every change (``update``); never raises for a bad file or dir."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory if directory is not None else default_dir()
        self.state = UIState()
        self.problem: str | None = None  # the last load/save failure, one line

    def load(self) -> UIState:
        self.state = UIState()
        try:
            with safefs.opened_dir(self.directory) as fd:
                problem = _check_own_dir(fd, self.directory)
                if problem:
                    self.problem = problem
                    return self.state
                raw = safefs.read_regular(FILE_NAME, READ_LIMIT, dir_fd=fd)
            self.state = _from_json(json.loads(raw.decode("utf-8")))
        except FileNotFoundError:
            pass  # nothing remembered yet
        except OSError as exc:
            self.problem = f"state file not read: {safefs.describe(exc)}"
        except ValueError as exc:  # JSON, UTF-8, or not an object
            self.problem = f"state file {self.directory / FILE_NAME} ignored: {exc}"
        return self.state

    def update(self, **changes: object) -> bool:
        """Remember CHANGES (UIState fields) and write the file; False (and ``problem``) when
        it could not be written."""
        new = replace(self.state, **changes)  # type: ignore[arg-type]
        if new == self.state:
            return True
        self.state = new
        return self.save()

    def save(self) -> bool:
        data = json.dumps(
            {k: v for k, v in asdict(self.state).items() if v is not None}, indent=1
        ).encode()
        fd = -1
        try:
            fd = safefs.make_dirs(self.directory, 0o700)
            problem = _check_own_dir(fd, self.directory)
            if problem:
                self.problem = problem
                return False
            safefs.write_file_at(fd, FILE_NAME, data, 0o600)
        except OSError as exc:
            self.problem = f"state file not written: {safefs.describe(exc)}"
            return False
        finally:
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        return True
