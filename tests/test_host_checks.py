"""Host checks on real files, directories, sockets and processes (no lab needed): each check
finds its problem, the healthy case finds nothing, and cleaning removes exactly the leftover."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
from pathlib import Path

import pytest

from tui.host.checks import leftovers, vm_checks
from tui.host.checks.clean import CleanError, clean
from tui.host.checks.findings import CheckKind, CleanKind, CleanStep
from tui.host.links import Link
from tui.host.model import VM, Share, UnitState, Volume
from tui.host.settings import HostSettings

NOBODY = vm_checks.RunAs("nobody", 65534, frozenset({65534}))


def _vm(tmp_path: Path, name: str = "web", **kw: object) -> VM:
    path = tmp_path / "state" / name
    path.mkdir(parents=True, exist_ok=True)
    return VM(name=name, path=path, **kw)  # type: ignore[arg-type]


# -- block devices ---------------------------------------------------------------------------


def _block_node(tmp_path: Path, gid: int = 6) -> str:
    """A real block device node (loop0's numbers), root:GID 0660, as udev makes /dev/loopN."""
    if os.geteuid() != 0:
        pytest.skip("mknod of a block device needs root")
    path = tmp_path / "loop-node"
    os.mknod(path, stat.S_IFBLK | 0o660, os.makedev(7, 0))
    os.chown(path, 0, gid)
    os.chmod(path, 0o660)
    return str(path)


def test_a_block_device_the_user_cannot_open_is_a_problem_with_the_faq_fix(tmp_path: Path) -> None:
    dev = _block_node(tmp_path)
    vm = _vm(tmp_path, volumes=[Volume(image=dev)])
    (found,) = vm_checks.block_device_access(vm, NOBODY)
    assert found.kind is CheckKind.BLOCK_DEVICE_ACCESS and found.vm == "web"
    assert "nobody cannot read and write" in found.message
    assert 'users.users.nobody.extraGroups = [ "' in found.fix and "udev rule" in found.fix


def test_a_block_device_in_the_users_group_or_a_plain_image_is_fine(tmp_path: Path) -> None:
    group = 6
    dev = _block_node(tmp_path, group)
    image = tmp_path / "state" / "web" / "data.img"
    vm = _vm(tmp_path, volumes=[Volume(image=dev), Volume(image="data.img")])
    image.write_bytes(b"")
    member = vm_checks.RunAs("nobody", 65534, frozenset({65534, group}))
    assert vm_checks.block_device_access(vm, member) == []
    assert vm_checks.block_device_access(vm, vm_checks.RunAs("root", 0, frozenset({0}))) == []


def test_run_as_names_a_missing_user() -> None:
    assert "does not exist" in str(vm_checks.RunAs.lookup("no-such-user-mvtui"))
    root = vm_checks.RunAs.lookup("root", ["disk"])
    assert not isinstance(root, str) and root.uid == 0


# -- virtiofs ---------------------------------------------------------------------------------


@pytest.fixture
def holder(tmp_path: Path):
    """A stand-in virtiofsd: a process of ours whose working directory is the shared dir."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(directory: Path) -> int:
        proc = subprocess.Popen(["/bin/sleep", "60"], cwd=directory)
        procs.append(proc)
        return proc.pid

    yield start
    for proc in procs:
        proc.kill()
        proc.wait()


def test_a_virtiofs_source_replaced_under_a_running_virtiofsd_is_found(
    tmp_path: Path, holder
) -> None:
    # sops-nix's shape: the source is a link to this generation's directory.
    gen1, gen2 = tmp_path / "secrets.d" / "1", tmp_path / "secrets.d" / "2"
    gen1.mkdir(parents=True)
    gen2.mkdir()
    source = tmp_path / "secrets"
    source.symlink_to(gen1)
    vm = _vm(tmp_path, shares=[Share(tag="secrets", proto="virtiofs", source=str(source))])
    pid = holder(source)  # virtiofsd resolved the link when it started
    assert vm_checks.virtiofs_replaced(vm, [pid]) == []
    source.unlink()
    source.symlink_to(gen2)  # a new generation
    (found,) = vm_checks.virtiofs_replaced(vm, [pid])
    assert found.kind is CheckKind.VIRTIOFS_REPLACED and "'secrets'" in found.message
    assert "restart the VM" in found.fix and "sops.keepGenerations = 0" in found.fix


def test_virtiofs_check_holds_its_tongue_without_processes(tmp_path: Path) -> None:
    vm = _vm(tmp_path, shares=[Share(tag="s", proto="virtiofs", source=str(tmp_path))])
    assert vm_checks.virtiofs_replaced(vm, []) == []
    assert vm_checks.virtiofs_replaced(vm, [2**22 + 12345]) == []  # no such process


def test_held_directories_reads_open_directory_fds(tmp_path: Path) -> None:
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        st = os.stat(tmp_path)
        assert (st.st_dev, st.st_ino) in vm_checks.held_directories([os.getpid()])
    finally:
        os.close(fd)


# -- journal share ----------------------------------------------------------------------------


def test_journal_share_machine_id_directories(tmp_path: Path) -> None:
    vm = _vm(tmp_path)
    journal = vm.path / "journal"
    journal.mkdir()
    vm.shares = [Share(tag="journal", proto="virtiofs", source="journal")]
    assert vm_checks.journal_machine_id(vm, has_booted=False) == []  # never ran: nothing yet
    (none,) = vm_checks.journal_machine_id(vm, has_booted=True)
    assert "no machine-id directory" in none.message and "microvm.machineId" in none.fix
    (journal / ("a" * 32)).mkdir()
    assert vm_checks.journal_machine_id(vm, has_booted=True) == []
    (journal / ("b" * 32)).mkdir()
    (two,) = vm_checks.journal_machine_id(vm, has_booted=True)
    assert "2 machine-id directories" in two.message


# -- leftovers --------------------------------------------------------------------------------


def test_orphan_units_are_busy_units_without_a_state_dir() -> None:
    units = {
        "microvm@gone.service": UnitState("microvm@gone.service", "loaded", "active"),
        "microvm@web.service": UnitState("microvm@web.service", "loaded", "active"),
        "microvm@idle.service": UnitState("microvm@idle.service", "loaded", "inactive"),
    }
    (found,) = leftovers.orphan_units(units, {"web"})
    assert found.subject == "microvm@gone.service"
    assert found.clean == CleanStep(CleanKind.STOP_UNIT, "microvm@gone.service")


def test_stale_gcroots_and_their_removal(tmp_path: Path) -> None:
    roots = tmp_path / "gcroots"
    roots.mkdir()
    for name in ("web", "booted-web", "gone", "booted-gone", "old-gone"):
        (roots / name).symlink_to(f"/nix/store/{'0' * 32}-{name}")
    settings = HostSettings(state_dir=tmp_path / "state", gcroots_dir=roots)
    (tmp_path / "state" / "web").mkdir(parents=True)
    found = leftovers.stale_gcroots(roots, {"web"})
    assert [f.subject for f in found] == ["booted-gone", "gone", "old-gone"]
    for f in found:
        assert f.clean is not None
        clean(f.clean, settings)
    assert sorted(os.listdir(roots)) == ["booted-web", "web"]


def test_a_gcroot_whose_vm_came_back_is_not_removed(tmp_path: Path) -> None:
    roots = tmp_path / "gcroots"
    roots.mkdir()
    (roots / "gone").symlink_to("/nix/store/x")
    settings = HostSettings(state_dir=tmp_path / "state", gcroots_dir=roots)
    (found,) = leftovers.stale_gcroots(roots, set())
    (tmp_path / "state" / "gone").mkdir(parents=True)
    with pytest.raises(CleanError, match="state dir again"):
        clean(found.clean, settings)  # type: ignore[arg-type]
    assert (roots / "gone").is_symlink()


def test_a_planted_file_in_place_of_a_gcroot_is_left_alone(tmp_path: Path) -> None:
    roots = tmp_path / "gcroots"
    roots.mkdir()
    (roots / "gone").write_text("not a link")
    settings = HostSettings(state_dir=tmp_path / "state", gcroots_dir=roots)
    step = CleanStep(CleanKind.REMOVE_GCROOT, "gone", directory=str(roots))
    with pytest.raises(CleanError, match="changed since the check"):
        clean(step, settings)
    with pytest.raises(CleanError, match="outside the GC roots dir"):
        clean(CleanStep(CleanKind.REMOVE_GCROOT, "x", directory="/etc"), settings)
    assert (roots / "gone").read_text() == "not a link"


def test_orphan_links_only_unused_taps_nobody_names() -> None:
    links = [
        Link("vm-web", "tun", "DOWN"),  # named by web
        Link("vm-gone", "tun", "DOWN"),  # leftover
        Link("vnet0", "tun", "UP"),  # in use: someone else's
        Link("mvt-gone", "macvtap", "LOWERLAYERDOWN"),
        Link("eth0", None, "DOWN"),  # not a tap
    ]
    found = leftovers.orphan_links(links, {"vm-web"}, "labns")
    assert [f.subject for f in found] == ["vm-gone", "mvt-gone"]
    assert "network namespace labns" in found[0].message


def test_stale_sockets_of_a_stopped_vm_are_found_and_removed(tmp_path: Path) -> None:
    vm = _vm(tmp_path, socket=None)
    vm.socket = str(vm.path / "web.sock")
    vm.unit = UnitState("microvm@web.service", "loaded", "inactive")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(vm.socket)
    sock.close()  # what a killed hypervisor leaves
    (found,) = leftovers.stale_sockets([vm])
    assert found.kind is CheckKind.STALE_SOCKET and found.vm == "web"
    vm.unit = UnitState("microvm@web.service", "loaded", "active")
    assert leftovers.stale_sockets([vm]) == []
    vm.unit = None  # unknown: say nothing
    assert leftovers.stale_sockets([vm]) == []
