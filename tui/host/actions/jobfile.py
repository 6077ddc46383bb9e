"""A job's file: what a job running as a systemd unit did, one bounded JSON record a line.

The app creates ``DIR/NAME.jsonl`` with the job's spec (action, VM, options, host settings)
as its first line and starts the unit; the unit's ``job-exec`` appends the job's records
(state, log lines, progress, commands, the end with its outcome); whoever follows the job
(the app, or the agent on a remote host) reads them back from an offset. The file outlives
both: a later app adopts it.

The directory is ours alone: created without following links, 0700, owned by us, checked
each time it is opened. Every file in it is opened at its fd with O_NOFOLLOW and must be a
regular file of ours. Still, a reader trusts nothing it reads: lines and the file are
bounded, each record is checked field by field, and anything else is one ``JobFileError``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tui.host.actions.commands import CommandRecord
from tui.host.actions.nixlog import Progress
from tui.host.actions.operations import Outcome
from tui.host.safefs import NotRegularFile, describe, make_dirs
from tui.host.settings import DeploySource, HostSettings, SystemdBus

LINE_LIMIT = 64 * 1024  # bytes in one record
FILE_LIMIT = 16 * 1024 * 1024  # bytes in one job file
TEXT_LIMIT = 4096  # characters in one string of a record (a log line, an argv item)
SUFFIX = ".jsonl"
# A job's name: the unit is microvm-tui-job-NAME.service, the file NAME.jsonl.
NAME = re.compile(r"[0-9]{10}-[0-9a-f]{8}")
UNIT_PREFIX = "microvm-tui-job-"


class JobFileError(Exception):
    """A job directory or file that cannot be used, in one line."""


def unit_of(name: str) -> str:
    return f"{UNIT_PREFIX}{name}.service"


# --- the directory -------------------------------------------------------------------------


def open_job_dir(path: Path) -> int:
    """The fd of job directory PATH (made 0700 if missing, never through a link), checked to
    be ours and closed to others. The caller closes it."""
    try:
        fd = make_dirs(path, 0o700)
    except OSError as exc:
        raise JobFileError(f"job directory {describe(exc)}") from None
    st = os.fstat(fd)
    if st.st_uid != os.geteuid() or st.st_mode & 0o077:
        os.close(fd)
        raise JobFileError(
            f"job directory {path}: owned by uid {st.st_uid} with mode "
            f"{stat.S_IMODE(st.st_mode):o}; it must be ours and 0700"
        )
    return fd


def job_names(dir_fd: int) -> list[str]:
    """The job files' names in the directory (others are ignored), oldest first."""
    names = []
    with contextlib.suppress(OSError):
        for entry in os.listdir(dir_fd):
            if entry.endswith(SUFFIX) and NAME.fullmatch(entry[: -len(SUFFIX)]):
                names.append(entry[: -len(SUFFIX)])
    return sorted(names)


def _open_file(dir_fd: int, name: str, flags: int, mode: int = 0o600) -> int:
    if not NAME.fullmatch(name):
        raise JobFileError(f"{name!r} is not a job name")
    filename = name + SUFFIX
    try:
        fd = os.open(
            filename, flags | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, mode, dir_fd=dir_fd
        )
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise JobFileError(f"job file {filename} is a symlink; not followed") from None
        raise JobFileError(f"job file {describe(exc)}") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o077:
        os.close(fd)
        raise JobFileError(f"job file {filename} is not a regular file of ours (mode 0600)")
    return fd


