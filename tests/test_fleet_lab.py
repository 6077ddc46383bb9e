"""Many hosts against the lab (real QEMU guests, a real systemd manager) reached over real
ssh to the lab host's own sshd: `list --json --all-hosts` shows the lab's VMs; stopping the
sshd makes the host unreachable in one line, and it comes back by itself."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import wait_for
from tui.agent.client import RemoteHostError, RemoteSource
from tui.agent.hosts import RemoteHost
from tui.agent.ssh import SSH
from tui.lab import Lab

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parent.parent


def agent_command(lab: Lab) -> str:
    """The agent as the lab host runs it: this checkout's code, the lab's settings."""
    return (
        f"cd {shlex.quote(str(REPO))} && exec {shlex.quote(sys.executable)} -m tui "
        f"--config {shlex.quote(str(lab.config_path))} agent"
    )


def test_lab_up_starts_its_sshd(lab: Lab) -> None:
    out = subprocess.run(
        [SSH, *lab.sshd.ssh_args(), "id -un"], capture_output=True, timeout=30, check=False
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout == b"root\n"
    assert lab.status()["sshd_pid"] == lab.sshd.pid() is not None
    assert lab.sshd.ssh_config == lab.root / "ssh" / "ssh_config"


def test_list_all_hosts_over_real_ssh_shows_the_lab_vms(lab: Lab, tmp_path: Path) -> None:
    config = tmp_path / "hosts.toml"
    config.write_text(
        f"[hosts.lab]\nssh = {json.dumps(lab.sshd.ssh_args())}\n"
        f"agent = {json.dumps(agent_command(lab))}\n"
        '[hosts.gone]\nssh = ["-F", '
        f'{json.dumps(str(lab.sshd.ssh_config))}, "-p", "1", {json.dumps(lab.sshd.alias)}]\n'
    )
    config.chmod(0o644)
    empty = tmp_path / "vms"
    empty.mkdir()
    out = subprocess.run(
        [sys.executable, "-m", "tui", "--config", str(config), "--state-dir", str(empty),
         "list", "--json", "--all-hosts"],
        capture_output=True, text=True, timeout=120, cwd=REPO, check=False,
    )  # fmt: skip
    assert out.returncode == 1, out.stderr  # one host is unreachable
    hosts = {h["host"]: h for h in json.loads(out.stdout)["hosts"]}
    assert list(hosts) == ["local", "lab", "gone"]
    assert hosts["local"]["vms"] == [] and hosts["local"]["error"] is None
    remote = hosts["lab"]
    assert remote["error"] is None and remote["ssh"] == lab.sshd.ssh_args()
    assert remote["state_dir"] == str(lab.state_dir)
    names = [vm["name"] for vm in remote["vms"]]
    assert sorted(names) == sorted(s.name for s in lab.specs)
    units = {vm["name"]: (vm["unit"] or {}).get("active") for vm in remote["vms"]}
    for spec in lab.specs:
        if spec.role == "running":
            assert units[spec.name] == "active", spec.name
    assert hosts["gone"]["error"] == "ssh: connect to host 127.0.0.1 port 1: Connection refused"
    assert "vms" not in hosts["gone"]


def test_stopping_the_lab_sshd_is_unreachable_then_back_by_itself(lab: Lab) -> None:
    host = RemoteHost("lab", tuple(lab.sshd.ssh_args()), agent_command(lab))
    source = RemoteSource(host, interval=1.0, backoff_max=2.0)
    try:
        snap = source.poll()
        assert {vm.name for vm in snap.inventory.vms} == {s.name for s in lab.specs}
        port = lab.sshd.port()
        lab.sshd.stop()
        stopped = time.monotonic()

        def reason() -> str | None:
            try:
                source.poll()
            except RemoteHostError as exc:
                return exc.reason
            return None

        first = wait_for(reason, 10, what="the host unreachable")
        assert time.monotonic() - stopped < 3.0
        refused = f"ssh: connect to host 127.0.0.1 port {port}: Connection refused"
        # The session's end (ssh's own line), then the retries' reason.
        assert first in ("Connection to 127.0.0.1 closed by remote host.", refused)
        wait_for(lambda: reason() == refused, 10, what="a refused retry")
        lab.sshd.start()
        wait_for(lambda: source.connected, 30, what="the host back")
        back = source.poll_complete()
        assert {vm.name for vm in back.inventory.vms} == {s.name for s in lab.specs}
        assert back.samples  # the running VMs are sampled on the lab host
    finally:
        source.close()
        lab.sshd.start()


async def test_the_fleet_view_shows_the_lab_here_and_over_ssh_side_by_side(lab: Lab) -> None:
    """One lab reached two ways: as this host (LiveSource) and over its sshd (the agent), in
    one fleet table; the same VM names under two host-qualified keys, both hosts' rows up,
    and the running VMs running on both. Enter opens a remote VM's usual detail."""
    from tests.conftest import until_in_app
    from tui.app import MicroVMApp
    from tui.config import load_settings
    from tui.feed.fleet import FLEET_REMOTE, fleet_source
    from tui.screens.fleet import FleetScreen
    from tui.widgets.fleet_table import FleetTable

    settings = load_settings(lab.config_path)
    host = RemoteHost("lab-ssh", tuple(lab.sshd.ssh_args()), agent_command(lab))
    source = fleet_source(settings, [host], "local")
    app = MicroVMApp(settings, source, tty_watch=False, remote=FLEET_REMOTE)
    names = sorted(s.name for s in lab.specs)
    running = sorted(s.name for s in lab.specs if s.role == "running")
    async with app.run_test(size=(200, 50)) as pilot:
        await until_in_app(pilot, lambda: isinstance(app.screen, FleetScreen), 30, what="fleet")
        screen = app.screen
        assert isinstance(screen, FleetScreen)
        table = screen.query_one(FleetTable)

        def state(key: str) -> str:
            return table.get_row(key)[2].plain if key in table.keys else ""

        def both_up() -> bool:
            snap = screen.snapshot
            if snap is None or not all(s.reachable for s in snap.hosts):
                return False
            return all(
                "running" in state(f"{h}/{n}") for h in ("local", "lab-ssh") for n in running
            )

        await until_in_app(pilot, both_up, 120, what="both hosts' running VMs")
        keys = sorted(k for k in table.keys)
        assert keys == sorted([f"local/{n}" for n in names] + [f"lab-ssh/{n}" for n in names])
        snap = screen.snapshot
        assert snap is not None
        remote_status = next(s for s in snap.hosts if s.name == "lab-ssh")
        assert remote_status.rtt_ms is not None and remote_status.error is None
        assert remote_status.snapshot is not None
        assert remote_status.snapshot.inventory.state_dir == lab.state_dir

        table.move_cursor(row=table.get_row_index(f"lab-ssh/{running[0]}"))
        table.focus()
        await pilot.press("enter")
        await until_in_app(pilot, lambda: app.screen is app.main_screen, 10, what="the monitor")
        assert app.main_screen.selected_name == f"lab-ssh/{running[0]}"
