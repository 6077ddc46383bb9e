"""Host checks against the lab: each leftover provoked for real (a unit with no state dir in the
lab's systemd manager, GC roots of a VM that is gone, a tap in the lab's namespace no VM names, a
block device a VM's user cannot open), found by ``run_checks``, cleaned, and gone; the healthy
lab shows none of them."""

from __future__ import annotations

import contextlib
import grp
import os
import shutil
import subprocess
import sys

import pytest

from tui.host.checks.clean import clean
from tui.host.checks.findings import CheckKind
from tui.host.checks.report import run_checks
from tui.host.inventory import list_vms
from tui.host.sampling.cgroup import host_layout

pytestmark = pytest.mark.lab


def _checks(lab):  # type: ignore[no-untyped-def]
    settings = lab.settings
    return run_checks(list_vms(settings), settings, host_layout())


def _kinds(report) -> set[CheckKind]:  # type: ignore[no-untyped-def]
    return {f.kind for f in report.findings}


def test_the_healthy_lab_has_no_leftovers(lab) -> None:  # type: ignore[no-untyped-def]
    report = _checks(lab)
    assert report.errors == []
    leftover = {CheckKind.ORPHAN_UNIT, CheckKind.STALE_GCROOT, CheckKind.ORPHAN_TAP}
    assert not (_kinds(report) & leftover), report.findings


def test_leftovers_are_found_and_cleaned(lab, wait_for) -> None:  # type: ignore[no-untyped-def]
    settings = lab.settings
    # A VM removed from the config whose unit still runs: started (a stand-in hypervisor
    # that only sleeps), then its state dir deleted under it, as the tracker reports.
    ghost = settings.state_dir / "ghost"
    (ghost / "runner" / "bin").mkdir(parents=True)
    (ghost / "current").symlink_to("runner")
    run = ghost / "runner" / "bin" / "microvm-run"
    run.write_text("#!/bin/sh\nexec /bin/sleep 600\n")
    run.chmod(0o755)
    lab.manager.systemctl("start", "microvm@ghost.service")
    shutil.rmtree(ghost)
    # Its GC roots, as `microvm -c` made them.
    for name in ("ghost", "booted-ghost"):
        (settings.gcroots_dir / name).symlink_to(settings.state_dir / "gone" / "current")
    # Its tap, still there after it was removed.
    subprocess.run(
        ["ip", "-n", lab.netns, "tuntap", "add", "dev", "vm-ghost", "mode", "tap"], check=True
    )
    try:
        wait_for(lambda: "microvm@ghost.service" in {f.subject for f in _checks(lab).findings})
        report = _checks(lab)
        subjects = {f.subject: f for f in report.findings}
        assert subjects["microvm@ghost.service"].kind is CheckKind.ORPHAN_UNIT
        assert subjects["ghost"].kind is CheckKind.STALE_GCROOT
        assert subjects["booted-ghost"].kind is CheckKind.STALE_GCROOT
        assert subjects["vm-ghost"].kind is CheckKind.ORPHAN_TAP
        assert lab.netns in subjects["vm-ghost"].message
        # The lab's own VMs, their roots and taps are not leftovers.
        assert not any(f.subject.startswith(("microvm@web", "vm-web")) for f in report.findings)
        for name in ("microvm@ghost.service", "ghost", "booted-ghost", "vm-ghost"):
            step = subjects[name].clean
            assert step is not None
            clean(step, settings)
        after = {f.subject for f in _checks(lab).findings}
        assert not after & {"microvm@ghost.service", "ghost", "booted-ghost", "vm-ghost"}
        state = lab.manager.systemctl("is-active", "microvm@ghost.service", check=False)
        assert state.stdout.strip() == "inactive"
    finally:
        lab.manager.systemctl("stop", "microvm@ghost.service", check=False)
        lab.manager.systemctl("reset-failed", "microvm@ghost.service", check=False)
        shutil.rmtree(settings.state_dir / "ghost", ignore_errors=True)
        for name in ("ghost", "booted-ghost"):
            (settings.gcroots_dir / name).unlink(missing_ok=True)
        subprocess.run(["ip", "-n", lab.netns, "link", "del", "vm-ghost"], check=False)


NOTIFY = (
    'import os, socket, time; a = os.environ["NOTIFY_SOCKET"]; '
    "s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); "
    's.sendto(b"READY=1", chr(0) + a[1:] if a[0] == "@" else a); time.sleep(600)'
)


