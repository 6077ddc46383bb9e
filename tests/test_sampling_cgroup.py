"""cgroup readers: layout detection on this machine, and parsing of real and documented files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tui.host.sampling import cgroup

HYBRID_MOUNTINFO = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
"""
V2_MOUNTINFO = (
    "24 22 0:22 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4"
    " - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n"
)
V1_MOUNTINFO = """\
32 31 0:29 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
"""

# A NixOS (cgroup v2 only) unit's memory.stat, abridged; kernel >= 5.18 has "kernel".
V2_MEMORY_STAT = """\
anon 104857600
file 52428800
kernel 8388608
kernel_stack 163840
pagetables 1048576
sock 0
shmem 536870912
slab 4194304
"""
V2_MEMORY_STAT_OLD = V2_MEMORY_STAT.replace("kernel 8388608\n", "")
V2_CPU_STAT = "usage_usec 1234567\nuser_usec 1000000\nsystem_usec 234567\nnr_periods 0\n"


def test_detects_this_machines_layout() -> None:
    layout = cgroup.host_layout()
    text = Path("/proc/self/mountinfo").read_text()
    if " - cgroup2 " in text and " - cgroup " in text:
        assert layout.kind == "hybrid"
        assert layout.unified is not None and (layout.unified / "cgroup.procs").exists()
        assert (layout.v1["memory"] / "memory.stat").exists()
    elif " - cgroup2 " in text:
        assert layout.kind == "v2"
    else:
        assert layout.kind in ("v1", "none")
    assert cgroup.host_layout() is layout  # read once


@pytest.mark.parametrize(
    ("text", "kind"),
    [(HYBRID_MOUNTINFO, "hybrid"), (V2_MOUNTINFO, "v2"), (V1_MOUNTINFO, "v1"), ("", "none")],
)
def test_layout_kinds(text: str, kind: str) -> None:
    assert cgroup.parse_mountinfo(text).kind == kind


def test_hybrid_paths_follow_the_control_group() -> None:
    layout = cgroup.parse_mountinfo(HYBRID_MOUNTINFO)
    cg = "/app.slice/app-microvm.slice/microvm@web.service"
    assert layout.v2_dir(cg) == Path("/sys/fs/cgroup/unified") / cg.lstrip("/")
    assert layout.v1_dir("cpuacct", cg) == Path("/sys/fs/cgroup/cpu,cpuacct") / cg.lstrip("/")
    assert layout.v1_dir("memory", cg) == Path("/sys/fs/cgroup/memory") / cg.lstrip("/")
    v2 = cgroup.parse_mountinfo(V2_MOUNTINFO)
    nixos = "/system.slice/system-microvm.slice/microvm@web.service"
    assert v2.v2_dir(nixos) == Path("/sys/fs/cgroup/system.slice/system-microvm.slice") / (
        "microvm@web.service"
    )


def test_namespaced_mount_root_is_stripped() -> None:
    text = "41 31 0:38 /lab /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n"
    layout = cgroup.parse_mountinfo(text)
    assert layout.v2_dir("/lab/app.slice/x.service") == Path("/sys/fs/cgroup/app.slice/x.service")


def test_parse_v2_files() -> None:
    assert cgroup.v2_cpu_usage_ns(cgroup.parse_keyed(V2_CPU_STAT)) == 1_234_567_000
    assert cgroup.v2_memory_bytes(cgroup.parse_keyed(V2_MEMORY_STAT)) == (
        104857600 + 536870912 + 8388608
    )
    # Without a "kernel" line: kernel_stack + slab + sock + pagetables.
    assert cgroup.v2_memory_bytes(cgroup.parse_keyed(V2_MEMORY_STAT_OLD)) == (
        104857600 + 536870912 + 163840 + 4194304 + 0 + 1048576
    )
    assert cgroup.v2_memory_bytes({}) is None


