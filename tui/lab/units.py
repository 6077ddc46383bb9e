"""The lab's systemd unit files: templates equivalent to microvm.nix's host module
(``microvm@``, its helper units, ``microvms.target``) plus the manager's own D-Bus and journal,
written only when they changed."""

from __future__ import annotations

import re
from pathlib import Path

from tui.lab.systemd import DBUS_DAEMON_BINARIES

HELPERS = (
    "microvm-tap-interfaces",
    "microvm-macvtap-interfaces",
    "microvm-pci-devices",
    "microvm-virtiofsd",
    "microvm-set-booted",
)

_UNSAFE = re.compile(r"[\s\"'\\$%;]")


def unit_path(p: Path) -> str:
    """A path for a unit file: we refuse anything that would need quoting."""
    s = str(p)
    if _UNSAFE.search(s):
        raise ValueError(f"the lab needs a path without spaces, quotes, $, % or ; (got {s!r})")
    return s


def _unit(sections: dict[str, list[tuple[str, str]]]) -> str:
    out = []
    for section, items in sections.items():
        out.append(f"[{section}]")
        out += [f"{k}={v}" for k, v in items]
        out.append("")
    return "\n".join(out)


def unit_files(
    *,
    state_dir: Path,
    netns: str,
    ip: str,
    autostart: list[str],
    restart_sec: str = "2s",
) -> dict[str, str]:
    """Unit templates as nixos-modules/host/default.nix defines them, for a user manager:
    no User=/Group=, taps and hypervisor inside the lab's network namespace (`ip netns exec`
    execs, so MainPID is still the hypervisor), output to the lab's journald, RestartSec 2s
    (upstream 5s) to keep tests quick."""
    st = unit_path(state_dir)
    vm = f"{st}/%i"
    netns_exec = f"{ip} netns exec {netns}"

    def helper(
        description: str,
        condition: str | None,
        after: list[str],
        service: list[tuple[str, str]],
    ) -> str:
        unit = [("Description", description), ("Before", "microvm@%i.service")]
        unit.append(("PartOf", "microvm@%i.service"))
        if after:
            unit.append(("After", " ".join(after)))
        if condition:
            unit.append(("ConditionPathExists", condition))
        return _unit({"Unit": unit, "Service": service})

    units = {
        "microvm-tap-interfaces@.service": helper(
            "Setup MicroVM '%i' TAP interfaces",
            f"{vm}/current/bin/tap-up",
            ["network.target", "microvm-set-booted@%i.service"],
            [
                ("Type", "oneshot"),
                ("RemainAfterExit", "true"),
                ("SyslogIdentifier", "microvm-tap-interfaces@%i"),
                ("ExecStart", f"{netns_exec} {vm}/current/bin/tap-up"),
                ("ExecStop", f"{netns_exec} {vm}/booted/bin/tap-down"),
            ],
        ),
        "microvm-macvtap-interfaces@.service": helper(
            "Setup MicroVM '%i' MACVTAP interfaces",
            f"{vm}/current/bin/macvtap-up",
            ["microvm-set-booted@%i.service"],
            [
                ("Type", "oneshot"),
                ("RemainAfterExit", "true"),
                ("SyslogIdentifier", "microvm-macvtap-interfaces@%i"),
                ("ExecStart", f"{netns_exec} {vm}/current/bin/macvtap-up"),
                ("ExecStop", f"{netns_exec} {vm}/booted/bin/macvtap-down"),
            ],
        ),
        "microvm-pci-devices@.service": helper(
            "Setup MicroVM '%i' devices for passthrough",
            f"{vm}/current/bin/pci-setup",
            [],
            [
                ("Type", "oneshot"),
                ("RemainAfterExit", "true"),
                ("SyslogIdentifier", "microvm-pci-devices@%i"),
                ("ExecStart", f"{vm}/current/bin/pci-setup"),
            ],
        ),
        "microvm-virtiofsd@.service": helper(
            "VirtioFS daemons for MicroVM '%i'",
            f"{vm}/current/bin/virtiofsd-run",
            ["local-fs.target", "microvm-set-booted@%i.service"],
            [
                ("WorkingDirectory", vm),
                ("ExecStart", f"{vm}/current/bin/virtiofsd-run"),
                ("LimitNOFILE", "1048576"),
                ("NotifyAccess", "all"),
                # microvm.nix sets PrivateTmp=yes; not here: it hides /var/tmp, where the
                # lab (and so the runner's virtiofsd-run) lives.
                ("Restart", "always"),
                ("RestartSec", restart_sec),
                ("SyslogIdentifier", "microvm-virtiofsd@%i"),
                ("Type", "notify"),
                ("KillMode", "mixed"),
            ],
        ),
        "microvm-set-booted@.service": helper(
            "Save MicroVM '%i' booted configuration",
            None,
            [],
            [
                ("Type", "oneshot"),
                ("RemainAfterExit", "true"),
                ("SyslogIdentifier", "microvm-set-booted@%i"),
                ("WorkingDirectory", vm),
                ("ExecStart", "/bin/sh -c 'rm -f booted; ln -s \"$$(readlink current)\" booted'"),
                ("ExecStop", "/bin/rm booted"),
            ],
        ),
    }
    helper_units = " ".join(f"{h}@%i.service" for h in HELPERS)
    units["microvm@.service"] = _unit(
        {
            "Unit": [
                ("Description", "MicroVM '%i'"),
                ("Requires", helper_units),
                ("After", f"network.target systemd-modules-load.service {helper_units}"),
                ("ConditionPathExists", f"{vm}/current/bin/microvm-run"),
            ],
            "Service": [
                ("Type", "simple"),
                ("WorkingDirectory", vm),
                ("ExecStart", f"{netns_exec} {vm}/current/bin/microvm-run"),
                ("ExecStop", f"{vm}/booted/bin/microvm-shutdown"),
                ("TimeoutSec", "150"),
                ("Restart", "always"),
                ("RestartSec", restart_sec),
                ("SyslogIdentifier", "microvm@%i"),
                ("LimitNOFILE", "1048576"),
                ("NotifyAccess", "all"),
                ("LimitMEMLOCK", "infinity"),
            ],
        }
    )
    dbus_daemon = next((p for p in DBUS_DAEMON_BINARIES if p.exists()), DBUS_DAEMON_BINARIES[0])
    units["dbus.socket"] = _unit(
        {
            "Unit": [("Description", "The lab's D-Bus socket (a host's dbus.socket)")],
            "Socket": [("ListenStream", "%t/bus")],
        }
    )
    units["dbus.service"] = _unit(
        {
            "Unit": [
                ("Description", "The lab's D-Bus (a host's dbus.service)"),
                ("Requires", "dbus.socket"),
            ],
            "Service": [
                ("ExecStart", f"{dbus_daemon} --session --address=systemd: --nofork --nopidfile"),
            ],
        }
    )
    units["microvms.target"] = _unit(
        {
            "Unit": [
                ("Description", "MicroVMs"),
                ("Wants", " ".join(f"microvm@{n}.service" for n in autostart)),
            ],
        }
    )
    return units


def write_units(unit_dir: Path, units: dict[str, str]) -> bool:
    """Write unit files, drop stale ones of ours. True if anything changed."""
    unit_dir.mkdir(parents=True, exist_ok=True)
    changed = False
    for name, text in units.items():
        path = unit_dir / name
        if path.is_file() and path.read_text() == text:
            continue
        tmp = path.with_name(name + ".tmp")
        tmp.write_text(text)
        tmp.replace(path)
        changed = True
    for path in unit_dir.iterdir():
        if path.name not in units and path.name.startswith("microvm"):
            path.unlink()
            changed = True
    return changed
