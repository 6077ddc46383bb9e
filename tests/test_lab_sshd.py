"""The lab host's real OpenSSH server (tui/lab/sshd.py) and ssh's one-line reasons
(tui/agent/ssh.py): a real sshd on loopback, the real ssh client."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tui.agent.ssh import SSH, hostkey_check_disabled, ssh_reason
from tui.lab.sshd import SSH_KEYGEN, LabSshd


@pytest.fixture(scope="module")
def sshd() -> Iterator[LabSshd]:
    from tests.conftest import lab_sshd

    with lab_sshd("sshd") as server:
        yield server


def run_ssh(*args: str, timeout: float = 20) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [SSH, *args], capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL
    )


def test_alias_logs_in_as_root(sshd: LabSshd) -> None:
    out = run_ssh(*sshd.ssh_args(), "id -un")
    assert out.returncode == 0, out.stderr
    assert out.stdout == b"root\n"
    assert sshd.pid() is not None
    assert (sshd.dir.stat().st_mode & 0o777) == 0o700


def _other_key(tmp_path: Path) -> Path:
    key = tmp_path / "other"
    subprocess.run([str(SSH_KEYGEN), "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    return key


def test_wrong_key_gives_ssh_reason_in_one_line(sshd: LabSshd, tmp_path: Path) -> None:
    key = _other_key(tmp_path)
    config = tmp_path / "ssh_config"
    config.write_text(sshd.ssh_config.read_text().replace(str(sshd.client_key), str(key)))
    out = run_ssh("-F", str(config), sshd.alias, "true")
    assert out.returncode == 255
    assert (
        ssh_reason(out.stderr, out.returncode) == "root@127.0.0.1: Permission denied (publickey)."
    )


def test_changed_host_key_gives_ssh_reason_in_one_line(sshd: LabSshd, tmp_path: Path) -> None:
    key = _other_key(tmp_path)
    kind, blob = key.with_suffix(".pub").read_text().split()[:2]
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{sshd.port()} {kind} {blob}\n")
    out = run_ssh(
        "-F", str(sshd.ssh_config), "-o", f"UserKnownHostsFile={known}", sshd.alias, "true"
    )
    assert out.returncode == 255
    assert b"REMOTE HOST IDENTIFICATION HAS CHANGED" in out.stderr  # ssh's banner, many lines
    reason = ssh_reason(out.stderr, out.returncode)
    assert reason == (
        f"Host key for [127.0.0.1]:{sshd.port()} has changed and you have requested strict "
        "checking. Host key verification failed."
    )


def test_stop_ends_the_server_and_its_sessions_then_start_again(sshd: LabSshd) -> None:
    session = subprocess.Popen(
        [SSH, *sshd.ssh_args(), "echo ready; exec sleep 120"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert session.stdout is not None
        assert session.stdout.readline() == b"ready\n"  # the session is up
        port = sshd.port()
        sshd.stop()
        assert sshd.pid() is None
        session.wait(timeout=10)  # its connection went with the server
        out = run_ssh(*sshd.ssh_args(), "true")
        assert out.returncode == 255
        assert (
            ssh_reason(out.stderr)
            == f"ssh: connect to host 127.0.0.1 port {port}: Connection refused"
        )
    finally:
        if session.poll() is None:
            session.kill()
            session.wait()
        sshd.start()
    assert run_ssh(*sshd.ssh_args(), "true").returncode == 0


def test_reason_of_no_message() -> None:
    assert ssh_reason(b"", 255) == "ssh ended with status 255 without a message"
    assert (
        ssh_reason(b"Warning: Permanently added 'x' (ED25519) to the list\n\x1b[31mboom\n")
        == "␛[31mboom"
    )


@pytest.mark.parametrize(
    "args",
    [
        ["-o", "StrictHostKeyChecking=no", "h"],
        ["-oStrictHostKeyChecking no", "h"],
        ["-o", "UserKnownHostsFile=/dev/null", "h"],
        ["-o", "stricthostkeychecking=off", "h"],
    ],
)
def test_args_that_disable_host_key_checking_are_named(args: list[str]) -> None:
    assert hostkey_check_disabled(args) == args[-2]


def test_ordinary_args_pass() -> None:
    assert (
        hostkey_check_disabled(["-p", "2222", "-o", "StrictHostKeyChecking=accept-new", "root@h"])
        is None
    )
