"""RemoteSource (tui/agent/client.py) over real ssh to a real sshd on loopback (the lab's
LabSshd, without the rest of the lab): the real agent's snapshots arrive; a wrong key, a
changed host key, a missing agent, an unreachable host, a silent or hostile agent (FakeAgent:
tests/fixtures/agent/fake_agent.py) each give one line and never a crash; the host comes back
by itself."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import until_in_app, wait_for
from tui.agent import protocol
from tui.agent.client import RemoteHostError, RemoteSource
from tui.agent.hosts import RemoteHost
from tui.agent.protocol import app_version
from tui.host.text import is_clean
from tui.lab.sshd import SSH_KEYGEN, LabSshd

REPO = Path(__file__).resolve().parent.parent
FAKE = REPO / "tests" / "fixtures" / "agent" / "fake_agent.py"


@pytest.fixture(scope="module")
def sshd() -> Iterator[LabSshd]:
    from tests.conftest import lab_sshd

    with lab_sshd("remote") as server:
        yield server


def real_agent(state_dir: Path) -> str:
    return (
        f"cd {shlex.quote(str(REPO))} && exec {sys.executable} -m tui --state-dir {state_dir} agent"
    )


def fake_agent(mode: str) -> str:
    return f"exec {sys.executable} {FAKE} {mode}"


def source(sshd: LabSshd, agent: str, ssh: list[str] | None = None, **kw) -> RemoteSource:
    host = RemoteHost("h", tuple(ssh or sshd.ssh_args()), agent)
    kw.setdefault("interval", 0.2)
    kw.setdefault("persist", "no")
    return RemoteSource(host, **kw)


def poll_error(src: RemoteSource, timeout: float = 40) -> str:
    """The host's reason once poll raises (polls that still return snapshots are skipped)."""

    def failed() -> str | None:
        try:
            src.poll()
        except RemoteHostError as exc:
            return exc.reason
        return None

    reason = wait_for(failed, timeout, what="the host's error")
    assert "\n" not in reason and is_clean(reason)
    return reason


def test_the_real_agent_over_ssh(sshd: LabSshd, tmp_path: Path) -> None:
    (tmp_path / "alpha").mkdir()
    src = source(sshd, real_agent(tmp_path))
    try:
        snap = src.poll()
        assert [vm.name for vm in snap.inventory.vms] == ["alpha"]
        assert snap.hostname == os.uname().nodename
        assert src.hello is not None and src.read_only is None and src.connected
        (tmp_path / "beta").mkdir()
        wait_for(
            lambda: "beta" in [vm.name for vm in src.poll().inventory.vms],
            30,
            what="beta over the patches",
        )
        assert src.sessions == 1
        proc = src._proc
        assert proc is not None
        ssh_pid = proc.pid
    finally:
        src.close()
    # Closing ends the ssh client it started (and with it the agent's session).
    wait_for(lambda: not Path(f"/proc/{ssh_pid}").exists(), 10, what="the ssh client gone")


def test_a_host_the_config_makes_read_only_stays_so_after_hello(
    sshd: LabSshd, tmp_path: Path
) -> None:
    """[hosts.NAME] read_only = true: the agent (root here) would allow changes; ours says no."""
    host = RemoteHost("h", tuple(sshd.ssh_args()), real_agent(tmp_path), read_only=True)
    src = RemoteSource(host, interval=0.2, persist="no")
    try:
        src.poll()
        assert src.hello is not None and src.hello.get("read_only") is None
        assert src.read_only == "read_only = true in [hosts.h]"
    finally:
        src.close()