def remove(dir_fd: int, name: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(name + SUFFIX, dir_fd=dir_fd)


# --- values to JSON and back ---------------------------------------------------------------


def _cut(text: object) -> str:
    return str(text)[:TEXT_LIMIT]


def settings_json(settings: HostSettings) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in dataclasses.fields(settings):
        value = getattr(settings, f.name)
        if isinstance(value, Path):
            value = str(value)
        elif isinstance(value, SystemdBus):
            value = {"kind": value.kind, "path": str(value.path) if value.path else None}
        elif isinstance(value, tuple):
            value = list(value)
        out[f.name] = value
    return out


def settings_from_json(data: object) -> HostSettings:
    """The spec's host settings, typed field by field (the file is ours, but still)."""
    if not isinstance(data, dict):
        raise JobFileError("the job's settings are not an object")
    kwargs: dict[str, Any] = {}
    defaults = HostSettings()
    for f in dataclasses.fields(HostSettings):
        if f.name not in data:
            continue
        value, default = data[f.name], getattr(defaults, f.name)
        if isinstance(default, SystemdBus):
            if not isinstance(value, dict) or not isinstance(value.get("kind"), str):
                raise JobFileError("the job's systemd_bus is not valid")
            path = value.get("path")
            value = SystemdBus(value["kind"], Path(path) if isinstance(path, str) else None)
        elif f.name in ("systemd_env",):
            if not isinstance(value, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in value.items()
            ):
                raise JobFileError("the job's systemd_env is not valid")
        elif isinstance(default, tuple):
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise JobFileError(f"the job's {f.name} is not a list of strings")
            value = tuple(value)
        elif isinstance(default, Path) or f.name in ("console_log_dir", "journal_dir", "cache_dir"):
            if value is not None and not isinstance(value, str):
                raise JobFileError(f"the job's {f.name} is not a path")
            value = Path(value) if value is not None else None
        elif isinstance(default, float):
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise JobFileError(f"the job's {f.name} is not a number")
            value = float(value)
        elif value is not None and not isinstance(value, str):
            raise JobFileError(f"the job's {f.name} is not a string")
        kwargs[f.name] = value
    return HostSettings(**kwargs)


def options_json(options: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in options.items():
        if isinstance(value, DeploySource):
            value = {"__deploy_source__": dataclasses.asdict(value)}
        elif value is not None and not isinstance(value, str | bool | int | float):
            raise JobFileError(f"option {key} ({type(value).__name__}) cannot go in a job file")
        out[key] = value
    return out


def options_from_json(data: object) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise JobFileError("the job's options are not an object")
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict) and isinstance(value.get("__deploy_source__"), dict):
            src = value["__deploy_source__"]
            value = DeploySource(
                cache=src.get("cache") if isinstance(src.get("cache"), str) else None,
                hydra_url=src.get("hydra_url") if isinstance(src.get("hydra_url"), str) else None,
                check_sigs=src.get("check_sigs") is not False,
            )
        elif value is not None and not isinstance(value, str | bool | int | float):
            raise JobFileError(f"the job's option {_cut(key)} is not a plain value")
        out[str(key)] = value
    return out


def _typed(cls: type, data: object, what: str) -> Any:
    """An instance of dataclass CLS from DATA, each field of the default's type."""
    if not isinstance(data, dict):
        raise JobFileError(f"a {what} record is not an object")
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name not in data:
            continue
        value = data[f.name]
        kind = str(f.type)
        if kind.startswith("tuple"):
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise JobFileError(f"a {what} record's {f.name} is not a list of strings")
            value = tuple(_cut(v) for v in value[:256])
        elif kind.startswith(("int", "float", "bool")):
            optional = "None" in kind
            if kind.startswith("bool"):
                ok = isinstance(value, bool)
            else:
                ok = isinstance(value, int | float) and not isinstance(value, bool)
            if not (ok or (optional and value is None)):
                raise JobFileError(f"a {what} record's {f.name} is not a {kind.split()[0]}")
            if kind.startswith("int") and isinstance(value, float):
                value = int(value)
        elif kind.startswith("str"):
            if value is not None and not isinstance(value, str):
                raise JobFileError(f"a {what} record's {f.name} is not a string")
            value = _cut(value) if value is not None else None
        kwargs[f.name] = value
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise JobFileError(f"a {what} record lacks a field ({exc})") from None


def progress_from_json(data: object) -> Progress:
    return _typed(Progress, data, "progress")


def command_from_json(data: object) -> CommandRecord:
    return _typed(CommandRecord, data, "command")


def outcome_from_json(data: object) -> Outcome | None:
    return None if data is None else _typed(Outcome, data, "outcome")


def plain(value: Any) -> Any:
    """A dataclass (Progress, CommandRecord, Outcome) as JSON-ready values, strings cut."""
    data = dataclasses.asdict(value)
    for key, item in data.items():
        if isinstance(item, str):
            data[key] = _cut(item)
        elif isinstance(item, tuple | list):
            data[key] = [_cut(v) for v in item[:256]]
    return data


# --- writing -------------------------------------------------------------------------------


def _line(record: dict[str, Any]) -> bytes:
    data = (json.dumps(record, ensure_ascii=True, separators=(",", ":")) + "\n").encode()
    if len(data) > LINE_LIMIT:  # a record too big for a reader: keep its kind only
        data = (json.dumps({"kind": record.get("kind"), "cut": True}) + "\n").encode()
    return data


def create(dir_fd: int, name: str, spec: dict[str, Any]) -> None:
    """A new job file NAME (never an existing one, never through a link) with SPEC in it."""
    fd = _open_file(dir_fd, name, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    try:
        os.write(fd, _line({"kind": "spec", **spec}))
    finally:
        os.close(fd)


class JobWriter:
    """Appends records to an existing job file; past FILE_LIMIT (less room for the end) it
    writes only the end record, so a chatty job can never fill the disk."""

    def __init__(self, dir_fd: int, name: str) -> None:
        self._fd = _open_file(dir_fd, name, os.O_WRONLY | os.O_APPEND)
        self._size = os.fstat(self._fd).st_size

    def write(self, record: dict[str, Any]) -> None:
        data = _line(record)
        if record.get("kind") != "end" and self._size + len(data) > FILE_LIMIT - LINE_LIMIT:
            return
        os.write(self._fd, data)
        self._size += len(data)

    def close(self) -> None:
        os.close(self._fd)


# --- reading -------------------------------------------------------------------------------


@dataclass
class JobRecords:
    """What was read of one job file so far."""

    spec: dict[str, Any] | None = None
    records: list[dict[str, Any]] = field(default_factory=list)


class JobReader:
    """Reads a job file's records as they are appended: bounded lines, valid JSON objects."""

    def __init__(self, dir_fd: int, name: str) -> None:
        self.name = name
        self._fd = _open_file(dir_fd, name, os.O_RDONLY)
        self._buffer = b""
        self._read = 0
        self.spec: dict[str, Any] | None = None

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._fd)

    def read(self) -> list[dict[str, Any]]:
        """The records appended since the last call (the spec, first, is kept in ``spec``)."""
        records: list[dict[str, Any]] = []
        while True:
            try:
                chunk = os.read(self._fd, 1 << 16)
            except OSError as exc:
                raise JobFileError(f"job file {self.name}{SUFFIX}: {describe(exc)}") from None
            if not chunk:
                break
            self._read += len(chunk)
            if self._read > FILE_LIMIT:
                raise JobFileError(
                    f"job file {self.name}{SUFFIX} is larger than {FILE_LIMIT} bytes"
                )
            self._buffer += chunk
            *lines, self._buffer = self._buffer.split(b"\n")
            for line in lines:
                records.append(self._parse(line))
            if len(self._buffer) > LINE_LIMIT:
                raise JobFileError(
                    f"job file {self.name}{SUFFIX} has a line longer than {LINE_LIMIT} bytes"
                )
        if records and self.spec is None:
            first = records.pop(0)
            if first.get("kind") != "spec":
                raise JobFileError(f"job file {self.name}{SUFFIX} does not start with a spec")
            self.spec = first
        return records

    def _parse(self, line: bytes) -> dict[str, Any]:
        if len(line) > LINE_LIMIT:
            raise JobFileError(
                f"job file {self.name}{SUFFIX} has a line longer than {LINE_LIMIT} bytes"
            )
        try:
            record = json.loads(line)
        except ValueError:
            raise JobFileError(
                f"job file {self.name}{SUFFIX} has a line that is not JSON"
            ) from None
        if not isinstance(record, dict) or not isinstance(record.get("kind"), str):
            raise JobFileError(f"job file {self.name}{SUFFIX} has a record without a kind")
        return record


__all__ = [
    "FILE_LIMIT",
    "LINE_LIMIT",
    "JobFileError",
    "JobReader",
    "JobWriter",
    "NotRegularFile",
    "create",
    "job_names",
    "open_job_dir",
]


def text(value: object) -> str:
    """A record's string field, cut; anything else is an empty string."""
    return _cut(value) if isinstance(value, str) else ""


def number(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def problem(name: str, exc: JobFileError) -> str:
    """EXC as one line that names job file NAME."""
    text = str(exc)
    return text if name in text else f"job file {name}{SUFFIX}: {text}"


def passed_on_environ() -> dict[str, str]:
    """What of our environment the tools get (``tools.PASSED_ON``...), for the job's spec."""
    from tui.host import tools

    names = (*tools.PASSED_ON, *tools.PASSED_ON_FILES)
    return {k: v for k in names if (v := os.environ.get(k)) is not None}


def restore_environ(data: object) -> None:
    """In job-exec: exactly the app's passed-on variables (others of those names removed)."""
    from tui.host import tools

    saved = data if isinstance(data, dict) else {}
    for name in (*tools.PASSED_ON, *tools.PASSED_ON_FILES):
        value = saved.get(name)
        if isinstance(value, str) and "\0" not in value:
            os.environ[name] = value
        else:
            os.environ.pop(name, None)
