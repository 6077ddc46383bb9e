"""The running hypervisor's command line (/proc/PID/cmdline) against the static script read.

A runner in the shape of a microvm.nix fork (bash arrays, ``$MICROVM_VCPU``,
``runtime_args=$(extraArgsScript)``) is read statically, then a FakeHypervisor process (a
real process whose program is named ``cloud-hypervisor``; the real one cannot run here) runs
that VM's argv, and the facts must come from it. The same against the lab's real QEMU guests
is in test_list_lab.py.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import wait_for
from tui.host.jsonout import vm_to_json
from tui.host.model import VM, UnitState
from tui.host.runners import parse_runner
from tui.host.runners.runscript import extract_exec
from tui.host.running import (
    ProcessReadError,
    attach_processes,
    find_hypervisor,
    is_program,
    read_cmdline,
)
from tui.host.statedir import read_vm

FIXTURES = Path(__file__).parent / "fixtures" / "runners"
ARRAYS = FIXTURES / "cloud-hypervisor" / "variants" / "microvm-run.arrays"
CH = "/nix/store/a5napjp7walz5243fq1924cfpbnhr8jc-cloud-hypervisor-47.0/bin/cloud-hypervisor"

# What the fork's script runs with MICROVM_VCPU=6, MICROVM_TAP_MULTI_QUEUE=1 and an
# extraArgsScript that prints "--vsock cid=9,socket=notify.vsock".
RUNNING_ARGV = [
    "microvm@chvm",  # exec -a
    "--cpus", "boot=6",
    "--memory", "shared=on,size=2048M",
    "--kernel", "/nix/store/cs964w8fx90hrrmxmiwbmfxasgj2gpn4-linux-6.12.41-dev/vmlinux",
    "--console", "null", "--serial", "tty",
    "--api-socket", "chvm.sock",
    "--disk", "path=/srv/microvms/chvm/data.img,readonly=on",
    "--net", "mac=02:00:00:00:01:01,num_queues=8,tap=vm-chvm",
    "--vsock", "cid=9,socket=notify.vsock",
]  # fmt: skip


# --- the static read ------------------------------------------------------------------------


def test_array_runner_is_expanded_and_says_what_only_a_run_knows() -> None:
    found = extract_exec(ARRAYS.read_text())
    assert found.process_name == "microvm@chvm"
    assert found.argv[:3] == [CH, "--cpus", "boot=$MICROVM_VCPU"]
    assert "--api-socket" in found.argv and "chvm.sock" in found.argv
    # the comment inside args=( ... ) with parentheses in it is not an element
    assert not any("comment" in w for w in found.argv)
    # the unconditional args+=(...) is in; the two under `if` are not (only a run knows)
    assert "path=/srv/microvms/chvm/data.img,readonly=on" in found.argv
    assert not any(w.startswith("mac=") for w in found.argv)
    assert found.unknowns == [
        "args+=(...) only when [ $MICROVM_TAP_MULTI_QUEUE -eq 1 ]",
        "args+=(...) only when not [ $MICROVM_TAP_MULTI_QUEUE -eq 1 ]",
        "runtime_args=$(…/extraArgsScript)",
        "$MICROVM_VCPU",
    ]


def test_array_runner_spec_has_unknowns_not_problems() -> None:
    spec = parse_runner(ARRAYS.read_text(), "cloud-hypervisor")
    assert spec.problems == []  # boot=$MICROVM_VCPU is an unknown, not a broken runner
    assert spec.vcpu is None
    assert (spec.mem_mib, spec.socket) == (2048, "chvm.sock")
    assert "$MICROVM_VCPU" in spec.not_known_statically


def test_a_plain_runner_has_nothing_unknown() -> None:
    spec = parse_runner((FIXTURES / "qemu" / "bin" / "microvm-run").read_text(), "qemu")
    assert spec.not_known_statically == []  # its macvtap $(< .../ifindex) is read by the parser


# --- a running FakeHypervisor -------------------------------------------------------------------


@pytest.fixture(scope="module")
def fake_program(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """FakeHypervisor built as ``cloud-hypervisor``: /proc/PID/exe then names it so."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.fail("a C compiler (cc) is needed to build the FakeHypervisor", False)
    out = tmp_path_factory.mktemp("fakebin") / "cloud-hypervisor"
    source = Path(__file__).parent / "fakes" / "fake_hypervisor.c"
    subprocess.run([cc, "-O", "-o", str(out), str(source)], check=True, timeout=60)
    return out


def started(argv: list[str], **kwargs: object) -> subprocess.Popen[bytes]:
    """Popen, returned once the new program's argv is readable: Popen returns when execve
    has begun, and /proc/PID/cmdline is empty until the kernel has set the argv up."""
    proc = subprocess.Popen(argv, **kwargs)  # type: ignore[call-overload]
    path = Path(f"/proc/{proc.pid}/cmdline")
    wait_for(lambda: path.read_bytes(), timeout=10, interval=0.01, what="the exec")
    return proc