def test_wrong_key_is_ssh_reason(sshd: LabSshd, tmp_path: Path) -> None:
    key = tmp_path / "other"
    subprocess.run([str(SSH_KEYGEN), "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    config = tmp_path / "ssh_config"
    config.write_text(sshd.ssh_config.read_text().replace(str(sshd.client_key), str(key)))
    src = source(sshd, real_agent(tmp_path), ["-F", str(config), sshd.alias])
    try:
        assert poll_error(src) == "root@127.0.0.1: Permission denied (publickey)."
    finally:
        src.close()


def test_changed_host_key_is_ssh_reason(sshd: LabSshd, tmp_path: Path) -> None:
    key = tmp_path / "other"
    subprocess.run([str(SSH_KEYGEN), "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    kind, blob = key.with_suffix(".pub").read_text().split()[:2]
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{sshd.port()} {kind} {blob}\n")
    config = tmp_path / "ssh_config"
    config.write_text(sshd.ssh_config.read_text().replace(str(sshd.known_hosts), str(known)))
    src = source(sshd, real_agent(tmp_path), ["-F", str(config), sshd.alias])
    try:
        assert poll_error(src) == (
            f"Host key for [127.0.0.1]:{sshd.port()} has changed and you have requested "
            "strict checking. Host key verification failed."
        )
    finally:
        src.close()


def test_missing_agent(sshd: LabSshd) -> None:
    src = source(sshd, "/nonexistent/microvm-tui agent")
    try:
        reason = poll_error(src)
        assert reason.startswith("no agent on the host: ")
        assert "/nonexistent/microvm-tui" in reason
    finally:
        src.close()


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("huge", "the agent sent a line over 8388608 bytes"),
        ("endless", "the agent sent a line over 8388608 bytes"),
        ("badjson", "the agent sent not JSON: "),
        ("wrongtypes", "the agent sent inventory.vms.console.vcpu: an integer was expected"),
        ("mismatch", "version mismatch: the agent (microvm-tui 6.6.6␛]52;c;cm0gLXJmIH4=␇"),
        ("silent", "no message from the agent in 2 s"),
    ],
)
def test_a_hostile_agent_is_one_line_and_retried(sshd: LabSshd, mode: str, expected: str) -> None:
    # Only the silent agent gets a short silence: a 9 MiB line takes a while on a busy machine.
    silence = 2.0 if mode == "silent" else 30.0
    src = source(sshd, fake_agent(mode), silence=silence, backoff_max=1.0)
    try:
        reason = poll_error(src)
        assert reason.startswith(expected)
        if mode == "mismatch":
            app = f"the app (microvm-tui {app_version()}) protocol {protocol.PROTOCOL}"
            assert reason.endswith(f"speaks protocol 99, {app}")
        wait_for(lambda: src.sessions >= 2, 30, what="a retry")
    finally:
        src.close()


def test_escapes_from_the_agent_never_pass(sshd: LabSshd) -> None:
    src = source(sshd, fake_agent("escapes"))
    try:
        snap = src.poll()
        assert is_clean(snap.hostname or "")
        names = [vm.name for vm in snap.inventory.vms]
        assert "web␛]52;c;cm0gLXJmIH4=␇␛[2J␛[31mred?gnp.exe?1m␍␊" in names
        for vm in snap.inventory.vms:
            for text in (vm.name, vm.flake or "", vm.hypervisor or "", *vm.problems):
                assert is_clean(text), text
        assert all(is_clean(k) for k in snap.samples)
        assert is_clean(snap.inventory.systemd_error or "")
        assert src.poll().poll_ms is not None  # patches keep coming
        assert src.agent_error is None or is_clean(src.agent_error)
    finally:
        src.close()


def test_unreachable_then_back_by_itself(sshd: LabSshd, tmp_path: Path) -> None:
    src = source(sshd, real_agent(tmp_path), backoff_max=1.0, persist="60")
    try:
        src.poll()
        port = sshd.port()
        sshd.stop()
        refused = f"ssh: connect to host 127.0.0.1 port {port}: Connection refused"
        # The session's end (ssh's own line), then the retries' reason.
        assert poll_error(src, 10) in ("Connection to 127.0.0.1 closed by remote host.", refused)
        wait_for(lambda: poll_error(src, 10) == refused, 20, what="a refused retry")
        sshd.start()
        assert sshd.port() == port
        wait_for(lambda: src.connected, 30, what="the host back")
        assert src.poll().inventory.error is None
    finally:
        src.close()
        sshd.start()


# --- the app on a hostile agent ---------------------------------------------------------------


async def test_the_app_on_a_hostile_agent_shows_only_clean_text(sshd: LabSshd) -> None:
    from rich.text import Text

    from tui.app import MicroVMApp
    from tui.config import Settings
    from tui.screens.main import MainScreen
    from tui.widgets.host_header import HostHeader
    from tui.widgets.vm_table import VMTable

    src = source(sshd, fake_agent("escapes"), interval=0.5)
    app = MicroVMApp(Settings(interval=0.5), src, tty_watch=False, remote="evil")
    async with app.run_test(size=(160, 48)) as pilot:
        await until_in_app(pilot, lambda: app.polls >= 3, 60, what="three polls")
        table = app.main_screen.query_one(VMTable)
        assert table.row_count == len(app.snapshot.inventory.vms) > 1
        for key in table.rows:
            for value in table.get_row(key):
                text = value.plain if isinstance(value, Text) else str(value)
                assert is_clean(text), text
        header = app.main_screen.query_one(HostHeader).text.plain
        assert is_clean(header, newlines=True) and "evil" in header
        # Actions go to the agent (it runs them with the host's checks, or refuses).
        assert app.read_only_reason is None and app.actions.runner is src.jobs
        await pilot.press("c")  # a console would open local paths the agent named
        await pilot.press("l")
        await pilot.pause()
        assert isinstance(app.screen, MainScreen)
        assert app.is_running


async def test_the_app_on_an_agent_sending_huge_lines_says_why(sshd: LabSshd) -> None:
    from tui.app import MicroVMApp
    from tui.config import Settings
    from tui.widgets.host_header import HostHeader

    src = source(sshd, fake_agent("huge"), interval=0.5, backoff_max=1.0)
    app = MicroVMApp(Settings(interval=0.5), src, tty_watch=False, remote="evil")
    async with app.run_test(size=(160, 48)) as pilot:
        await until_in_app(pilot, lambda: app.poll_errors >= 2, 90, what="failed polls")
        header = app.main_screen.query_one(HostHeader).text.plain
        assert "poll failed: h: the agent sent a line over 8388608 bytes" in header
        assert app.is_running