def test_parse_real_v2_cpu_stat() -> None:
    layout = cgroup.host_layout()
    if layout.unified is None:
        pytest.skip("no cgroup v2 tree here")
    stats = cgroup.parse_keyed((layout.unified / "cpu.stat").read_text())
    assert stats["usage_usec"] > 0
    reading = cgroup.read_cpu_usage_ns("/", layout)
    assert reading.ok and reading.source == "cgroup v2 cpu.stat"
    assert reading.value is not None and reading.value >= stats["usage_usec"] * 1000


def _own_cgroup(controller: str) -> str | None:
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            return path
    return None


def test_parse_real_v1_memory_stat() -> None:
    layout = cgroup.host_layout()
    own = _own_cgroup("memory")
    if "memory" not in layout.v1 or own is None:
        pytest.skip("no cgroup v1 memory controller here")
    text = (layout.v1["memory"] / own.lstrip("/") / "memory.stat").read_text()
    stats = cgroup.parse_keyed(text)
    assert {"rss", "shmem", "total_rss", "total_shmem"} <= set(stats)
    expected = stats["total_rss"] + stats["total_shmem"]
    reading = cgroup.read_memory_bytes(own, layout)
    assert reading.ok and reading.source is not None
    assert reading.source.startswith("cgroup v1 memory.stat")
    assert reading.value is not None and reading.value >= expected
    # This test process itself is in there, so the figure is at least our own RSS.
    assert reading.value > 5 << 20


def test_v1_formula() -> None:
    stats = {"rss": 10, "shmem": 5, "cache": 999}
    assert cgroup.v1_memory_bytes(stats) == 15
    assert cgroup.v1_memory_bytes(stats, kmem_usage=3) == 18
    assert cgroup.v1_memory_bytes({"total_rss": 20, "total_shmem": 1, "rss": 1}) == 21
    assert cgroup.v1_memory_bytes({"cache": 1}) is None


