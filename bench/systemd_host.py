"""A real systemd manager for the benches: the lab's user manager (tui.lab.systemd.UserManager)
with unit templates shaped like microvm.nix's host module, over a synthetic state dir.

The synthetic runners cannot boot, so microvm@NAME runs `sleep` (a real main process, a real
unit cgroup, MainPID, NRestarts); microvm-set-booted@ and microvm-tap-interfaces@ are oneshot
helpers that stay active/exited, as on a host. A share of the VMs is started: their units (and
helpers) are loaded and active, the rest are not loaded, as for stopped VMs on a host.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tui.host.settings import HostSettings, SystemdBus
from tui.lab.config import write_config
from tui.lab.systemd import DBUS_DAEMON_BINARIES, UserManager

HELPERS = ("microvm-set-booted", "microvm-tap-interfaces")


def _units() -> dict[str, str]:
    helpers = " ".join(f"{h}@%i.service" for h in HELPERS)
    oneshot = (
        "[Unit]\nDescription=helper of MicroVM '%i'\nBefore=microvm@%i.service\n"
        "PartOf=microvm@%i.service\n\n[Service]\nType=oneshot\nRemainAfterExit=true\n"
        "ExecStart=/bin/true\n"
    )
    units = {f"{h}@.service": oneshot for h in HELPERS}
    units["microvm@.service"] = (
        f"[Unit]\nDescription=MicroVM '%i'\nRequires={helpers}\nAfter={helpers}\n\n"
        "[Service]\nType=simple\nExecStart=/bin/sleep infinity\nRestart=always\nRestartSec=2s\n"
    )
    units["microvms.target"] = "[Unit]\nDescription=MicroVMs\n"
    # The manager's own bus, as PID 1 has the system bus on a host (see tui.lab.systemd).
    dbus_daemon = next((p for p in DBUS_DAEMON_BINARIES if p.exists()), DBUS_DAEMON_BINARIES[0])
    units["dbus.socket"] = "[Unit]\nDescription=bench bus\n\n[Socket]\nListenStream=%t/bus\n"
    units["dbus.service"] = (
        "[Unit]\nDescription=bench bus\nRequires=dbus.socket\n\n[Service]\n"
        f"ExecStart={dbus_daemon} --session --address=systemd: --nofork --nopidfile\n"
    )
    return units


@contextlib.contextmanager
def systemd_host(root: Path) -> Iterator[tuple[UserManager, Path]]:
    """A user manager in ROOT (under /var/tmp); yields it and a config file pointing at it.
    The state dir is given to `list` with --state-dir."""
    digest = hashlib.sha256(str(root).encode()).hexdigest()[:8]
    manager = UserManager(
        runtime_dir=root / "run",
        config_home=root / "config",
        home=root / "home",
        cgroup_name=f"mvtui-bench-{digest}",
        log_path=root / "manager.log",
        journal_dir=root / "journal",
    )
    manager.unit_dir.mkdir(parents=True, exist_ok=True)
    for name, text in _units().items():
        (manager.unit_dir / name).write_text(text)
    manager.start()
    manager.ensure_bus()
    settings = HostSettings(
        state_dir=root / "unused",
        systemd_scope="user",
        systemd_env={"XDG_RUNTIME_DIR": str(manager.runtime_dir)},
        journal_dir=manager.journal_dir,  # the units log to the lab's journald, as on a host
        systemd_bus=SystemdBus("path", manager.bus_path),
    )
    config = root / "microvm-tui.toml"
    write_config(config, settings)
    os.chmod(config, 0o600)
    try:
        yield manager, config
    finally:
        manager.stop()
        from tui.lab.procs import remove_cgroups

        remove_cgroups(manager.cgroup_name)


def start_vms(manager: UserManager, names: list[str], timeout: float = 120) -> None:
    """Start microvm@NAME for NAMES and wait until each is active (the main process runs)."""
    units = [f"microvm@{n}.service" for n in names]
    for i in range(0, len(units), 200):
        manager.systemctl("start", "--no-block", *units[i : i + 200])
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = manager.systemctl(
            "list-units", "--plain", "--no-legend", "--state=running", "microvm@*", check=False
        ).stdout
        running = sum(1 for line in out.splitlines() if line.startswith("microvm@"))
        if running >= len(units):
            return
        time.sleep(0.5)
    raise SystemExit(f"only some of {len(units)} bench units came up within {timeout:.0f} s")


def stop_all(manager: UserManager) -> None:
    manager.systemctl("stop", "microvm@*.service", check=False, timeout=300)