def own_cgroup() -> str:
    """The cgroup this test runs in (children inherit it): the 'unit' of the fake."""
    first = Path("/proc/self/cgroup").read_text().splitlines()[0]
    return first.split(":", 2)[2]


@pytest.fixture
def fake_vm(tmp_path: Path) -> VM:
    runner = tmp_path / "store" / "x-microvm-cloud-hypervisor-chvm"
    (runner / "bin").mkdir(parents=True)
    (runner / "share" / "microvm").mkdir(parents=True)
    shutil.copy(ARRAYS, runner / "bin" / "microvm-run")
    (runner / "share" / "microvm" / "hypervisor").write_text("cloud-hypervisor\n")
    vm_dir = tmp_path / "state" / "chvm"
    vm_dir.mkdir(parents=True)
    os.symlink(runner, vm_dir / "current")
    os.symlink(runner, vm_dir / "booted")
    return read_vm(vm_dir)


@pytest.fixture
def running(fake_program: Path) -> Iterator[subprocess.Popen[bytes]]:
    proc = started(RUNNING_ARGV, executable=str(fake_program))
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait(10)


def _start_unit(vm: VM, main_pid: int, control_group: str | None = None) -> None:
    vm.unit = UnitState(
        name="microvm@chvm.service",
        active="active",
        sub="running",
        main_pid=main_pid,
        control_group=control_group or own_cgroup(),
    )


def test_stopped_vm_facts_come_from_the_script(fake_vm: VM) -> None:
    assert fake_vm.facts_from == "script"
    assert fake_vm.vcpu is None
    assert set(fake_vm.fact_sources.values()) == {"script"}
    assert "$MICROVM_VCPU" in fake_vm.not_known_statically
    facts = vm_to_json(fake_vm)["facts"]
    assert facts["from"] == "script" and facts["pid"] is None
    assert "runtime_args=$(…/extraArgsScript)" in facts["not_known_statically"]


def test_running_vm_facts_come_from_its_process(
    fake_vm: VM, running: subprocess.Popen[bytes]
) -> None:
    assert read_cmdline(running.pid) == RUNNING_ARGV
    _start_unit(fake_vm, running.pid)
    attach_processes([fake_vm])
    vm = fake_vm
    assert vm.process_note is None
    assert (vm.facts_from, vm.hypervisor_pid) == ("process", running.pid)
    assert vm.vcpu == 6  # $MICROVM_VCPU, known only at run time
    assert vm.vsock_cid == 9  # from runtime_args=$(extraArgsScript)
    assert [i.id for i in vm.interfaces] == ["vm-chvm"]  # from the conditional args+=
    assert vm.socket == str(vm.path / "chvm.sock")
    assert [v.image for v in vm.volumes] == ["/srv/microvms/chvm/data.img"]
    assert set(vm.fact_sources.values()) == {"process"}
    assert vm.not_known_statically == []
    assert vm.current_differs == {}
    assert not any("process" in p for p in vm.problems), vm.problems
    facts = vm_to_json(vm)["facts"]
    assert facts["from"] == "process" and facts["pid"] == running.pid
    assert facts["sources"]["vcpu"] == "process"


def test_a_wrapper_main_pid_leads_to_its_hypervisor_child(fake_vm: VM, fake_program: Path) -> None:
    # MainPID is a shell that forks the hypervisor (no exec): the child is read.
    script = f'exec -a microvm@chvm {fake_program} "$@" & wait'
    wrapper = subprocess.Popen(["/bin/bash", "-c", script, "bash", *RUNNING_ARGV[1:]])
    children = Path(f"/proc/{wrapper.pid}/task/{wrapper.pid}/children")
    kids: list[int] = []
    try:
        kids = wait_for(lambda: [int(p) for p in children.read_text().split()], 10, what="the fork")
        wait_for(lambda: _argv0(kids[0]) == "microvm@chvm", 10, interval=0.01, what="the exec")
        _start_unit(fake_vm, wrapper.pid)
        attach_processes([fake_vm])
        assert fake_vm.process_note is None
        assert (fake_vm.facts_from, fake_vm.hypervisor_pid) == ("process", kids[0])
        assert fake_vm.vcpu == 6
    finally:
        for pid in kids:
            os.kill(pid, signal.SIGKILL)
        wrapper.kill()
        wrapper.wait(10)