def _script(path, text: str) -> None:  # type: ignore[no-untyped-def]
    path.write_text("#!/bin/sh\n" + text + "\n")
    path.chmod(0o755)


def test_a_virtiofs_source_replaced_under_its_running_virtiofsd(lab, wait_for) -> None:  # type: ignore[no-untyped-def]
    """A VM with a virtiofs share whose microvm-virtiofsd@ unit runs a stand-in virtiofsd (the
    lab has none): a process of that unit holding the source directory, as virtiofsd does.
    The source is then replaced by a new directory (a sops-nix generation switch)."""
    settings = lab.settings
    vm_dir = settings.state_dir / "fsvm"
    runner = vm_dir / "runner"
    source = lab.root / "fsvm-secrets"
    source.mkdir()
    share = runner / "share" / "microvm"
    (share / "virtiofs" / "secrets").mkdir(parents=True)
    (share / "hypervisor").write_text("qemu\n")
    (share / "virtiofs" / "secrets" / "source").write_text(f"{source}\n")
    (share / "virtiofs" / "secrets" / "socket").write_text("fsvm-virtiofs-secrets.sock\n")
    (runner / "bin").mkdir()
    _script(runner / "bin" / "microvm-run", "exec /bin/sleep 600")
    # Like virtiofsd: hold the directory, tell systemd it is ready (Type=notify), serve.
    _script(runner / "bin" / "virtiofsd-run", f"cd {source} && exec {sys.executable} -c '{NOTIFY}'")
    (vm_dir / "current").symlink_to("runner")
    try:
        started = lab.manager.systemctl("start", "microvm@fsvm.service", check=False)
        if started.returncode != 0:
            journal = subprocess.run(
                [
                    "journalctl",
                    f"--directory={lab.journal_dir}",
                    "-n",
                    "30",
                    "--no-pager",
                    "-u",
                    "microvm-virtiofsd@fsvm.service",
                    "-u",
                    "microvm-set-booted@fsvm.service",
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            manager = lab.manager.systemctl(
                "list-units", "--all", "--no-pager", "*fsvm*", check=False
            ).stdout
            manager += lab.manager.systemctl(
                "status", "--no-pager", "microvm-virtiofsd@fsvm.service", check=False
            ).stdout
            pytest.fail(f"{started.stderr}\n{journal.stdout}\n{manager}")
        (fsvm,) = [vm for vm in list_vms(settings).vms if vm.name == "fsvm"]
        assert [(s.tag, s.proto, s.source) for s in fsvm.shares] == [
            ("secrets", "virtiofs", str(source))
        ]
        helper = {h.name: h.active for h in fsvm.helper_units}
        assert helper.get("microvm-virtiofsd@fsvm.service") == "active", helper
        report = _checks(lab)
        assert not [f for f in report.findings if f.kind is CheckKind.VIRTIOFS_REPLACED]
        source.rename(lab.root / "fsvm-secrets.old")
        source.mkdir()
        found = [f for f in _checks(lab).findings if f.kind is CheckKind.VIRTIOFS_REPLACED]
        assert [f.vm for f in found] == ["fsvm"]
        assert "'secrets'" in found[0].message and "restart the VM" in found[0].fix
        # A restart hands virtiofsd the new directory: the problem is gone.
        lab.manager.systemctl("restart", "microvm-virtiofsd@fsvm.service")
        wait_for(
            lambda: not [f for f in _checks(lab).findings if f.kind is CheckKind.VIRTIOFS_REPLACED]
        )
    finally:
        lab.manager.systemctl(
            "stop", "microvm@fsvm.service", "microvm-virtiofsd@fsvm.service", check=False
        )
        shutil.rmtree(vm_dir, ignore_errors=True)
        shutil.rmtree(source, ignore_errors=True)
        shutil.rmtree(lab.root / "fsvm-secrets.old", ignore_errors=True)


def test_a_loop_device_volume_the_vms_user_cannot_open(lab, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The FAQ's case: a volume on a block device (a real loop device, mode 0660) and a
    unit whose User= (here nobody; microvm on NixOS) is not in the disk group."""
    settings = lab.settings
    image = tmp_path / "disk.img"
    image.write_bytes(b"\0" * (1 << 20))
    loop = subprocess.run(
        ["losetup", "-f", "--show", str(image)], capture_output=True, text=True, check=True
    ).stdout.strip()
    vm_dir = settings.state_dir / "blkvm"
    runner = vm_dir / "runner"
    (runner / "share" / "microvm").mkdir(parents=True)
    (runner / "share" / "microvm" / "hypervisor").write_text("qemu\n")
    (runner / "bin").mkdir()
    qemu = shutil.which("qemu-system-x86_64")
    _script(
        runner / "bin" / "microvm-run",
        f"exec {qemu} -S -nographic -nodefaults -drive id=vda,format=raw,file={loop},if=none",
    )
    (vm_dir / "current").symlink_to("runner")
    dropin = lab.manager.unit_dir / "microvm@blkvm.service.d"
    dropin.mkdir(parents=True)
    (dropin / "user.conf").write_text("[Service]\nUser=nobody\n")
    lab.manager.systemctl("daemon-reload")
    try:
        lab.manager.systemctl("start", "--no-block", "microvm@blkvm.service")

        def found() -> list:  # type: ignore[type-arg]
            return [
                f
                for f in _checks(lab).findings
                if f.kind is CheckKind.BLOCK_DEVICE_ACCESS and f.vm == "blkvm"
            ]

        (finding,) = wait_for_value(found)
        assert loop in finding.message and "nobody cannot read and write" in finding.message
        # udev makes loop devices root:disk; without udev (this sandbox) they stay root:root.
        group = grp.getgrgid(os.stat(loop).st_gid).gr_name
        assert f'users.users.nobody.extraGroups = [ "{group}" ]' in finding.fix
        # The lab's own VMs' volumes are image files: nothing said about them.
        assert not [
            f
            for f in _checks(lab).findings
            if f.kind is CheckKind.BLOCK_DEVICE_ACCESS and f.vm != "blkvm"
        ]
    finally:
        lab.manager.systemctl("stop", "microvm@blkvm.service", check=False)
        lab.manager.systemctl("reset-failed", "microvm@blkvm.service", check=False)
        shutil.rmtree(dropin, ignore_errors=True)
        lab.manager.systemctl("daemon-reload", check=False)
        shutil.rmtree(vm_dir, ignore_errors=True)
        subprocess.run(["losetup", "-d", loop], check=False)


def wait_for_value(fn):  # type: ignore[no-untyped-def]
    from tests.conftest import wait_for

    return wait_for(fn, timeout=30)


def test_a_journal_share_with_a_second_machine_id(lab) -> None:  # type: ignore[no-untyped-def]
    """web has the FAQ's journal share with one machine-id directory: nothing to say; a second
    one (a guest whose machine-id changed) is the FAQ's problem."""

    def journal_findings() -> list:  # type: ignore[type-arg]
        return [
            f
            for f in _checks(lab).findings
            if f.kind is CheckKind.JOURNAL_MACHINE_ID and f.vm == "web"
        ]

    assert journal_findings() == []
    second = lab.settings.state_dir / "web" / "journal" / ("f" * 32)
    second.mkdir()
    try:
        (finding,) = journal_findings()
        assert "2 machine-id directories" in finding.message
        assert "microvm.machineId" in finding.fix
    finally:
        second.rmdir()
    assert journal_findings() == []


def test_a_control_socket_left_by_a_stopped_vm_is_found_and_cleaned(lab) -> None:  # type: ignore[no-untyped-def]
    import socket

    settings = lab.settings
    (idle,) = [vm for vm in list_vms(settings).vms if vm.name == "idle"]
    assert idle.unit is not None and idle.unit.active == "inactive" and idle.socket
    path = idle.socket
    assert not os.path.lexists(path)
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(path)
    sock.close()  # what a hypervisor killed with SIGKILL leaves behind
    try:
        # Only idle's: the crash-looping `crashy` may leave one of its own for a moment between
        # two of its restarts, and that is a finding of its own.
        def idles() -> list:  # type: ignore[type-arg]
            return [
                f
                for f in _checks(lab).findings
                if f.kind is CheckKind.STALE_SOCKET and f.vm == "idle"
            ]

        found = idles()
        assert len(found) == 1
        assert found[0].clean is not None
        clean(found[0].clean, settings)
        assert not os.path.lexists(path)
        assert not idles()
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
