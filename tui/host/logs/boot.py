"""When "this boot" of a VM began: its units' current activation, as systemd tells it.

journald marks a unit's lines with the invocation (`_SYSTEMD_INVOCATION_ID`) only where it can
read the invocation from the unit's cgroup; that fails under a user manager on a hybrid cgroup
tree (the lab), so "this boot" is the time the current invocation of microvm@NAME left
"inactive", or, earlier, when the helper units that started for it did (they run just before).
"""

from __future__ import annotations

import subprocess

from tui.host.logs.query import vm_units
from tui.host.settings import HostSettings
from tui.host.systemd import timestamp_usec

# A helper unit counts as part of this boot when it started at most this long before the VM.
HELPER_WINDOW_USEC = 10 * 60 * 1_000_000


def _blocks(text: str) -> list[dict[str, str]]:
    blocks: list[dict[str, str]] = [{}]
    for line in text.splitlines():
        if not line.strip():
            blocks.append({})
            continue
        key, sep, value = line.partition("=")
        if sep:
            blocks[-1][key] = value
    return [b for b in blocks if b]


def boot_start_usec(settings: HostSettings, vm: str) -> tuple[int | None, str]:
    """(when this boot began, the unit's InvocationID), or (None, why not)."""
    units = vm_units(vm)[:-1]  # install-microvm-NAME is not part of a boot
    argv = settings.systemctl_argv(
        "show",
        "--timestamp=unix",
        "-p",
        "Id,ActiveState,InactiveExitTimestamp,InvocationID",
        "--",
        *units,
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
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"systemd could not be asked: {exc}"
    found = {b.get("Id", ""): b for b in _blocks(proc.stdout)}
    main = found.get(units[0], {})
    start = timestamp_usec(main.get("InactiveExitTimestamp"))
    if start is None:
        return None, f"{units[0]} has not been started"
    earliest = start
    for unit in units[1:]:
        block = found.get(unit, {})
        began = timestamp_usec(block.get("InactiveExitTimestamp"))
        active = block.get("ActiveState") == "active"
        if active and began is not None and start - HELPER_WINDOW_USEC <= began <= start:
            earliest = min(earliest, began)
    return earliest, main.get("InvocationID", "")