def _argv0(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()


def test_a_pid_outside_the_units_cgroup_is_not_read(
    fake_vm: VM, running: subprocess.Popen[bytes]
) -> None:
    # MainPID as systemd said it, but the pid now belongs to another cgroup (recycled).
    _start_unit(fake_vm, running.pid, control_group="/system.slice/microvm@chvm.service")
    attach_processes([fake_vm])
    assert fake_vm.facts_from == "script"
    assert fake_vm.vcpu is None
    assert fake_vm.process_note == f"process {running.pid} is not in the unit's cgroup"
    assert vm_to_json(fake_vm)["facts"]["process_not_read"] == fake_vm.process_note


def test_a_main_pid_that_is_not_the_hypervisor_is_refused(fake_vm: VM) -> None:
    sleeper = started(["/bin/sleep", "600"])
    try:
        with pytest.raises(ProcessReadError, match="nor a child of it runs cloud-hypervisor"):
            find_hypervisor(sleeper.pid, own_cgroup(), "cloud-hypervisor")
    finally:
        sleeper.kill()
        sleeper.wait(10)


def test_a_gone_process_is_a_reason_not_a_crash(fake_vm: VM) -> None:
    gone = subprocess.Popen(["/bin/true"])
    gone.wait(10)
    _start_unit(fake_vm, gone.pid)
    attach_processes([fake_vm])
    assert fake_vm.facts_from == "script"
    assert fake_vm.process_note == "the process has gone"


def test_stale_vm_says_what_current_would_change(
    fake_vm: VM, running: subprocess.Popen[bytes]
) -> None:
    # current's script says 4 vCPUs; the process (booted) runs 6.
    runner = Path(os.readlink(fake_vm.path / "current"))
    text = (runner / "bin" / "microvm-run").read_text().replace("boot=$MICROVM_VCPU", "boot=4")
    (runner / "bin" / "microvm-run").write_text(text)
    vm = read_vm(fake_vm.path)
    assert vm.vcpu == 4 and vm.facts_from == "script"
    _start_unit(vm, running.pid)
    attach_processes([vm])
    assert vm.vcpu == 6
    assert vm.current_differs == {"vcpu": "4"}


def test_firecracker_facts_in_its_config_file_stay_from_the_script(
    tmp_path: Path, fake_program: Path
) -> None:
    """FakeHypervisor as firecracker: the argv has the API socket, the config file has vCPUs,
    memory and drives; those stay from the script's read and say so."""
    source = FIXTURES / "firecracker"
    config = tmp_path / "fc.json"
    shutil.copy(next(source.glob("*-firecracker-fcvm.json")), config)
    runner = tmp_path / "store" / "x-microvm-firecracker-fcvm"
    shutil.copytree(source / "share", runner / "share")
    (runner / "bin").mkdir(parents=True)
    script = (source / "bin" / "microvm-run").read_text()
    old_config = next(w for w in script.split() if w.endswith("-firecracker-fcvm.json"))
    (runner / "bin" / "microvm-run").write_text(script.replace(old_config, str(config)))
    vm_dir = tmp_path / "state" / "fcvm"
    vm_dir.mkdir(parents=True)
    os.symlink(runner, vm_dir / "current")
    vm = read_vm(vm_dir)
    assert vm.facts_from == "script" and vm.vcpu is not None
    program = tmp_path / "bin" / "firecracker"
    program.parent.mkdir()
    shutil.copy(fake_program, program)
    argv = ["microvm@fcvm", "--config-file", str(config), "--api-sock", "other.sock"]
    proc = started(argv, executable=str(program))
    try:
        _start_unit(vm, proc.pid)
        attach_processes([vm])
    finally:
        proc.kill()
        proc.wait(10)
    assert (vm.facts_from, vm.hypervisor_pid) == ("process", proc.pid)
    assert vm.socket == str(vm_dir / "other.sock")  # the running process's, not the script's
    assert vm.fact_sources["socket"] == "process"
    assert vm.fact_sources["vcpu"] == vm.fact_sources["mem_mib"] == "script"
    assert vm.current_differs == {"socket": str(vm_dir / "fcvm.sock")}


def test_a_command_line_past_the_bound_is_refused(fake_program: Path) -> None:
    huge = ["microvm@chvm", *["x" * 100_000] * 3]  # 300 KB: past MAX_CMDLINE_BYTES
    proc = started(huge, executable=str(fake_program))
    try:
        with pytest.raises(ProcessReadError, match="is longer than 262144 bytes"):
            read_cmdline(proc.pid)
    finally:
        proc.kill()
        proc.wait(10)


@pytest.mark.parametrize(
    ("path", "hypervisor", "expected"),
    [
        ("/nix/store/x-qemu/bin/qemu-system-x86_64", "qemu", True),
        ("/usr/bin/qemu-kvm", "qemu", True),
        ("/nix/store/x-kvmtool/bin/lkvm-static", "kvmtool", True),
        ("/usr/bin/vmstat", "kvmtool", False),  # "vm" is a whole name, not a prefix
        ("/usr/bin/cloud-hypervisor-static", "cloud-hypervisor", False),
        ("/bin/bash", "vfkit", False),
        ("microvm@web", "qemu", False),  # exec -a: the process name, not a program
    ],
)
def test_which_programs_are_the_hypervisor(path: str, hypervisor: str, expected: bool) -> None:
    assert is_program(path, hypervisor) is expected
