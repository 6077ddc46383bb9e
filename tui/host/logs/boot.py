"""When "this boot" of a VM began: its units' current activation, as systemd tells it.

journald marks a unit's lines with the invocation (`_SYSTEMD_INVOCATION_ID`) only where it can
read the invocation from the unit's cgroup; that fails under a user manager on a hybrid cgroup
tree (the lab), so "this boot" is the time the current invocation of microvm@NAME left
"inactive", or, earlier, when the helper units that started for it did (they run just before).
"""

from __future__ import annotations

from dataclasses import replace

from tui.host.logs.query import LogQuery, Since, vm_units
from tui.host.settings import HostSettings
from tui.host.systemd import Systemctl, SystemdError, timestamp_usec

# A helper unit counts as part of this boot when it started at most this long before the VM.
HELPER_WINDOW_USEC = 10 * 60 * 1_000_000


def boot_start_usec(settings: HostSettings, vm: str) -> tuple[int | None, str]:
    """(when this boot began, the unit's InvocationID), or (None, why not)."""
    units = vm_units(vm)[:-1]  # install-microvm-NAME is not part of a boot
    client = Systemctl(settings)
    try:
        # `show` loads a unit it is asked about: only the loaded ones are asked.
        loaded = [u for u in units if u in client.list_units(units)]
        found = (
            client.properties(loaded, ("ActiveState", "InactiveExitTimestamp", "InvocationID"))
            if loaded
            else {}
        )
    except SystemdError as exc:
        return None, f"systemd could not be asked: {exc}"
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


def with_boot_start(
    settings: HostSettings, vm: str, query: LogQuery
) -> tuple[LogQuery | None, str]:
    """QUERY with "this boot" turned into its start time (the host's units and the guest's own
    journal alike: both are this boot's from when the VM started); (None, why) when it has no
    start. Other queries as they are."""
    if query.since is not Since.BOOT:
        return query, ""
    start, why = boot_start_usec(settings, vm)
    if start is None:
        return None, why
    return replace(query, since_usec=start), ""
