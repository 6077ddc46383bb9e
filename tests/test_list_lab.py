"""`microvm-tui list --json` against the lab: what it says must match the real host."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import wait_for

pytestmark = pytest.mark.lab

RUNNING = ("web", "db", "decl", "console")


def list_json(lab: Any) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "tui", "list", "--json", "--config", str(lab.config_path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def by_name(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {vm["name"]: vm for vm in data["vms"]}


def qmp_status(path: str) -> str:
    """Connect, greet, query, disconnect: what microvm-shutdown does too."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        sock.connect(path)
        reader = sock.makefile("rb")
        assert b"QMP" in reader.readline()
        sock.sendall(b'{"execute":"qmp_capabilities"}\n')
        assert b"return" in reader.readline()
        sock.sendall(b'{"execute":"query-status"}\n')
        while True:
            msg = json.loads(reader.readline())
            if "return" in msg:
                return msg["return"]["status"]


@pytest.fixture(scope="module")
def listed(lab: Any) -> dict[str, dict[str, Any]]:
    # Running VMs are up once their units are active and the QMP socket exists.
    def ready() -> dict[str, dict[str, Any]] | None:
        vms = by_name(list_json(lab))
        ok = all(
            vms[n]["unit"]["active"] == "active" and os.path.exists(vms[n]["socket"] or "")
            for n in RUNNING
        )
        return vms if ok else None

    return wait_for(ready, timeout=90, interval=0.5, what="the lab's running VMs")


def test_every_lab_vm_is_listed(listed: dict[str, dict[str, Any]], lab: Any) -> None:
    assert set(listed) >= {"web", "db", "decl", "console", "crashy", "idle", "broken"}
    assert all(vm["path"].startswith(str(lab.settings.state_dir)) for vm in listed.values())


@pytest.mark.parametrize("name", RUNNING)
def test_running_vm_main_pid_is_a_live_qemu(listed: dict[str, dict[str, Any]], name: str) -> None:
    pid = listed[name]["unit"]["main_pid"]
    assert isinstance(pid, int) and pid > 0
    exe = os.readlink(f"/proc/{pid}/exe")
    assert Path(exe).name == "qemu-system-x86_64"


@pytest.mark.parametrize("name", RUNNING)
def test_running_vm_socket_answers_qmp(listed: dict[str, dict[str, Any]], name: str) -> None:
    assert listed[name]["hypervisor"] == "qemu"
    assert qmp_status(listed[name]["socket"]) == "running"


def test_taps_exist_and_are_up(listed: dict[str, dict[str, Any]]) -> None:
    web = listed["web"]
    taps = [i for i in web["interfaces"] if i["type"] == "tap"]
    assert taps, web["interfaces"]
    for tap in taps:
        assert tap["exists"] is True, tap
        assert tap["oper_state"] == "UP", tap
        assert tap["mac"]


def test_web_has_share_volume_and_balloon(listed: dict[str, dict[str, Any]]) -> None:
    web = listed["web"]
    assert web["balloon"] is True
    assert any(s["proto"] == "9p" and s["source_exists"] for s in web["shares"]), web["shares"]
    assert any(v["exists"] and v["size_bytes"] > 0 for v in web["volumes"]), web["volumes"]
    assert web["vcpu"] and web["mem_mib"]


def test_drift_states(listed: dict[str, dict[str, Any]]) -> None:
    assert listed["web"]["drift"] == "current"
    assert listed["db"]["drift"] == "stale"
    assert listed["db"]["booted"] != listed["db"]["runner"]
    assert listed["idle"]["drift"] == "not-booted"
    assert listed["idle"]["unit"]["active"] == "inactive"
    assert listed["decl"]["declarative"] is True
    assert listed["decl"]["flake"] is None


def test_broken_has_problems_and_the_rest_are_intact(listed: dict[str, dict[str, Any]]) -> None:
    broken = listed["broken"]
    assert broken["drift"] == "broken"
    assert broken["problems"]
    for name in ("web", "db", "decl", "console", "idle"):
        assert listed[name]["problems"] == [], (name, listed[name]["problems"])


def test_crashy_restarts_climb(lab: Any) -> None:
    first = by_name(list_json(lab))["crashy"]["unit"]["restarts"]
    assert first is not None
    wait_for(
        lambda: by_name(list_json(lab))["crashy"]["unit"]["restarts"] > first,
        timeout=60,
        interval=1,
        what="crashy's NRestarts to climb",
    )


