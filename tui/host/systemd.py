"""Ask systemd about microvm@NAME and its helper units.

One ``list-units --all`` names every *loaded* unit of ours with its load/active/sub state (a
few ms however many there are). A unit it does not name is not loaded: it is inactive/dead
with no restarts, and nothing more is asked about it (asking `systemctl show` would load it).
Only loaded units whose state needs more (MainPID, NRestarts, ControlGroup, the last result)
are asked with `systemctl show`, which costs the manager a millisecond or more per unit and
grows faster than linearly with the names in one call: in chunks, several at once.

Everything that talks to systemd is behind ``SystemdClient`` (two questions: list-units and
show), so another transport (D-Bus) can take systemctl's place without touching the rest.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

from tui.host.model import UnitState
from tui.host.settings import HostSettings

PROPERTIES = (
    "Id",
    "LoadState",
    "ActiveState",
    "SubState",
    "MainPID",
    "NRestarts",
    "ControlGroup",
    "ExecMainStatus",
    "ActiveEnterTimestamp",
    "Result",
)

# Every unit the host module makes for a VM: microvm@NAME, its helpers, install-microvm-NAME.
PATTERNS = ("microvm@*", "microvm-*@*", "install-microvm-*")

# `systemctl show` with N names costs more than N times one name (1.5 ms a name at 50, 3 ms at
# 300, on the lab's manager): ask in chunks, a few at once (the manager answers one at a time,
# so more workers than this gain nothing).
SHOW_CHUNK = 50
SHOW_WORKERS = 4

# Helper units in these states say all there is in list-units' words: a oneshot that ran
# (active/exited) or one that is not running. Any other state (running, failed, activating)
# is asked about in full.
QUIET = {("active", "exited"), ("inactive", "dead")}

# Helper units of the host module, with the runner file that makes each one run
# (their ConditionPathExists): units whose file is absent are skipped on a real host too.
HELPERS = (  # unit template, and the program in the runner's bin/ it runs (None: always)
    ("microvm-tap-interfaces@{}.service", "tap-up"),
    ("microvm-macvtap-interfaces@{}.service", "macvtap-up"),
    ("microvm-virtiofsd@{}.service", "virtiofsd-run"),
    ("microvm-pci-devices@{}.service", "pci-setup"),
    ("microvm-set-booted@{}.service", None),
)


class SystemdError(Exception):
    """systemd could not be asked at all (no systemctl, no bus, timeout)."""


class SystemdClient(Protocol):
    """The two questions asked of systemd."""

    def list_units(self, patterns: Sequence[str]) -> dict[str, UnitState]:
        """Every loaded unit matching PATTERNS: name, load, active, sub. Raises SystemdError."""
        ...

    def show(self, units: Sequence[str]) -> dict[str, UnitState]:
        """All of ``PROPERTIES`` for UNITS (which should be loaded). Raises SystemdError."""
        ...


def _int(value: str | None) -> int | None:
    if value is None or value == "" or value == "[not set]":
        return None
    try:
        return int(value)
    except ValueError:
        return None


def timestamp_usec(value: str | None) -> int | None:
    # With --timestamp=unix systemd prints "@1700000000"; empty/"n/a" when never entered.
    if not value or not value.startswith("@"):
        return None
    try:
        seconds = float(value[1:])
    except ValueError:
        return None
    return int(seconds * 1_000_000) if seconds > 0 else None


def show_blocks(text: str) -> dict[str, dict[str, str]]:
    """`systemctl show -p ... UNIT...` output (KEY=VALUE blocks split by blank lines), by the
    unit's Id."""
    blocks: dict[str, dict[str, str]] = {}
    block: dict[str, str] = {}
    for line in [*text.splitlines(), ""]:
        if not line.strip():
            if block.get("Id"):
                blocks[block["Id"]] = block
            block = {}
            continue
        key, sep, value = line.partition("=")
        if sep:
            block[key] = value
    return blocks


def parse_show(text: str) -> dict[str, UnitState]:
    """Parse `systemctl show -p ... UNIT...` output into unit states."""
    units: dict[str, UnitState] = {}
    for unit_id, block in show_blocks(text).items():
        pid = _int(block.get("MainPID"))
        units[unit_id] = UnitState(
            name=unit_id,
            load=block.get("LoadState") or None,
            active=block.get("ActiveState") or None,
            sub=block.get("SubState") or None,
            main_pid=pid if pid else None,
            restarts=_int(block.get("NRestarts")),
            control_group=block.get("ControlGroup") or None,
            exec_main_status=_int(block.get("ExecMainStatus")),
            active_enter_usec=timestamp_usec(block.get("ActiveEnterTimestamp")),
            result=block.get("Result") or None,
        )
    return units


def parse_list_units(text: str) -> dict[str, UnitState]:
    """Parse `systemctl list-units --output=json`: a list of {unit, load, active, sub, ...}."""
    try:
        rows = json.loads(text or "[]")
    except ValueError as exc:
        raise SystemdError(f"systemctl list-units gave no JSON: {exc}") from None
    if not isinstance(rows, list):
        raise SystemdError("systemctl list-units gave JSON that is not a list")
    units: dict[str, UnitState] = {}
    for row in rows:
        if not isinstance(row, dict):
            continue
        name = row.get("unit")
        if not isinstance(name, str) or not name:
            continue

        def word(key: str, row: dict = row) -> str | None:
            value = row.get(key)
            return value if isinstance(value, str) and value else None

        units[name] = UnitState(
            name=name, load=word("load"), active=word("active"), sub=word("sub")
        )
    return units


