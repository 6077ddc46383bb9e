"""Many hosts against the lab (real QEMU guests, a real systemd manager) reached over real
ssh to the lab host's own sshd: `list --json --all-hosts` shows the lab's VMs; stopping the
sshd makes the host unreachable in one line, and it comes back by itself."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


async def fleet_up(pilot: Any, hosts: tuple[str, ...], running: list[str], timeout: float) -> Any:
    """The fleet view once every host is reachable and each runs RUNNING: (its screen, its
    VM table, the State cell's text of a host-qualified key)."""
    from tests.conftest import until_in_app
    from tui.screens.fleet import FleetScreen
    from tui.widgets.fleet_table import FleetTable

    app = pilot.app
    await until_in_app(pilot, lambda: isinstance(app.screen, FleetScreen), 30, what="fleet")
    screen = app.screen
    table = screen.query_one(FleetTable)

    def state(key: str) -> str:
        return table.get_row(key)[2].plain if key in table.keys else ""

    def all_up() -> bool:
        snap = screen.snapshot
        if snap is None or not all(s.reachable for s in snap.hosts):
            return False
        return all("running" in state(f"{h}/{n}") for h in hosts for n in running)

    await until_in_app(pilot, all_up, timeout, what=f"the running VMs of {', '.join(hosts)}")
    return screen, table, state


async def test_the_fleet_view_shows_the_lab_here_and_over_ssh_side_by_side(lab: Lab) -> None:
    """One lab reached two ways: as this host (LiveSource) and over its sshd (the agent), in
    one fleet table; the same VM names under two host-qualified keys, both hosts' rows up,
    and the running VMs running on both. Enter opens a remote VM's usual detail."""
    from tests.conftest import until_in_app
    from tui.app import MicroVMApp
    from tui.config import load_settings
    from tui.feed.fleet import FLEET_REMOTE, fleet_source

    settings = load_settings(lab.config_path)
    host = RemoteHost("lab-ssh", tuple(lab.sshd.ssh_args()), agent_command(lab))
    source = fleet_source(settings, [host], "local")
    app = MicroVMApp(settings, source, tty_watch=False, remote=FLEET_REMOTE)
    names = sorted(s.name for s in lab.specs)
    running = sorted(s.name for s in lab.specs if s.role == "running")
    async with app.run_test(size=(200, 50)) as pilot:
        screen, table, _ = await fleet_up(pilot, ("local", "lab-ssh"), running, 120)
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


def test_lab_fleet_writes_a_config_of_this_lab_and_its_peer_over_ssh(lab: Lab) -> None:
    """`lab fleet DIR PEER` (what `./dev demo fleet` runs): DIR's settings as this machine and
    PEER as a host reached over PEER's sshd, with PEER's settings in its agent's command. Here
    PEER is the same lab, so `list --json --all-hosts` with it shows the lab's VMs twice."""
    from tui.config import load_settings
    from tui.lab.cli import host_name, main

    assert main(["fleet", str(lab.root), str(lab.root)]) == 0
    path = lab.root / "fleet.toml"
    assert path.stat().st_mode & 0o022 == 0  # the app refuses a config others can write
    settings = load_settings(path)
    name = host_name(lab)
    assert list(settings.hosts) == [name]
    assert settings.hosts[name].ssh == tuple(lab.sshd.ssh_args())
    assert settings.host.state_dir == lab.state_dir
    out = subprocess.run(
        [sys.executable, "-m", "tui", "--config", str(path), "list", "--json", "--all-hosts"],
        capture_output=True, text=True, timeout=120, cwd="/", check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    hosts = {h["host"]: h for h in json.loads(out.stdout)["hosts"]}
    assert list(hosts) == ["local", name]
    want = sorted(s.name for s in lab.specs)
    for host in hosts.values():
        assert host["error"] is None, host
        assert sorted(vm["name"] for vm in host["vms"]) == want


def test_lab_fleet_refuses_a_lab_that_is_not_up(lab: Lab, tmp_path: Path, capsys) -> None:
    from tui.lab.cli import main

    assert main(["fleet", str(lab.root), str(tmp_path / "nolab")]) == 1
    err = capsys.readouterr().err.strip()
    nolab = tmp_path / "nolab"
    assert err == f"error: {nolab} is not up: run `microvm-tui lab up {nolab}` first"


@pytest.fixture(scope="module")
def second_lab() -> Iterator[Lab]:
    """A second lab host beside the session's, up for this module only (its guests cost CPU)."""
    from tests.conftest import lab_root

    other = Lab(lab_root())
    try:
        other.up()
        yield other
    finally:
        other.down()


async def test_the_fleet_view_shows_two_labs_each_over_its_own_ssh(
    lab: Lab, second_lab: Lab
) -> None:
    """Two lab hosts, each reached over real ssh to its own sshd (what `./dev demo fleet` opens,
    written by `lab fleet`): the fleet table holds both labs' VMs, each under its host, and
    each lab's running VMs run; stopping a VM on one lab changes only that lab's row."""
    from tests.conftest import until_in_app
    from tui.app import MicroVMApp
    from tui.config import load_settings
    from tui.feed.fleet import FLEET_REMOTE, fleet_source
    from tui.lab.cli import host_name, main

    assert main(["fleet", str(lab.root), str(second_lab.root)]) == 0
    settings = load_settings(lab.root / "fleet.toml")
    other = host_name(second_lab)
    assert list(settings.hosts) == [other]
    source = fleet_source(settings, list(settings.hosts.values()), "local")
    app = MicroVMApp(settings, source, tty_watch=False, remote=FLEET_REMOTE)
    names = sorted(s.name for s in lab.specs)
    running = sorted(s.name for s in lab.specs if s.role == "running")
    async with app.run_test(size=(200, 50)) as pilot:
        screen, table, state = await fleet_up(pilot, ("local", other), running, 180)
        keys = sorted(table.keys)
        assert keys == sorted([f"local/{n}" for n in names] + [f"{other}/{n}" for n in names])
        snap = screen.snapshot
        assert snap is not None
        remote = next(s for s in snap.hosts if s.name == other)
        assert remote.snapshot is not None
        assert remote.snapshot.inventory.state_dir == second_lab.state_dir != lab.state_dir

        # A change on the second lab's host shows in its row only.
        victim = running[0]
        unit = f"microvm@{victim}.service"
        second_lab.manager.systemctl("stop", unit)  # the module's lab goes down after this
        await until_in_app(
            pilot, lambda: "running" not in state(f"{other}/{victim}"), 30, what="the stop"
        )
        assert "running" in state(f"local/{victim}")
