"""create / update / rollback / delete with the real nix on a real (temporary) state dir.

Each test has its own state dir and its own GC roots folder under /nix/var/nix/gcroots
(removed afterwards). Nothing here touches /var/lib/microvms.
"""

from __future__ import annotations

import grp
import os
import shutil
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.test_actions_support import (
    FlakeDir,
    listing,
    make_settings,
    new_gcroots_dir,
    pid_alive,
    processes_with,
    with_descendants,
    write_flake,
)
from tui.host import tools
from tui.host.actions import operations as ops
from tui.host.actions.cancel import CancelToken
from tui.host.actions.errors import ActionError, Busy, Cancelled, Refused
from tui.host.actions.lock import lock_path
from tui.host.actions.nix import BuildFailed
from tui.host.settings import HostSettings

pytestmark = pytest.mark.skipif(shutil.which("nix") is None, reason="needs nix")


class Recorder:
    """A Reporter that keeps everything."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.progress: list = []
        self.commands: list = []
        self.reporter = ops.Reporter(
            log=self.lines.append, progress=self.progress.append, command=self.commands.append
        )


@pytest.fixture(scope="module")
def gcroots_parent() -> Iterator[Path]:
    path = new_gcroots_dir()
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def flake(tmp_path_factory: pytest.TempPathFactory) -> FlakeDir:
    """Shared by the tests that do not change it."""
    return write_flake(
        tmp_path_factory.mktemp("flake"),
        {"web": "ok", "db": "ok", "bad": "fail", "slow": "slow", "my.vm": "ok"},
    )


@pytest.fixture
def settings(tmp_path: Path, gcroots_parent: Path) -> HostSettings:
    # systemd is not reachable through this runtime dir: delete's `systemctl stop` fails as on
    # a host without the unit, which delete accepts for a VM without a 'booted' link.
    runtime = tmp_path / "no-systemd"
    runtime.mkdir()
    return make_settings(
        tmp_path / "state",
        gcroots_parent / tmp_path.name,
        systemd_scope="user",
        systemd_env={"XDG_RUNTIME_DIR": str(runtime)},
    )


def links(vm_dir: Path) -> dict[str, str | None]:
    return {
        name: (os.readlink(vm_dir / name) if (vm_dir / name).is_symlink() else None)
        for name in ("current", "old", "booted")
    }


def test_create_builds_and_puts_the_vm_in_place(settings: HostSettings, flake: FlakeDir) -> None:
    rec = Recorder()
    outcome = ops.create(settings, "web", rec.reporter, flake=flake.ref)

    vm_dir = settings.state_dir / "web"
    target = os.readlink(vm_dir / "current")
    assert target.startswith("/nix/store/") and target.endswith("-microvm-qemu-web")
    assert outcome.out_path == target
    assert outcome.changed
    assert (vm_dir / "current" / "bin" / "microvm-run").is_file()
    assert (vm_dir / "current" / "share" / "microvm" / "hypervisor").read_text() == "qemu\n"
    assert (vm_dir / "flake").read_bytes() == flake.ref.encode()  # no newline, like echo -n
    # Only the VM: no temp dir, no lock file left beside it.
    assert sorted(os.listdir(settings.state_dir)) == ["web"]
    assert sorted(os.listdir(vm_dir)) == ["current", "flake"]
    roots = settings.gcroots_dir
    assert os.readlink(roots / "web") == str(vm_dir / "current")
    assert os.readlink(roots / "booted-web") == str(vm_dir / "booted")
    # Upstream's chown :kvm -R, chmod -R a+rX, chmod g+w DIR.
    mode = stat.S_IMODE(vm_dir.stat().st_mode)
    assert mode == 0o775
    assert stat.S_IMODE((vm_dir / "flake").stat().st_mode) & 0o444 == 0o444
    try:
        kvm = grp.getgrnam("kvm").gr_gid
    except KeyError:
        assert any("no group 'kvm'" in note for note in outcome.notes)
    else:
        assert vm_dir.stat().st_gid == kvm
        assert os.lstat(vm_dir / "current").st_gid == kvm
    # The build was one recorded nix command, with the JSON log format.
    (nix_cmd,) = [c for c in rec.commands if c.argv[0] == tools.path("nix")]
    assert nix_cmd.returncode == 0 and nix_cmd.duration > 0
    assert nix_cmd.argv[-1] == f"{flake.ref}#nixosConfigurations.web.config.microvm.declaredRunner"
    assert "internal-json" in nix_cmd.argv
    assert any("microvm-qemu-web> building the runner of web" in line for line in rec.lines)
    last = rec.progress[-1]
    assert last.finished and last.builds_done == last.builds_expected


def test_create_refuses_an_existing_name_before_building(
    settings: HostSettings, flake: FlakeDir
) -> None:
    (settings.state_dir / "db").mkdir()
    (settings.state_dir / "db" / "data.img").write_text("keep me")
    before = listing(settings.state_dir)
    rec = Recorder()
    with pytest.raises(Refused, match="already exists"):
        ops.create(settings, "db", rec.reporter, flake=flake.ref)
    assert rec.commands == []  # refused before any nix ran
    assert listing(settings.state_dir) == before


@pytest.mark.parametrize("name", ["", "../etc", "-rf", "a b", ".hidden", "x/y", "web@1"])
def test_create_refuses_invalid_names(settings: HostSettings, name: str) -> None:
    rec = Recorder()
    with pytest.raises(Refused):
        ops.create(settings, name, rec.reporter, flake="path:/nonexistent")
    assert rec.commands == []
    assert os.listdir(settings.state_dir) == []


@pytest.mark.parametrize("bad_flake", ["", "--impure", "path:/x#foo", "path:/a b"])
def test_create_refuses_odd_flake_references(settings: HostSettings, bad_flake: str) -> None:
    with pytest.raises(Refused, match="flake reference"):
        ops.create(settings, "web", flake=bad_flake)


def test_a_name_with_dots_is_one_attribute(settings: HostSettings, flake: FlakeDir) -> None:
    rec = Recorder()
    ops.create(settings, "my.vm", rec.reporter, flake=flake.ref)
    assert (
        rec.commands[0]
        .argv[-1]
        .endswith('#nixosConfigurations."my.vm".config.microvm.declaredRunner')
    )
    assert os.readlink(settings.state_dir / "my.vm" / "current").endswith("-microvm-qemu-my.vm")


def test_update_with_nothing_new_changes_nothing(settings: HostSettings, flake: FlakeDir) -> None:
    ops.create(settings, "web", flake=flake.ref)
    vm_dir = settings.state_dir / "web"
    (vm_dir / "flake").write_text(flake.ref + "\n")  # written by hand, with a newline
    before = listing(settings.state_dir)
    rec = Recorder()
    outcome = ops.update(settings, "web", rec.reporter)
    assert outcome.message == "web is up to date: nothing to do"
    assert not outcome.changed and outcome.restart_needed is False
    assert listing(settings.state_dir) == before  # links, files, no temp out-link left
    assert links(vm_dir)["old"] is None
    assert not any(c.argv[1:4] == ("store", "diff-closures") for c in rec.commands)


def test_update_swaps_current_keeps_old_and_rollback_swaps_back(
    settings: HostSettings, tmp_path: Path
) -> None:
    flake = write_flake(tmp_path / "flake", {"web": "ok"}, version="1")
    ops.create(settings, "web", flake=flake.ref)
    vm_dir = settings.state_dir / "web"
    first = os.readlink(vm_dir / "current")
    os.symlink(first, vm_dir / "booted")  # as if microvm@web ran the first runner

    flake.set_version("2")
    rec = Recorder()
    outcome = ops.update(settings, "web", rec.reporter)
    second = os.readlink(vm_dir / "current")
    assert second != first and outcome.out_path == second
    assert links(vm_dir) == {"current": second, "old": first, "booted": first}
    assert outcome.changed and outcome.restart_needed is True
    assert outcome.diff == "guest-data: 1 → 2"
    assert "restart microvm@web.service" in outcome.message
    assert any(line == "diff: guest-data: 1 → 2" for line in rec.lines)
    assert sorted(os.listdir(vm_dir)) == ["booted", "current", "flake", "old"]
    assert os.readlink(settings.gcroots_dir / "old-web") == str(vm_dir / "old")

    rolled = ops.rollback(settings, "web")
    assert links(vm_dir) == {"current": first, "old": second, "booted": first}
    assert rolled.restart_needed is False  # back to what runs
    again = ops.rollback(settings, "web")
    assert links(vm_dir)["current"] == second and again.restart_needed is True
    assert sorted(os.listdir(vm_dir)) == ["booted", "current", "flake", "old"]


def test_update_refuses_a_declarative_vm(settings: HostSettings, flake: FlakeDir) -> None:
    ops.create(settings, "web", flake=flake.ref)
    vm_dir = settings.state_dir / "web"
    os.symlink(os.readlink(vm_dir / "current"), vm_dir / "toplevel")
    rec = Recorder()
    with pytest.raises(Refused, match="managed fully declaratively"):
        ops.update(settings, "web", rec.reporter)
    assert rec.commands == []
    with pytest.raises(Refused, match="declaratively"):
        ops.rollback(settings, "web")


def test_failing_build_leaves_everything_as_it_was(
    settings: HostSettings, flake: FlakeDir, tmp_path: Path
) -> None:
    ops.create(settings, "web", flake=flake.ref)
    vm_dir = settings.state_dir / "web"
    os.symlink(os.readlink(vm_dir / "current"), vm_dir / "old")
    os.symlink(os.readlink(vm_dir / "current"), vm_dir / "booted")
    # The VM's stored flake now points at a flake whose runner fails to build.
    broken = write_flake(tmp_path / "broken", {"web": "fail"})
    (vm_dir / "flake").write_text(broken.ref)
    before = listing(settings.state_dir)
    roots_before = listing(settings.gcroots_dir)

    with pytest.raises(BuildFailed) as info:
        ops.update(settings, "web")
    message = str(info.value)
    assert "failed with exit code 1" in message
    assert "oops: broken on purpose" in message  # the builder's own last words
    assert info.value.progress.builds_failed == 1
    assert listing(settings.state_dir) == before
    assert listing(settings.gcroots_dir) == roots_before

    # A failed create leaves no trace at all.
    with pytest.raises(BuildFailed, match="exit code 1"):
        ops.create(settings, "bad", flake=flake.ref)
    assert listing(settings.state_dir) == before
    assert listing(settings.gcroots_dir) == roots_before


def test_cancelling_a_slow_create_stops_nix_and_leaves_no_debris(
    settings: HostSettings, flake: FlakeDir
) -> None:
    token = CancelToken()
    started = threading.Event()
    rec = Recorder()

    def on_progress(progress) -> None:  # type: ignore[no-untyped-def]
        rec.progress.append(progress)
        if any(line.startswith("started ") for line in progress.log_tail):
            started.set()

    rec.reporter.progress = on_progress
    errors: list[BaseException] = []

    def job() -> None:
        try:
            ops.create(settings, "slow", rec.reporter, token, flake=flake.ref)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=job)
    thread.start()
    assert started.wait(60), "the slow builder never started"
    builders = with_descendants(processes_with(flake.marker))
    assert builders  # the builder's shell and its sleep
    token.cancel()
    thread.join(60)
    assert not thread.is_alive()

    assert len(errors) == 1 and isinstance(errors[0], Cancelled)
    (nix_cmd,) = [c for c in rec.commands if c.argv[0] == tools.path("nix")]
    assert nix_cmd.outcome == "cancelled (SIGINT)"
    assert not pid_alive(nix_cmd.pid)
    assert not [pid for pid in builders if pid_alive(pid)]
    assert os.listdir(settings.state_dir) == []  # no temp dir, no lock
    assert not settings.gcroots_dir.exists() or os.listdir(settings.gcroots_dir) == []


LOCK_HOLDER = """
import sys
from pathlib import Path
from tui.host.actions.lock import vm_lock
with vm_lock(Path(sys.argv[1]), sys.argv[2]):
    print("locked", flush=True)
    sys.stdin.read()