class Systemctl:
    """``SystemdClient`` through the systemctl command, as SETTINGS say to reach the manager."""

    def __init__(self, settings: HostSettings) -> None:
        self.settings = settings

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        argv = self.settings.systemctl_argv(*args)
        timeout = self.settings.timeout
        try:
            return subprocess.run(
                argv,
                capture_output=True,
                text=True,
                errors="replace",
                env=self.settings.command_env(),
                timeout=timeout,
                stdin=subprocess.DEVNULL,
                check=False,
            )
        except FileNotFoundError as exc:
            raise SystemdError("systemctl is not installed") from exc
        except subprocess.TimeoutExpired as exc:
            raise SystemdError(f"systemctl did not answer within {timeout:g} s") from exc
        except OSError as exc:
            raise SystemdError(f"cannot run systemctl: {exc.strerror or exc}") from exc

    @staticmethod
    def _failure(proc: subprocess.CompletedProcess[str]) -> SystemdError:
        message = (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
        return SystemdError(f"systemd is not reachable: {message}")

    def list_units(self, patterns: Sequence[str]) -> dict[str, UnitState]:
        proc = self._run("list-units", "--all", "--output=json", "--", *patterns)
        if proc.returncode != 0:
            raise self._failure(proc)
        return parse_list_units(proc.stdout)

    def show(self, units: Sequence[str]) -> dict[str, UnitState]:
        if not units:
            return {}
        proc = self._run("show", "--timestamp=unix", "-p", ",".join(PROPERTIES), "--", *units)
        found = parse_show(proc.stdout)
        if proc.returncode != 0 and not found:
            raise self._failure(proc)
        return found

    def properties(self, units: Sequence[str], names: Sequence[str]) -> dict[str, dict[str, str]]:
        """The properties NAMES (and Id) of UNITS, raw, by unit (loaded units only are worth
        asking: `show` loads a unit it is asked about)."""
        proc = self._run("show", "--timestamp=unix", "-p", ",".join(["Id", *names]), "--", *units)
        found = show_blocks(proc.stdout)
        if proc.returncode != 0 and not found:
            raise self._failure(proc)
        return found


def not_loaded(name: str) -> UnitState:
    """A unit systemd has not loaded: it is not running and has never restarted since it was
    last unloaded (what `systemctl show` would say after loading it). Its load state is
    left unknown: we did not load it to find out."""
    return UnitState(name=name, active="inactive", sub="dead", restarts=0)


def unknown(name: str, reason: str) -> UnitState:
    return UnitState(name=name, active="unknown", error=reason)


def needs_show(unit: UnitState, main: bool) -> bool:
    """Whether list-units' words are not enough for UNIT: a main unit (its pid, cgroup and
    restarts feed the sampler and the crash-loop check) whenever it is loaded, a helper unless
    it is in a quiet state."""
    if main:
        return True
    return (unit.active, unit.sub) not in QUIET


@dataclass
class UnitReport:
    """The state of every unit asked about, and what went wrong (None: nothing)."""

    units: dict[str, UnitState] = field(default_factory=dict)
    error: str | None = None
    note: str | None = None  # how systemd was asked, when not the usual way (client's note)


def _chunks(names: Sequence[str], size: int) -> list[Sequence[str]]:
    return [names[i : i + size] for i in range(0, len(names), size)]


def unit_states(
    client: SystemdClient,
    main_units: Iterable[str],
    helper_units: Iterable[str] = (),
    *,
    chunk: int = SHOW_CHUNK,
    workers: int = SHOW_WORKERS,
) -> UnitReport:
    """The state of each of MAIN_UNITS and HELPER_UNITS: one list-units, then `show` for the
    loaded ones that need it, CHUNK names a call, WORKERS calls at once. A chunk that fails
    leaves its units with list-units' words and the error; list-units failing leaves every
    unit unknown."""
    mains = list(dict.fromkeys(main_units))
    seen = set(mains)
    helpers = [h for h in dict.fromkeys(helper_units) if h not in seen]
    try:
        loaded = client.list_units(PATTERNS)
    except SystemdError as exc:
        error = str(exc)
        note = getattr(client, "note", None)
        return UnitReport({n: unknown(n, error) for n in [*mains, *helpers]}, error, note)
    states: dict[str, UnitState] = {}
    ask: list[str] = []
    for names, main in ((mains, True), (helpers, False)):
        for name in names:
            listed = loaded.get(name)
            if listed is None:
                states[name] = not_loaded(name)
                continue
            states[name] = listed
            if needs_show(listed, main):
                ask.append(name)
    parts = _chunks(ask, max(1, chunk))
    errors: list[str] = []

    def one(part: Sequence[str]) -> tuple[Sequence[str], dict[str, UnitState] | str]:
        try:
            return part, client.show(part)
        except SystemdError as exc:
            return part, str(exc)

    if len(parts) <= 1 or workers <= 1:
        answers = [one(p) for p in parts]
    else:
        with ThreadPoolExecutor(max_workers=min(workers, len(parts))) as pool:
            answers = list(pool.map(one, parts))
    for part, answer in answers:
        for name in part:
            if isinstance(answer, str):
                states[name].error = f"no details from systemd: {answer}"
            elif name in answer:
                states[name] = answer[name]
            else:
                states[name].error = "systemd did not report this unit"
        if isinstance(answer, str):
            errors.append(answer)
    error = None
    if errors:
        failed = sum(len(p) for p, a in answers if isinstance(a, str))
        error = f"{errors[0]} (no details for {failed} of {len(ask)} loaded units)"
    return UnitReport(states, error, getattr(client, "note", None))