def test_human_table_against_the_lab(lab: Any) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "tui", "list", "--config", str(lab.config_path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    rows = {line.split()[0]: line for line in proc.stdout.splitlines()[1:] if line.strip()}
    assert "active" in rows["web"]
    assert "stale" in rows["db"]
    assert "broken" in rows["broken"]


def test_crashy_is_a_crash_loop_in_list(lab: Any) -> None:
    """`list` sees one moment: crashy's restarts and its last start say it loops."""
    crashy = wait_for(
        lambda: (vm := by_name(list_json(lab))["crashy"])["problems"] and vm,
        timeout=60,
        interval=1,
        what="crashy's crash-loop problem",
    )
    assert crashy["problems"][0].startswith("crash-looping: ")
    assert crashy["problems"][0].endswith(
        " automatic restarts of microvm@crashy.service, the last within 5 min"
    )


def _list_on_a_terminal(lab: Any) -> list[str]:
    """`microvm-tui list` with its stdout on a pty: the lines it wrote."""
    import pty

    leader, follower = pty.openpty()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "tui", "list", "--config", str(lab.config_path)],
            stdout=follower, stderr=subprocess.PIPE, env={**os.environ, "NO_COLOR": "1"},
            check=True, timeout=60,
        )  # fmt: skip
        os.close(follower)
        follower = -1
        out = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the writer is gone
                break
            if not chunk:
                break
            out += chunk
    finally:
        if follower >= 0:
            os.close(follower)
        os.close(leader)
    assert proc.returncode == 0
    return out.decode().replace("\r", "").splitlines()


def test_human_table_on_a_terminal_has_restarts_and_the_legend(lab: Any) -> None:
    def crashy_not_stopped() -> list[str] | None:
        # One look cannot call a unit that is stopped at that moment crash-looping, and a
        # crash loop passes through inactive/dead at each restart: a look landing there is
        # taken again (tui/host/crashloop.py).
        lines = _list_on_a_terminal(lab)
        rows = {line.split()[0]: line.split() for line in lines[1:] if line.strip()}
        state = rows.get("crashy", ["", ""])[1]
        return None if state.startswith(("inactive", "failed")) else lines

    lines = wait_for(crashy_not_stopped, 60, 0.2, what="a look at crashy not stopped")
    assert lines[0].split()[:3] == ["NAME", "UNIT", "RESTARTS"]
    rows = {line.split()[0]: line.split() for line in lines[1:] if line.strip()}
    assert rows["web"][2] == "0"
    assert int(rows["crashy"][2]) >= 3 and rows["crashy"][3] == "⟳", rows["crashy"]
    assert "vm-idle!" in rows["idle"]
    assert lines[-1] == "NIC!: declared by the runner, missing on the host (normal while stopped)"


def _qemu_option(argv: list[str], option: str) -> str:
    return argv[argv.index(option) + 1]


@pytest.mark.parametrize("name", RUNNING)
def test_running_vm_facts_come_from_its_qemu_command_line(
    listed: dict[str, dict[str, Any]], name: str
) -> None:
    """The lab's real QEMU: `list` read /proc/MAINPID/cmdline, and what it reports is what
    that command line says (read here independently)."""
    vm = listed[name]
    pid = vm["unit"]["main_pid"]
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").decode().split("\0")
    facts = vm["facts"]
    assert facts["from"] == "process", facts
    assert facts["pid"] == pid
    assert facts["process_not_read"] is None
    assert facts["sources"]["vcpu"] == facts["sources"]["mem_mib"] == "process"
    assert vm["vcpu"] == int(_qemu_option(argv, "-smp").split(",")[0])
    size = re.match(r"(?:size=)?(\d+)([MG]?)", _qemu_option(argv, "-m"))
    assert size is not None
    assert vm["mem_mib"] == int(size.group(1)) * (1024 if size.group(2) == "G" else 1)
    qmp = _qemu_option(argv, "-qmp").split(",")[0].removeprefix("unix:")
    assert vm["socket"] == os.path.join(vm["path"], qmp)  # relative: to the state dir


def test_stopped_vm_facts_come_from_the_script(listed: dict[str, dict[str, Any]]) -> None:
    facts = listed["idle"]["facts"]
    assert facts["from"] == "script" and facts["pid"] is None