def _tree(tmp_path: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = tmp_path / rel.lstrip("/")  # never an absolute path: stay inside tmp_path
        assert tmp_path in path.parents
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_reads_a_v2_only_tree(tmp_path: Path) -> None:
    cg = "/system.slice/system-microvm.slice/microvm@web.service"
    _tree(tmp_path, {f"{cg}/cpu.stat": V2_CPU_STAT, f"{cg}/memory.stat": V2_MEMORY_STAT})
    layout = cgroup.CgroupLayout(unified=tmp_path, unified_controllers=frozenset({"memory"}))
    assert cgroup.read_cpu_usage_ns(cg, layout).value == 1_234_567_000
    mem = cgroup.read_memory_bytes(cg, layout)
    assert mem.value == 104857600 + 536870912 + 8388608 and mem.source == "cgroup v2 memory.stat"


def test_reads_a_hybrid_tree_and_falls_back_to_cpuacct(tmp_path: Path) -> None:
    cg = "/app.slice/app-microvm.slice/microvm@web.service"
    _tree(
        tmp_path,
        {
            f"unified{cg}/cgroup.procs": "",  # the unit exists in v2, but not its cpu.stat
            f"cpuacct{cg}/cpuacct.usage": "987654321\n",
            f"memory{cg}/memory.stat": "cache 1\nrss 4096\nshmem 8192\n",
            f"memory{cg}/memory.kmem.usage_in_bytes": "100\n",
        },
    )
    layout = cgroup.CgroupLayout(
        unified=tmp_path / "unified",
        v1={"cpuacct": tmp_path / "cpuacct", "memory": tmp_path / "memory"},
        unified_controllers=frozenset({"hugetlb"}),
    )
    cpu = cgroup.read_cpu_usage_ns(cg, layout)
    assert cpu.value == 987654321 and cpu.source == "cgroup v1 cpuacct.usage"
    mem = cgroup.read_memory_bytes(cg, layout)
    assert mem.value == 4096 + 8192 + 100 and mem.source == "cgroup v1 memory.stat + kmem"


def test_reasons(tmp_path: Path) -> None:
    layout = cgroup.CgroupLayout(unified=tmp_path)
    assert cgroup.read_cpu_usage_ns(None, layout).reason == "the unit has no ControlGroup"
    missing = cgroup.read_cpu_usage_ns("/gone.service", layout)
    assert missing.value is None and missing.reason == f"cgroup not found: {tmp_path}/gone.service"
    (tmp_path / "x.service").mkdir()
    nomem = cgroup.read_memory_bytes("/x.service", layout)
    assert nomem.reason is not None and "controller not enabled" in nomem.reason
    assert not cgroup.read_memory_bytes("/x.service", cgroup.CgroupLayout()).ok


def test_the_most_telling_reason_wins_whatever_the_order(tmp_path: Path) -> None:
    # The unit is nowhere in the v2 tree (asked first); v1 has its cgroup, and what is wrong
    # there says more: a file that cannot be read over a missing controller file.
    cg = "/microvm@web.service"
    (tmp_path / "unified").mkdir()
    (tmp_path / f"cpuacct{cg}").mkdir(parents=True)
    layout = cgroup.CgroupLayout(unified=tmp_path / "unified", v1={"cpuacct": tmp_path / "cpuacct"})
    lacking = cgroup.read_cpu_usage_ns(cg, layout).reason
    assert lacking == f"cpuacct.usage missing: controller not enabled in {tmp_path}/cpuacct{cg}"
    (tmp_path / f"cpuacct{cg}/cpuacct.usage").mkdir()  # unreadable as a file
    unreadable = cgroup.read_cpu_usage_ns(cg, layout).reason
    assert unreadable is not None
    assert unreadable.startswith(f"cannot read {tmp_path}/cpuacct{cg}/cpuacct.usage: ")


def test_v1_memory_cgroup_under_another_root_is_found_by_the_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A manager in a container: ControlGroup says /lab/app.slice/...@web.service (the v2 and
    name=systemd view) while the v1 memory cgroup of the same unit is under another root."""
    cg = "/lab/app.slice/app-microvm.slice/microvm@web.service"
    v1_path = "/container/7f/app.slice/app-microvm.slice/microvm@web.service"
    _tree(tmp_path, {f"memory{v1_path}/memory.stat": "rss 4096\nshmem 8192\n"})
    layout = cgroup.CgroupLayout(
        unified=tmp_path / "unified",
        v1={"memory": tmp_path / "memory"},
        unified_controllers=frozenset(),
    )
    monkeypatch.setattr(cgroup, "process_v1_cgroup", lambda pid, ctl: v1_path)
    assert cgroup.read_memory_bytes(cg, layout).reason is not None  # without the pid: not found
    mem = cgroup.read_memory_bytes(cg, layout, pid=1234)
    assert mem.value == 4096 + 8192 and mem.source == "cgroup v1 memory.stat"


def test_a_shared_v1_memory_cgroup_is_never_taken_for_the_units(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lab: the user manager makes no v1 memory cgroups, so QEMU stays in the memory
    cgroup everything else of the container is in; its figures are not the VM's."""
    cg = "/lab/app.slice/app-microvm.slice/microvm@web.service"
    _tree(tmp_path, {"memory/process_api/5f/memory.stat": "rss 999999\n"})
    layout = cgroup.CgroupLayout(
        unified=tmp_path / "unified",
        v1={"memory": tmp_path / "memory"},
        unified_controllers=frozenset(),
    )
    monkeypatch.setattr(cgroup, "process_v1_cgroup", lambda pid, ctl: "/process_api/5f")
    mem = cgroup.read_memory_bytes(cg, layout, pid=1234)
    assert mem.value is None
    assert mem.reason == (
        "its process is in /process_api/5f of the v1 memory hierarchy, not a cgroup of its own"
    )


def test_process_v1_cgroup_reads_proc() -> None:
    text = Path(f"/proc/{os.getpid()}/cgroup").read_text()
    expected = next(
        (
            ln.split(":", 2)[2]
            for ln in text.splitlines()
            if "memory" in ln.split(":")[1].split(",")
        ),
        None,
    )
    assert cgroup.process_v1_cgroup(os.getpid(), "memory") == expected