"""


def test_a_vm_locked_by_another_process_is_refused_at_once(
    settings: HostSettings, flake: FlakeDir
) -> None:
    ops.create(settings, "web", flake=flake.ref)
    holder = subprocess.Popen(
        [sys.executable, "-c", LOCK_HOLDER, str(settings.state_dir), "web"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "locked\n"
        rec = Recorder()
        with pytest.raises(Busy) as info:
            ops.update(settings, "web", rec.reporter)
        assert str(info.value) == f"another job is running on web (pid {holder.pid})"
        assert rec.commands == []
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(10)
    assert not lock_path(settings.state_dir, "web").exists()
    # The lock is free again: the next action gets past it.
    with pytest.raises(Refused, match="no 'old' runner"):
        ops.rollback(settings, "web")


def test_delete_removes_the_dir_and_gc_roots(settings: HostSettings, flake: FlakeDir) -> None:
    ops.create(settings, "web", flake=flake.ref)
    ops.create(settings, "db", flake=flake.ref)
    rec = Recorder()
    outcome = ops.delete(settings, "web", rec.reporter)
    assert outcome.message == "deleted web"
    assert os.listdir(settings.state_dir) == ["db"]
    assert sorted(os.listdir(settings.gcroots_dir)) == ["booted-db", "db"]
    assert [c.argv[-2:] for c in rec.commands] == [
        ("stop", "microvm@web.service"),
        ("is-active", "microvm@web.service"),
    ]
    with pytest.raises(Refused, match="no VM web"):
        ops.delete(settings, "web")


def test_delete_never_follows_a_symlinked_vm_dir(settings: HostSettings, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious").write_text("data")
    os.symlink(outside, settings.state_dir / "evil")
    with pytest.raises(Refused, match="symlink"):
        ops.delete(settings, "evil")
    assert (outside / "precious").read_text() == "data"
    assert (settings.state_dir / "evil").is_symlink()


def test_delete_refuses_a_vm_that_may_run_when_systemd_cannot_tell(
    settings: HostSettings, flake: FlakeDir
) -> None:
    ops.create(settings, "web", flake=flake.ref)
    vm_dir = settings.state_dir / "web"
    os.symlink(os.readlink(vm_dir / "current"), vm_dir / "booted")
    with pytest.raises(ActionError, match="may be running"):
        ops.delete(settings, "web")
    assert (vm_dir / "current").is_symlink()
