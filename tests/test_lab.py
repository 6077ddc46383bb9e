"""The lab is a real microvm.nix host: real qemu, real systemd units, real taps, real Nix store."""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import pytest

from tests.conftest import lab_root, require_lab_host, wait_for
from tui.host.settings import default_cache_dir
from tui.lab import Lab
from tui.lab.lab import serial_output

pytestmark = pytest.mark.lab


def show(lab: Lab, unit: str, *props: str) -> dict[str, str]:
    """`systemctl --user show` exactly as the app runs it (the lab's settings and env)."""
    s = lab.settings
    out = subprocess.run(
        s.systemctl_argv("show", unit, "-p", ",".join(props)),
        env=s.command_env(),
        capture_output=True,
        text=True,
        check=True,
        timeout=10,
    ).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def systemctl(lab: Lab, *args: str) -> None:
    s = lab.settings
    subprocess.run(
        s.systemctl_argv(*args), env=s.command_env(), check=True, capture_output=True, timeout=60
    )


def qmp(sock: Path, command: str, timeout: float = 5.0) -> dict:
    """Connect, negotiate, run one command, disconnect (QMP serves one client at a time)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(str(sock))
        f = s.makefile("rwb")
        greeting = json.loads(f.readline())
        assert "QMP" in greeting
        for cmd in ("qmp_capabilities", command):
            f.write(json.dumps({"execute": cmd}).encode() + b"\n")
            f.flush()
            while True:
                reply = json.loads(f.readline())
                if "event" not in reply:
                    break
            assert "return" in reply, reply
        return reply["return"]


def link(lab: Lab, name: str) -> dict | None:
    out = subprocess.run(
        ["ip", "-j", "-n", lab.netns, "link", "show", name], capture_output=True, text=True
    )
    return json.loads(out.stdout)[0] if out.returncode == 0 and out.stdout.strip() else None


def state(lab: Lab, name: str) -> Path:
    return lab.settings.state_dir / name


# --- what up made ---------------------------------------------------------------------------


def test_config_file_points_the_app_at_the_lab(lab: Lab) -> None:
    from tui.config import load_settings

    assert lab.config_path == lab.root / "microvm-tui.toml"
    # The lab leaves the parse cache where it is by default.
    expected = replace(lab.settings, cache_dir=default_cache_dir())
    assert load_settings(lab.config_path).host == expected
    assert lab.settings.systemd_scope == "user"
    assert lab.settings.netns == lab.netns


def test_web_main_pid_is_a_live_qemu(lab: Lab) -> None:
    props = show(lab, "microvm@web.service", "MainPID", "ActiveState", "ControlGroup")
    assert props["ActiveState"] == "active"
    pid = int(props["MainPID"])
    assert pid > 0
    assert os.path.basename(os.readlink(f"/proc/{pid}/exe")) == "qemu-system-x86_64"
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    assert argv[0] == b"microvm@web"  # exec -a, as prettyProcnames does
    assert os.readlink(f"/proc/{pid}/cwd") == str(state(lab, "web"))
    # The unit's cgroup is the lab's own, and qemu is in it.
    assert props["ControlGroup"].endswith("/microvm@web.service")
    assert props["ControlGroup"] in Path(f"/proc/{pid}/cgroup").read_text()


def test_qmp_socket_answers_query_status(lab: Lab) -> None:
    status = wait_for(
        lambda: _try(lambda: qmp(state(lab, "web") / "web.sock", "query-status")), 10, what="QMP"
    )
    assert status["status"] == "running"
    assert status["running"] is True


def test_web_runner_has_microvm_nix_layout(lab: Lab) -> None:
    current = state(lab, "web") / "current"
    assert os.readlink(current).startswith("/nix/store/")
    assert os.readlink(current).endswith("-microvm-qemu-web")
    assert (current / "share/microvm/hypervisor").read_text().strip() == "qemu"
    assert (current / "share/microvm/tap-interfaces").read_text().split() == ["vm-web"]
    assert (current / "share/microvm/tap-flags").read_text().split() == ["vnet_hdr"]
    assert os.readlink(current / "share/microvm/system").startswith("/nix/store/")
    for script in ("microvm-run", "microvm-shutdown", "microvm-balloon", "tap-up", "tap-down"):
        assert os.access(current / "bin" / script, os.X_OK), script
    lines = [ln for ln in (current / "bin/microvm-run").read_text().splitlines() if ln.strip()]
    assert lines[0].startswith("#!") and lines[0].endswith("bash")
    last = lines[-1]
    assert last.startswith('exec -a "microvm@web" /usr/bin/qemu-system-x86_64 ')
    assert last.endswith(" ${runtime_args:-}")
    argv = shlex.split(last.removesuffix(" ${runtime_args:-}"))[3:]
    pairs = {argv[i]: argv[i + 1] for i in range(len(argv) - 1) if argv[i].startswith("-")}
    assert pairs["-name"] == "web"
    assert pairs["-m"] == "256M" and pairs["-smp"] == "1"
    assert "accel=tcg" in pairs["-M"]
    assert pairs["-qmp"] == "unix:web.sock,server,nowait"
    assert "-nodefaults" in argv and "-no-user-config" in argv and "-no-reboot" in argv
    assert "id=balloon0" in " ".join(argv)
    assert "-fsdev" in argv and "virtio-9p-pci,fsdev=fs0,mount_tag=shared" in argv
    assert "node,memdev=mem" in argv
    assert any(a.startswith("id=vda,format=raw,file=web-data.img,") for a in argv)
    assert "tap,id=vm-web,ifname=vm-web,script=no,downscript=no" in argv
    assert (state(lab, "web") / "web-data.img").stat().st_size == 32 * 1024 * 1024


def test_gcroots_like_microvm_c(lab: Lab) -> None:
    roots = lab.settings.gcroots_dir
    assert os.readlink(roots / "web") == str(state(lab, "web") / "current")
    assert os.readlink(roots / "booted-web") == str(state(lab, "web") / "booted")
    assert (state(lab, "web") / "flake").read_text() == lab.flake_ref()  # echo -n: no newline


def test_tap_is_up_inside_the_lab_netns_only(lab: Lab) -> None:
    tap = wait_for(
        lambda: (lk := link(lab, "vm-web")) and "LOWER_UP" in lk["flags"] and lk,
        10,
        what="vm-web LOWER_UP",
    )
    assert "UP" in tap["flags"]
    host = subprocess.run(["ip", "link", "show", "vm-web"], capture_output=True)
    assert host.returncode != 0  # never in the host's own namespace
    names = {lk["ifname"] for lk in json.loads(_ip_json(lab))}
    taps = {"vm-web", "vm-decl", "vm-idle", "vm-console", "vmm-console"}
    assert names <= {"lo", *taps, "uplink0", "uplink0-peer"}


def test_console_has_a_real_macvtap(lab: Lab) -> None:
    current = state(lab, "console") / "current"
    line = (current / "share/microvm/macvtap-interfaces").read_text().split()
    assert line[0] == "vmm-console" and line[2:] == ["uplink0", "bridge"]
    mvt = wait_for(
        lambda: (lk := link(lab, "vmm-console")) and "LOWER_UP" in lk["flags"] and lk,
        10,
        what="vmm-console LOWER_UP",
    )
    assert mvt["address"] == line[1]
    pid = int(show(lab, "microvm@console.service", "MainPID")["MainPID"])
    fds = {os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
    assert f"/dev/tap{mvt['ifindex']}" in fds  # opened by microvm-run, passed as fd=3


def test_db_is_stale(lab: Lab) -> None:
    booted = os.readlink(state(lab, "db") / "booted")
    current = os.readlink(state(lab, "db") / "current")
    assert booted != current
    assert Path(booted).exists() and Path(current).exists()
    assert show(lab, "microvm@db.service", "ActiveState")["ActiveState"] == "active"


def test_decl_is_declarative(lab: Lab) -> None:
    d = state(lab, "decl")
    assert os.readlink(d / "toplevel").startswith("/nix/store/")
    assert not (d / "flake").exists()
    assert (d / "current/share/microvm/tap-flags").read_text().split() == [
        "vnet_hdr",
        "multi_queue",
    ]


def test_crashy_keeps_restarting(lab: Lab) -> None:
    first = int(show(lab, "microvm@crashy.service", "NRestarts")["NRestarts"])
    wait_for(
        lambda: int(show(lab, "microvm@crashy.service", "NRestarts")["NRestarts"]) > first,
        20,
        what="NRestarts of crashy to climb",
    )


def test_idle_is_installed_but_stopped(lab: Lab) -> None:
    assert show(lab, "microvm@idle.service", "ActiveState")["ActiveState"] == "inactive"
    assert (state(lab, "idle") / "current" / "bin" / "microvm-run").exists()
    assert not (state(lab, "idle") / "booted").is_symlink()


def test_broken_has_a_dangling_current(lab: Lab) -> None:
    current = state(lab, "broken") / "current"
    assert current.is_symlink() and not current.exists()


def test_console_socket_is_an_interactive_shell(lab: Lab) -> None:
    sock = state(lab, "console") / "console-console.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        s.connect(str(sock))
        buf = bytearray()

        def answered() -> bool:
            s.sendall(b"echo $((6*7))\n")
            end = time.monotonic() + 1
            while time.monotonic() < end:
                try:
                    chunk = s.recv(4096)
                except TimeoutError:
                    continue
                buf.extend(chunk)
                if b"\n42\r\n" in buf:
                    return True
            return False

        wait_for(answered, 30, interval=0, what="the console VM to answer 42")


# --- changing it ----------------------------------------------------------------------------


def test_up_twice_is_harmless(lab: Lab) -> None:
    running = ("web", "db", "decl", "console")
    before = {n: show(lab, f"microvm@{n}.service", "MainPID")["MainPID"] for n in running}
    db_booted = os.readlink(state(lab, "db") / "booted")
    sshd, port = lab.sshd.pid(), lab.sshd.port()
    t0 = time.monotonic()
    lab.up()
    assert time.monotonic() - t0 < 30
    after = {n: show(lab, f"microvm@{n}.service", "MainPID")["MainPID"] for n in running}
    assert after == before
    assert sshd is not None and (lab.sshd.pid(), lab.sshd.port()) == (sshd, port)
    assert os.readlink(state(lab, "db") / "booted") == db_booted
    assert os.readlink(state(lab, "db") / "current") != db_booted


def test_stop_start_and_the_booted_link_follows(lab: Lab) -> None:
    d = state(lab, "idle")
    since = time.time()
    systemctl(lab, "start", "microvm@idle.service")
    wait_for(lambda: (d / "booted").is_symlink(), 10, what="booted link")
    assert os.readlink(d / "booted") == os.readlink(d / "current")
    wait_for(lambda: link(lab, "vm-idle"), 10, what="idle's tap")
    wait_for(
        lambda: b"microvm-lab guest idle up" in serial_output(lab.settings, "idle", since),
        60,
        what="idle to boot",
    )
    t0 = time.monotonic()
    systemctl(lab, "stop", "microvm@idle.service")
    # microvm-shutdown's Ctrl-Alt-Del over QMP powers the guest off: seconds, not TimeoutSec.
    assert time.monotonic() - t0 < 10
    wait_for(
        lambda: b"reboot: Power down" in serial_output(lab.settings, "idle", since),
        5,
        what="the guest's power-down line in the journal",
    )
    wait_for(lambda: not (d / "booted").is_symlink(), 10, what="booted link removed")
    wait_for(lambda: link(lab, "vm-idle") is None, 10, what="idle's tap removed")
    assert show(lab, "microvm@idle.service", "ActiveState")["ActiveState"] == "inactive"


# --- down -----------------------------------------------------------------------------------


def test_down_on_a_missing_or_half_made_lab_is_safe() -> None:
    require_lab_host()
    from tui.lab import netns

    Lab(Path("/var/tmp/mvtui-lab-never-made")).down()
    half = Lab(lab_root("mvtui-half-"))
    half._make_dirs()
    netns.create(half.netns)
    half.down()
    assert not half.root.exists()
    assert half.netns not in netns.list_netns()


def test_up_repairs_after_a_crash_and_down_removes_everything() -> None:
    require_lab_host()
    from tui.lab import netns

    other = Lab(lab_root())
    try:
        other.up()
        # A crash: the manager dies, its VMs are orphaned. `up` ends them and starts afresh.
        running = ("web", "db", "decl", "console")
        orphans = {int(show(other, f"microvm@{n}.service", "MainPID")["MainPID"]) for n in running}
        os.kill(other.manager.pid(), 9)
        other.up()
        assert not any(Path(f"/proc/{p}").exists() and not _zombie(p) for p in orphans)
        assert len(_named(netns.pids(other.netns), b"microvm@web")) == 1
        assert os.readlink(state(other, "db") / "booted") != os.readlink(
            state(other, "db") / "current"
        )
        pids = [
            int(show(other, f"microvm@{n}.service", "MainPID")["MainPID"])
            for n in ("web", "db", "decl", "console")
        ]
        manager = other.manager.pid()
        sshd = other.sshd.pid()
        assert manager and all(pids) and sshd
        assert other.netns in netns.list_netns()
    finally:
        other.down()
    for pid in [*pids, manager, sshd]:
        assert not Path(f"/proc/{pid}").exists() or _zombie(pid), pid
    assert other.netns not in netns.list_netns()
    assert not other.root.exists()
    assert not other.settings.gcroots_dir.exists()


# --- helpers --------------------------------------------------------------------------------


def _try(fn):
    try:
        return fn()
    except OSError:
        return None


def _ip_json(lab: Lab) -> str:
    return subprocess.run(
        ["ip", "-j", "-n", lab.netns, "link", "show"], capture_output=True, text=True, check=True
    ).stdout


def _named(pids: set[int], argv0: bytes) -> list[int]:
    found = []
    for pid in pids:
        try:
            if Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0] == argv0:
                found.append(pid)
        except OSError:
            pass
    return found


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True
