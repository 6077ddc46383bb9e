"""Endpoint discovery without a lab: `query-chardev` replies as the lab's QEMU 7.2 gave them,
the runner's serial spec, and the takeover marker."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tui.host.console.chardevs import Chardev, parse_chardevs
from tui.host.console.discovery import _from_chardevs, _from_runner
from tui.host.console.endpoints import EndpointKind
from tui.host.console.marker import TAKEOVER_MARKER, TakeoverMarker, read_marker, write_marker
from tui.host.model import VM, SerialSpec
from tui.host.settings import HostSettings

# Real replies (QEMU 7.2, the lab): a microvm.nix default VM, one with a serial socket, and a
# default VM after `chardev-change` of stdio to a socket.
WEB = [
    {"frontend-open": True, "filename": "stdio", "label": "stdio"},
    {"frontend-open": True, "filename": "unix:web.sock,server=on", "label": "compat_monitor0"},
]
CONSOLE = [
    {
        "frontend-open": True,
        "filename": "disconnected:unix:console-console.sock,server=on",
        "label": "console",
    },
    {"frontend-open": False, "filename": "stdio", "label": "stdio"},
    {"frontend-open": True, "filename": "unix:console.sock,server=on", "label": "compat_monitor0"},
]


def taken(path: str, connected: bool) -> list[dict]:
    prefix = "" if connected else "disconnected:"
    return [
        {"frontend-open": True, "filename": f"{prefix}unix:{path},server=on", "label": "stdio"},
        WEB[1],
    ]


@pytest.fixture
def settings(tmp_path: Path) -> HostSettings:
    (tmp_path / "logs").mkdir()
    return HostSettings(state_dir=tmp_path, console_log_dir=tmp_path / "logs")


def make_vm(tmp_path: Path, name: str, serial: SerialSpec) -> VM:
    path = tmp_path / name
    path.mkdir(exist_ok=True)
    return VM(
        name=name, path=path, hypervisor="qemu", socket=str(path / f"{name}.sock"), serial=serial
    )


def test_chardev_filenames() -> None:
    devs = parse_chardevs([*CONSOLE, "junk", {"label": 1}])
    assert [d.label for d in devs] == ["console", "stdio", "compat_monitor0"]
    console = devs[0]
    assert not console.connected and console.server and console.backend == "unix"
    assert console.unix_path(Path("/s/console")) == "/s/console/console-console.sock"
    assert Chardev("serial0", "pty:/dev/pts/3").pty_path == "/dev/pts/3"
    assert Chardev("x", "unix:/abs/p.sock,server=on").unix_path(Path("/s")) == "/abs/p.sock"
    assert not Chardev("x", "unix:/p,server=off").server
    assert parse_chardevs({"not": "a list"}) == []


def test_socket_serial_from_qmp(tmp_path: Path, settings: HostSettings) -> None:
    sock = str(tmp_path / "console" / "console-console.sock")
    vm = make_vm(tmp_path, "console", SerialSpec("unix", sock, True))
    ep = _from_chardevs(vm, settings, parse_chardevs(CONSOLE), 77, "")
    assert ep is not None and ep.kind is EndpointKind.UNIX and ep.interactive
    assert ep.path == sock and ep.chardev == "console" and not ep.busy
    busy = [dict(CONSOLE[0], filename="unix:console-console.sock,server=on"), *CONSOLE[1:]]
    ep = _from_chardevs(vm, settings, parse_chardevs(busy), 77, "")
    assert ep is not None and ep.busy and "Another client" in ep.explanation


def test_stdio_serial_is_a_takeover_offer(tmp_path: Path, settings: HostSettings) -> None:
    vm = make_vm(tmp_path, "web", SerialSpec("stdio"))
    ep = _from_chardevs(vm, settings, parse_chardevs(WEB), 42, "HINT")
    assert ep is not None and ep.kind is EndpointKind.TAKEOVER
    assert ep.needs_confirmation and not ep.interactive and ep.main_pid == 42
    assert ep.path == str(vm.path / "microvm-tui.console.sock")
    assert ep.transcript == str(vm.path / "microvm-tui.console.log")
    assert ep.fallback is not None and ep.fallback.kind is EndpointKind.LOGFILE
    assert ep.fallback.path == str(settings.console_log_dir / "web.log")
    assert "one-way until web restarts" in ep.explanation


def test_journal_when_no_log_dir(tmp_path: Path) -> None:
    settings = HostSettings(state_dir=tmp_path, systemd_scope="user")
    vm = make_vm(tmp_path, "web", SerialSpec("stdio"))
    ep = _from_chardevs(vm, settings, parse_chardevs(WEB), 42, "")
    assert ep is not None and ep.fallback is not None
    assert ep.fallback.kind is EndpointKind.JOURNAL
    argv = ep.fallback.argv
    assert argv[0].endswith("/journalctl") and argv[1] == "--user"
    assert "--user-unit=microvm@web.service" in argv


def test_takeover_marker_is_used_only_for_the_same_pid(
    tmp_path: Path, settings: HostSettings
) -> None:
    vm = make_vm(tmp_path, "web", SerialSpec("stdio"))
    sock, log = str(vm.path / "microvm-tui.console.sock"), str(vm.path / "microvm-tui.console.log")
    write_marker(vm, TakeoverMarker(sock, log, 42, "stdio", 1.0, "/l/web.log", 7, 100))
    marker = read_marker(vm)
    assert marker is not None and marker.main_pid == 42 and marker.history_offset == 100
    ep = _from_chardevs(vm, settings, parse_chardevs(taken(sock, False)), 42, "")
    assert ep is not None and ep.kind is EndpointKind.UNIX and ep.source == "takeover"
    assert ep.transcript == log and not ep.needs_confirmation
    # Another hypervisor process: the marker is stale; stdio is back, so: an offer again.
    ep = _from_chardevs(vm, settings, parse_chardevs(WEB), 43, "")
    assert ep is not None and ep.kind is EndpointKind.TAKEOVER


def test_stdio_switched_by_someone_else(tmp_path: Path, settings: HostSettings) -> None:
    vm = make_vm(tmp_path, "web", SerialSpec("stdio"))
    other = str(vm.path / "other-tool.sock")
    ep = _from_chardevs(vm, settings, parse_chardevs(taken(other, True)), 42, "")
    assert ep is not None and ep.kind is EndpointKind.UNIX and ep.path == other
    assert ep.busy and "switched to a unix socket" in ep.explanation


@pytest.mark.parametrize("content", [b"", b"{", b"[]", b'{"socket": 1}', b"\xff" * 10])
def test_bad_marker_is_no_marker(tmp_path: Path, content: bytes) -> None:
    vm = make_vm(tmp_path, "web", SerialSpec("stdio"))
    (vm.path / TAKEOVER_MARKER).write_bytes(content)
    assert read_marker(vm) is None


def test_runner_fallbacks(tmp_path: Path, settings: HostSettings) -> None:
    vm = make_vm(tmp_path, "ch", SerialSpec("unix", str(tmp_path / "ch" / "missing.sock"), True))
    vm.hypervisor = "cloud-hypervisor"
    ep = _from_runner(vm, settings, 5, "", "")
    assert ep.kind is EndpointKind.NONE and ep.transient and "does not exist" in ep.explanation
    vm.serial = SerialSpec("pty")
    ep = _from_runner(vm, settings, 5, "", "QMP is not reachable (timeout)")
    assert ep.kind is EndpointKind.LOGFILE and "pty" in ep.explanation
    vm.serial = SerialSpec("null")
    ep = _from_runner(vm, settings, 5, "", "")
    assert ep.kind is EndpointKind.LOGFILE and "null" in ep.explanation


def test_marker_json_shape(tmp_path: Path) -> None:
    vm = make_vm(tmp_path, "web", SerialSpec("stdio"))
    write_marker(vm, TakeoverMarker("/s", "/l", 1))
    data = json.loads((vm.path / TAKEOVER_MARKER).read_text())
    assert data["version"] == 1 and data["socket"] == "/s" and data["main_pid"] == 1
    assert not list(vm.path.glob(".*.tmp"))
