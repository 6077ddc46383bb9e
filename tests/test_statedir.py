"""The state-dir reader on synthetic hosts: every kind of broken VM dir yields that VM with
problems, never an exception, and never hides the other VMs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.synthetic_host import make_host
from tui.host.inventory import list_vms
from tui.host.model import Drift
from tui.host.settings import HostSettings
from tui.host.statedir import read_vm


@pytest.fixture
def host(tmp_path: Path) -> Path:
    return make_host(tmp_path, 3)


def _settings(state: Path) -> HostSettings:
    # systemd_scope "user" with a runtime dir that has no manager: systemd unreachable.
    return HostSettings(
        state_dir=state,
        systemd_scope="user",
        systemd_env={"XDG_RUNTIME_DIR": str(state.parent / "no-manager")},
    )


def test_healthy_vm_fields(host: Path) -> None:
    vm = read_vm(host / "vm0001")
    assert vm.problems == []
    assert vm.hypervisor == "qemu"
    assert (vm.vcpu, vm.mem_mib) == (2, 512)
    assert vm.socket == str(host / "vm0001" / "vm0001.sock")  # relative -> state dir
    assert vm.drift is Drift.CURRENT
    assert vm.flake == "git+file:///etc/nixos"
    assert vm.balloon is True
    assert [(i.id, i.type, i.mac) for i in vm.interfaces] == [
        ("vm-0001", "tap", "02:00:00:00:00:01")
    ]
    assert [(s.tag, s.proto, s.source, s.source_exists) for s in vm.shares] == [
        ("ro-store", "9p", "/nix/store", os.path.exists("/nix/store"))
    ]
    (volume,) = vm.volumes
    assert volume.image == str(host / "vm0001" / "vm0001-var.img")
    assert (volume.exists, volume.size_bytes, volume.read_only) == (True, 0, False)


def test_stale_and_not_booted(host: Path, tmp_path: Path) -> None:
    vm_dir = host / "vm0000"
    other = tmp_path / "store" / "other-microvm-qemu-vm0000"
    (other / "bin").mkdir(parents=True)
    (vm_dir / "booted").unlink()
    os.symlink(other, vm_dir / "booted")
    assert read_vm(vm_dir).drift is Drift.STALE
    (vm_dir / "booted").unlink()
    assert read_vm(vm_dir).drift is Drift.NOT_BOOTED


def test_declarative(host: Path) -> None:
    os.symlink("/nix/store/xyz-nixos-system-vm0000", host / "vm0000" / "toplevel")
    vm = read_vm(host / "vm0000")
    assert vm.declarative is True
    assert any("toplevel" in p for p in vm.problems)  # dangling here: said, not raised


def _break(kind: str, vm_dir: Path) -> None:
    current = vm_dir / "current"
    runner = Path(os.readlink(current))
    if kind == "dangling":
        current.unlink()
        os.symlink("/nix/store/does-not-exist-microvm-qemu-x", current)
    elif kind == "loop":
        current.unlink()
        os.symlink("current", current)
    elif kind == "missing":
        current.unlink()
    elif kind == "not-a-link":
        current.unlink()
        current.write_text("hello")
    elif kind == "unreadable-runner":
        (runner / "bin" / "microvm-run").chmod(0)
    elif kind == "garbage-runner":
        (runner / "bin" / "microvm-run").write_bytes(b"\x00\xff\xfe garbage 'unbalanced")
    elif kind == "no-exec":
        (runner / "bin" / "microvm-run").write_text("#!/bin/sh\necho hello\n")
    elif kind == "no-run":
        (runner / "bin" / "microvm-run").unlink()
    elif kind == "garbage-share":
        (runner / "share" / "microvm" / "tap-interfaces").write_bytes(b"\xff\x00bad id\n")
        (runner / "share" / "microvm" / "vsock-cid").write_text("not-a-number\n")
        (runner / "share" / "microvm" / "macvtap-interfaces").write_text("only-two fields\n")
    elif kind == "garbage-flake":
        (vm_dir / "flake").write_bytes(b"\x1b]52;c;aGk=\x07 two words")
    elif kind == "huge-flake":
        (vm_dir / "flake").write_bytes(b"x" * (1 << 20))
    elif kind == "unreadable-dir":
        vm_dir.chmod(0)
    else:  # pragma: no cover
        raise AssertionError(kind)


KINDS = [
    "dangling",
    "loop",
    "missing",
    "not-a-link",
    "garbage-runner",
    "no-exec",
    "no-run",
    "garbage-share",
    "garbage-flake",
    "huge-flake",
]
if os.geteuid() != 0:  # root reads mode-0 files anyway; these only bite unprivileged users
    KINDS += ["unreadable-runner", "unreadable-dir"]


@pytest.mark.parametrize("kind", KINDS)
def test_broken_vm_is_listed_with_problems(host: Path, kind: str) -> None:
    _break(kind, host / "vm0001")
    try:
        inv = list_vms(_settings(host))
    finally:
        (host / "vm0001").chmod(0o755)
    assert [vm.name for vm in inv.vms] == ["vm0000", "vm0001", "vm0002"]
    broken = inv.vms[1]
    assert broken.problems, kind
    for text in broken.problems:
        assert text.isprintable(), text  # plain sentences, no escape bytes
    for vm in (inv.vms[0], inv.vms[2]):
        assert vm.problems == [], vm.problems
        assert vm.vcpu == 2


@pytest.mark.parametrize("kind", ["dangling", "loop", "missing", "not-a-link", "no-run"])
def test_unusable_current_is_broken(host: Path, kind: str) -> None:
    _break(kind, host / "vm0001")
    assert read_vm(host / "vm0001").drift is Drift.BROKEN


def test_odd_names_are_listed_but_flagged(host: Path) -> None:
    odd = host / "bad name\x1b[31m"
    (host / "vm0000").rename(odd)
    (host / ".create-in-flight").mkdir()  # hidden: an in-flight temp dir, not a VM
    (host / "a-file").write_text("not a VM")
    inv = list_vms(_settings(host))
    names = [vm.name for vm in inv.vms]
    assert names == ["bad name\x1b[31m", "vm0001", "vm0002"]
    assert inv.vms[0].name_valid is False
    assert any("characters" in p for p in inv.vms[0].problems)


def test_systemd_unreachable_gives_unknown_with_reason(host: Path) -> None:
    inv = list_vms(_settings(host))
    assert inv.systemd_error
    for vm in inv.vms:
        assert vm.unit is not None
        assert vm.unit.active == "unknown"
        assert vm.unit.error


VM_KEYS = [
    "name",
    "path",
    "hypervisor",
    "runner",
    "booted",
    "old",
    "declarative",
    "flake",
    "drift",
    "vcpu",
    "mem_mib",
    "socket",
    "vsock_cid",
    "unit",
    "interfaces",
    "shares",
    "volumes",
    "problems",
]


def _run_list(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tui", "list", *args],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "XDG_CONFIG_HOME": "/nonexistent"},
    )


def test_list_json_schema(host: Path) -> None:
    proc = _run_list("--json", "--state-dir", str(host))
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["state_dir"] == str(host)
    vm = data["vms"][0]
    for key in VM_KEYS:
        assert key in vm, key
    assert set(vm["unit"]) >= {"name", "active", "sub", "main_pid", "restarts"}
    assert set(vm["interfaces"][0]) >= {"id", "type", "mac", "exists", "oper_state"}
    assert set(vm["shares"][0]) >= {
        "tag",
        "proto",
        "source",
        "socket",
        "source_exists",
        "socket_exists",
    }
    assert set(vm["volumes"][0]) >= {
        "image",
        "exists",
        "size_bytes",
        "allocated_bytes",
        "read_only",
    }


def test_list_human_table(host: Path) -> None:
    _break("dangling", host / "vm0002")
    proc = _run_list("--state-dir", str(host))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split()[:4] == ["NAME", "UNIT", "RESTARTS", "HYPERVISOR"]
    assert "\x1b" not in proc.stdout  # not a tty: no colour
    row = next(line for line in lines if line.startswith("vm0002"))
    assert "broken" in row and "does not exist" in row


@pytest.mark.parametrize("make", ["missing", "file"])
def test_list_bad_state_dir_exits_2(tmp_path: Path, make: str) -> None:
    target = tmp_path / "state"
    if make == "file":
        target.write_text("")
    proc = _run_list("--state-dir", str(target))
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "Traceback" not in proc.stderr


def test_list_does_not_import_textual(host: Path) -> None:
    code = (
        f"import sys, runpy; sys.argv=['microvm-tui','list','--json','--state-dir',{str(host)!r}];"
        "import contextlib, io\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try: runpy.run_module('tui', run_name='__main__')\n"
        "    except SystemExit: pass\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('textual','rich','pyroute2','psutil')))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.stdout.strip() == "[]", proc.stderr
