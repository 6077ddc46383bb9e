"""Ask systemd about microvm@NAME and its helper units, all VMs in one call."""

from __future__ import annotations

import subprocess
from collections.abc import Iterable

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


def _int(value: str | None) -> int | None:
    if value is None or value == "" or value == "[not set]":
        return None
    try:
        return int(value)
    except ValueError:
        return None


def _timestamp_usec(value: str | None) -> int | None:
    # With --timestamp=unix systemd prints "@1700000000"; empty/"n/a" when never entered.
    if not value or not value.startswith("@"):
        return None
    try:
        seconds = float(value[1:])
    except ValueError:
        return None
    return int(seconds * 1_000_000) if seconds > 0 else None


def parse_show(text: str) -> dict[str, UnitState]:
    """Parse `systemctl show -p ... UNIT...` output: KEY=VALUE blocks split by blank lines."""
    units: dict[str, UnitState] = {}
    block: dict[str, str] = {}

    def flush() -> None:
        unit_id = block.get("Id")
        if unit_id:
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
                active_enter_usec=_timestamp_usec(block.get("ActiveEnterTimestamp")),
                result=block.get("Result") or None,
            )
        block.clear()

    for line in text.splitlines():
        if not line.strip():
            flush()
            continue
        key, sep, value = line.partition("=")
        if sep:
            block[key] = value
    flush()
    return units


def show_units(settings: HostSettings, units: Iterable[str]) -> dict[str, UnitState]:
    """One `systemctl show` for all UNITS. Raises SystemdError when systemd can't be asked."""
    names = list(dict.fromkeys(units))
    if not names:
        return {}
    argv = settings.systemctl_argv(
        "show", "--timestamp=unix", "-p", ",".join(PROPERTIES), "--", *names
    )
    try:
        proc = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            errors="replace",
            env=settings.command_env(),
            timeout=settings.timeout,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except FileNotFoundError as exc:
        raise SystemdError("systemctl is not installed") from exc
    except subprocess.TimeoutExpired as exc:
        raise SystemdError(f"systemctl did not answer within {settings.timeout:g} s") from exc
    except OSError as exc:
        raise SystemdError(f"cannot run systemctl: {exc.strerror or exc}") from exc
    units_found = parse_show(proc.stdout)
    if proc.returncode != 0 and not units_found:
        message = (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
        raise SystemdError(f"systemd is not reachable: {message}")
    return units_found


def unknown(name: str, reason: str) -> UnitState:
    return UnitState(name=name, active="unknown", error=reason)
