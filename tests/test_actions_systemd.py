"""start / stop / restart / force-stop / delete against a real systemd user manager.

The manager is our own: started in a private mount namespace (so it believes systemd
booted the machine), with its own XDG_RUNTIME_DIR and XDG_CONFIG_HOME (its unit folder), and
ended by its pid at the end of the module. Its microvm@.service is a stand-in for the host
module's: same name and working directory, `booted` set on start and removed on stop, but
the service itself is a `sleep`, not a hypervisor.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.test_actions_support import (
    FlakeDir,
    make_settings,
    new_gcroots_dir,
    write_flake,
)
from tui.host import tools
from tui.host.actions import operations as ops
from tui.host.settings import HostSettings

SYSTEMD = Path("/lib/systemd/systemd")
pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not SYSTEMD.exists() or shutil.which("nix") is None,
    reason="needs root, systemd and nix",
)

UNIT = """[Unit]
Description=stand-in for microvm@%i

[Service]
WorkingDirectory={state}/%i
ExecStart=/bin/sleep 3600
ExecStartPost=/bin/sh -c 'ln -sfn "$(readlink current)" booted'
ExecStopPost=/bin/rm -f booted
"""

START_MANAGER = (
    "mkdir -p /run/systemd && mount -t tmpfs tmpfs /run/systemd && "
    "mkdir /run/systemd/system && exec /lib/systemd/systemd --user"
)


def _wait_until(check, timeout: float) -> bool:  # type: ignore[no-untyped-def]
    """Poll CHECK until true (the manager's bus socket has no event to wait on)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


@pytest.fixture(scope="module")
def manager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    base = tmp_path_factory.mktemp("systemd")
    runtime = base / "runtime"
    runtime.mkdir(mode=0o700)
    config = base / "config"
    units = config / "systemd" / "user"
    units.mkdir(parents=True)
    state = base / "state"
    state.mkdir()
    (units / "microvm@.service").write_text(UNIT.format(state=state))
    env = {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": str(base),
        "XDG_RUNTIME_DIR": str(runtime),
        "XDG_CONFIG_HOME": str(config),
    }
    log = (base / "manager.log").open("wb")
    proc = subprocess.Popen(
        ["unshare", "-m", "sh", "-c", START_MANAGER],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        assert _wait_until(lambda: (runtime / "systemd" / "private").exists(), 20), (
            base / "manager.log"
        ).read_text()
        subprocess.run(
            ["systemctl", "--user", "is-system-running", "--wait"],
            env=env,
            capture_output=True,
            timeout=30,
            check=False,
        )
        yield {"runtime": runtime, "state": state}
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture
def settings(manager: dict[str, Path]) -> Iterator[HostSettings]:
    roots = new_gcroots_dir()
    yield make_settings(
        manager["state"],
        roots,
        systemd_scope="user",
        systemd_env={"XDG_RUNTIME_DIR": str(manager["runtime"])},
    )
    shutil.rmtree(roots, ignore_errors=True)


@pytest.fixture(scope="module")
def flake(tmp_path_factory: pytest.TempPathFactory) -> FlakeDir:
    return write_flake(tmp_path_factory.mktemp("flake"), {"web": "ok", "db": "ok", "app": "ok"})


def show(settings: HostSettings, name: str) -> dict[str, str]:
    out = subprocess.run(
        settings.systemctl_argv("show", "-p", "ActiveState,MainPID", f"microvm@{name}.service"),
        env=settings.command_env(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def test_start_restart_force_stop_and_stop(settings: HostSettings, flake: FlakeDir) -> None:
    ops.create(settings, "web", flake=flake.ref)
    vm_dir = settings.state_dir / "web"
    commands: list = []
    reporter = ops.Reporter(command=commands.append)

    assert ops.start(settings, "web", reporter).message == "started web"
    first = show(settings, "web")
    assert first["ActiveState"] == "active"
    assert os.readlink(vm_dir / "booted") == os.readlink(vm_dir / "current")

    ops.restart(settings, "web", reporter)
    second = show(settings, "web")
    assert second["ActiveState"] == "active" and second["MainPID"] != first["MainPID"]

    ops.force_stop(settings, "web", reporter)
    assert show(settings, "web")["ActiveState"] in ("inactive", "failed")
    assert not (vm_dir / "booted").exists()
    ops.stop(settings, "web", reporter)  # stopping a stopped VM is fine

    argvs = [c.argv for c in commands]
    systemctl = tools.path("systemctl")  # by its absolute path, found on the fixed PATH
    assert systemctl.startswith("/")
    assert argvs[0] == (systemctl, "--user", "start", "microvm@web.service")
    assert (systemctl, "--user", "kill", "--signal=SIGKILL", "microvm@web.service") in argvs
    assert all(c.returncode == 0 and c.duration >= 0 for c in commands)
    ops.delete(settings, "web")


def test_create_and_start_then_update_with_restart(
    settings: HostSettings, flake: FlakeDir, tmp_path: Path
) -> None:
    own = write_flake(tmp_path / "flake", {"db": "ok"}, version="1")
    outcome = ops.create(settings, "db", flake=own.ref, start=True)
    assert outcome.message.endswith("and started it")
    vm_dir = settings.state_dir / "db"
    assert show(settings, "db")["ActiveState"] == "active"

    own.set_version("2")
    updated = ops.update(settings, "db", restart=True)
    assert updated.message.endswith("restarted it") and updated.restart_needed is False
    assert (
        os.readlink(vm_dir / "booted")
        == os.readlink(vm_dir / "current")
        != os.readlink(vm_dir / "old")
    )
    ops.delete(settings, "db")


def test_delete_stops_a_running_vm_first(settings: HostSettings, flake: FlakeDir) -> None:
    ops.create(settings, "app", flake=flake.ref, start=True)
    assert show(settings, "app")["ActiveState"] == "active"
    ops.delete(settings, "app")
    assert show(settings, "app")["ActiveState"] == "inactive"
    assert not (settings.state_dir / "app").exists()
    assert os.listdir(settings.gcroots_dir) == []
